# Both functions run the same artifact (`make lambda-package`), uploaded to the artifacts bucket;
# source_code_hash makes a new build redeploy them.
locals {
  trusted_origin = var.trusted_origin != "" ? var.trusted_origin : aws_apigatewayv2_api.fma.api_endpoint

  function_environment = merge(
    {
      DJANGO_SETTINGS_MODULE   = "federated_learning_project.settings_remote"
      FMA_DATABASE_NAME        = var.db_name
      FMA_DATABASE_HOST        = local.db_address
      FMA_DATABASE_PORT        = tostring(local.db_port)
      FMA_DB_SECRET_PATH       = local.db_secret_arn
      FMA_SECRET_KEY_SECRET_ID = aws_secretsmanager_secret.django_secret_key.arn
      FMA_MODEL_DATA_BUCKET    = module.model_data_bucket.id
      TRUSTED_ORIGIN           = local.trusted_origin
      # Known before the function exists, so the API's environment does not wait for it.
      AGGREGATOR_LAMBDA_ARN = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.aggregator_function_name}"
    },
    var.secrets_extension_layer_arn == "" ? {} : { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT = "2773" },
  )

  functions = {
    api = {
      name        = local.api_function_name
      description = "FMA REST API (Django) and the database-migration event"
      handler     = "service_initialization.handler"
      role        = aws_iam_role.fma["api"].arn
      memory      = var.api_memory_mb
      timeout     = 30
      concurrency = -1
    }
    aggregator = {
      name        = local.aggregator_function_name
      description = "FMA aggregation of one model, invoked by the API or the model's EventBridge rule"
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
  #checkov:skip=CKV_AWS_116:The API is invoked synchronously (no dead-letter queue applies); a failed aggregation leaves its updates to the model's next scheduled run.
  #checkov:skip=CKV_AWS_115:The aggregator's concurrency is reserved (aggregator_concurrency); the API scales with its clients under the stage's throttling.
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
  source_code_hash               = filebase64sha256(var.lambda_zip_path)
  layers                         = var.secrets_extension_layer_arn == "" ? [] : [var.secrets_extension_layer_arn]
  kms_key_arn                    = aws_kms_key.fma.arn

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

# The API creates the per-model rules at run time; this lets all of them, and nothing else, invoke
# the aggregator.
resource "aws_lambda_permission" "aggregator_from_schedules" {
  statement_id   = "fma-scheduled-rules"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.fma["aggregator"].function_name
  principal      = "events.amazonaws.com"
  source_account = local.account_id
  source_arn     = local.schedule_rule_arn_pattern
}

resource "aws_cloudwatch_log_group" "fma" {
  for_each          = local.functions
  name              = "/aws/lambda/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.fma.arn
}
