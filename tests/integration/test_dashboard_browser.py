"""The dashboard in a real browser: Debian's chromium, driven by Playwright, against ``make run``'s server.

The server runs in its own process with in-process aggregation, so the aggregates, lineage and scores on
the pages are made the way they are in use: three clients push updates and score four aggregates over
HTTP. Skipped, saying why, only where chromium or Playwright is not installed (``.ci/run`` installs
chromium). ``FMA_DASHBOARD_SCREENSHOTS=docs`` also writes the README's screenshots there.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.browser import browser_page, require_chromium
from tests.servers import REPOSITORY_DIR, RunningServer, server_environment

pytestmark = pytest.mark.integration

require_chromium()
PASSWORD = "dashboard-test-password"
DEVELOPERS = ("ada", "grace")
INITIAL_MODEL = [[0.0, 0.0], [0.0]]
ROUNDS = 4
CLIENTS = 3
AGGREGATE_TIMEOUT = 10.0
CREATE_DEVELOPERS = f"""
from django.contrib.auth import get_user_model
for name in {DEVELOPERS!r}:
    get_user_model().objects.create_user(name, password={PASSWORD!r})
"""


class Api:
    """JSON over HTTP to the running server, as a developer (Basic) or a client (its uuid)."""

    def __init__(self, server):
        self.server = server

    def call(self, method, path, *, body=None, developer=None, client=None, expect=200):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if developer is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{developer}:{PASSWORD}".encode()).decode()
        if client is not None:
            headers["CLIENT-UUID"] = client
        payload = None if body is None else json.dumps(body)
        status, _, raw = self.server.request(method, path, body=payload, headers=headers)
        assert status == expect, raw
        return json.loads(raw)

    def wait_for_aggregate(self, model_id, client, *, after):
        deadline = time.monotonic() + AGGREGATE_TIMEOUT
        while True:
            latest = self.call("GET", f"/api/v1/models/{model_id}/get_latest_aggregate/", client=client)
            if latest and latest["id"] != after:
                return latest
            assert time.monotonic() < deadline, f"no aggregate; server log:\n{self.server.stderr()}"
            time.sleep(0.05)


def _experiment(api, developer, name, *, rounds):
    """A model of ``developer`` with three clients that push and score ``rounds`` aggregates; its id and theirs."""
    model = api.call(
        "POST",
        "/api/v1/models/",
        developer=developer,
        expect=201,
        body={
            "name": name,
            "aggregator": "avg_values_if_data",
            "requirement": "all_clients",
            "allow_aggregation": True,
            "initial_model": INITIAL_MODEL,
        },
    )
    clients = [api.call("POST", f"/api/v1/models/{model['id']}/register_client/")["uuid"] for _ in range(CLIENTS)]
    aggregates = []
    for round_number in range(rounds):
        base = aggregates[-1]["id"] if aggregates else None
        for index, client in enumerate(clients):
            weights = [[round_number + index, 1.0], [float(index)]]
            body = {"federated_model": model["id"], "data": weights, "base_aggregate": base}
            api.call("POST", "/api/v1/model_updates/", client=client, body=body, expect=201)
        aggregates.append(api.wait_for_aggregate(model["id"], clients[0], after=base))
        for index, client in enumerate(clients):
            results = {"accuracy": 0.55 + 0.1 * round_number + 0.02 * index, "loss": 1.2 / (round_number + 1 + index)}
            body = {"aggregate": aggregates[-1]["id"], "validation_results": results}
            api.call("POST", "/api/v1/client_aggregate_scores/", client=client, body=body, expect=201)
    return model["id"], [aggregate["id"] for aggregate in aggregates]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("dashboard")
    running = RunningServer(data_dir, env={"FMA_AGGREGATION_TRIGGER": "local"}).wait_ready()
    subprocess.run(
        [sys.executable, str(REPOSITORY_DIR / "api_service" / "manage.py"), "shell", "-c", CREATE_DEVELOPERS],
        env=server_environment(data_dir),
        check=True,
        capture_output=True,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def experiments(server):
    api = Api(server)
    mnist = _experiment(api, "ada", "mnist-fedavg", rounds=ROUNDS)
    # Paused with an update waiting, and one not started: the list shows both states.
    paused = paused_id, _ = _experiment(api, "ada", "keyboard-next-word", rounds=1)
    api.call("PATCH", f"/api/v1/models/{paused_id}/", developer="ada", body={"allow_aggregation": False})
    straggler = api.call("POST", f"/api/v1/models/{paused_id}/register_client/")["uuid"]
    body = {"federated_model": paused_id, "data": [[9.0, 9.0], [9.0]]}
    api.call("POST", "/api/v1/model_updates/", client=straggler, body=body, expect=201)
    _experiment(api, "ada", "cifar10-new", rounds=0)
    others = _experiment(api, "grace", "grace-private", rounds=1)
    return {"mnist": mnist, "paused": paused, "others": others}


@pytest.fixture
def page(server, tmp_path):
    with browser_page(server.url, viewport={"width": 1280, "height": 480}) as new_page:
        yield new_page


def screenshot(page, tmp_path, name):
    """A full-page PNG in the test's folder, and in ``FMA_DASHBOARD_SCREENSHOTS`` when set."""
    path = tmp_path / name
    page.screenshot(path=path, full_page=True)
    assert path.read_bytes().startswith(b"\x89PNG")
    if target := os.environ.get("FMA_DASHBOARD_SCREENSHOTS"):
        shutil.copy(path, Path(REPOSITORY_DIR, target, name))


