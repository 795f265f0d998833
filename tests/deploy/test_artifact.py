"""The Lambda artifact as SAM builds it (`make build-ApiFunction`), zipped and unzipped as a deploy does, run by
the runtime's Python the way Lambda runs it: isolated (``-I``), only the artifact's folder on the path.

The build's wheel downloads are kept in build/pip-cache, so that only the first run of the suite fetches them.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from cfnlint.decode import decode

from tests.custom_resources import custom_resource_event, response_url_server
from tests.deploy.support import REMOTE_VARIABLES, REPOSITORY, SAMPLE_ENVIRONMENT, SECRET_VALUES, TEMPLATE
from tests.events import make_v2_event
from tests.integration.lambda_support import (
    PG,
    Api,
    LambdaContainer,
    create_aggregator_function,
    fresh_database,
    moto_server,
    terminate_connections,
    watched_invokes,
)
from tests.s3_storage import moto_environment

RUNTIME_PYTHON_VERSION = re.search(
    r"^LAMBDA_PYTHON_VERSION := (\S+)$", (REPOSITORY / "Makefile").read_text(), re.MULTILINE
).group(1)

# Runs inside the artifact, as the Lambda runtime would: only the artifact on the path.
RUN_HANDLERS = """
import json, sys
import numpy, orjson, psycopg2
import aggregator_initialization, service_initialization
events = json.load(sys.stdin)
print(json.dumps([service_initialization.handler(event, None) for event in events]))
"""


def runtime_python():
    """An interpreter of the runtime's version: on the PATH, or installed by pyenv (whose shims may refuse)."""
    name = f"python{RUNTIME_PYTHON_VERSION}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [shutil.which(name), *sorted(pyenv_root.glob(f"versions/{RUNTIME_PYTHON_VERSION}.*/bin/{name}"))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return candidate
    pytest.skip(f"{name} (the Lambda runtime's Python) is not installed")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """The built artifact, after the round trip through a zip that a deploy makes: ``(python, folder)``."""
    python = runtime_python()
    built = tmp_path_factory.mktemp("built")
    build = subprocess.run(
        ["make", "-C", str(REPOSITORY), "build-ApiFunction", f"ARTIFACTS_DIR={built}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    package = tmp_path_factory.mktemp("package") / "fma-lambda.zip"
    # As `make lambda-package` zips it, and as Lambda unpacks it into /var/task (file times kept to 2 s).
    subprocess.run(["zip", "-q", "-r", "-X", str(package), "."], cwd=built, check=True)
    directory = tmp_path_factory.mktemp("task")
    subprocess.run(["unzip", "-q", str(package), "-d", str(directory)], check=True)
    shutil.rmtree(built)
    return python, directory, package


@pytest.mark.integration
def test_the_artifact_carries_wheels_for_the_runtime(artifact):
    _, directory, _ = artifact
    tag = f"cpython-{RUNTIME_PYTHON_VERSION.replace('.', '')}-x86_64-linux-gnu"
    assert list((directory / "numpy" / "_core").glob(f"_multiarray_umath.{tag}.so"))
    assert list((directory / "psycopg2").glob(f"_psycopg.{tag}.so"))
    assert (directory / "service_initialization.py").is_file()
    assert (directory / "fma_django_connectors" / "migrations" / "0001_initial.py").is_file()


def run_handler(artifact, workdir, events, environment):
    """The API handler's answers to ``events``, in a fresh runtime interpreter with ``environment``."""
    python, directory, _ = artifact
    result = subprocess.run(
        [python, "-c", RUN_HANDLERS],
        input=json.dumps(events),
        cwd=workdir,
        env={"PATH": os.environ["PATH"], "PYTHONPATH": str(directory), "PYTHONNOUSERSITE": "1", **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


@pytest.mark.integration
def test_the_artifact_migrates_and_serves_with_the_local_settings(artifact, tmp_path):
    environment = {
        "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_local",
        "FMA_LOCAL_DATA_DIR": str(tmp_path / "data"),
    }
    events = [
        {"detail": "update_metadata_db"},
        make_v2_event(method="GET", path="/admin/login/"),
        make_v2_event(method="GET", path="/dashboard/login/"),
    ]
    migrated, login_page, dashboard_login = run_handler(artifact, tmp_path, events, environment)
    assert json.loads(migrated["body"]) == {"data": "database updated successfully"}
    assert login_page["statusCode"] == 200
    # The dashboard's templates ship in the artifact.
    assert dashboard_login["statusCode"] == 200
    assert "FMA dashboard" in dashboard_login["body"]


@pytest.mark.integration
def test_the_artifact_serves_its_collected_static_files_with_the_remote_settings(artifact, tmp_path):
    _, directory, _ = artifact
    manifest = json.loads((directory / "staticfiles" / "staticfiles.json").read_text())
    host = urlsplit(SAMPLE_ENVIRONMENT["TRUSTED_ORIGIN"]).hostname
    environment = {name: SAMPLE_ENVIRONMENT[name] for name in REMOTE_VARIABLES} | SECRET_VALUES
    # Whitenoise answers before any view runs, so the (unreachable) database is never asked.
    events = [
        make_v2_event(method="GET", path=f"/static/{manifest['paths'][name]}", host=host)
        for name in ("admin/css/base.css", "dashboard/dashboard.css")
    ]
    for stylesheet in run_handler(artifact, tmp_path, events, environment):
        assert stylesheet["statusCode"] == 200
        assert stylesheet["headers"]["content-type"].startswith("text/css")
        assert "immutable" in stylesheet["headers"]["cache-control"]


# --- lean and precompiled ---------------------------------------------------------------------------

MIB = 1024 * 1024
BOTOCORE_SERVICES = re.search(
    r"^LAMBDA_BOTOCORE_SERVICES := (.+)$", (REPOSITORY / "Makefile").read_text(), re.MULTILINE
).group(1)


@pytest.mark.integration
def test_the_zip_fits_lambdas_direct_upload_and_the_folder_its_unzipped_limit(artifact):
    _, directory, package = artifact
    assert package.stat().st_size < 50 * MIB
    assert sum(path.stat().st_size for path in directory.rglob("*") if path.is_file()) < 250 * MIB
    assert not list(directory.rglob("tests"))
    assert not list(directory.rglob("*.po"))
    assert not (directory / "bin").exists()


@pytest.mark.integration
def test_every_module_has_unchecked_hash_bytecode_for_the_runtime(artifact):
    _, directory, _ = artifact
    tag = f"cpython-{RUNTIME_PYTHON_VERSION.replace('.', '')}"
    sources = list(directory.rglob("*.py"))
    assert len(sources) > 1000
    missing = [path for path in sources if not (path.parent / "__pycache__" / f"{path.stem}.{tag}.pyc").is_file()]
    assert not missing[:10]
    # PEP 552: the flags word after the magic number is 0b01 for "hash-based, source not checked".
    bytecode = (directory / "operations.py").parent / "__pycache__" / f"operations.{tag}.pyc"
    assert int.from_bytes(bytecode.read_bytes()[4:8], "little") == 0b01


@pytest.mark.integration
def test_the_runtime_imports_the_bytecode_without_reading_the_source(artifact, tmp_path):
    python, directory, _ = artifact
    source = directory / "fma_core" / "exceptions.py"
    original = source.read_text()
    # A stale or unused .pyc would make Python compile this source, and the import would fail.
    source.write_text('raise ImportError("the source was compiled instead of the shipped bytecode")\n')
    try:
        result = subprocess.run(
            [
                python,
                "-I",
                "-B",
                "-c",
                f"import sys; sys.path.insert(0, {str(directory)!r}); import fma_core.exceptions",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        source.write_text(original)
    assert result.returncode == 0, result.stderr


def aws_services_the_code_calls():
    """Every service named in ``aws_client("...")`` or ``boto3.client("...")`` by the code the artifact ships."""
    pattern = re.compile(r"""(?:aws_client|boto3\.client)\(\s*["']([a-z0-9-]+)["']""")
    roots = [REPOSITORY / "api_service", REPOSITORY / "fma_core", REPOSITORY / "fma_django_connectors"]
    return {
        service
        for root in roots
        for path in root.rglob("*.py")
        if "build" not in path.relative_to(root).parts
        for service in pattern.findall(path.read_text())
    }


def test_the_artifact_keeps_the_botocore_models_of_every_service_the_code_calls():
    called = aws_services_the_code_calls()
    assert called, "no AWS client found: the pattern no longer matches the code"
    assert called <= set(BOTOCORE_SERVICES.split()), f"add to LAMBDA_BOTOCORE_SERVICES: {called}"


@pytest.mark.integration
def test_the_artifact_holds_only_those_botocore_models(artifact):
    _, directory, _ = artifact
    kept = {path.name for path in (directory / "botocore" / "data").iterdir() if path.is_dir()}
    assert kept == set(BOTOCORE_SERVICES.split())


@pytest.mark.integration
def test_the_cold_start_benchmark_runs_on_the_artifact(artifact, tmp_path):
    _, directory, _ = artifact
    report = tmp_path / "cold-start.json"
    subprocess.run(
        [
            sys.executable,
            str(REPOSITORY / "bench" / "cold_start.py"),
            str(directory),
            "--runs",
            "1",
            "--json",
            str(report),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = json.loads(report.read_text())
    assert [run["status"] for run in result["runs"]] == [401]
    assert result["median"]["import_s"] > 0


# --- the deployed shape: settings_remote, moto's AWS, PostgreSQL --------------------------------------

REGION = "us-east-1"
ORIGIN = "artifact001.execute-api.us-east-1.amazonaws.com"
BUCKET = "fma-model-data-artifact"
SCHEDULE_GROUP = "fma"
ADMIN = {"username": "admin", "password": secrets.token_urlsafe(24)}
# Set by the template only in its local mode, or only with the extension layer.
CONDITIONAL_VARIABLES = {"FMA_LOCAL_DATA_DIR", "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", "FMA_APP_DB_SECRET_PATH"}


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def invokes():
    with watched_invokes() as seen:
        yield seen


@pytest.fixture(scope="module")
def database():
    with fresh_database(f"{os.environ.get('FMA_TEST_PG_NAME', 'fma')}_artifact") as name:
        yield name


@pytest.fixture(scope="module")
def deployment(moto, database):
    """The template's function environment with this account's values, and the secrets and bucket it names."""
    aws = {
        "endpoint_url": moto,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "region_name": REGION,
    }
    manager = boto3.client("secretsmanager", **aws)
    # Trust authentication: PostgreSQL ignores the password, the settings still need one.
    database_secret = manager.create_secret(
        Name="fma/database", SecretString=json.dumps({"username": PG["user"], "password": "trust-ignores-it"})
    )["ARN"]
    key_secret = manager.create_secret(Name="fma/django-secret-key", SecretString=secrets.token_urlsafe(50))["ARN"]
    admin_secret = manager.create_secret(Name="fma/admin-user", SecretString=json.dumps(ADMIN))["ARN"]
    boto3.client("s3", **aws).create_bucket(Bucket=BUCKET)
    boto3.client("scheduler", **aws).create_schedule_group(Name=SCHEDULE_GROUP)
    aggregator_arn = create_aggregator_function(boto3.client("iam", **aws), boto3.client("lambda", **aws))
    function_environment = {
        "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote",
        "FMA_DATABASE_NAME": database,
        "FMA_DATABASE_HOST": PG["host"],
        "FMA_DATABASE_PORT": PG["port"],
        "FMA_DB_SECRET_PATH": database_secret,
        "FMA_SECRET_KEY_SECRET_ID": key_secret,
        "FMA_ADMIN_SECRET_ID": admin_secret,
        "FMA_MODEL_DATA_BUCKET": BUCKET,
        "TRUSTED_ORIGIN": f".execute-api.{REGION}.amazonaws.com",
        "AGGREGATOR_LAMBDA_ARN": aggregator_arn,
        "FMA_SCHEDULE_GROUP": SCHEDULE_GROUP,
        "FMA_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/fma-scheduler",
    }
    template, _ = decode(str(TEMPLATE))
    assert set(function_environment) == set(template["Globals"]["Function"]["Environment"]["Variables"]) - (
        CONDITIONAL_VARIABLES
    )
    # What Lambda adds, and the local PostgreSQL's lack of TLS (deployments verify the RDS certificate).
    runtime = {
        "PATH": os.environ["PATH"],
        **moto_environment(moto),
        "AWS_DEFAULT_REGION": REGION,
        "FMA_DATABASE_SSLMODE": "disable",
    }
    return function_environment | runtime


@pytest.fixture(scope="module")
def functions(artifact, deployment, tmp_path_factory):
    python, directory, _ = artifact
    logs = tmp_path_factory.mktemp("logs")
    containers = {
        name: LambdaContainer(
            module,
            deployment | {"AWS_LAMBDA_FUNCTION_NAME": f"fma-{name}"},
            logs / name,
            python=python,
            code_root=directory,
        )
        for name, module in (("aggregator", "aggregator_initialization"), ("api", "service_initialization"))
    }
    yield containers
    for container in containers.values():
        container.close()


@pytest.mark.integration
def test_the_built_artifact_migrates_bootstraps_serves_and_aggregates(functions, invokes, deployment):
    aggregator, api_function = functions["aggregator"], functions["api"]

    # The deploy: migrations on the aggregator, then the first admin on the API (twice: the second changes nothing).
    migrated = aggregator.invoke({"detail": "update_metadata_db"})
    assert json.loads(migrated["body"]) == {"data": "database updated successfully"}
    # A rule of an earlier version aimed at this aggregator gives way to the deployment's schedules.
    moto_clients = {
        "endpoint_url": deployment["AWS_ENDPOINT_URL"],
        "aws_access_key_id": deployment["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": deployment["AWS_SECRET_ACCESS_KEY"],
        "region_name": REGION,
    }
    events = boto3.client("events", **moto_clients)
    events.put_rule(Name="fma-scheduled-1", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="fma-scheduled-1", Targets=[{"Id": "1", "Arn": deployment["AGGREGATOR_LAMBDA_ARN"]}])
    moved = aggregator.invoke({"detail": "migrate_schedules"})
    assert json.loads(moved["body"]) == {
        "data": "deleted 1 EventBridge rule(s) of earlier versions; scheduled 0 model(s) with pending work"
    }
    assert events.list_rules()["Rules"] == []
    created = api_function.invoke({"detail": "bootstrap_admin"})
    assert (created["statusCode"], json.loads(created["body"])) == (201, {"data": "admin user 'admin' created"})
    assert api_function.invoke({"detail": "bootstrap_admin"})["statusCode"] == 200

    # The admin signs in with the password from the secret and creates a model.
    api = Api(api_function, ORIGIN)
    status, body = api("POST", "/api-token-auth/", ADMIN)
    assert status == 200, body
    owner = {"Authorization": f"Token {body['token']}"}
    status, model = api(
        "POST",
        "/api/v1/models/",
        {"name": "artifact", "aggregator": "avg_values_if_data", "allow_aggregation": True, "initial_model": [0.0]},
        owner,
    )
    assert status == 201, model

    # A client registers and sends an update; the API asks the aggregator (asynchronously) to aggregate.
    status, registered = api("POST", f"/api/v1/models/{model['id']}/register_client/")
    assert status == 200, registered
    client = {"CLIENT-UUID": registered["uuid"]}

    def schedule_state():
        schedule = boto3.client("scheduler", **moto_clients).get_schedule(
            GroupName=SCHEDULE_GROUP, Name=f"model-{model['id']}"
        )
        return schedule["State"], schedule["Target"]["Arn"]

    def aggregated(values, base_aggregate):
        """Send an update, run the aggregation it asked for, and check the model's latest is its aggregate."""
        status, update = api(
            "POST",
            "/api/v1/model_updates/",
            {"federated_model": model["id"], "data": values, "base_aggregate": base_aggregate},
            client,
        )
        assert status == 201, update
        # The update woke the model's schedule; the run that takes everything settles it off again.
        assert schedule_state() == ("ENABLED", deployment["AGGREGATOR_LAMBDA_ARN"])
        aggregate_id = aggregator.invoke(invokes[-1]["payload"])
        assert aggregate_id is not None
        assert schedule_state() == ("DISABLED", deployment["AGGREGATOR_LAMBDA_ARN"])
        status, latest = api("GET", f"/api/v1/models/{model['id']}/get_latest_model/", headers=client)
        assert (status, latest) == (200, {"values": values, "aggregate": aggregate_id})
        return aggregate_id

    first = aggregated([4.0], None)
    assert [(invoke["type"], invoke["payload"]) for invoke in invokes] == [("Event", {"model_id": model["id"]})]

    # PostgreSQL drops the warm functions' connections (a failover, the proxy's idle timeout): the next update
    # and aggregation get new ones.
    terminate_connections(deployment["FMA_DATABASE_NAME"])
    aggregated([6.0], first)

    # Nothing of the secrets reached the functions' logs.
    for container in functions.values():
        assert ADMIN["password"] not in container.log_path.read_text()


@pytest.mark.integration
def test_the_built_artifact_answers_the_deploy_custom_resource(functions):
    # What SAM's DeployOperations sends <stack>-deploy (the aggregator's handler) at the first deploy, at an
    # upgrade and at the stack's deletion, each answered at a real ResponseURL.
    deploy = functions["aggregator"]
    with response_url_server() as cloudformation:
        for request_type in ("Create", "Update", "Delete"):
            assert deploy.invoke(custom_resource_event(cloudformation.url, request_type)) is None

    create, update, delete = (received["body"] for received in cloudformation.received)
    assert (create["Status"], update["Status"]) == ("SUCCESS", "SUCCESS"), create["Reason"] + update["Reason"]
    assert update["Data"] == {
        "Migration": "database updated successfully",
        "Admin": "an admin user exists; nothing changed",
        "OrphanResults": "deleted 0 result file(s) no aggregate records and 0 update file(s) no update records",
        "Schedules": "deleted 0 EventBridge rule(s) of earlier versions; scheduled 0 model(s) with pending work",
    }
    assert (delete["Status"], delete["Data"]) == ("SUCCESS", {})
