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
  description = "Private subnets (two or more zones) for the database and the functions; they reach S3, Secrets Manager, Lambda, EventBridge and CloudWatch Logs through the VPC endpoints created here, or through a NAT gateway (vpc_routes_to_aws)."
  type        = list(string)
}

variable "vpc_routes_to_aws" {
  description = "true when the subnets already reach the AWS APIs (a NAT gateway, or endpoints of their own): no VPC endpoints are created. false creates interface endpoints for Secrets Manager, Lambda, EventBridge and CloudWatch Logs and a gateway endpoint for S3."
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

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) notified when an alarm fires; empty leaves the alarms to the CloudWatch console."
  type        = list(string)
  default     = []
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
