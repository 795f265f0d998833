# Model data (weights of updates and aggregates) and the Lambda artifact, which is too large for a
# direct upload to Lambda (50 MB), each in a private bucket.
module "model_data_bucket" {
  source      = "./modules/private_bucket"
  name        = "${var.name_prefix}-model-data-${local.account_id}"
  kms_key_arn = aws_kms_key.fma.arn
}

module "artifacts_bucket" {
  source      = "./modules/private_bucket"
  name        = "${var.name_prefix}-artifacts-${local.account_id}"
  kms_key_arn = aws_kms_key.fma.arn
}

# One key: each build uploads a new version, and the old ones expire with the bucket's noncurrent versions.
resource "aws_s3_object" "lambda_package" {
  bucket      = module.artifacts_bucket.id
  key         = "lambda/fma-lambda.zip"
  source      = local.lambda_zip_path
  source_hash = filemd5(local.lambda_zip_path)
}
