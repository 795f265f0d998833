# Both functions run the same artifact (`make lambda-package`), uploaded to the artifacts bucket;
# source_code_hash makes a new build redeploy them. Each change publishes a version; callers (API
# Gateway, the API's asynchronous invokes, the schedules) reach a function through its `live` alias,
# which moves to the new version only after the migration ran on it (below).
locals {
  # Relative to this folder, not to where terraform runs (e.g. `terraform -chdir=...`, or as a module).
  lambda_zip_path = startswith(var.lambda_zip_path, "/") ? var.lambda_zip_path : "${path.module}/${var.lambda_zip_path}"
  lambda_zip_hash = filebase64sha256(local.lambda_zip_path)

  trusted_origin = (
    var.trusted_origin != "" ? var.trusted_origin :
    var.custom_domain_name != "" ? "https://${var.custom_domain_name}" : aws_apigatewayv2_api.fma.api_endpoint
  )

  function_environment = merge(
    {
      DJANGO_SETTINGS_MODULE   = "federated_learning_project.settings_remote"
      FMA_DATABASE_NAME        = var.db_name
      FMA_DATABASE_HOST        = local.db_host
      FMA_DATABASE_PORT        = tostring(local.db_port)
      FMA_DB_SECRET_PATH       = local.db_secret_arn
      FMA_APP_DB_SECRET_PATH   = aws_secretsmanager_secret.app_db.arn
      FMA_SECRET_KEY_SECRET_ID = aws_secretsmanager_secret.django_secret_key.arn
      FMA_ADMIN_SECRET_ID      = aws_secretsmanager_secret.admin.arn
      FMA_MODEL_DATA_BUCKET    = module.model_data_bucket.id
      TRUSTED_ORIGIN           = local.trusted_origin
      # The aggregator's live alias, known before the function exists, so the API's environment does not wait for it.
      AGGREGATOR_LAMBDA_ARN = local.aggregator_live_arn
      # The per-model schedules' group and the role they invoke the aggregator with (schedules.tf).
      FMA_SCHEDULE_GROUP    = aws_scheduler_schedule_group.fma.name
      FMA_SCHEDULE_ROLE_ARN = aws_iam_role.scheduler.arn
    },
    var.secrets_extension_layer_arn == "" ? {} : { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT = "2773" },
  )

  functions = {
    api = {
      name        = local.api_function_name
      description = "FMA REST API (Django) and the bootstrap_admin event"
      handler     = "service_initialization.handler"
      role        = aws_iam_role.fma["api"].arn
      memory      = var.api_memory_mb
      timeout     = 30
      concurrency = var.api_reserved_concurrency
    }
    aggregator = {
      name        = local.aggregator_function_name
      description = "FMA aggregation of one model (invoked by the API or the model's schedule) and the database-migration event"
      handler     = "aggregator_initialization.handler"
      role        = aws_iam_role.fma["aggregator"].arn
      memory      = var.aggregator_memory_mb
      # An unfinished claim (a timed-out run) is reclaimed after its lease by a later run.
      timeout     = 900
      concurrency = var.aggregator_concurrency
    }
  }
}

resource "aws_lambda_function" "fma" {
  #checkov:skip=CKV_AWS_116:The API is invoked synchronously (no dead-letter queue applies); the aggregator's failed asynchronous invokes go to an on-failure destination (observability.tf), which carries more than a dead-letter queue.
  #checkov:skip=CKV_AWS_115:The aggregator's concurrency is reserved (aggregator_concurrency); the API's is a choice (api_reserved_concurrency, none by default) under the stage's throttling.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the deployer owns; this configuration builds and uploads the artifact itself.
  for_each                       = local.functions
  function_name                  = each.value.name
  description                    = each.value.description
  handler                        = each.value.handler
  role                           = each.value.role
  memory_size                    = each.value.memory
  timeout                        = each.value.timeout
  reserved_concurrent_executions = each.value.concurrency
  runtime                        = var.lambda_runtime
  architectures                  = ["x86_64"]
  s3_bucket                      = aws_s3_object.lambda_package.bucket
  s3_key                         = aws_s3_object.lambda_package.key
  s3_object_version              = aws_s3_object.lambda_package.version_id
  source_code_hash               = local.lambda_zip_hash
  layers                         = var.secrets_extension_layer_arn == "" ? [] : [var.secrets_extension_layer_arn]
  kms_key_arn                    = aws_kms_key.fma.arn
  # Every change of code or configuration becomes a numbered version the live alias can point at.
  publish = true

  environment {
    variables = local.function_environment
  }
  vpc_config {
    subnet_ids         = var.subnet_ids
    security_group_ids = [aws_security_group.lambda.id]
  }
  tracing_config {
    mode = "Active"
  }
  # Logs go to the group with its retention, and the role may write them, from the first start.
  depends_on = [aws_cloudwatch_log_group.fma, aws_iam_role_policy.function_common]
}

