output "api_url" {
  description = "Root of the service."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "api_function_name" {
  description = "Invoke with {\"detail\": \"update_metadata_db\"} after each deploy to migrate the database."
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
  description = "PostgreSQL host the functions use."
  value       = local.db_address
}

output "db_secret_arn" {
  description = "Secret holding the database credentials."
  value       = local.db_secret_arn
}

output "database_security_group_id" {
  description = "Security group admitting the functions to PostgreSQL; attach it to an existing instance."
  value       = aws_security_group.database.id
}
