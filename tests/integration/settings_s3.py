"""``settings_local`` with model data in the S3 bucket ``FMA_MODEL_DATA_BUCKET``, stored as ``settings_remote`` stores
it: the aggregator Lambda in a process of its own over moto's S3 (``AWS_ENDPOINT_URL``), without the secrets and
schedules the rest of ``settings_remote`` needs."""

import os

from federated_learning_project.settings_local import *  # noqa: F403
from federated_learning_project.settings_local import STORAGES

STORAGES = {
    **STORAGES,
    "default": {
        "BACKEND": "fma_django_connectors.storage.s3.BoundedS3Storage",
        "OPTIONS": {"bucket_name": os.environ["FMA_MODEL_DATA_BUCKET"], "default_acl": None, "file_overwrite": False},
    },
}
