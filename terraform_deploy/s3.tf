# Model data (weights of updates and aggregates) and the Lambda artifact, each in a private bucket. The
# artifact (about 37 MiB) would fit a direct upload (50 MB), but an S3 object keeps that limit out of
# the way and gives every build a version.
module "model_data_bucket" {
  source      = "./modules/private_bucket"
  name        = "${var.name_prefix}-model-data-${local.account_id}"
  kms_key_arn = aws_kms_key.fma.arn
  # The service removes uploads and large downloads once their URLs expire (hours); a day later S3 removes
  # whatever a failed or interrupted cleanup left.
  expiring_prefixes = { "uploads/" = 1, "downloads/" = 1 }
  force_destroy     = !var.deletion_protection
}

module "artifacts_bucket" {
  source        = "./modules/private_bucket"
  name          = "${var.name_prefix}-artifacts-${local.account_id}"
  kms_key_arn   = aws_kms_key.fma.arn
  force_destroy = !var.deletion_protection
}

# One key: each build uploads a new version, and the old ones expire with the bucket's noncurrent versions.
resource "aws_s3_object" "lambda_package" {
  bucket      = module.artifacts_bucket.id
  key         = "lambda/fma-lambda.zip"
  source      = local.lambda_zip_path
  source_hash = filemd5(local.lambda_zip_path)
}