def log_in(page, username):
    page.goto("dashboard/")
    assert re.search(r"/dashboard/login/\?next=/dashboard/$", page.url)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/dashboard/$"))


def test_a_developer_follows_an_experiment_and_acts_on_it(page, experiments, tmp_path):
    model_id, aggregate_ids = experiments["mnist"]
    log_in(page, "ada")

    rows = page.locator("table.models tbody tr")
    names = rows.locator("td:first-child a").all_inner_texts()
    assert names == ["cifar10-new", "keyboard-next-word", "mnist-fedavg"]  # newest first
    mnist_row = page.locator(f'tr[data-model="{model_id}"] td')
    assert mnist_row.nth(3).inner_text() == str(CLIENTS)
    assert mnist_row.nth(8).inner_text().startswith(f"#{aggregate_ids[-1]}, ")
    assert mnist_row.nth(9).inner_text() == "running"
    paused_row = page.locator(f'tr[data-model="{experiments["paused"][0]}"] td')
    assert (paused_row.nth(3).inner_text(), paused_row.nth(4).inner_text()) == (str(CLIENTS + 1), "1")
    assert paused_row.nth(9).inner_text() == "paused"
    screenshot(page, tmp_path, "dashboard-models.png")

    page.get_by_role("link", name="mnist-fedavg").click()
    page.wait_for_url(re.compile(rf"/dashboard/models/{model_id}/$"))

    # One point per aggregate, in order, each the mean over the three clients.
    points = page.locator("svg.chart g.point")
    assert points.count() == ROUNDS
    assert [int(points.nth(i).get_attribute("data-aggregate")) for i in range(ROUNDS)] == aggregate_ids
    assert {points.nth(i).get_attribute("data-clients") for i in range(ROUNDS)} == {str(CLIENTS)}
    assert page.locator("svg.chart text.x-tick").all_text_contents() == [str(pk) for pk in aggregate_ids]
    assert page.locator("select[name=metric] option").all_inner_texts() == ["accuracy", "loss"]

    # The lineage: each aggregate built on the one before, from three updates.
    for parent, aggregate in zip([None, *aggregate_ids], aggregate_ids, strict=False):
        cells = page.locator(f'table.lineage tr[data-aggregate="{aggregate}"] td')
        assert cells.nth(1).inner_text() == (f"#{parent}" if parent else "first")
        assert cells.nth(2).inner_text() == str(CLIENTS)

    page.get_by_role("button", name="Pause aggregation").click()
    assert page.get_by_role("status").inner_text() == "Aggregation paused."
    assert page.locator(".summary .state").inner_text() == "paused"
    page.get_by_role("button", name="Resume aggregation").click()
    assert page.get_by_role("status").inner_text() == "Aggregation resumed."
    assert page.locator(".summary .state").inner_text() == "running"

    newest = page.locator(f'table.lineage tr[data-aggregate="{aggregate_ids[-1]}"]')
    newest.get_by_placeholder("version").fill("2.0.0")
    newest.get_by_role("button", name="Publish").click()
    assert page.get_by_role("status").inner_text() == f"Aggregate {aggregate_ids[-1]} published as version 2.0.0."
    assert page.locator(".current-version").inner_text() == "2.0.0"
    newest = page.locator(f'table.lineage tr[data-aggregate="{aggregate_ids[-1]}"]')
    assert newest.locator(".version").inner_text() == "2.0.0"

    # The API's own refusal of a version that exists.
    newest.get_by_placeholder("version").fill("2.0.0")
    newest.get_by_role("button", name="Publish").click()
    assert page.locator(".message.error").inner_text() == (
        f"Model {model_id} already has an artifact of version '2.0.0'."
    )

    page.select_option("select[name=metric]", "loss")
    page.get_by_role("button", name="Show").click()
    assert page.locator("svg.chart title").first.text_content().startswith("loss:")
    page.goto(f"dashboard/models/{model_id}/")
    screenshot(page, tmp_path, "dashboard-model.png")


def test_another_developers_model_is_not_found(page, experiments):
    other_id, _ = experiments["others"]
    log_in(page, "ada")
    response = page.goto(f"dashboard/models/{other_id}/")
    assert response.status == 404
    assert "No such model, or not one of yours." in page.locator("main").inner_text()


def test_logging_out_ends_the_session(page, experiments):
    log_in(page, "grace")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/dashboard/login/$"))
    page.goto("dashboard/")
    assert "/dashboard/login/" in page.url
