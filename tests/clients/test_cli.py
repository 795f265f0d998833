"""The ``fma`` command line against the real local server: what a developer types and what it answers.

Commands run in process through typer's ``CliRunner`` (the live ``watch`` in its own process on a
pseudo-terminal); the stored login goes to a temporary ``XDG_CONFIG_HOME``.
"""

import contextlib
import dataclasses
import json
import os
import pty
import select
import shutil
import signal
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime

import numpy as np
import pytest
import safetensors.numpy
from typer.testing import CliRunner

from fma_client import WebClient
from fma_client.cli import app as cli
from fma_client.cli import output
from fma_client.cli.session import as_row
from tests.clients.support import AGGREGATE_TIMEOUT, PASSWORD, UPDATE
from tests.servers import REPOSITORY_DIR

pytestmark = pytest.mark.integration

# Wide enough that no table folds a cell the tests look for.
TERMINAL = {"COLUMNS": "200"}


def fma(*args, input=None):
    """``fma ARGS``: the result (``exit_code``, ``stdout``, ``stderr``)."""
    return CliRunner().invoke(cli.app, [str(arg) for arg in args], input=input, env=TERMINAL)


def succeeds(*args, input=None):
    result = fma(*args, input=input)
    assert result.exit_code == 0, f"fma {args}: {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return result


def fails(*args, input=None):
    """``fma ARGS`` that must exit 1 with one line on stderr and no traceback; that line."""
    result = fma(*args, input=input)
    assert result.exit_code == 1, f"fma {args}: {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def config_home(tmp_path_factory):
    """``XDG_CONFIG_HOME`` of the module's logged-in developer."""
    home = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def logged_in(server, config_home):
    """``fma login`` with flags, once for the module (the service brakes logins at 10 a minute)."""
    result = succeeds("login", "--url", server.url, "--username", "admin", "--password", PASSWORD)
    return config_home / "fma" / "credentials.json", result


