# PostgreSQL on RDS, unless existing_db_instance_identifier names an instance to use. A created
# instance keeps its master credentials in a Secrets Manager secret that RDS manages and rotates,
# in the JSON form settings_remote reads ({"username": ..., "password": ...}).
locals {
  create_db     = var.existing_db_instance_identifier == ""
  db_address    = local.create_db ? aws_db_instance.fma[0].address : data.aws_db_instance.existing[0].address
  db_port       = local.create_db ? aws_db_instance.fma[0].port : data.aws_db_instance.existing[0].port
  db_secret_arn = local.create_db ? aws_db_instance.fma[0].master_user_secret[0].secret_arn : var.existing_db_secret_arn
  # Known once the created instance is available (Terraform waits for it), or read from the existing one.
  db_instance_identifier  = local.create_db ? aws_db_instance.fma[0].identifier : data.aws_db_instance.existing[0].db_instance_identifier
  db_allocated_storage_gb = local.create_db ? aws_db_instance.fma[0].allocated_storage : data.aws_db_instance.existing[0].allocated_storage
}

data "aws_db_instance" "existing" {
  count                  = local.create_db ? 0 : 1
  db_instance_identifier = var.existing_db_instance_identifier
}

resource "aws_db_subnet_group" "fma" {
  count      = local.create_db ? 1 : 0
  name       = "${var.name_prefix}-db"
  subnet_ids = var.subnet_ids
}

resource "aws_db_parameter_group" "fma" {
  count  = local.create_db ? 1 : 0
  name   = "${var.name_prefix}-postgres${var.db_engine_version}"
  family = "postgres${var.db_engine_version}"
  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_db_instance" "fma" {
  #checkov:skip=CKV_AWS_161:The service signs in with the managed master secret; IAM database authentication would need tokens minted per connection.
  #checkov:skip=CKV2_AWS_30:Query logging is set by log_min_duration_statement (slow queries); logging every statement would write the model owners' data to logs.
  count                         = local.create_db ? 1 : 0
  identifier                    = "${var.name_prefix}-db"
  engine                        = "postgres"
  engine_version                = var.db_engine_version
  instance_class                = var.db_instance_class
  allocated_storage             = var.db_allocated_storage_gb
  db_name                       = var.db_name
  username                      = "fma_admin"
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.fma.key_id
  db_subnet_group_name          = aws_db_subnet_group.fma[0].name
  parameter_group_name          = aws_db_parameter_group.fma[0].name
  vpc_security_group_ids        = [aws_security_group.database.id]
  multi_az                      = var.db_multi_az
  storage_encrypted             = true
  kms_key_id                    = aws_kms_key.fma.arn
  publicly_accessible           = false
  backup_retention_period       = 7
  copy_tags_to_snapshot         = true
  deletion_protection           = var.deletion_protection
  skip_final_snapshot           = false
  # Named after the instance's creation time: a stack destroyed, created again under the same prefix
  # and destroyed again takes a second snapshot instead of failing on the first one's name. Fixed at
  # creation (ignore_changes), so later plans show no change.
  final_snapshot_identifier           = "${var.name_prefix}-db-final-${formatdate("YYYYMMDDhhmmss", timestamp())}"
  auto_minor_version_upgrade          = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.fma.arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring[0].arn
  iam_database_authentication_enabled = false

  lifecycle {
    ignore_changes = [final_snapshot_identifier]
  }
}

resource "aws_iam_role" "rds_monitoring" {
  count              = local.create_db ? 1 : 0
  name               = "${var.name_prefix}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  count      = local.create_db ? 1 : 0
  role       = aws_iam_role.rds_monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
