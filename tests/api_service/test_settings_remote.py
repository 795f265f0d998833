"""``settings_remote`` booted as a Lambda cold start would: a fresh interpreter with only its environment."""

import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

REPOSITORY = Path(__file__).resolve().parents[2]
DB_PASSWORD = "n0t-in-any-message"
SECRET_KEY = secrets.token_urlsafe(50)
ORIGIN = "abc123.execute-api.us-east-1.amazonaws.com"
AGGREGATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fma-aggregator"

# Secrets come from environment variables named like them (aws_secrets' local override).
BASE_ENVIRONMENT = {
    "FMA_DATABASE_NAME": "fma",
    "FMA_DATABASE_HOST": "fma.cluster.example.internal",
    "FMA_DATABASE_PORT": "5432",
    "FMA_DB_SECRET_PATH": "FMA_TEST_DB_CREDENTIALS",
    "FMA_TEST_DB_CREDENTIALS": json.dumps({"username": "fma_api", "password": DB_PASSWORD}),
    "FMA_SECRET_KEY_SECRET_ID": "FMA_TEST_SECRET_KEY",
    "FMA_TEST_SECRET_KEY": SECRET_KEY,
    "TRUSTED_ORIGIN": ORIGIN,
    "AGGREGATOR_LAMBDA_ARN": AGGREGATOR_ARN,
    "FMA_SCHEDULE_GROUP": "fma",
    "FMA_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/fma-scheduler",
    "FMA_MODEL_DATA_BUCKET": "fma-model-data",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
REQUIRED = [
    "FMA_DATABASE_NAME",
    "FMA_DATABASE_HOST",
    "FMA_DATABASE_PORT",
    "FMA_DB_SECRET_PATH",
    "TRUSTED_ORIGIN",
    "AGGREGATOR_LAMBDA_ARN",
    "FMA_SCHEDULE_GROUP",
    "FMA_SCHEDULE_ROLE_ARN",
    "FMA_MODEL_DATA_BUCKET",
]

# FMA's own settings are read as the code reads them: the module's value, else the default of the table.
PRINT_SETTINGS = """
import json
from federated_learning_project import settings_remote as s
from fma_django_connectors.conf import SETTINGS, setting_value
names = ["DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "DATABASES", "STORAGES", "STATIC_URL",
         "FORCE_SCRIPT_NAME", "AGGREGATOR_LAMBDA_ARN", "FMA_AGGREGATION_TRIGGER", "FMA_SCHEDULER",
         "FMA_SCHEDULE_EXPRESSION", "FMA_SCHEDULE_GROUP", "FMA_SCHEDULE_ROLE_ARN", "SECURE_PROXY_SSL_HEADER"]
print(json.dumps({name: setting_value(name, vars(s)) if name in SETTINGS else getattr(s, name) for name in names}))
"""


def run_python(code_or_args, environment, *, unset=()):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{REPOSITORY}{os.pathsep}{REPOSITORY / 'api_service'}"}
    env |= {name: value for name, value in environment.items() if name not in unset}
    args = ["-c", code_or_args] if isinstance(code_or_args, str) else code_or_args
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=REPOSITORY, capture_output=True, text=True, timeout=120, check=False
    )


def boot(environment=BASE_ENVIRONMENT, **kwargs):
    """The settings a cold start computes, or the failed process."""
    process = run_python(PRINT_SETTINGS, environment, **kwargs)
    return (json.loads(process.stdout) if process.returncode == 0 else None), process


def unused_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RDS_CA_BUNDLE = REPOSITORY / "api_service" / "certs" / "rds-global-bundle.pem"


def test_the_rds_ca_bundle_holds_the_rds_and_rds_proxy_authorities():
    authorities = ssl.create_default_context(cafile=RDS_CA_BUNDLE).get_ca_certs()
    issuers = [dict(entry[0] for entry in authority["subject"]).get("commonName", "") for authority in authorities]
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in issuers
    assert "Amazon Root CA 1" in issuers  # RDS Proxy's certificates chain to Amazon Trust Services


def test_the_sslmode_can_be_relaxed_for_a_local_postgresql():
    settings, process = boot(BASE_ENVIRONMENT | {"FMA_DATABASE_SSLMODE": "disable"})

    assert process.returncode == 0, process.stderr
    assert settings["DATABASES"]["default"]["OPTIONS"]["sslmode"] == "disable"


