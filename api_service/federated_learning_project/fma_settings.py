"""FMA's own settings: which packages register handlers and connectors, and which of them to use.

Every name below is looked up in a registry at start-up; an unknown one stops the service with a
message naming the setting and listing the registered choices.
"""

# Modules imported at start-up so that their handlers and connectors register themselves.
INSTALLED_PACKAGES = ["fma_django_connectors"]

API_SERVICE_SETTINGS = {
    # Lambda handler serving API Gateway and ALB events (registry: fma_core.handlers).
    "handler": "django_lambda_handler",
    # Module of api_service.secrets_managers that provides secrets, and the secrets pulled at cold start.
    # aws_secrets reads an environment variable named like the secret first, so it also serves local work.
    "secrets_manager": "aws_secrets",
    "secrets_name": [],
}

AGGREGATOR_SETTINGS = {
    "aggregator_connector_type": "DjangoAggConnector",
    "metadata_connector": {"type": "DjangoMetadataConnector"},
    "model_data_connector": {"type": "DjangoModelDataConnector"},
    "secrets_manager": "aws_secrets",
    "secrets_name": [],
    # Seconds after which updates claimed by an aggregation that stopped renewing its claim (it died) are taken
    # back; a running aggregation renews its claim every third of this while it reads the updates.
    "claim_lease_seconds": 60,
    # Bytes of working memory one aggregation may hold for the layers it aggregates at once (default fits a
    # 3 GB Lambda); layers are aggregated in groups that fit, so any model whose largest layer fits works.
    "memory_budget_bytes": 1536 * 1024 * 1024,
}
