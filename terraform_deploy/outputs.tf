output "api_url" {
  description = "Root of the service."
  value       = aws_apigatewayv2_stage.default.invoke_url
}

output "api_function_name" {
  description = "The API function (it also serves the bootstrap_admin event)."
  value       = aws_lambda_function.fma["api"].function_name
}

output "aggregator_function_arn" {
  description = "The aggregator's live alias (AGGREGATOR_LAMBDA_ARN of the API; what the schedules invoke)."
  value       = aws_lambda_alias.live["aggregator"].arn
}

output "versions" {
  description = "Per function: the version the live alias serves, and the latest published one (live_versions rolls back to an earlier one)."
  value = {
    for name, alias in aws_lambda_alias.live : name => {
      live      = alias.function_version
      published = aws_lambda_function.fma[name].version
    }
  }
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

output "app_db_secret_arn" {
  description = "Secret holding the service's PostgreSQL role (FMA_APP_DB_SECRET_PATH); the migration event creates the role from it."
  value       = aws_secretsmanager_secret.app_db.arn
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies (subscribe more endpoints to it, or set alarm_email)."
  value       = aws_sns_topic.alarms.arn
}

output "custom_domain_target" {
  description = "Where custom_domain_name's DNS record points (target_domain_name and, for a Route 53 alias, hosted_zone_id); null without a custom domain."
  value = var.custom_domain_name == "" ? null : {
    target_domain_name = aws_apigatewayv2_domain_name.fma[0].domain_name_configuration[0].target_domain_name
    hosted_zone_id     = aws_apigatewayv2_domain_name.fma[0].domain_name_configuration[0].hosted_zone_id
  }
}

output "admin_secret_arn" {
  description = "Secret holding the first admin user's name and generated password (aws secretsmanager get-secret-value)."
  value       = aws_secretsmanager_secret.admin.arn
}

output "aggregator_failures_queue_url" {
  description = "Queue of the aggregator's failed asynchronous invokes (event and error of each)."
  value       = aws_sqs_queue.aggregator_failures.url
}
