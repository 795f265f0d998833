# The functions reach PostgreSQL and, over HTTPS, the AWS APIs; the database accepts only them.
resource "aws_security_group" "lambda" {
  name        = "${var.name_prefix}-lambda"
  description = "FMA Lambda functions"
  vpc_id      = var.vpc_id
}

resource "aws_security_group" "database" {
  name        = "${var.name_prefix}-database"
  description = "FMA PostgreSQL, reachable from the FMA functions only"
  vpc_id      = var.vpc_id
}

# HTTPS out goes only where the AWS APIs are: the interface endpoints' group and S3's prefix list (the
# gateway endpoint's routes). Behind a NAT gateway (vpc_routes_to_aws) the APIs' public addresses are
# no fixed set, so the functions may reach any address on 443.
resource "aws_vpc_security_group_egress_rule" "lambda_endpoints" {
  count                        = var.vpc_routes_to_aws ? 0 : 1
  security_group_id            = aws_security_group.lambda.id
  description                  = "AWS APIs over HTTPS through the VPC interface endpoints"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints[0].id
}

resource "aws_vpc_security_group_egress_rule" "lambda_s3" {
  count             = var.vpc_routes_to_aws ? 0 : 1
  security_group_id = aws_security_group.lambda.id
  description       = "S3 over HTTPS through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = aws_vpc_endpoint.s3[0].prefix_list_id
}

resource "aws_vpc_security_group_egress_rule" "lambda_https" {
  count             = var.vpc_routes_to_aws ? 1 : 0
  security_group_id = aws_security_group.lambda.id
  description       = "AWS APIs over HTTPS through the VPC's NAT gateway"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "lambda_postgres" {
  security_group_id            = aws_security_group.lambda.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.database.id
}

resource "aws_vpc_security_group_ingress_rule" "database_from_lambda" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the FMA functions"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.lambda.id
}

# --- Routes to the AWS APIs ---------------------------------------------------------------------
# Private subnets have no way out: without these endpoints (or a NAT gateway, vpc_routes_to_aws) the
# cold start would wait on Secrets Manager until Lambda's init limit. Interface endpoints with private
# DNS make the services' usual host names resolve to addresses inside the VPC, so no client changes.
# CloudWatch Logs is left out unless asked (logs_endpoint): Lambda ships the functions' logs itself,
# outside the VPC, and an interface endpoint costs about $7 a month per zone.
locals {
  interface_endpoint_services = var.vpc_routes_to_aws ? toset([]) : setunion(
    ["secretsmanager", "lambda", "scheduler", "events"],
    var.logs_endpoint ? ["logs"] : [],
  )
}

resource "aws_security_group" "endpoints" {
  count       = var.vpc_routes_to_aws ? 0 : 1
  name        = "${var.name_prefix}-endpoints"
  description = "VPC endpoints of the AWS APIs the FMA functions call"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_lambda" {
  count                        = var.vpc_routes_to_aws ? 0 : 1
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the FMA functions"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.lambda.id
}

# The RDS Proxy reads the database secrets from Secrets Manager through the same endpoint (rds_proxy.tf).
resource "aws_vpc_security_group_ingress_rule" "endpoints_from_rds_proxy" {
  count                        = !var.vpc_routes_to_aws && var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS (Secrets Manager) from the FMA RDS Proxy"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.rds_proxy[0].id
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = local.interface_endpoint_services
  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true
  tags                = { Name = "${var.name_prefix}-${each.key}" }
}

data "aws_route_tables" "vpc" {
  count  = !var.vpc_routes_to_aws && length(var.route_table_ids) == 0 ? 1 : 0
  vpc_id = var.vpc_id
}

# S3's gateway endpoint is free and routes by prefix list: it joins the subnets' route tables.
resource "aws_vpc_endpoint" "s3" {
  count             = var.vpc_routes_to_aws ? 0 : 1
  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = length(var.route_table_ids) > 0 ? var.route_table_ids : data.aws_route_tables.vpc[0].ids
  tags              = { Name = "${var.name_prefix}-s3" }
}
