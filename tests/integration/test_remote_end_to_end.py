"""The deployed shape, end to end: ``settings_remote`` over moto's AWS (a real HTTP server) and PostgreSQL.

Moto runs as a server on 127.0.0.1 inside this process; the API and aggregator functions run in their
own processes, each a warm "container" (``lambda_runtime.py``) fed API Gateway and Lambda events, with
nothing but the environment a deployment gives them. The database credentials and the Django key come
from moto's Secrets Manager, weights files go to moto's S3, schedules to moto's EventBridge Scheduler.

Moto accepts asynchronous Lambda invokes without recording them, so the test watches its Lambda backend
(in this process) and replays each captured payload to the aggregator function, as Lambda would.
"""

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlencode

import boto3
import pytest

from tests.events import make_v2_event, response_body
from tests.integration.lambda_support import (
    PG,
    Api,
    LambdaContainer,
    create_aggregator_function,
    fresh_database,
    moto_server,
    watched_invokes,
)
from tests.s3_storage import moto_environment

pytestmark = [pytest.mark.integration, pytest.mark.requires_postgres]

REPOSITORY = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ORIGIN = "e2e0000001.execute-api.us-east-1.amazonaws.com"
BUCKET = "fma-model-data-e2e"
SCHEDULE_GROUP = "fma-e2e"
DB_SECRET_ID = "fma/e2e/database"
KEY_SECRET_ID = "fma/e2e/django-secret-key"
ADMIN_PASSWORD = secrets.token_urlsafe(16)
DATABASE = f"{os.environ.get('FMA_TEST_PG_NAME', 'fma')}_remote_e2e"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@pytest.fixture(scope="module")
def moto():
    with moto_server() as url:
        yield url


@pytest.fixture(scope="module")
def invokes():
    """Every Lambda invoke moto's server receives: function, invocation type and payload."""
    with watched_invokes() as seen:
        yield seen


@pytest.fixture(scope="module")
def aws(moto):
    def client(service):
        return boto3.client(service, endpoint_url=moto, **CREDENTIALS)

    return client


@pytest.fixture(scope="module")
def aggregator_arn(aws):
    return create_aggregator_function(aws("iam"), aws("lambda"))


@pytest.fixture(scope="module")
def database():
    with fresh_database(DATABASE) as name:
        yield name


@pytest.fixture(scope="module")
def environment(moto, aws, aggregator_arn, database, tmp_path_factory):
    """What the deployment gives both functions: variables, secrets and a bucket."""
    manager = aws("secretsmanager")
    # Trust authentication: PostgreSQL ignores the password, the settings still need one.
    manager.create_secret(
        Name=DB_SECRET_ID, SecretString=json.dumps({"username": PG["user"], "password": "trust-ignores-it"})
    )
    manager.create_secret(Name=KEY_SECRET_ID, SecretString=secrets.token_urlsafe(50))
    aws("s3").create_bucket(Bucket=BUCKET)
    aws("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)
    static_root = tmp_path_factory.mktemp("staticfiles")
    environment = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_remote",
        **moto_environment(moto),
        "AWS_DEFAULT_REGION": REGION,
        "FMA_DATABASE_NAME": database,
        "FMA_DATABASE_HOST": PG["host"],
        "FMA_DATABASE_PORT": PG["port"],
        "FMA_DATABASE_SSLMODE": "disable",
        "FMA_DB_SECRET_PATH": DB_SECRET_ID,
        "FMA_SECRET_KEY_SECRET_ID": KEY_SECRET_ID,
        "FMA_MODEL_DATA_BUCKET": BUCKET,
        # As the SAM template sets it by default: every execute-api host of the region.
        "TRUSTED_ORIGIN": f".execute-api.{REGION}.amazonaws.com",
        "AGGREGATOR_LAMBDA_ARN": aggregator_arn,
        "FMA_SCHEDULE_GROUP": SCHEDULE_GROUP,
        "FMA_SCHEDULE_ROLE_ARN": "arn:aws:iam::123456789012:role/fma-scheduler",
        "FMA_STATIC_ROOT": str(static_root),
    }
    # The build step of the package: collected admin files, as the Lambda artifact ships them.
    subprocess.run(
        [sys.executable, "api_service/manage.py", "collectstatic", "--no-input", "-v", "0"],
        env=environment | {"DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_static"},
        cwd=REPOSITORY,
        check=True,
    )
    return environment


