"""Test settings: the embedded default, on PostgreSQL or SQLite as ``FMA_TEST_DATABASE`` says.

``FMA_TEST_DATABASE=postgres`` (what CI uses) connects to ``FMA_TEST_PG_HOST``/``_PORT``/``_USER``
(default 127.0.0.1:5432, postgres) and lets pytest-django create ``test_<FMA_TEST_PG_NAME>``.
Anything written to disk goes to a fresh temporary folder.
"""

import os
import tempfile

os.environ["FMA_LOCAL_DATA_DIR"] = tempfile.mkdtemp(prefix="fma-test-")

from federated_learning_project.settings_local import *  # noqa: F403

TEST_DATABASE = os.environ.get("FMA_TEST_DATABASE", "sqlite")
if TEST_DATABASE == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("FMA_TEST_PG_NAME", "fma"),
            "HOST": os.environ.get("FMA_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("FMA_TEST_PG_PORT", "5432"),
            "USER": os.environ.get("FMA_TEST_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("FMA_TEST_PG_PASSWORD", ""),
        }
    }
elif TEST_DATABASE != "sqlite":
    raise RuntimeError(f"FMA_TEST_DATABASE must be 'postgres' or 'sqlite', not {TEST_DATABASE!r}")

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Deterministic by default: tests run agg_service themselves, or enable the "local" trigger.
FMA_AGGREGATION_TRIGGER = "none"

# The region of AWS clients not given one: moto's, where every AWS call of the suite goes (in-process or a
# moto server on 127.0.0.1).
AWS_REGION = "us-east-1"
