"""Each SDK test module gets its own real local server, aggregating as `make run` does, and a developer on it."""

import pytest

from fma_client import DeveloperClient
from tests.clients.support import PASSWORD
from tests.servers import LOCAL_AGGREGATION, running_server


@pytest.fixture(scope="module")
def server(request, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2])
    with running_server(data_dir, admin_password=PASSWORD, env=LOCAL_AGGREGATION) as running:
        yield running


@pytest.fixture(scope="module")
def developer(server):
    # One login for the module: the service brakes logins at 10 a minute.
    return DeveloperClient(server.url, username="admin", password=PASSWORD, progress=False)
