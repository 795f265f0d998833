# Per-model aggregation schedules (fma_django_connectors.aggregation.schedules): the API and the aggregator put
# one EventBridge Scheduler schedule per model, model-<id>, in this deployment's group, enabled only while
# the model has pending work. The group belongs to the stack: destroying it deletes every schedule in it.
# Names are unique per group, so deployments sharing an account and region never touch each other's
# schedules; the default quota is millions of schedules per account and region (EventBridge: 300 rules per bus).
resource "aws_scheduler_schedule_group" "fma" {
  name = var.name_prefix
}

locals {
  schedule_arn_pattern = "arn:${local.partition}:scheduler:${local.region}:${local.account_id}:schedule/${aws_scheduler_schedule_group.fma.name}/*"
  # Known before the function exists, as its AGGREGATOR_LAMBDA_ARN (lambda.tf); ":*" adds its versions and aliases.
  scheduled_function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.aggregator_function_name}"
  # What each function does with its deployment's schedules: the API puts and deletes them with the models;
  # the aggregator settles them after each run (and creates a missing one) and migrates at deploy.
  schedule_actions = {
    api        = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"]
    aggregator = ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]
  }
  # Earlier versions kept one EventBridge rule per model, fma-scheduled-<id>, whatever the deployment.
  legacy_schedule_rule_arn_pattern = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/fma-scheduled-*"
}

# The role the schedules invoke the aggregator with; it may invoke nothing else, and only this group's
# schedules may assume it.
data "aws_iam_policy_document" "scheduler_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_scheduler_schedule_group.fma.arn]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  name               = "${var.name_prefix}-scheduler"
  assume_role_policy = data.aws_iam_policy_document.scheduler_assume.json
}

data "aws_iam_policy_document" "scheduler_invoke" {
  statement {
    sid       = "InvokeAggregator"
    actions   = ["lambda:InvokeFunction"]
    resources = [local.scheduled_function_arn, "${local.scheduled_function_arn}:*"]
  }
}

resource "aws_iam_role_policy" "scheduler_invoke" {
  name   = "invoke-aggregator"
  role   = aws_iam_role.scheduler.id
  policy = data.aws_iam_policy_document.scheduler_invoke.json
}

data "aws_iam_policy_document" "schedules" {
  for_each = local.schedule_actions

  statement {
    sid       = "DeploymentSchedules"
    actions   = each.value
    resources = [local.schedule_arn_pattern]
  }

  # A schedule is created with the role it invokes with: only that role, and only for EventBridge Scheduler.
  statement {
    sid       = "PassSchedulerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.scheduler.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["scheduler.amazonaws.com"]
    }
  }

  # migrate_schedules (aggregator, at deploy) deletes the rules of earlier versions aimed at this
  # deployment's aggregator. ListRuleNamesByTarget takes no resource (IAM accepts only "*" for it).
  dynamic "statement" {
    for_each = each.key == "aggregator" ? [1] : []
    content {
      sid       = "FindLegacyRules"
      actions   = ["events:ListRuleNamesByTarget"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = each.key == "aggregator" ? [1] : []
    content {
      sid       = "DeleteLegacyRules"
      actions   = ["events:ListTargetsByRule", "events:RemoveTargets", "events:DeleteRule"]
      resources = [local.legacy_schedule_rule_arn_pattern]
    }
  }
}

resource "aws_iam_role_policy" "schedules" {
  for_each = local.schedule_actions
  name     = "schedules"
  role     = aws_iam_role.fma[each.key].id
  policy   = data.aws_iam_policy_document.schedules[each.key].json
}

# Each deploy that changes the code, after the database migration: this deployment's fma-scheduled-* rules
# go, and the models with pending work get their schedule (idle ones get theirs when work arrives).
resource "aws_lambda_invocation" "migrate_schedules" {
  function_name = aws_lambda_function.fma["aggregator"].function_name
  input         = jsonencode({ detail = "migrate_schedules" })
  triggers = {
    source_code_hash = aws_lambda_function.fma["aggregator"].source_code_hash
  }
  depends_on = [aws_lambda_invocation.migrate, aws_iam_role_policy.schedules]
}
