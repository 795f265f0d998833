# One role per function, each allowed what its code does and no more.
data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "fma" {
  for_each           = toset(["api", "aggregator"])
  name               = "${var.name_prefix}-${each.key}-lambda"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

# What both functions need: their own log group, the secrets read at cold start, the model data,
# the key all of them are encrypted with, and network interfaces in the VPC.
data "aws_iam_policy_document" "function_common" {
  #checkov:skip=CKV_AWS_111:Only the VPC network-interface and X-Ray actions have "*": they accept no resource scope.
  #checkov:skip=CKV_AWS_356:Only the VPC network-interface and X-Ray actions have "*": they accept no resource scope.
  for_each = aws_cloudwatch_log_group.fma

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${each.value.arn}:*"]
  }

  statement {
    sid       = "ServiceSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.db_secret_arn, aws_secretsmanager_secret.app_db.arn, aws_secretsmanager_secret.django_secret_key.arn]
  }

  statement {
    sid       = "ModelDataObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.model_data_bucket.arn}/*"]
  }

  statement {
    sid       = "ModelDataListing"
    actions   = ["s3:ListBucket"]
    resources = [module.model_data_bucket.arn]
  }

  statement {
    sid       = "ServiceKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.fma.arn]
  }

  statement {
    sid       = "Tracing"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # Lambda creates and removes the interfaces itself; these actions take no resource-level scope.
  statement {
    sid = "VpcNetworkInterfaces"
    actions = [
      "ec2:CreateNetworkInterface",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSubnets",
      "ec2:DeleteNetworkInterface",
      "ec2:AssignPrivateIpAddresses",
      "ec2:UnassignPrivateIpAddresses",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "function_common" {
  for_each = aws_iam_role.fma
  name     = "function-common"
  role     = each.value.id
  policy   = data.aws_iam_policy_document.function_common[each.key].json
}

# The API asks the aggregator for an aggregation after each update (the per-model schedules that sweep
# up anything missed: schedules.tf).
data "aws_iam_policy_document" "api_aggregation" {
  statement {
    sid       = "InvokeAggregator"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_alias.live["aggregator"].arn]
  }
}

resource "aws_iam_role_policy" "api_aggregation" {
  name   = "aggregation"
  role   = aws_iam_role.fma["api"].id
  policy = data.aws_iam_policy_document.api_aggregation.json
}

# The bootstrap_admin event reads the first admin's credentials; nothing else reads that secret.
data "aws_iam_policy_document" "api_bootstrap" {
  statement {
    sid       = "AdminSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.admin.arn]
  }
}

resource "aws_iam_role_policy" "api_bootstrap" {
  name   = "bootstrap-admin"
  role   = aws_iam_role.fma["api"].id
  policy = data.aws_iam_policy_document.api_bootstrap.json
}

# Lambda sends the aggregator's failed asynchronous invokes to the destination queue with the
# function's own role (the queue is encrypted with the stack's key, which function_common allows).
data "aws_iam_policy_document" "aggregator_failures" {
  statement {
    sid       = "OnFailureDestination"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.aggregator_failures.arn]
  }
}

resource "aws_iam_role_policy" "aggregator_failures" {
  name   = "on-failure-destination"
  role   = aws_iam_role.fma["aggregator"].id
  policy = data.aws_iam_policy_document.aggregator_failures.json
}
