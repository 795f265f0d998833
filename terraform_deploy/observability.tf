# Failures that are seen: the aggregator's failed asynchronous invokes (from the API or an EventBridge
# rule, after Lambda's retries) land in a queue instead of vanishing, and alarms fire on function
# errors and throttles, a non-empty queue, the API's 5xx rate and latency, and the database's and the
# proxy's health. Every alarm notifies the stack's SNS topic (alarm_email subscribes an address) and
# alarm_actions, when it fires and when it clears.

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.fma.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

locals {
  alarm_actions = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
}

resource "aws_sqs_queue" "aggregator_failures" {
  name                      = "${var.name_prefix}-aggregator-failures"
  kms_master_key_id         = aws_kms_key.fma.arn
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to look at each failure
}

resource "aws_lambda_function_event_invoke_config" "aggregator" {
  # Set per qualifier: the callers invoke the live alias.
  function_name = aws_lambda_function.fma["aggregator"].function_name
  qualifier     = aws_lambda_alias.live["aggregator"].name
  # A failed aggregation is retried by the next run anyway (pending updates stay pending): two attempts
  # bound the cost of a poison event; a six-hour-old event is stale, the model's next run supersedes it.
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = 21600

  destination_config {
    on_failure {
      destination = aws_sqs_queue.aggregator_failures.arn
    }
  }
  depends_on = [aws_iam_role_policy.aggregator_failures]
}

locals {
  # One alarm per function and metric: any error or throttle in five minutes.
  function_alarms = {
    for pair in setproduct(keys(local.functions), ["Errors", "Throttles"]) :
    "${pair[0]}-${lower(pair[1])}" => { function = pair[0], metric = pair[1] }
  }
}

