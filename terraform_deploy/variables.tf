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
  description = "Lambda artifact built by `make lambda-package` (relative to this folder)."
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
  description = "Reserved concurrency of the aggregator: at most this many aggregations run at once."
  type        = number
  default     = 10
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
  description = "Private subnets (two or more zones) for the database and the functions; they need a NAT gateway or VPC endpoints to reach S3, Secrets Manager, Lambda and EventBridge."
  type        = list(string)
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