class TestFromTheEnvironment:
    def test_everything_is_read_from_the_environment(self):
        settings, process = boot()

        assert process.returncode == 0, process.stderr
        assert settings["DEBUG"] is False
        assert settings["SECRET_KEY"] == SECRET_KEY
        assert settings["ALLOWED_HOSTS"] == [ORIGIN]
        assert settings["CSRF_TRUSTED_ORIGINS"] == [f"https://{ORIGIN}"]
        assert settings["DATABASES"]["default"] == {
            "ENGINE": "federated_learning_project.postgresql_secret",
            "CREDENTIALS_SECRET": "FMA_TEST_DB_CREDENTIALS",
            "CREDENTIALS_SETTING": "FMA_DB_SECRET_PATH",
            "NAME": "fma",
            "HOST": "fma.cluster.example.internal",
            "PORT": 5432,
            "USER": "fma_api",
            "PASSWORD": DB_PASSWORD,
            "CONN_MAX_AGE": 600,
            "CONN_HEALTH_CHECKS": True,
            # No server-side cursors, which would pin connections to one client behind RDS Proxy.
            "DISABLE_SERVER_SIDE_CURSORS": True,
            # verify-full against the shipped RDS CA bundle: the chain and the host name are checked.
            "OPTIONS": {
                "sslmode": "verify-full",
                "sslrootcert": str(RDS_CA_BUNDLE),
                "connect_timeout": 10,
            },
        }
        assert settings["STORAGES"]["default"]["BACKEND"] == "fma_django_connectors.storage.s3.BoundedS3Storage"
        assert settings["STORAGES"]["default"]["OPTIONS"]["bucket_name"] == "fma-model-data"
        assert settings["STORAGES"]["staticfiles"] == {
            "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        }
        assert settings["AGGREGATOR_LAMBDA_ARN"] == AGGREGATOR_ARN
        assert settings["FMA_AGGREGATION_TRIGGER"] == "lambda"
        assert settings["FMA_SCHEDULER"] == "eventbridge-scheduler"
        assert settings["FMA_SCHEDULE_EXPRESSION"] == "rate(1 minute)"
        assert settings["FMA_SCHEDULE_GROUP"] == "fma"
        assert settings["FMA_SCHEDULE_ROLE_ARN"] == "arn:aws:iam::123456789012:role/fma-scheduler"
        assert settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
        assert (settings["STATIC_URL"], settings["FORCE_SCRIPT_NAME"]) == ("/static/", None)

    @pytest.mark.parametrize("name", REQUIRED)
    def test_a_missing_variable_is_named(self, name):
        settings, process = boot(unset=[name])

        assert settings is None
        assert f"ImproperlyConfigured: settings_remote needs the environment variable {name}" in process.stderr

    def test_the_local_registration_rate_is_refused(self):
        """The per-IP brakes a simulation on one machine may lift stay on in a deployment."""
        settings, process = boot(BASE_ENVIRONMENT | {"FMA_LOCAL_REGISTRATION_RATE": "none"})

        assert settings is None
        assert "FMA_LOCAL_REGISTRATION_RATE is honoured by the embedded default (settings_local) only" in process.stderr

    def test_a_missing_secret_key_names_both_ways_to_give_it(self):
        _, process = boot(unset=["FMA_SECRET_KEY_SECRET_ID"])

        assert process.returncode != 0
        assert "set FMA_SECRET_KEY_SECRET_ID to the id of the secret holding it (or FMA_SECRET_KEY" in process.stderr

    def test_api_gateway_stage_prefixes_every_url(self):
        settings, process = boot(BASE_ENVIRONMENT | {"FMA_URL_PREFIX": "Prod/"})

        assert process.returncode == 0, process.stderr
        assert (settings["FORCE_SCRIPT_NAME"], settings["STATIC_URL"]) == ("/Prod", "/Prod/static/")

    def test_several_trusted_origins(self):
        settings, _ = boot(BASE_ENVIRONMENT | {"TRUSTED_ORIGIN": f"{ORIGIN}, https://fma.example.org"})

        assert settings["ALLOWED_HOSTS"] == [ORIGIN, "fma.example.org"]
        assert settings["CSRF_TRUSTED_ORIGINS"] == [f"https://{ORIGIN}", "https://fma.example.org"]

    def test_a_leading_dot_trusts_every_subdomain(self):
        settings, _ = boot(BASE_ENVIRONMENT | {"TRUSTED_ORIGIN": ".execute-api.us-east-1.amazonaws.com"})

        assert settings["ALLOWED_HOSTS"] == [".execute-api.us-east-1.amazonaws.com"]
        assert settings["CSRF_TRUSTED_ORIGINS"] == ["https://*.execute-api.us-east-1.amazonaws.com"]

    def test_a_trusted_origin_must_be_https(self):
        _, process = boot(BASE_ENVIRONMENT | {"TRUSTED_ORIGIN": "http://fma.example.org"})

        assert "TRUSTED_ORIGIN entries must be hosts or https origins, not 'http://fma.example.org'" in process.stderr

    def test_malformed_database_credentials_name_the_secret_not_the_value(self):
        credentials = json.dumps({"user": "fma_api", "password": DB_PASSWORD})

        _, process = boot(BASE_ENVIRONMENT | {"FMA_TEST_DB_CREDENTIALS": credentials})

        assert (
            """Secret 'FMA_TEST_DB_CREDENTIALS' (FMA_DB_SECRET_PATH) must be JSON with "username" and "password" """
            in process.stderr
        )
        assert DB_PASSWORD not in process.stderr + process.stdout

    def test_with_an_application_role_the_functions_connect_as_it_and_read_no_owner_secret(self):
        application = {"username": "fma_app", "password": "app-pa55word"}
        environment = BASE_ENVIRONMENT | {
            "FMA_APP_DB_SECRET_PATH": "FMA_TEST_APP_CREDENTIALS",
            "FMA_TEST_APP_CREDENTIALS": json.dumps(application),
        }

        # The owner's secret is not there to read: only the migration event reads it.
        settings, process = boot(environment, unset=["FMA_TEST_DB_CREDENTIALS"])

        assert process.returncode == 0, process.stderr
        database = settings["DATABASES"]["default"]
        assert (database["USER"], database["PASSWORD"]) == ("fma_app", "app-pa55word")
        assert (database["CREDENTIALS_SECRET"], database["CREDENTIALS_SETTING"]) == (
            "FMA_TEST_APP_CREDENTIALS",
            "FMA_APP_DB_SECRET_PATH",
        )

    def test_malformed_application_credentials_name_their_variable(self):
        environment = BASE_ENVIRONMENT | {
            "FMA_APP_DB_SECRET_PATH": "FMA_TEST_APP_CREDENTIALS",
            "FMA_TEST_APP_CREDENTIALS": json.dumps({"username": "fma_app"}),
        }

        _, process = boot(environment)

        assert "Secret 'FMA_TEST_APP_CREDENTIALS' (FMA_APP_DB_SECRET_PATH) must be JSON" in process.stderr

    def test_check_deploy_is_clean(self):
        process = run_python(
            ["api_service/manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            BASE_ENVIRONMENT | {"DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote"},
        )

        assert process.returncode == 0, process.stderr
        assert "System check identified no issues" in process.stdout


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


class TestFromSecretsManager:
    """The same secrets, read over HTTP from a Secrets Manager (moto's server)."""

    @pytest.fixture
    def environment(self, moto_server):
        client = boto3.client(
            "secretsmanager",
            endpoint_url=moto_server,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_secret(Name="fma/db", SecretString=json.dumps({"username": "rds_user", "password": DB_PASSWORD}))
        client.create_secret(Name="fma/secret-key", SecretString=SECRET_KEY)
        yield BASE_ENVIRONMENT | {
            "AWS_ENDPOINT_URL": moto_server,
            "FMA_DB_SECRET_PATH": "fma/db",
            "FMA_SECRET_KEY_SECRET_ID": "fma/secret-key",
        }
        for name in ("fma/db", "fma/secret-key"):
            client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)

    def test_credentials_and_key_come_from_secrets_manager(self, environment):
        settings, process = boot(environment)

        assert process.returncode == 0, process.stderr
        assert settings["DATABASES"]["default"]["USER"] == "rds_user"
        assert settings["DATABASES"]["default"]["PASSWORD"] == DB_PASSWORD
        assert settings["SECRET_KEY"] == SECRET_KEY

    def test_a_missing_secret_stops_the_start_naming_it(self, environment):
        _, process = boot(environment | {"FMA_DB_SECRET_PATH": "fma/absent"})

        assert process.returncode != 0
        assert "Secret 'fma/absent' does not exist in AWS Secrets Manager" in process.stderr

    def test_an_unreachable_manager_stops_the_start_naming_the_secret(self, environment):
        unreachable = environment | {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{unused_port()}", "AWS_MAX_ATTEMPTS": "1"}

        _, process = boot(unreachable)

        assert process.returncode != 0
        assert "Secret 'fma/secret-key' could not be read: AWS Secrets Manager is unreachable" in process.stderr
        assert SECRET_KEY not in process.stderr


# Lambda gives a function's init phase (the cold start: importing the handler) 10 s.
LAMBDA_INIT_LIMIT = 10


class TestAwsSilent:
    """AWS reachable on paper, silent in fact (a VPC without a route): the cold start gives up in time."""

    def test_the_api_cold_start_fails_within_the_init_limit_naming_the_service_and_setting(self, silent_endpoint):
        environment = BASE_ENVIRONMENT | {
            "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote",
            "AWS_ENDPOINT_URL": silent_endpoint,
            "FMA_SECRET_KEY_SECRET_ID": "fma/secret-key",
            "FMA_DB_SECRET_PATH": "fma/db",
        }
        del environment["FMA_TEST_SECRET_KEY"], environment["FMA_TEST_DB_CREDENTIALS"]
        runtime = REPOSITORY / "tests" / "integration" / "lambda_runtime.py"

        # The bound proves "does not hang": a start that outlives Lambda's init limit raises TimeoutExpired.
        process = subprocess.run(
            [sys.executable, str(runtime), "service_initialization"],
            env={"PATH": os.environ["PATH"], **environment},
            input="",
            capture_output=True,
            text=True,
            timeout=LAMBDA_INIT_LIMIT,
            check=False,
        )

        assert process.returncode != 0
        assert "READY" not in process.stdout
        last_line = process.stderr.strip().splitlines()[-1]
        assert last_line.startswith(
            "secrets_managers.base.SecretUnavailableError: Secret 'fma/secret-key' could not be read: "
            "AWS Secrets Manager is unreachable (Read timeout on endpoint URL"
        ), process.stderr
        assert last_line.endswith(
            "check the network route to it (VPC endpoint or NAT) (the secret FMA_SECRET_KEY_SECRET_ID names)"
        )


SERVE_STATIC_FILE = """
import json, sys
from django.templatetags.static import static
from service_initialization import handler
from tests.events import make_v1_event

url = static("admin/css/base.css")
path = url.removeprefix("/Prod")
response = handler(make_v1_event(path=path, host=sys.argv[1], headers={"Accept-Encoding": "gzip"}), None)
print(json.dumps({"url": url, "status": response["statusCode"], "headers": response["multiValueHeaders"]}))
"""


class TestStaticFiles:
    """The admin's files: collected at build time, then served by the function itself behind a stage."""

    def test_collected_without_database_secret_or_aws(self, tmp_path):
        process = run_python(
            ["api_service/manage.py", "collectstatic", "--no-input", "-v", "0"],
            {
                "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_static",
                "FMA_STATIC_ROOT": str(tmp_path),
            },
        )

        assert process.returncode == 0, process.stderr
        hashed = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]["admin/css/base.css"]
        assert hashed != "admin/css/base.css"
        assert (tmp_path / hashed).is_file()
        assert (tmp_path / f"{hashed}.gz").is_file()
        # Only the hashed copies ship in the Lambda package.
        assert not (tmp_path / "admin/css/base.css").exists()

    def test_served_compressed_and_cached_for_ever_behind_a_stage(self, tmp_path):
        environment = {"FMA_STATIC_ROOT": str(tmp_path)}
        collect = ["api_service/manage.py", "collectstatic", "--no-input", "-v", "0"]
        run_python(collect, environment | {"DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_static"})

        process = run_python(
            ["-c", SERVE_STATIC_FILE, ORIGIN],
            BASE_ENVIRONMENT
            | environment
            | {"FMA_URL_PREFIX": "/Prod", "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote"},
        )

        assert process.returncode == 0, process.stderr
        served = json.loads(process.stdout.splitlines()[-1])
        assert served["url"].startswith("/Prod/static/admin/css/base.")
        assert served["status"] == 200
        assert served["headers"]["Content-Encoding"] == ["gzip"]
        assert served["headers"]["Cache-Control"] == ["max-age=315360000, public, immutable"]
