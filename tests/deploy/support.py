"""What the deploy tests share: the repository's paths, and starting settings_remote as a cold start would."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
TEMPLATE = REPOSITORY / "template.yaml"
TERRAFORM_DIR = REPOSITORY / "terraform_deploy"

# Values a deployment could give each variable the functions read; secrets are named like
# environment variables holding them (the aws_secrets override), so no AWS call is made.
SAMPLE_ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote",
    "FMA_DATABASE_NAME": "fma",
    "FMA_DATABASE_HOST": "fma-db.abcdefghij.us-east-1.rds.amazonaws.com",
    "FMA_DATABASE_PORT": "5432",
    "FMA_DB_SECRET_PATH": "FMA_DEPLOY_TEST_DB_SECRET",
    "FMA_SECRET_KEY_SECRET_ID": "FMA_DEPLOY_TEST_SECRET_KEY",
    "FMA_ADMIN_SECRET_ID": "FMA_DEPLOY_TEST_ADMIN",
    "FMA_MODEL_DATA_BUCKET": "fma-model-data-123456789012",
    "TRUSTED_ORIGIN": "https://abc123.execute-api.us-east-1.amazonaws.com",
    "AGGREGATOR_LAMBDA_ARN": "arn:aws:lambda:us-east-1:123456789012:function:fma-aggregator",
    "FMA_SCHEDULE_GROUP": "fma",
    "FMA_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/fma-scheduler",
    "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT": "2773",
    "FMA_LOCAL_DATA_DIR": "/tmp/fma-local",
}
# The variables a settings_remote deployment sets.
REMOTE_VARIABLES = [name for name in SAMPLE_ENVIRONMENT if name not in {"FMA_LOCAL_DATA_DIR"}]
SECRET_VALUES = {
    "FMA_DEPLOY_TEST_DB_SECRET": json.dumps({"username": "fma_admin", "password": "not-a-real-password"}),
    "FMA_DEPLOY_TEST_SECRET_KEY": "deploy-test-secret-key-" + "x" * 40,
}

_PRINT_SETTINGS = """
import json
from django.conf import settings
database = settings.DATABASES["default"]
print(json.dumps({
    "database": [database["NAME"], database["HOST"], database["PORT"], database["USER"]],
    "bucket": settings.STORAGES["default"]["OPTIONS"]["bucket_name"],
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "aggregator": settings.AGGREGATOR_LAMBDA_ARN,
}))
"""


def start_remote_settings(variable_names: Iterable[str]) -> subprocess.CompletedProcess[str]:
    """Load settings_remote in a fresh interpreter whose environment holds only ``variable_names``.

    Each variable gets its value from ``SAMPLE_ENVIRONMENT``; a name missing there is an error of the test.
    """
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": os.pathsep.join([str(REPOSITORY), str(REPOSITORY / "api_service")]),
        "AWS_REGION": "us-east-1",
        "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote",
        **SECRET_VALUES,
    }
    env |= {name: SAMPLE_ENVIRONMENT[name] for name in variable_names}
    return subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def names_read_by_the_service() -> set[str]:
    """Every string constant in the code that ships in the artifact (variable names among them)."""
    roots = [REPOSITORY / "api_service", REPOSITORY / "fma_django_connectors", REPOSITORY / "fma_core"]
    constants: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            if "build" in path.relative_to(root).parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    constants.add(node.value)
    return constants
