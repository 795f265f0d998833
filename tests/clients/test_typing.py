"""Type checkers see ``fma_client``'s hints once it is installed (PEP 561: the package ships ``py.typed``)."""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SNIPPET = """
from fma_client import DeveloperClient, WebClient

developer = DeveloperClient("http://127.0.0.1:8000/", token="t")
reveal_type(developer.get_model(1))
reveal_type(developer.list_updates(1)[0].status)
reveal_type(WebClient(1).wait_for_aggregate(timeout=1.0))
developer.publish(1, version=2)
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A virtualenv holding ``fma_client`` installed as a user installs it (a copy of the source: no build files
    left in the repository), without its dependencies: the hints are what is looked at."""
    root = tmp_path_factory.mktemp("typing")
    source = shutil.copytree(
        REPOSITORY / "clients" / "python", root / "source", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    pip = [sys.executable, "-m", "pip", "--quiet"]
    # The wheel is built here (setuptools is at hand), then installed as a user's pip installs it.
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", root / "dist", source], check=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", root / "venv"], check=True)
    python = root / "venv" / "bin" / "python"
    [wheel] = (root / "dist").glob("fma_client-*.whl")
    subprocess.run([*pip, "--python", python, "install", "--no-deps", wheel], check=True)
    return python


def test_mypy_reads_the_installed_packages_hints(installed, tmp_path):
    (tmp_path / "snippet.py").write_text(textwrap.dedent(SNIPPET))
    (tmp_path / "mypy.ini").write_text("[mypy]\n")
    # Without PYTHONPATH: the package must come from the virtualenv's site-packages, not from the repository.
    env = {name: value for name, value in os.environ.items() if name not in {"PYTHONPATH", "MYPYPATH"}}

    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--python-executable", installed, "--no-incremental", "snippet.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )

    said = checked.stdout
    assert 'Revealed type is "fma_client.results.Model"' in said, said
    assert 'Revealed type is "fma_client.results.UpdateStatus"' in said, said
    assert 'Revealed type is "dict[Any, Any]"' in said, said
    assert 'Argument "version" to "publish" of "DeveloperClient" has incompatible type "int"' in said, said
    assert checked.returncode == 1