resource "aws_cloudwatch_metric_alarm" "function" {
  for_each            = local.function_alarms
  alarm_name          = "${local.functions[each.value.function].name}-${lower(each.value.metric)}"
  alarm_description   = "${each.value.metric} of the ${each.value.function} function; its log group ${aws_cloudwatch_log_group.fma[each.value.function].name} says why."
  namespace           = "AWS/Lambda"
  metric_name         = each.value.metric
  dimensions          = { FunctionName = aws_lambda_function.fma[each.value.function].function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "aggregator_failures" {
  alarm_name          = "${var.name_prefix}-aggregator-failures-queued"
  alarm_description   = "Failed aggregator invokes wait in ${aws_sqs_queue.aggregator_failures.name}; each message holds the event and the error."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.aggregator_failures.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The API's share of 5xx answers. The service answers a database, S3 or EventBridge outage with a
# handled 503, which is no Lambda error: only API Gateway's 5xx count sees it.
resource "aws_cloudwatch_metric_alarm" "api_5xx_rate" {
  alarm_name          = "${var.name_prefix}-api-5xx-rate"
  alarm_description   = "More than 5 % of the API's answers in five minutes were 5xx (503: a dependency is down; 500: a bug). The API function's log group names the cause."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  metric_query {
    id          = "rate"
    expression  = "IF(requests > 0, 100 * errors / requests, 0)"
    label       = "5xx (% of requests)"
    return_data = true
  }
  dynamic "metric_query" {
    for_each = { errors = "5xx", requests = "Count" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApiGateway"
        metric_name = metric_query.value
        dimensions  = { ApiId = aws_apigatewayv2_api.fma.id }
        stat        = "Sum"
        period      = 300
      }
    }
  }
}

locals {
  # Single-metric alarms beyond the functions': what each watches, and when it fires.
  service_alarms = {
    for name, alarm in {
      api-latency-p99 = {
        description = "The slowest 1 % of the API's answers took longer than ${var.api_latency_p99_alarm_ms} ms over five minutes (a slow database, S3 or cold starts)."
        namespace   = "AWS/ApiGateway", metric = "Latency", dimensions = { ApiId = aws_apigatewayv2_api.fma.id }
        statistic   = null, extended_statistic = "p99", periods = 1
        comparison  = "GreaterThanThreshold", threshold = var.api_latency_p99_alarm_ms
      }
      db-cpu = {
        description = "PostgreSQL's CPU stayed above 80 % for fifteen minutes (a larger db_instance_class, or Performance Insights for the query)."
        namespace   = "AWS/RDS", metric = "CPUUtilization", dimensions = { DBInstanceIdentifier = local.db_instance_identifier }
        statistic   = "Average", extended_statistic = null, periods = 3
        comparison  = "GreaterThanThreshold", threshold = 80
      }
      db-connections = {
        description = "PostgreSQL holds more than ${var.db_connections_alarm_threshold} connections (max_connections is near: the RDS Proxy, or fewer warm containers)."
        namespace   = "AWS/RDS", metric = "DatabaseConnections", dimensions = { DBInstanceIdentifier = local.db_instance_identifier }
        statistic   = "Maximum", extended_statistic = null, periods = 1
        comparison  = "GreaterThanThreshold", threshold = var.db_connections_alarm_threshold
      }
      db-free-storage = {
        description = "PostgreSQL has less than 10 % of its storage free."
        namespace   = "AWS/RDS", metric = "FreeStorageSpace", dimensions = { DBInstanceIdentifier = local.db_instance_identifier }
        statistic   = "Minimum", extended_statistic = null, periods = 1
        comparison  = "LessThanThreshold", threshold = local.db_allocated_storage_gb * 0.1 * 1073741824
      }
      db-proxy-borrow-latency = {
        description = "Borrowing a database connection from the RDS Proxy's pool took more than 100 ms on average for five minutes (the pool is exhausted: rds_proxy_max_connections_percent, or a larger instance)."
        namespace   = "AWS/RDS", metric = "DatabaseConnectionsBorrowLatency", dimensions = { ProxyName = one(aws_db_proxy.fma[*].name) }
        statistic   = "Average", extended_statistic = null, periods = 1
        comparison  = "GreaterThanThreshold", threshold = 100000 # microseconds
      }
    } : name => alarm if var.create_rds_proxy || !startswith(name, "db-proxy-")
  }
}

resource "aws_cloudwatch_metric_alarm" "service" {
  for_each            = local.service_alarms
  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  dimensions          = each.value.dimensions
  statistic           = each.value.statistic
  extended_statistic  = each.value.extended_statistic
  period              = 300
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# --- Dashboard --------------------------------------------------------------------------------------
locals {
  dashboard_widgets = [
    {
      title   = "API: requests, 4xx, 5xx"
      metrics = [for name in ["Count", "4xx", "5xx"] : ["AWS/ApiGateway", name, "ApiId", aws_apigatewayv2_api.fma.id, { stat = "Sum" }]]
    },
    {
      title   = "API: latency (p50, p99)"
      metrics = [for stat in ["p50", "p99"] : ["AWS/ApiGateway", "Latency", "ApiId", aws_apigatewayv2_api.fma.id, { stat = stat }]]
    },
    {
      title = "Functions: invocations, errors, throttles"
      metrics = [
        for pair in setproduct(keys(local.functions), ["Invocations", "Errors", "Throttles"]) :
        ["AWS/Lambda", pair[1], "FunctionName", local.functions[pair[0]].name, { stat = "Sum" }]
      ]
    },
    {
      title = "Functions: duration (p99) and concurrency"
      metrics = concat(
        [for name, function in local.functions : ["AWS/Lambda", "Duration", "FunctionName", function.name, { stat = "p99" }]],
        [for name, function in local.functions : ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", function.name, { stat = "Maximum" }]],
      )
    },
    {
      title = "Database: CPU (%) and connections"
      metrics = [
        ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", local.db_instance_identifier, { stat = "Average" }],
        ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", local.db_instance_identifier, { stat = "Maximum" }],
      ]
    },
    {
      title   = "Database: free storage (bytes)"
      metrics = [["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", local.db_instance_identifier, { stat = "Minimum" }]]
    },
    {
      title = "RDS Proxy: client connections, borrow latency (µs)"
      metrics = [
        for metric, stat in { ClientConnections = "Maximum", DatabaseConnectionsBorrowLatency = "Average" } :
        ["AWS/RDS", metric, "ProxyName", one(aws_db_proxy.fma[*].name), { stat = stat }] if var.create_rds_proxy
      ]
    },
    {
      title   = "Aggregator failures waiting"
      metrics = [["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.aggregator_failures.name, { stat = "Maximum" }]]
    },
  ]
}

resource "aws_cloudwatch_dashboard" "fma" {
  count          = var.dashboard ? 1 : 0
  dashboard_name = var.name_prefix
  # Two widgets a row, each 12 of the 24 columns wide.
  dashboard_body = jsonencode({
    widgets = [
      for index, widget in [for widget in local.dashboard_widgets : widget if length(widget.metrics) > 0] : {
        type   = "metric"
        x      = (index % 2) * 12
        y      = floor(index / 2) * 6
        width  = 12
        height = 6
        properties = {
          title   = widget.title
          region  = local.region
          metrics = widget.metrics
          period  = 300
          view    = "timeSeries"
        }
      }
    ]
  })
}
