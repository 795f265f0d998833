locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  api_function_name        = "${var.name_prefix}-api"
  aggregator_function_name = "${var.name_prefix}-aggregator"
  # What the API and the schedules invoke: the aggregator's live alias (lambda.tf).
  aggregator_live_arn = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.aggregator_function_name}:live"
}
