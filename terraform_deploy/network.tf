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

resource "aws_vpc_security_group_egress_rule" "lambda_https" {
  security_group_id = aws_security_group.lambda.id
  description       = "AWS APIs (S3, Secrets Manager, Lambda, EventBridge) over HTTPS"
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
