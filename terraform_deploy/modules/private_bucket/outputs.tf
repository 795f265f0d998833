output "id" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
  # Objects written before versioning, encryption or the public-access block is in place would escape them.
  depends_on = [
    aws_s3_bucket_versioning.this,
    aws_s3_bucket_server_side_encryption_configuration.this,
    aws_s3_bucket_public_access_block.this,
    aws_s3_bucket_policy.this,
  ]
}

output "arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}
