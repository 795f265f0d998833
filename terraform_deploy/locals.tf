locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name

  api_function_name        = "${var.name_prefix}-api"
  aggregator_function_name = "${var.name_prefix}-aggregator"
}