# --- Day one, and every deploy after ----------------------------------------------------------------
# An upgrade runs in this order: the functions publish new versions (the aliases still serve the old
# ones), the migration runs on the aggregator's new version, and only then do the aliases move. A failed
# migration fails the apply with the function's error, and the old code keeps serving, so migrations must
# be additive (expand, then contract in a later release: docs/deploy.md).
#
# Migrations run on the aggregator: its 900 s timeout lets a long migration finish, where the API's
# 30 s (API Gateway's own limit) would cut it off half-way. The same event creates the service's
# database role from the app secret, so a new secret version re-runs it.
resource "aws_lambda_invocation" "migrate" {
  function_name = aws_lambda_function.fma["aggregator"].function_name
  qualifier     = aws_lambda_function.fma["aggregator"].version
  input         = jsonencode({ detail = "update_metadata_db" })
  triggers = {
    version       = aws_lambda_function.fma["aggregator"].version
    app_db_secret = aws_secretsmanager_secret_version.app_db.version_id
  }
  # The database must be available and reachable before the first run. A created instance is available
  # once aws_db_instance exists (Terraform waits for it); the proxy's target is registered by
  # aws_db_proxy_target, and the proxy reaches the secrets through the rules listed here.
  depends_on = [
    aws_db_instance.fma,
    aws_db_proxy_target.fma,
    aws_vpc_endpoint.interface,
    aws_vpc_security_group_ingress_rule.database_from_lambda,
    aws_vpc_security_group_ingress_rule.endpoints_from_lambda,
    aws_vpc_security_group_ingress_rule.endpoints_from_rds_proxy,
    aws_vpc_security_group_egress_rule.rds_proxy_to_secrets_manager,
    aws_iam_role_policy.function_common,
    aws_iam_role_policy.rds_proxy,
  ]
}

# Result files no aggregate records (runs killed between writing and recording that the next run's claim
# could not name, results named before results were named after their claims): one listing sweep per deploy.
resource "aws_lambda_invocation" "delete_orphan_results" {
  function_name = aws_lambda_function.fma["aggregator"].function_name
  qualifier     = aws_lambda_function.fma["aggregator"].version
  input         = jsonencode({ detail = "delete_orphan_results" })
  triggers = {
    version = aws_lambda_function.fma["aggregator"].version
  }
  depends_on = [aws_lambda_invocation.migrate]
}

# What callers invoke. live_versions pins an earlier version (a rollback); otherwise each alias follows
# the version this apply published, once the migration succeeded on it.
resource "aws_lambda_alias" "live" {
  for_each         = local.functions
  name             = "live"
  description      = "The version callers reach; moved after the deploy's migration (docs/deploy.md)"
  function_name    = aws_lambda_function.fma[each.key].function_name
  function_version = lookup(var.live_versions, each.key, aws_lambda_function.fma[each.key].version)
  depends_on       = [aws_lambda_invocation.migrate]
}

# The first admin user, from the admin secret (secrets.tf); a later run leaves an existing admin alone.
resource "aws_lambda_invocation" "bootstrap_admin" {
  function_name = aws_lambda_function.fma["api"].function_name
  qualifier     = aws_lambda_alias.live["api"].name
  input         = jsonencode({ detail = "bootstrap_admin" })
  triggers = {
    admin_secret_version = aws_secretsmanager_secret_version.admin.version_id
  }
  depends_on = [aws_lambda_invocation.migrate, aws_iam_role_policy.api_bootstrap]
}

resource "aws_cloudwatch_log_group" "fma" {
  for_each          = local.functions
  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.fma.arn
}
