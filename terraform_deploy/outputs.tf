output "api_url" {
  description = "Root of the service."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "api_function_name" {
  description = "The API function (it also serves the bootstrap_admin event)."
  value       = aws_lambda_function.fma["api"].function_name
}

output "aggregator_function_arn" {
  description = "The aggregator function (AGGREGATOR_LAMBDA_ARN of the API)."
  value       = aws_lambda_function.fma["aggregator"].arn
}

output "model_data_bucket" {
  description = "Bucket of the model data (weights of updates and aggregates)."
  value       = module.model_data_bucket.id
}

output "db_address" {
  description = "PostgreSQL host the functions use (the RDS Proxy's endpoint with create_rds_proxy)."
  value       = local.db_host
}

output "db_secret_arn" {
  description = "Secret holding the database credentials."
  value       = local.db_secret_arn
}

output "database_security_group_id" {
  description = "Security group admitting the functions to PostgreSQL; attach it to an existing instance."
  value       = aws_security_group.database.id
}

output "admin_secret_arn" {
  description = "Secret holding the first admin user's name and generated password (aws secretsmanager get-secret-value)."
  value       = aws_secretsmanager_secret.admin.arn
}

output "aggregator_failures_queue_url" {
  description = "Queue of the aggregator's failed asynchronous invokes (event and error of each)."
  value       = aws_sqs_queue.aggregator_failures.url
}
