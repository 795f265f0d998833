terraform {
  required_version = ">= 1.11" # write-only arguments (secrets.tf)
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.90, < 6.0" # secret_string_wo, ephemeral random passwords
    }
  }
}

# Credentials come from the usual AWS chain; aws_profile picks a named profile and
# assume_role_arn makes Terraform work as that role (for example a deploy role in another account).
provider "aws" {
  region  = var.aws_region
  profile = var.aws_profile

  dynamic "assume_role" {
    for_each = var.assume_role_arn == null ? [] : [var.assume_role_arn]
    content {
      role_arn     = assume_role.value
      session_name = "fma-terraform"
    }
  }

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}
