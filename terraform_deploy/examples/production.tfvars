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

# terraform destroy refuses to remove the database and non-empty buckets until this is false
# (docs/deploy.md, Teardown).
deletion_protection = true

# db.t4g.small has max_connections of about 180: alarm well before.
db_connections_alarm_threshold = 140

log_retention_days = 365
# Who is told when an alarm fires (the address confirms the subscription AWS sends).
# alarm_email   = "fma-oncall@example.org"
# alarm_actions = ["arn:aws:sns:us-east-1:123456789012:fma-oncall"]

# Sizing (docs/capacity.md): the stage's steady rate and burst, and the API's share of the account's concurrency.
api_throttle_rate_limit  = 100
api_throttle_burst_limit = 200
# api_reserved_concurrency = 100

# A custom domain (docs/deploy.md, Custom domain): an ACM certificate of the name in this region.
# custom_domain_name            = "fma.example.org"
# custom_domain_certificate_arn = "arn:aws:acm:us-east-1:123456789012:certificate/..."
