# Optional RDS Proxy (create_rds_proxy): the functions connect to it instead of the instance. Each warm
# container keeps one connection (CONN_MAX_AGE); the proxy multiplexes them onto a bounded pool, so
# API bursts and cold starts cannot exhaust max_connections (about 80 on a db.t4g.micro). It signs in
# with the same Secrets Manager secrets the functions read, and follows their rotation itself.
locals {
  db_host = var.create_rds_proxy ? aws_db_proxy.fma[0].endpoint : local.db_address
}

resource "aws_security_group" "rds_proxy" {
  #checkov:skip=CKV2_AWS_5:Attached to aws_db_proxy.fma (both exist only with create_rds_proxy, which the check does not follow).
  count       = var.create_rds_proxy ? 1 : 0
  name        = "${var.name_prefix}-rds-proxy"
  description = "FMA RDS Proxy, reachable from the FMA functions only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "rds_proxy_from_lambda" {
  count                        = var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.rds_proxy[0].id
  description                  = "PostgreSQL from the FMA functions"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.lambda.id
}

resource "aws_vpc_security_group_egress_rule" "rds_proxy_to_database" {
  count                        = var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.rds_proxy[0].id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.database.id
}

# The proxy signs in with the secrets it reads from Secrets Manager, at start and after each rotation:
# through the interface endpoint, or through the NAT gateway with vpc_routes_to_aws.
resource "aws_vpc_security_group_egress_rule" "rds_proxy_to_secrets_manager" {
  count                        = var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.rds_proxy[0].id
  description                  = "Secrets Manager over HTTPS"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = var.vpc_routes_to_aws ? null : aws_security_group.endpoints[0].id
  cidr_ipv4                    = var.vpc_routes_to_aws ? "0.0.0.0/0" : null
}

resource "aws_vpc_security_group_ingress_rule" "database_from_rds_proxy" {
  count                        = var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the FMA RDS Proxy"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.rds_proxy[0].id
}

resource "aws_vpc_security_group_egress_rule" "lambda_rds_proxy" {
  count                        = var.create_rds_proxy ? 1 : 0
  security_group_id            = aws_security_group.lambda.id
  description                  = "PostgreSQL through the RDS Proxy"
  ip_protocol                  = "tcp"
  from_port                    = local.db_port
  to_port                      = local.db_port
  referenced_security_group_id = aws_security_group.rds_proxy[0].id
}

data "aws_iam_policy_document" "rds_proxy_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_proxy" {
  count              = var.create_rds_proxy ? 1 : 0
  name               = "${var.name_prefix}-rds-proxy"
  assume_role_policy = data.aws_iam_policy_document.rds_proxy_assume.json
}

data "aws_iam_policy_document" "rds_proxy" {
  statement {
    sid       = "DatabaseSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.db_secret_arn, aws_secretsmanager_secret.app_db.arn]
  }
  statement {
    sid       = "SecretKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.fma.arn]
  }
}

resource "aws_iam_role_policy" "rds_proxy" {
  count  = var.create_rds_proxy ? 1 : 0
  name   = "database-secret"
  role   = aws_iam_role.rds_proxy[0].id
  policy = data.aws_iam_policy_document.rds_proxy.json
}

resource "aws_db_proxy" "fma" {
  count                  = var.create_rds_proxy ? 1 : 0
  name                   = "${var.name_prefix}-db"
  engine_family          = "POSTGRESQL"
  role_arn               = aws_iam_role.rds_proxy[0].arn
  vpc_subnet_ids         = var.subnet_ids
  vpc_security_group_ids = [aws_security_group.rds_proxy[0].id]
  require_tls            = true
  # Longer than the functions' CONN_MAX_AGE (600 s): the proxy does not drop a connection they still count on.
  idle_client_timeout = 900

  # One sign-in per role that connects through the proxy: the master user (migrations) and the
  # service's own role (everything else; secrets.tf).
  auth {
    auth_scheme = "SECRETS"
    iam_auth    = "DISABLED"
    secret_arn  = local.db_secret_arn
    description = "master user (migrations)"
  }
  auth {
    auth_scheme = "SECRETS"
    iam_auth    = "DISABLED"
    secret_arn  = aws_secretsmanager_secret.app_db.arn
    description = "service role"
  }
  # The service role's secret must hold its value before the proxy reads it.
  depends_on = [aws_secretsmanager_secret_version.app_db]
}

resource "aws_db_proxy_default_target_group" "fma" {
  count         = var.create_rds_proxy ? 1 : 0
  db_proxy_name = aws_db_proxy.fma[0].name

  connection_pool_config {
    max_connections_percent      = var.rds_proxy_max_connections_percent
    max_idle_connections_percent = 50
    connection_borrow_timeout    = 30
  }
}

resource "aws_db_proxy_target" "fma" {
  count                  = var.create_rds_proxy ? 1 : 0
  db_proxy_name          = aws_db_proxy.fma[0].name
  target_group_name      = aws_db_proxy_default_target_group.fma[0].name
  db_instance_identifier = local.db_instance_identifier
}
