"""A client generated from the served description works against the real service.

openapi-python-client (the generator the description is kept fit for) turns ``/api/schema/?format=json`` of
``make run``'s server into a package in a temporary folder, offline (no formatter post-hooks). The journey then
runs with the generated code alone: a developer logs in for a token, creates a model, a client registers,
pushes an update and scores the aggregate the server makes of it, and the developer reads that aggregate.
"""

import importlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers import LOCAL_AGGREGATION, running_server

pytestmark = pytest.mark.integration

PACKAGE = "fma_generated_client"
ADMIN_PASSWORD = "generated-client-password"
AGGREGATE_TIMEOUT = 15.0
GENERATOR = Path(sys.executable).with_name("openapi-python-client")
# No post-hooks: the generator would otherwise run ruff, which must not be needed (nor reach anything).
GENERATOR_CONFIG = f"project_name_override: {PACKAGE}\npackage_name_override: {PACKAGE}\npost_hooks: []\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("generated-client")
    with running_server(data_dir, admin_password=ADMIN_PASSWORD, env=LOCAL_AGGREGATION) as running:
        yield running


@pytest.fixture(scope="module")
def generated(server, tmp_path_factory):
    """The package generated from the server's description, imported; removed from ``sys.modules`` after."""
    assert GENERATOR.exists(), f"{GENERATOR} is missing: openapi-python-client is a dev package (Pipfile)"
    folder = tmp_path_factory.mktemp("generated")
    status, headers, body = server.request("GET", "/api/schema/?format=json")
    assert status == 200, body
    assert headers["Content-Type"].startswith("application/vnd.oai.openapi+json")
    (folder / "schema.json").write_bytes(body)
    (folder / "config.yaml").write_text(GENERATOR_CONFIG)
    generation = subprocess.run(
        [str(GENERATOR), "generate", "--path", "schema.json", "--config", "config.yaml", "--meta", "none"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert generation.returncode == 0, generation.stdout + generation.stderr
    assert "Warning" not in generation.stdout + generation.stderr, generation.stdout + generation.stderr
    sys.path.insert(0, str(folder))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def api(generated, module):
    """A generated operation module, such as ``api.models.models_create``."""
    return importlib.import_module(f"{PACKAGE}.api.{module}")


def test_every_operation_has_a_module_that_imports(generated):
    folder = Path(generated.__file__).parent
    schema = json.loads((folder.parent / "schema.json").read_text())
    operations = {
        (operation["tags"][0], operation["operationId"])
        for methods in schema["paths"].values()
        for operation in methods.values()
    }

    for tag, operation_id in operations:
        assert hasattr(api(generated, f"{tag}.{operation_id}"), "sync_detailed"), operation_id
    assert len([path for path in folder.glob("api/*/*.py") if path.stem != "__init__"]) == len(operations)


def test_a_journey_with_the_generated_client(server, generated):
    models = importlib.import_module(f"{PACKAGE}.models")
    anonymous = generated.Client(base_url=server.url.rstrip("/"), raise_on_unexpected_status=True)

    login = api(generated, "token.token_create").sync(
        client=anonymous, body=models.AuthTokenRequest(username="admin", password=ADMIN_PASSWORD)
    )
    assert isinstance(login, models.Token), login
    developer = generated.AuthenticatedClient(base_url=anonymous._base_url, token=login.token, prefix="Token")

    model = api(generated, "models.models_create").sync(
        client=developer,
        body=models.FederatedModelRequest(
            name="generated-client",
            aggregator="avg_values_if_data",
            requirement="all_clients",
            allow_aggregation=True,
            initial_model=[[0.0, 0.0]],
        ),
    )
    assert isinstance(model, models.FederatedModel), model

    registered = api(generated, "models.models_register_client").sync(model.id, client=anonymous)
    assert isinstance(registered, models.RegisteredClient), registered
    member = generated.AuthenticatedClient(
        base_url=anonymous._base_url, token=str(registered.uuid), prefix="", auth_header_name="CLIENT-UUID"
    )

    # ``client`` left out: the service takes it from CLIENT-UUID.
    update = api(generated, "model_updates.model_updates_create").sync(
        client=member, body=models.ModelUpdateRequest(federated_model=model.id, data=[[1.0, 3.0]])
    )
    assert isinstance(update, models.ModelUpdate), update
    assert update.client == str(registered.uuid)

    latest = api(generated, "models.models_get_latest_aggregate")
    deadline = time.monotonic() + AGGREGATE_TIMEOUT
    while not isinstance(aggregate := latest.sync(model.id, client=member), models.ModelAggregate):
        assert time.monotonic() < deadline, f"no aggregate; server log:\n{server.stderr()}"
        time.sleep(0.1)
    assert aggregate.result == [[1.0, 3.0]]

    score = api(generated, "client_aggregate_scores.client_aggregate_scores_create").sync(
        client=member,
        body=models.ClientAggregateScoreRequest(
            aggregate=aggregate.id,
            validation_results={"accuracy": 0.9},
        ),
    )
    assert isinstance(score, models.ClientAggregateScore), score

    read = api(generated, "model_aggregates.model_aggregates_retrieve").sync(aggregate.id, client=developer)
    assert isinstance(read, models.ModelAggregate), read
    assert (read.federated_model, read.result) == (model.id, [[1.0, 3.0]])
