variable "aws_region" {
  description = "Region everything is created in."
  type        = string
  default     = "us-east-1"
}

variable "aws_profile" {
  description = "Named profile of the AWS shared configuration to use; null uses the default credential chain."
  type        = string
  default     = null
}

variable "assume_role_arn" {
  description = "Role Terraform assumes for every call; null works with the caller's own credentials."
  type        = string
  default     = null
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, roles, buckets, secrets, log groups)."
  type        = string
  default     = "fma"
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { application = "fma" }
}

variable "lambda_zip_path" {
  description = "Lambda artifact built by `make lambda-package`: an absolute path, or one relative to this folder (wherever terraform runs from)."
  type        = string
  default     = "../artifacts/fma-lambda.zip"
}

variable "lambda_runtime" {
  description = "Lambda runtime; must match LAMBDA_PYTHON_VERSION in the Makefile, which builds the wheels for it."
  type        = string
  default     = "python3.12"
}

variable "api_memory_mb" {
  description = "Memory of the API function (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "aggregator_memory_mb" {
  description = "Memory of the aggregator function; it holds the running mean plus one update at a time."
  type        = number
  default     = 3008
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API function: at most this many requests run at once (each warm container holds one database connection); -1 reserves none (the account's unreserved pool)."
  type        = number
  default     = -1
  validation {
    condition     = var.api_reserved_concurrency == -1 || var.api_reserved_concurrency >= 1
    error_message = "api_reserved_concurrency must be -1 (no reservation) or at least 1 (0 would refuse every request)."
  }
}

variable "api_throttle_rate_limit" {
  description = "Steady requests per second the API stage accepts before answering 429 (one update from a client is about five requests)."
  type        = number
  default     = 100
}

variable "api_throttle_burst_limit" {
  description = "Requests the API stage accepts in a burst above api_throttle_rate_limit."
  type        = number
  default     = 200
}

variable "live_versions" {
  description = "Roll back: the published version the live alias of each function (keys api, aggregator) points at, e.g. { api = \"6\", aggregator = \"6\" }. A function left out points at the version this apply published (docs/deploy.md, Rollback)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for name in keys(var.live_versions) : contains(["api", "aggregator"], name)])
    error_message = "live_versions takes the keys api and aggregator only."
  }
}

variable "custom_domain_name" {
  description = "Domain name clients reach the service at (e.g. fma.example.org), mapped to the API's stage; empty keeps only the execute-api URL. It becomes TRUSTED_ORIGIN unless trusted_origin is set."
  type        = string
  default     = ""
}

variable "custom_domain_certificate_arn" {
  description = "ACM certificate of custom_domain_name, in the stack's region (a regional endpoint)."
  type        = string
  default     = ""
  validation {
    condition     = (var.custom_domain_certificate_arn == "") == (var.custom_domain_name == "")
    error_message = "custom_domain_name and custom_domain_certificate_arn go together: set both, or neither."
  }
}

variable "aggregator_concurrency" {
  description = "Reserved concurrency of the aggregator: at most this many aggregations (each one database connection) run at once."
  type        = number
  default     = 10
  validation {
    condition     = var.aggregator_concurrency >= 1
    error_message = "aggregator_concurrency must be at least 1 (0 would stop every aggregation)."
  }
}

variable "secrets_extension_layer_arn" {
  description = "ARN of the AWS Parameters and Secrets Lambda Extension layer for the region; empty reads secrets through boto3."
  type        = string
  default     = ""
}

variable "trusted_origin" {
  description = "Origin clients reach the service at (https://host) when it is not the API Gateway URL, e.g. a custom domain."
  type        = string
  default     = ""
}

variable "vpc_id" {
  description = "VPC of the database and the functions."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more zones) for the database and the functions; they reach S3, Secrets Manager, Lambda, EventBridge Scheduler and EventBridge through the VPC endpoints created here, or through a NAT gateway (vpc_routes_to_aws)."
  type        = list(string)
}

