# Django's SECRET_KEY, made once by Secrets Manager; later plans keep the stored value.
resource "aws_secretsmanager_secret" "django_secret_key" {
  #checkov:skip=CKV2_AWS_57:Rotating SECRET_KEY signs every session and CSRF token out; rotate by hand (put-secret-value) when needed.
  name                    = "${var.name_prefix}/django-secret-key"
  description             = "Django SECRET_KEY of the FMA service."
  kms_key_id              = aws_kms_key.fma.arn
  recovery_window_in_days = 7
}

data "aws_secretsmanager_random_password" "django_secret_key" {
  password_length     = 64
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "django_secret_key" {
  secret_id     = aws_secretsmanager_secret.django_secret_key.id
  secret_string = data.aws_secretsmanager_random_password.django_secret_key.random_password
  lifecycle {
    ignore_changes = [secret_string]
  }
}
