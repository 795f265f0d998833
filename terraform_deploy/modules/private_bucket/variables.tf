variable "name" {
  description = "Name of the bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the objects."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept."
  type        = number
  default     = 90
}

variable "expiring_prefixes" {
  description = "Key prefixes of transient objects, each with the days after which its objects expire."
  type        = map(number)
  default     = {}
}

variable "force_destroy" {
  description = "Let destroy delete the bucket with every object version in it."
  type        = bool
  default     = false
}
