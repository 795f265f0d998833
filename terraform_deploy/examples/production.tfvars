# A production starting point: `terraform plan -var-file=examples/production.tfvars`. Replace the
# placeholders with the VPC and private subnets of your account.
vpc_id     = "vpc-0123456789abcdef0"
subnet_ids = ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]

# The subnets have no NAT gateway: the stack creates VPC endpoints for the AWS APIs it calls.
vpc_routes_to_aws = false

# Connections: the proxy pools the API's warm containers (one connection each) onto the instance's
# max_connections; the aggregator may hold at most aggregator_concurrency more.
create_rds_proxy       = true
aggregator_concurrency = 10
db_instance_class      = "db.t4g.small"
db_multi_az            = true

log_retention_days = 365
# alarm_actions = ["arn:aws:sns:us-east-1:123456789012:fma-oncall"]
