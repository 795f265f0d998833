"""The Lambda artifact as SAM builds it (`make build-ApiFunction`), run by the runtime's Python."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.deploy.support import REMOTE_VARIABLES, REPOSITORY, SAMPLE_ENVIRONMENT, SECRET_VALUES
from tests.events import make_v2_event

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
    python = runtime_python()
    directory = tmp_path_factory.mktemp("artifact")
    build = subprocess.run(
        ["make", "-C", str(REPOSITORY), "build-ApiFunction", f"ARTIFACTS_DIR={directory}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return python, directory


@pytest.mark.integration
def test_the_artifact_carries_wheels_for_the_runtime(artifact):
    _, directory = artifact
    tag = f"cpython-{RUNTIME_PYTHON_VERSION.replace('.', '')}-x86_64-linux-gnu"
    assert list((directory / "numpy" / "_core").glob(f"_multiarray_umath.{tag}.so"))
    assert list((directory / "psycopg2").glob(f"_psycopg.{tag}.so"))
    assert (directory / "service_initialization.py").is_file()
    assert (directory / "fma_django_connectors" / "migrations" / "0001_initial.py").is_file()


def run_handler(artifact, workdir, events, environment):
    """The API handler's answers to ``events``, in a fresh runtime interpreter with ``environment``."""
    python, directory = artifact
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
    _, directory = artifact
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
