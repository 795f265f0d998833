locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  api_function_name        = "${var.name_prefix}-api"
  aggregator_function_name = "${var.name_prefix}-aggregator"
  # What the API and the schedules invoke: the aggregator's live alias (lambda.tf).
  aggregator_live_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.aggregator_function_name}:live"
  # The API names each model's EventBridge rule fma-scheduled-<model id> (fma_django_connectors.aggregation.schedules).
  schedule_rule_arn_pattern = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/fma-scheduled-*"
}
