"""The admin's static files as a deployment serves them; also the settings ``collectstatic`` runs with.

Why whitenoise, not a second S3 bucket behind CloudFront: the admin's few megabytes of files are served
by the same Lambda function, through the same API Gateway and its stage prefix, with nothing else to
deploy, secure or keep in step. ``CompressedManifestStaticFilesStorage`` names every file by its content
hash and pre-compresses it, so whitenoise answers with gzip and far-future ``Cache-Control: immutable``
headers, and browsers fetch each file once per release.

The files must be collected at build time into ``STATIC_ROOT`` (``<the folder holding
federated_learning_project>/staticfiles``, i.e. beside this package in the Lambda artifact):

    python api_service/manage.py collectstatic --no-input --settings=federated_learning_project.settings_static

It needs no database, secret or AWS access. ``FMA_STATIC_ROOT`` moves the folder (tests).
"""

from __future__ import annotations

import os
from pathlib import Path

from federated_learning_project.settings_base import *  # noqa: F403
from federated_learning_project.settings_base import STATIC_ROOT as _DEFAULT_STATIC_ROOT

STATIC_ROOT = Path(os.environ.get("FMA_STATIC_ROOT", _DEFAULT_STATIC_ROOT))
STORAGES = {"staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"}}
# Only the hashed copies are ever referenced: leaving out the originals keeps the Lambda package small.
WHITENOISE_KEEP_ONLY_HASHED_FILES = True
