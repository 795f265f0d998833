# An HTTP API on its $default stage in front of the API function (an ALB would cap bodies at 1 MB).
# URLs carry no stage prefix, so the links Django builds are right as they are; binary bodies are
# base64-encoded per request without a media-type list, and apig-wsgi decodes them. Explicit
# routes: anything else is refused by API Gateway without waking the function.
locals {
  api_routes = toset([
    "ANY /api/{proxy+}",
    "ANY /admin",
    "ANY /admin/{proxy+}",
    "GET /static/{proxy+}",
    # The experiment dashboard (docs/dashboard.md), and the root that sends a browser to it.
    "ANY /dashboard",
    "ANY /dashboard/{proxy+}",
    "GET /",
    # API Gateway matches /api-token-auth/ (the contract's spelling) to this route.
    "POST /api-token-auth",
  ])
}

resource "aws_apigatewayv2_api" "fma" {
  name          = "${var.name_prefix}-api"
  protocol_type = "HTTP"
  description   = "FMA REST API"
}

resource "aws_apigatewayv2_integration" "api_function" {
  api_id                 = aws_apigatewayv2_api.fma.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_alias.live["api"].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_route" "fma" {
  #checkov:skip=CKV_AWS_309:Django authenticates every request itself (token, session, CLIENT-UUID); some routes are anonymous by contract.
  for_each  = local.api_routes
  api_id    = aws_apigatewayv2_api.fma.id
  route_key = each.value
  target    = "integrations/${aws_apigatewayv2_integration.api_function.id}"
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.fma.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.api_throttle_burst_limit
    throttling_rate_limit  = var.api_throttle_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId = "$context.requestId"
      ip        = "$context.identity.sourceIp"
      method    = "$context.httpMethod"
      path      = "$context.path"
      status    = "$context.status"
      latency   = "$context.responseLatency"
    })
  }
}

resource "aws_cloudwatch_log_group" "api_access" {
  name              = "/aws/apigateway/${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.fma.arn
}

resource "aws_lambda_permission" "api_from_gateway" {
  statement_id  = "fma-http-api"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fma["api"].function_name
  qualifier     = aws_lambda_alias.live["api"].name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.fma.execution_arn}/*/*"
}

# --- Custom domain (custom_domain_name, custom_domain_certificate_arn) ----------------------------------
# A regional domain name mapped to the $default stage at its root. Point the domain's DNS at the output
# custom_domain_target (an alias record in Route 53, or a CNAME elsewhere).
resource "aws_apigatewayv2_domain_name" "fma" {
  count       = var.custom_domain_name == "" ? 0 : 1
  domain_name = var.custom_domain_name

  domain_name_configuration {
    certificate_arn = var.custom_domain_certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "fma" {
  count       = var.custom_domain_name == "" ? 0 : 1
  api_id      = aws_apigatewayv2_api.fma.id
  domain_name = aws_apigatewayv2_domain_name.fma[0].id
  stage       = aws_apigatewayv2_stage.default.id
}