@pytest.fixture(scope="module")
def api_function(environment, tmp_path_factory):
    container = LambdaContainer("service_initialization", environment, tmp_path_factory.mktemp("api") / "log")
    yield container
    container.close()


@pytest.fixture(scope="module")
def aggregator_function(environment, tmp_path_factory, api_function):
    container = LambdaContainer("aggregator_initialization", environment, tmp_path_factory.mktemp("agg") / "log")
    yield container
    container.close()


@pytest.fixture(scope="module")
def api(api_function, environment):
    answer = api_function.invoke({"detail": "update_metadata_db"})
    assert json.loads(answer["body"]) == {"data": "database updated successfully"}
    subprocess.run(
        [sys.executable, "api_service/manage.py", "createsuperuser", "--no-input"],
        env=environment
        | {
            "DJANGO_SUPERUSER_USERNAME": "owner",
            "DJANGO_SUPERUSER_EMAIL": "",
            "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD,
        },
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
    )
    return Api(api_function, ORIGIN)


def schedule_of(aws, model_id):
    """State and target of the model's schedule in the deployment's group."""
    schedule = aws("scheduler").get_schedule(GroupName=SCHEDULE_GROUP, Name=f"model-{model_id}")
    return schedule["State"], [schedule["Target"]]


def bucket_keys(aws, prefix):
    return [item["Key"] for item in aws("s3").list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


def test_model_lifecycle_over_aws(api, aws, invokes, aggregator_arn, aggregator_function):
    status, body = api("POST", "/api-token-auth/", {"username": "owner", "password": ADMIN_PASSWORD})
    assert status == 200, body
    owner = {"Authorization": f"Token {body['token']}"}

    # Create: the initial weights land in S3, the schedule in EventBridge Scheduler, idle while nothing is pending.
    status, model = api(
        "POST",
        "/api/v1/models/",
        {"name": "e2e", "aggregator": "avg_values_if_data", "allow_aggregation": True, "initial_model": [0.0, 0.0]},
        owner,
    )
    assert status == 201, model
    state, targets = schedule_of(aws, model["id"])
    assert state == "DISABLED"
    assert [(target["Arn"], json.loads(target["Input"])) for target in targets] == [
        (aggregator_arn, {"detail": {"model_id": model["id"]}})
    ]
    assert len(bucket_keys(aws, "artifacts/")) == 1

    # Pause and resume: still nothing to do, still idle.
    assert api("PATCH", f"/api/v1/models/{model['id']}/", {"allow_aggregation": False}, owner)[0] == 200
    assert schedule_of(aws, model["id"])[0] == "DISABLED"
    assert api("PATCH", f"/api/v1/models/{model['id']}/", {"allow_aggregation": True}, owner)[0] == 200
    assert schedule_of(aws, model["id"])[0] == "DISABLED"

    # Two clients push updates: each is stored in S3 and starts the aggregator asynchronously.
    clients = []
    for weights in ([1.0, 2.0], [3.0, 4.0]):
        status, registered = api("POST", f"/api/v1/models/{model['id']}/register_client/")
        assert status == 200, registered
        client = {"CLIENT-UUID": registered["uuid"]}
        clients.append(client)
        status, update = api(
            "POST",
            "/api/v1/model_updates/",
            {"federated_model": model["id"], "data": weights, "base_aggregate": None},
            client,
        )
        assert status == 201, update
    assert len(bucket_keys(aws, "updates/")) == 2
    # Work is pending: the schedule sweeps until it is done.
    assert schedule_of(aws, model["id"])[0] == "ENABLED"
    assert invokes == [
        {"function": aggregator_arn, "type": "Event", "payload": {"model_id": model["id"]}},
        {"function": aggregator_arn, "type": "Event", "payload": {"model_id": model["id"]}},
    ]

    # Lambda delivers the first invoke to the aggregator function: it aggregates both updates.
    aggregate_id = aggregator_function.invoke(invokes[0]["payload"])
    assert aggregate_id is not None
    assert len(bucket_keys(aws, "aggregates/")) == 1
    # Nothing left: the schedule goes idle again.
    assert schedule_of(aws, model["id"])[0] == "DISABLED"
    # The second invoke (and the schedule's event) find nothing left to do.
    assert aggregator_function.invoke(invokes[1]["payload"]) is None
    assert aggregator_function.invoke(json.loads(targets[0]["Input"])) is None

    status, latest = api("GET", f"/api/v1/models/{model['id']}/get_latest_model/", headers=clients[0])
    assert (status, latest) == (200, {"values": [2.0, 3.0], "aggregate": aggregate_id})

    # Delete: the schedule goes with the model, and so do its files.
    assert api("DELETE", f"/api/v1/models/{model['id']}/", headers=owner)[0] == 204
    assert aws("scheduler").list_schedules(GroupName=SCHEDULE_GROUP)["Schedules"] == []
    assert bucket_keys(aws, "") == []


def test_an_update_is_stored_once_when_lambda_is_unreachable(
    api, aws, environment, silent_endpoint, invokes, aggregator_function, tmp_path
):
    """Only Lambda unreachable: the client gets its 201, once; the model's schedule aggregates the update."""
    status, body = api("POST", "/api-token-auth/", {"username": "owner", "password": ADMIN_PASSWORD})
    owner = {"Authorization": f"Token {body['token']}"}
    status, model = api(
        "POST",
        "/api/v1/models/",
        {"name": "no-lambda", "aggregator": "avg_values_if_data", "allow_aggregation": True},
        owner,
    )
    assert status == 201, model
    status, registered = api("POST", f"/api/v1/models/{model['id']}/register_client/")
    client = {"CLIENT-UUID": registered["uuid"]}
    invoked_before = len(invokes)
    # A warm container of the API function whose Lambda endpoint never answers (boto3's per-service override).
    cut_off = LambdaContainer(
        "service_initialization", environment | {"AWS_ENDPOINT_URL_LAMBDA": silent_endpoint}, tmp_path / "log"
    )
    try:
        # The bound proves only that the request does not hang (a client would give up and send it again).
        status, update = Api(cut_off, ORIGIN, timeout=15)(
            "POST",
            "/api/v1/model_updates/",
            {"federated_model": model["id"], "data": [5.0], "base_aggregate": None},
            client,
        )
    finally:
        cut_off.close()

    assert status == 201, update
    status, updates = api("GET", "/api/v1/model_updates/", headers=owner)
    assert [row["id"] for row in updates if row["federated_model"] == model["id"]] == [update["id"]]
    assert len(invokes) == invoked_before
    log = (tmp_path / "log").read_text()
    assert f"model {model['id']}: could not invoke the aggregator Lambda: AWS Lambda is unreachable" in log
    assert "check the network route to it (VPC endpoint or NAT) and AGGREGATOR_LAMBDA_ARN" in log
    # The schedule, woken by the update, is what aggregates it.
    state, targets = schedule_of(aws, model["id"])
    assert state == "ENABLED"
    assert aggregator_function.invoke(json.loads(targets[0]["Input"])) is not None
    assert schedule_of(aws, model["id"])[0] == "DISABLED"
    assert api("GET", f"/api/v1/models/{model['id']}/get_latest_model/", headers=client)[1]["values"] == [5.0]


def test_admin_login_behind_api_gateway(api, api_function):
    """The admin's page, its hashed static files and a CSRF-checked login, over HTTPS as API Gateway sends them."""
    page = api_function.invoke(make_v2_event(method="GET", path="/admin/login/", host=ORIGIN))
    assert page["statusCode"] == 200
    html = response_body(page).decode()
    css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', html).group(1)
    assert api("GET", css)[0] == 200
    assert page["headers"]["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    # By name, so that a missing cookie fails naming the cookies the page did set.
    cookies = {cookie.strip().partition("=")[0]: cookie.strip() for cookie in page["cookies"]}
    assert "csrftoken" in cookies
    csrf_cookie = cookies["csrftoken"]
    assert "Secure" in csrf_cookie
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)

    login = api_function.invoke(
        make_v2_event(
            method="POST",
            path="/admin/login/",
            host=ORIGIN,
            headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"https://{ORIGIN}"},
            cookies=[csrf_cookie.split(";")[0]],
            body=urlencode(
                {"csrfmiddlewaretoken": form_token, "username": "owner", "password": ADMIN_PASSWORD, "next": "/admin/"}
            ),
        )
    )

    assert (login["statusCode"], login["headers"]["location"]) == (302, "/admin/")
    assert any(cookie.strip().startswith("sessionid=") and "Secure" in cookie for cookie in login["cookies"])


def test_secrets_never_reach_the_logs(api_function, environment, aws):
    manager = aws("secretsmanager")
    key = manager.get_secret_value(SecretId=KEY_SECRET_ID)["SecretString"]
    password = json.loads(manager.get_secret_value(SecretId=DB_SECRET_ID)["SecretString"])["password"]

    log = api_function.log_path.read_text()
    assert key not in log
    assert password not in log
