"""Cold start of the built Lambda artifact: import of the API handler plus its first request.

Each run is a fresh Python of the Lambda runtime's version started as Lambda starts one: isolated
(``-I``: no environment variables of Python's, no user site, not the script's folder) with only the
unpacked artifact on ``sys.path`` besides the standard library, and ``-B`` because ``/var/task`` is
read-only (a ``.pyc`` compiled at import is never saved for the next cold start). The zip is unpacked
with ``unzip``, which keeps file times as a Lambda deployment does (to 2 s).

The function runs ``settings_local`` (SQLite in a temporary folder, migrated once before the runs) so
that no network is involved; the first request is ``GET /api/v1/models/`` without credentials (URL
routing, middleware, DRF authentication), answered 401.

    python bench/cold_start.py artifacts/fma-lambda.zip            # median of 5 runs
    python bench/cold_start.py build/lambda --runs 9 --json out.json

Prints the zipped and unzipped sizes and, per run and as medians: the import time, the first
request's time, and the wall time of the whole process (interpreter start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY))

from tests.events import make_v2_event  # noqa: E402

RUNTIME_VERSION = "3.12"

_CHILD = """
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import service_initialization
imported = time.perf_counter()
answer = service_initialization.handler(json.loads(sys.argv[2]), None)
answered = time.perf_counter()
print(json.dumps({"import_s": imported - started, "first_request_s": answered - imported,
                  "status": answer["statusCode"]}))
"""
_MIGRATE = """
import json, sys
sys.path.insert(0, sys.argv[1])
import service_initialization
print(json.dumps(service_initialization.handler({"detail": "update_metadata_db"}, None)["statusCode"]))
"""


def runtime_python() -> str:
    """The first working python3.12: pyenv's, then the PATH's (pyenv's shims may refuse to run)."""
    name = f"python{RUNTIME_VERSION}"
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [*sorted(pyenv_root.glob(f"versions/{RUNTIME_VERSION}.*/bin/{name}")), shutil.which(name)]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "pass"], capture_output=True, check=False).returncode == 0:
            return str(candidate)
    raise SystemExit(f"{name} (the Lambda runtime's Python) is not installed")


def folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _run(python: str, code: str, *args: str, environment: dict[str, str]) -> tuple[dict | int, float]:
    import time

    started = time.perf_counter()
    result = subprocess.run(
        [python, "-I", "-B", "-c", code, *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"the artifact failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1]), wall


def measure(artifact: Path, runs: int, python: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="fma-cold-start-") as scratch:
        scratch_path = Path(scratch)
        if artifact.is_dir():
            folder, zipped = artifact, None
        else:
            folder, zipped = scratch_path / "task", artifact.stat().st_size
            subprocess.run(["unzip", "-q", str(artifact), "-d", str(folder)], check=True)
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_local",
            "FMA_LOCAL_DATA_DIR": str(scratch_path / "data"),
            "AWS_LAMBDA_FUNCTION_NAME": "fma-api",
        }
        status, _ = _run(python, _MIGRATE, str(folder), environment=environment)
        assert status == 200, status
        event = json.dumps(make_v2_event(method="GET", path="/api/v1/models/"))
        samples = []
        for _ in range(runs):
            child, wall = _run(python, _CHILD, str(folder), event, environment=environment)
            samples.append(child | {"process_s": wall})
        return {
            "artifact": str(artifact),
            "zipped_bytes": zipped,
            "unzipped_bytes": folder_size(folder),
            "python": python,
            "runs": samples,
            "median": {
                key: statistics.median(sample[key] for sample in samples)
                for key in ("import_s", "first_request_s", "process_s")
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("artifact", type=Path, nargs="?", default=REPOSITORY / "artifacts" / "fma-lambda.zip")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    options = parser.parse_args()
    result = measure(options.artifact.resolve(), options.runs, runtime_python())
    mib = 1024 * 1024
    if result["zipped_bytes"] is not None:
        print(f"zipped:   {result['zipped_bytes'] / mib:6.1f} MiB ({result['zipped_bytes']:,} bytes)")
    print(f"unzipped: {result['unzipped_bytes'] / mib:6.1f} MiB")
    print(f"{'run':>4} {'import (s)':>11} {'1st request (s)':>16} {'process (s)':>12} status")
    for index, sample in enumerate(result["runs"], 1):
        print(
            f"{index:>4} {sample['import_s']:>11.3f} {sample['first_request_s']:>16.3f} "
            f"{sample['process_s']:>12.3f} {sample['status']}"
        )
    median = result["median"]
    print(f"{'med':>4} {median['import_s']:>11.3f} {median['first_request_s']:>16.3f} {median['process_s']:>12.3f}")
    if options.json:
        options.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