@pytest.fixture
def logged_out(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    return tmp_path


def created_model(tmp_path, **fields):
    """``fma models create --json`` of a JSON file with ``fields``: the model."""
    path = tmp_path / "model.json"
    path.write_text(json.dumps(fields))
    return json.loads(succeeds("models", "create", "--file", path, "--json").stdout)


def aggregated(server, developer, model_id):
    """One client's update aggregated (``requirement: all_clients``); the aggregate's row."""
    client = WebClient(model_id, url=server.url, progress=False)
    client.register()
    client.send_update(UPDATE, num_examples=4)
    aggregate = developer.wait_for_aggregate(model_id, timeout=AGGREGATE_TIMEOUT, poll=0.05)
    return client, aggregate.raw


AGGREGATING = {"aggregator": "fed_avg", "requirement": "all_clients", "allow_aggregation": True}
INITIAL_MODEL = [[0.0, 0.0, 0.0], [0.0, 0.0]]


class TestLogin:
    def test_login_stores_the_token_readable_by_its_owner_only(self, logged_in, server):
        path, result = logged_in

        assert f"Logged in to {server.url} as admin" in result.stdout
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        stored = json.loads(path.read_text())
        assert (stored["url"], stored["username"]) == (server.url, "admin")
        assert stored["token"]
        succeeds("models", "list")

    def test_login_prompts_for_what_flags_do_not_give(self, server, logged_out):
        result = succeeds("login", input=f"{server.url}\nadmin\n{PASSWORD}\n")

        assert PASSWORD not in result.stdout, "the password is read without echo"
        path = logged_out / "fma" / "credentials.json"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert json.loads(path.read_text())["url"] == server.url

    def test_a_wrong_password_fails_with_the_services_message_and_stores_nothing(self, server, logged_out):
        line = fails("login", "--url", server.url, "--username", "admin", "--password", "not-the-password")

        assert line == "Error: Login failed: Unable to log in with provided credentials. (HTTP 400)"
        assert not (logged_out / "fma").exists()

    def test_without_a_login_commands_name_fma_login(self, logged_out):
        for command in (["models", "list"], ["watch", "1", "--once"], ["tokens", "list"], ["publish", "1"]):
            assert fails(*command) == "Error: Not logged in: run `fma login` first."

    def test_a_token_the_service_refuses_asks_for_a_new_login(self, server, logged_out):
        (logged_out / "fma").mkdir()
        (logged_out / "fma" / "credentials.json").write_text(
            json.dumps({"url": server.url, "username": "admin", "token": "0" * 40})
        )

        line = fails("models", "list")

        assert line == "Error: The service refused the stored login: Invalid token. (HTTP 401). Run `fma login` again."

    def test_an_unreachable_service_is_one_line(self, logged_out):
        (logged_out / "fma").mkdir()
        # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
        (logged_out / "fma" / "credentials.json").write_text(
            json.dumps({"url": "http://127.0.0.1:9/", "username": "admin", "token": "0" * 40})
        )

        assert fails("models", "list").startswith("Error: No answer from the service: GET http://127.0.0.1:9/")

    def test_logout_forgets_the_token(self, server, logged_out):
        path = logged_out / "fma" / "credentials.json"
        path.parent.mkdir()
        path.write_text(json.dumps({"url": server.url, "username": "admin", "token": "0" * 40}))

        assert "removed" in succeeds("logout").stdout
        assert not path.exists()
        assert succeeds("logout").stdout.strip() == "Not logged in."
        assert fails("models", "list") == "Error: Not logged in: run `fma login` first."


@pytest.mark.usefixtures("logged_in")
class TestModels:
    def test_create_from_json_and_yaml_then_list_and_show(self, tmp_path):
        from_json = created_model(tmp_path, name="from-json", initial_model=INITIAL_MODEL, **AGGREGATING)
        yaml_file = tmp_path / "model.yaml"
        yaml_file.write_text(
            "name: from-yaml\naggregator: fed_avg\nrequirement: all_clients\nregistration: invite\n"
            "initial_model:\n  - [1.0, 2.0]\n"
        )
        table = succeeds("models", "create", "--file", yaml_file).stdout
        listed = json.loads(succeeds("models", "list", "--json").stdout)

        from_yaml = next(row for row in listed if row["name"] == "from-yaml")
        assert f"Created model {from_yaml['id']}" in table
        assert from_yaml["registration"] == "invite"
        assert from_yaml["current_artifact"] is not None, "the initial model became its artifact"
        assert from_json["id"] in [row["id"] for row in listed]
        rows = succeeds("models", "list").stdout
        assert "from-json" in rows
        assert "from-yaml" in rows
        shown = json.loads(succeeds("models", "show", from_json["id"], "--json").stdout)
        assert (shown["name"], shown["requirement"]) == ("from-json", "all_clients")
        shown_table = succeeds("models", "show", from_json["id"]).stdout
        assert "from-json" in shown_table
        assert "0 (--json lists them)" in shown_table

    def test_create_from_stdin(self):
        created = json.loads(succeeds("models", "create", "--file", "-", "--json", input="name: from-stdin\n").stdout)

        assert created["name"] == "from-stdin"
        assert created["aggregator"] == "fed_avg", "the default aggregator"

    def test_files_that_hold_no_model_are_refused_before_the_service_is_asked(self, tmp_path):
        cases = {
            "list.json": ("[1, 2]", "must hold a mapping of the model's fields, not list"),
            "nameless.yaml": ("aggregator: fed_avg\n", "names no model: `name` is missing"),
            "broken.json": ("{", "is not valid JSON"),
            "broken.yml": ("name: [", "is not valid YAML"),
        }
        before = json.loads(succeeds("models", "list", "--json").stdout)
        for name, (content, message) in cases.items():
            (tmp_path / name).write_text(content)
            assert message in fails("models", "create", "--file", tmp_path / name), name
        assert "Cannot read" in fails("models", "create", "--file", tmp_path / "absent.json")
        assert json.loads(succeeds("models", "list", "--json").stdout) == before

    def test_yaml_without_pyyaml_says_what_to_install(self, tmp_path, monkeypatch):
        (tmp_path / "model.yaml").write_text("name: no-yaml\n")
        monkeypatch.setitem(sys.modules, "yaml", None)  # what `import yaml` meets when PyYAML is not installed

        assert "needs PyYAML: pip install 'fma-client[cli]'" in fails("models", "create", "-f", tmp_path / "model.yaml")

    def test_a_body_the_service_refuses_names_the_field(self, tmp_path):
        (tmp_path / "model.json").write_text(json.dumps({"name": "bad", "aggregator": "no-such-aggregator"}))

        line = fails("models", "create", "--file", tmp_path / "model.json")

        assert line.startswith("Error: aggregator: Unknown aggregator 'no-such-aggregator'; registered: ")
        assert line.endswith("(HTTP 400)")

    def test_an_unknown_model_is_a_404_line(self):
        assert fails("models", "show", 999999).endswith("(HTTP 404)")


@pytest.mark.usefixtures("logged_in")
class TestWatchPublishDownload:
    def test_watch_once_shows_the_aggregate_and_its_scores(self, server, developer, tmp_path):
        model = created_model(tmp_path, name="watched", initial_model=INITIAL_MODEL, **AGGREGATING)
        assert "No aggregate yet." in succeeds("watch", model["id"], "--once").stdout

        client, aggregate = aggregated(server, developer, model["id"])
        client.send_val_results({"accuracy": 0.75, "note": "text is left out"}, aggregate["id"])

        table = succeeds("watch", model["id"], "--once").stdout
        assert f"Model {model['id']} 'watched': aggregation on, clients: 1" in table
        assert str(aggregate["id"]) in table
        assert "accuracy=0.75" in table
        state = json.loads(succeeds("watch", model["id"], "--once", "--json").stdout)
        assert [(row["id"], row["scores"], row["means"]) for row in state["aggregates"]] == [
            (aggregate["id"], 1, {"accuracy": 0.75})
        ]

    def test_publish_takes_the_next_version_or_the_one_given(self, server, developer, tmp_path):
        model = created_model(tmp_path, name="published", initial_model=INITIAL_MODEL, **AGGREGATING)
        _, aggregate = aggregated(server, developer, model["id"])

        first = succeeds("publish", aggregate["id"]).stdout
        second = json.loads(succeeds("publish", aggregate["id"], "--version", "2.0.0", "--json").stdout)

        assert f"Published aggregate {aggregate['id']} as version 1.1.0" in first, "the initial model is 1.0.0"
        assert second["version"] == "2.0.0"
        assert developer.get_model(model["id"]).current_artifact == second["id"]
        assert fails("publish", aggregate["id"], "--version", "2.0.0").endswith("(HTTP 400)")
        assert "version 2.1.0" in succeeds("publish", aggregate["id"]).stdout

    def test_download_writes_a_loadable_file_in_each_format(self, server, developer, tmp_path):
        model = created_model(tmp_path, name="downloaded", initial_model=INITIAL_MODEL, **AGGREGATING)
        _, aggregate = aggregated(server, developer, model["id"])
        expected = developer.get_aggregate_result(aggregate["id"])

        for weight_format in ("safetensors", "npz", "json"):
            target = tmp_path / f"weights.{weight_format}"
            result = succeeds("download", aggregate["id"], "--format", weight_format, "-o", target)
            assert f"to {target}" in result.stdout
            if weight_format == "safetensors":
                loaded = safetensors.numpy.load_file(target)
                layers = [loaded[name] for name in sorted(loaded, key=int)]
            elif weight_format == "npz":
                with np.load(target, allow_pickle=False) as loaded:
                    layers = [loaded[name] for name in loaded.files]
            else:
                layers = [np.asarray(layer) for layer in json.loads(target.read_text())]
            for layer, wanted in zip(layers, expected, strict=True):
                np.testing.assert_allclose(layer, wanted)
            assert stat.S_IMODE(target.stat().st_mode) & 0o044, "weights keep the usual mode of a new file"

    def test_a_refused_download_leaves_no_file(self, tmp_path):
        target = tmp_path / "absent.safetensors"

        assert fails("download", 999999, "-o", target).endswith("(HTTP 404)")
        assert list(tmp_path.iterdir()) == []
        assert "No folder" in fails("download", 1, "-o", tmp_path / "no" / "such" / "file")

    def test_watch_redraws_until_ctrl_c_and_exits_cleanly(self, server, config_home, developer, tmp_path):
        model = created_model(tmp_path, name="live", initial_model=INITIAL_MODEL, **AGGREGATING)
        client, aggregate = aggregated(server, developer, model["id"])
        # A pseudo-terminal, so that the live table redraws as it does for a person.
        controller, terminal = pty.openpty()
        try:
            with _fma_watch(model["id"], config_home, stdin=terminal, stdout=terminal):
                os.close(terminal)
                seen = _read_until(controller, f"Model {model['id']} 'live'", "validation score")
                # A score sent while it watches shows up in a later redraw.
                client.send_val_results({"accuracy": 0.5}, aggregate["id"])
                seen += _read_until(controller, "accuracy=0.5")
        finally:
            os.close(controller)
        assert str(aggregate["id"]) in seen

    def test_watch_piped_appends_a_table_per_poll(self, server, config_home, developer, tmp_path):
        model = created_model(tmp_path, name="piped", initial_model=INITIAL_MODEL, **AGGREGATING)
        _, aggregate = aggregated(server, developer, model["id"])

        with _fma_watch(model["id"], config_home, stdout=subprocess.PIPE) as process:
            lines = _lines(process.stdout, 2)

        assert len([line for line in lines if f"Model {model['id']} 'piped'" in line]) == 2
        assert any(str(aggregate["id"]) in line for line in lines)


@contextlib.contextmanager
def _fma_watch(model_id, config_home, **streams):
    """``fma watch MODEL_ID`` in its own process for the block, then Ctrl-C: it must exit 0, stderr empty."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fma_client.cli", "watch", str(model_id), "--interval", "0.2"],
        stderr=subprocess.PIPE,
        env={
            **os.environ,
            "XDG_CONFIG_HOME": str(config_home),
            "COLUMNS": "200",
            "PYTHONPATH": str(REPOSITORY_DIR / "clients" / "python"),
        },
        cwd=REPOSITORY_DIR,
        **streams,
    )
    try:
        yield process
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
        assert process.stderr.read() == b""
    finally:
        if process.poll() is None:
            process.kill()


def _lines(stream, tables, timeout=20.0):
    """Lines of ``stream`` until it has shown ``tables`` table titles."""
    lines = []
    deadline = time.monotonic() + timeout
    while sum("Model " in line for line in lines) < tables:
        assert time.monotonic() < deadline, f"{tables} tables not shown within {timeout} s:\n{lines}"
        lines.append(stream.readline().decode())
    return lines


def _read_until(descriptor, *texts, timeout=20.0):
    """What the pseudo-terminal shows until it has shown each of ``texts``."""
    seen = ""
    deadline = time.monotonic() + timeout
    while not all(text in seen for text in texts):
        assert time.monotonic() < deadline, f"not shown within {timeout} s:\n{seen}"
        if select.select([descriptor], [], [], 0.1)[0]:
            try:
                seen += os.read(descriptor, 65536).decode(errors="replace")
            except OSError:  # the process ended and closed the terminal
                raise AssertionError(f"the process ended before showing {texts}:\n{seen}") from None
    return seen


@pytest.mark.usefixtures("logged_in")
class TestEnrollmentTokens:
    def test_create_list_use_and_revoke(self, server, tmp_path):
        model = created_model(tmp_path, name="invited", registration="invite")

        created = succeeds("tokens", "create", model["id"], "--uses", "2").stdout
        secret = created.rsplit(": ", 1)[1].strip()
        rows = json.loads(succeeds("tokens", "list", "--model", model["id"], "--json").stdout)
        assert [(row["uses"], row["used"], row["token"]) for row in rows] == [(2, 0, None)], "the secret is shown once"
        WebClient(model["id"], url=server.url, progress=False, enrollment_token=secret).register()
        assert json.loads(succeeds("tokens", "list", "--model", model["id"], "--json").stdout)[0]["used"] == 1
        assert str(rows[0]["id"]) in succeeds("tokens", "list").stdout

        assert f"Revoked enrollment token {rows[0]['id']}." in succeeds("tokens", "revoke", rows[0]["id"]).stdout
        assert json.loads(succeeds("tokens", "list", "--model", model["id"], "--json").stdout) == []
        assert fails("tokens", "revoke", rows[0]["id"]).endswith("(HTTP 404)")
        late = WebClient(model["id"], url=server.url, progress=False, enrollment_token=secret)
        with pytest.raises(Exception, match="404"):
            late.register()

    def test_a_token_with_an_expiry_as_json(self, tmp_path):
        model = created_model(tmp_path, name="expiring", registration="invite")

        row = json.loads(
            succeeds("tokens", "create", model["id"], "--expires-at", "2099-01-02T03:04:05+00:00", "--json").stdout
        )

        assert row["token"]
        assert row["uses"] == 1
        assert datetime.fromisoformat(row["expires_at"]) == datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC)
        assert "--expires-at" in fma("tokens", "create", model["id"], "--expires-at", "soon").stderr


def test_the_installed_console_script(server, tmp_path):
    """``pip install 'fma-client[cli]'`` gives an ``fma`` command: built and installed from clients/python here."""
    # Built from a copy: setuptools leaves build/ and *.egg-info next to the sources it builds.
    source = shutil.copytree(REPOSITORY_DIR / "clients" / "python", tmp_path / "source")
    target = tmp_path / "installed"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(source)], check=True, capture_output=True)
    # Only the installed package on the path (its dependencies come from this interpreter's site-packages).
    env = {**os.environ, "PYTHONPATH": str(target), "XDG_CONFIG_HOME": str(tmp_path / "config")}

    def fma_command(*args):
        return subprocess.run([target / "bin" / "fma", *args], env=env, capture_output=True, text=True, timeout=60)

    logged_out = fma_command("models", "list")
    assert (logged_out.returncode, logged_out.stderr) == (1, "Error: Not logged in: run `fma login` first.\n")
    assert fma_command("login", "--url", server.url, "--username", "admin", "--password", PASSWORD).returncode == 0
    listed = fma_command("models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    metadata = (next(target.glob("fma_client-*.dist-info")) / "METADATA").read_text()
    assert "Provides-Extra: cli" in metadata


def test_typed_results_of_the_sdk_become_rows():
    """``DeveloperClient`` answering dataclasses instead of dicts changes nothing the commands print."""

    @dataclasses.dataclass
    class Aggregate:
        id: int
        created_on: datetime

    typed = as_row(Aggregate(3, datetime(2027, 1, 2, 3, 4, 5, 678, tzinfo=UTC)))

    assert typed == {"id": 3, "created_on": datetime(2027, 1, 2, 3, 4, 5, 678, tzinfo=UTC)}
    assert output.moment("created_on")(typed) == output.moment("created_on")({"created_on": "2027-01-02T03:04:05Z"})
    assert output.moment("created_on")(typed) == "2027-01-02 03:04:05 UTC"
    with pytest.raises(TypeError, match="not a row"):
        as_row([1, 2])
