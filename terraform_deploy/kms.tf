# One customer-managed key for everything the service stores: model data, secrets, logs, the
# database and the functions' environment.
resource "aws_kms_key" "fma" {
  description             = "${var.name_prefix}: model data, secrets, logs and database"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "fma" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.fma.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:In a key policy the resource "*" is this key alone.
  #checkov:skip=CKV_AWS_111:In a key policy the resource "*" is this key alone.
  #checkov:skip=CKV_AWS_356:In a key policy the resource "*" is this key alone.
  # The account administers the key; principals of the account use it as their IAM policies allow.
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # Alarms publish to the encrypted alarm topic (observability.tf).
  statement {
    sid       = "CloudWatchAlarmsPublish"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncrypts"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }
}
