"""Every wheel the repository builds installs into a clean virtualenv, its dependencies from the index, and imports.

A dependency imported but not declared passes every other test (the repository's own virtualenv has it) and
fails only for whoever installs the wheel: each wheel is built from a copy of its sources, installed with pip
into a new virtualenv, and every one of its modules imported there by an isolated interpreter (``-I``: neither
the repository nor its virtualenv is on the path). The dependencies are downloaded into ``build/wheelhouse/``
and installed from there: pip's own cache keeps nothing that an index answers with ``no-store``, and a folder
of wheels lets a second run skip the downloads (``pip download`` keeps the files it finds there).
"""

import json
import os
import shutil
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.deploy.support import REPOSITORY

pytestmark = pytest.mark.integration

WHEELHOUSE = REPOSITORY / "build" / "wheelhouse"
# Each wheel: the folders its build reads (copied, so the build leaves nothing in the checkout), the one holding
# its pyproject.toml, the packages it ships, the extras installed with it, and the modules left unimported.
# fma_client's pytorch and keras modules need those frameworks (about 1 GB): tests/clients/test_frameworks.py
# imports and runs them in their own virtualenv.
WHEELS = {
    "fma_django_connectors": (("fma_django_connectors", "fma_core"), "fma_django_connectors", ("fma_core",), "", ()),
    "fma_client": (("clients/python",), "clients/python", (), "[cli]", ("fma_client.pytorch", "fma_client.keras")),
}
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "build", "*.egg-info")

# Imports every module of the packages named on the command line; prints their names. For the Django package,
# first ``django.setup()`` with the least a project gives it, and its migrations applied to a new SQLite file.
IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
packages, database, skipped = sys.argv[1].split(","), sys.argv[2], set(sys.argv[3].split(","))
if "fma_django_connectors" in packages:
    import django
    from django.conf import settings
    settings.configure(
        SECRET_KEY="wheel-test",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
            "django.contrib.messages", "rest_framework", "rest_framework.authtoken", "django_filters",
            "drf_spectacular", "fma_django_connectors", "fma_django_connectors.dashboard",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"},
    )
    django.setup()
    from django.core.management import call_command
    call_command("migrate", verbosity=0)
imported = []
for name in packages:
    package = importlib.import_module(name)
    imported.append(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        # A __main__ module runs its program when imported (python -m).
        if module.name in skipped or module.name.endswith(".__main__"):
            continue
        importlib.import_module(module.name)
        imported.append(module.name)
print(json.dumps(imported))
"""


# Without PYTHONPATH (the Makefile points it at the checkout): pip would take the checkout's packages, which the
# target interpreter then sees, for the wheel already installed, and install nothing.
CLEAN_ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}


def _run(*args, cwd=None, timeout=300):
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=CLEAN_ENVIRONMENT
    )
    assert result.returncode == 0, f"{' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _source_modules(package_dir):
    """Dotted names of every module in a package folder of the checkout."""
    names = []
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir).with_suffix("")
        if "build" in relative.parts:
            continue
        if relative.name == "__main__":
            continue
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        names.append(".".join((package_dir.name, *parts)))
    return names


def _build_install_import(name, tmp_path):
    """Build wheel ``name`` from a copy of its sources, install it into a new virtualenv, import it all there."""
    folders, project, extra_packages, extras, skipped = WHEELS[name]
    sources = tmp_path / "sources"
    for folder in folders:
        shutil.copytree(REPOSITORY / folder, sources / folder, ignore=COPY_IGNORE)
    # The repository's pip and setuptools build the wheel (no isolated build environment to download each time)
    # and install into the new virtualenv (``--python``), which so needs no pip of its own.
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet")
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", tmp_path / "dist", sources / project)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    # A folder per wheel: the two are installed at once, and must not write the same file together.
    wheelhouse = WHEELHOUSE / name
    requirement = f"{wheel}{extras}"
    install = (
        *pip,
        "--python",
        python,
        "install",
        "--no-compile",
        "--no-index",
        "--find-links",
        wheelhouse,
        requirement,
    )
    if subprocess.run(install, capture_output=True, timeout=300, check=False, env=CLEAN_ENVIRONMENT).returncode != 0:
        # A dependency not downloaded yet: fetch what the wheel needs (pip keeps the files already there).
        _run(*pip, "--python", python, "download", "--dest", wheelhouse, requirement)
        _run(*install)
    packages = ",".join((name, *extra_packages))
    # From an empty folder, isolated: only what the virtualenv holds can be imported.
    imported = _run(
        python, "-I", "-c", IMPORT_EVERYTHING, packages, tmp_path / "db.sqlite3", ",".join(skipped), cwd=tmp_path
    )
    return wheel.name, json.loads(imported)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Wheel name → (file name of the wheel, modules imported from it in its clean virtualenv)."""
    with ThreadPoolExecutor(max_workers=len(WHEELS)) as pool:
        futures = {name: pool.submit(_build_install_import, name, tmp_path_factory.mktemp(name)) for name in WHEELS}
        return {name: future.result() for name, future in futures.items()}


def test_the_django_package_sets_up_migrates_and_imports_every_module(installed):
    wheel, imported = installed["fma_django_connectors"]

    assert wheel.startswith("fma_django_connectors-")
    expected = _source_modules(REPOSITORY / "fma_django_connectors") + _source_modules(REPOSITORY / "fma_core")
    assert sorted(imported) == sorted(expected)


def test_the_python_client_imports_every_module(installed):
    wheel, imported = installed["fma_client"]

    assert wheel.startswith("fma_client-")
    skipped = set(WHEELS["fma_client"][4])
    expected = [
        name for name in _source_modules(REPOSITORY / "clients" / "python" / "fma_client") if name not in skipped
    ]
    assert sorted(imported) == sorted(expected)