variable "logs_endpoint" {
  description = "Also create a CloudWatch Logs interface endpoint (with vpc_routes_to_aws = false). Lambda delivers the functions' logs itself, outside the VPC, so the service does not need it; code that calls the Logs API from inside the VPC would."
  type        = bool
  default     = false
}

variable "vpc_routes_to_aws" {
  description = "true when the subnets already reach the AWS APIs (a NAT gateway, or endpoints of their own): no VPC endpoints are created. false creates interface endpoints for Secrets Manager, Lambda, EventBridge Scheduler and EventBridge (and CloudWatch Logs with logs_endpoint) and a gateway endpoint for S3."
  type        = bool
  default     = false
}

variable "route_table_ids" {
  description = "Route tables the S3 gateway endpoint is added to; empty means every route table of the VPC."
  type        = list(string)
  default     = []
}

variable "create_rds_proxy" {
  description = "Put an RDS Proxy between the functions and PostgreSQL: it pools their connections, so a burst of cold starts cannot exhaust the instance's max_connections."
  type        = bool
  default     = false
}

variable "rds_proxy_max_connections_percent" {
  description = "Share of the instance's max_connections the proxy may open."
  type        = number
  default     = 80
}

variable "admin_username" {
  description = "User name of the first admin user, created by the deploy with a generated password kept in the admin secret (output admin_secret_arn)."
  type        = string
  default     = "admin"
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can be restored; 0 deletes at once, so that destroy followed by apply can create the same names again."
  type        = number
  default     = 0
}

variable "alarm_email" {
  description = "E-mail address subscribed to the alarm topic (output alarm_topic_arn); it must confirm the subscription AWS sends. Empty subscribes no one."
  type        = string
  default     = ""
}

variable "alarm_actions" {
  description = "Further ARNs (e.g. an on-call SNS topic) notified when an alarm fires or clears, besides the stack's own alarm topic."
  type        = list(string)
  default     = []
}

variable "api_latency_p99_alarm_ms" {
  description = "The API alarm fires when the 99th percentile of its latency over five minutes exceeds this many milliseconds."
  type        = number
  default     = 5000
}

variable "db_connections_alarm_threshold" {
  description = "The database alarm fires when PostgreSQL holds more connections than this (keep it under the instance class's max_connections: about 80 on db.t4g.micro, 180 on db.t4g.small)."
  type        = number
  default     = 64
}

variable "dashboard" {
  description = "Create a CloudWatch dashboard of the deployment (API, functions, database, proxy, failures queue); costs $3 a month beyond the account's first three."
  type        = bool
  default     = true
}

variable "existing_db_instance_identifier" {
  description = "Identifier of an existing RDS PostgreSQL instance to use; empty creates one."
  type        = string
  default     = ""
}

variable "existing_db_secret_arn" {
  description = "Secrets Manager secret with the existing instance's credentials ({\"username\": ..., \"password\": ...}); needed with existing_db_instance_identifier."
  type        = string
  default     = ""
}

variable "db_name" {
  description = "Name of the FMA database on the PostgreSQL instance."
  type        = string
  default     = "fma"
}

variable "db_instance_class" {
  description = "Instance class of the created database."
  type        = string
  default     = "db.t4g.micro"
}

variable "db_allocated_storage_gb" {
  description = "Storage of the created database, in GiB."
  type        = number
  default     = 20
}

variable "db_engine_version" {
  description = "PostgreSQL major version of the created database."
  type        = string
  default     = "15"
}

variable "deletion_protection" {
  description = "Protect the data from terraform destroy: the created database's deletion protection, and buckets that are only deleted when empty. false lets destroy remove the database (after its final snapshot) and the buckets with every object version (docs/deploy.md, Teardown)."
  type        = bool
  default     = true
}

variable "app_db_username" {
  description = "PostgreSQL role the service connects as; the migration event creates it, with the generated password of the app database secret (output app_db_secret_arn), and grants it the FMA tables only."
  type        = string
  default     = "fma_app"
}

variable "db_multi_az" {
  description = "Run the created database in two availability zones."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps the functions' and the API's logs."
  type        = number
  default     = 365
}
