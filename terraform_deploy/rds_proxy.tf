# Optional RDS Proxy (create_rds_proxy): the functions connect to it instead of the instance. Each warm
# container keeps one connection (CONN_MAX_AGE); the proxy multiplexes them onto a bounded pool, so
# API bursts and cold starts cannot exhaust max_connections (about 80 on a db.t4g.micro). It signs in
# with the same Secrets Manager secret the functions read, and follows its rotation itself.
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
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.db_secret_arn]
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

  auth {
    auth_scheme = "SECRETS"
    iam_auth    = "DISABLED"
    secret_arn  = local.db_secret_arn
  }
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
  db_instance_identifier = local.create_db ? aws_db_instance.fma[0].identifier : var.existing_db_instance_identifier
}
