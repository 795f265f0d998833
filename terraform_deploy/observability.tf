# Failures that are seen: the aggregator's failed asynchronous invokes (from the API or an EventBridge
# rule, after Lambda's retries) land in a queue instead of vanishing, and alarms fire on function
# errors, throttles and a non-empty queue. alarm_actions says whom they notify.

resource "aws_sqs_queue" "aggregator_failures" {
  name                      = "${var.name_prefix}-aggregator-failures"
  kms_master_key_id         = aws_kms_key.fma.arn
  message_retention_seconds = 1209600 # 14 days, SQS's longest: time to look at each failure
}

resource "aws_lambda_function_event_invoke_config" "aggregator" {
  function_name = aws_lambda_function.fma["aggregator"].function_name
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
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
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
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
