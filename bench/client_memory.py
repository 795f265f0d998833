"""Benchmark: the client's peak memory while it uploads and downloads large weights through the local server.

For each model size (default 200 MB and 2 GB of float32 in 10 tensors) a fresh child process, one per way of
sending, does one upload (``DeveloperClient.create_model(initial_model=...)``, the upload flow) and one
download (a ``WebClient`` of the model fetching its latest weights) against the real local server:

- ``baseline``: the client as it was at ``--baseline`` (a commit of this repository, checked out to a
  temporary folder), weights in memory: the payload built, hashed and downloaded whole in memory;
- ``arrays``: today's client, the same calls with the same arrays in memory (through a temporary file);
- ``files``: today's client from a safetensors file to a safetensors file (``initial_model=Path``,
  ``download_latest_model(path)``): the model is never in the client's memory.

Each child reports its resident set size after its imports (``idle``), and the peak (``VmHWM``, reset
through ``/proc/self/clear_refs`` before each stage) while it holds the model (``arrays``), uploads and
downloads. The table gives each peak above ``idle`` as a fraction of the model's size and of the baseline's.
Timings are reported, never asserted. Usage::

    python bench/client_memory.py                               # 200 MB and 2 GB (needs ~10 GB of disk)
    python bench/client_memory.py --sizes 200e6 --json rows.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
CLIENT = REPOSITORY / "clients" / "python"
for folder in (REPOSITORY, REPOSITORY / "api_service"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

# The client before its transfers streamed from and to files.
DEFAULT_BASELINE = "46d3336"
DEFAULT_SIZES = "200e6,2e9"
TENSORS = 10
PASSWORD = "bench-client-memory-password"
MB = 1e6
MODES = ("baseline", "arrays", "files")


def _tensor(parameters: int, index: int) -> np.ndarray:
    count = parameters // TENSORS + (1 if index < parameters % TENSORS else 0)
    return np.random.default_rng(index).standard_normal(count, dtype=np.float32)


def _rss(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> None:
    # "5" resets the peak resident set size (VmHWM) to the current one (Linux >= 4.0, proc(5)).
    Path("/proc/self/clear_refs").write_text("5")


def child(mode: str, url: str, token: str, parameters: int, scratch: Path) -> dict[str, Any]:
    """One upload and one download in this process; the peaks of each stage (run as ``--child``)."""
    from fma_client import DeveloperClient, WebClient

    report: dict[str, Any] = {"idle": _rss("VmRSS")}
    developer = DeveloperClient(url, token=token, progress=False)
    _reset_peak()
    if mode == "files":
        initial: Any = scratch / "model.safetensors"
    else:
        initial = {f"layers.{index}.weight": _tensor(parameters, index) for index in range(TENSORS)}
    report["arrays"] = _rss("VmHWM")

    _reset_peak()
    started = time.perf_counter()
    model = developer.create_model(f"memory-{mode}-{parameters}", initial_model=initial)
    report["upload"], report["upload_s"] = _rss("VmHWM"), time.perf_counter() - started

    # The baseline (an older fma_client) answers dicts; the current DeveloperClient typed records.
    model_id = model["id"] if isinstance(model, dict) else model.id
    client = WebClient(model_id, url=url, progress=False)
    client.register()
    del initial
    _reset_peak()
    started = time.perf_counter()
    if mode == "files":
        target = scratch / f"downloaded-{mode}.safetensors"
        client.download_latest_model(target)
        checked = target.stat().st_size > parameters * 4
        target.unlink()
    else:
        values = client.check_for_latest_model()["values"]
        checked = sum(array.size for array in values.values()) == parameters
    report["download"], report["download_s"] = _rss("VmHWM"), time.perf_counter() - started
    report["complete"] = checked
    developer.delete_model(model_id)
    return report


def _baseline_client(commit: str, folder: Path) -> Path:
    """``clients/python`` of ``commit``, extracted to ``folder`` (its ``fma_client`` package)."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", commit, "clients/python/fma_client"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder / "clients" / "python"


def _write_model(parameters: int, path: Path) -> None:
    from fma_core.serialization import Structure, TensorSpec
    from fma_core.tensors import write_safetensors

    class Generated:
        """The benchmark's model, made tensor by tensor while it is written (the ``TensorSource`` protocol)."""

        structure = Structure(
            tensors=tuple(
                TensorSpec(name=f"layers.{index}.weight", shape=(_tensor(parameters, index).size,), dtype="float32")
                for index in range(TENSORS)
            )
        )

        def tensor(self, index: int) -> np.ndarray:
            return _tensor(parameters, index)

    with path.open("wb") as file:
        write_safetensors(Generated(), file)


def run(*, sizes: list[int], baseline: str, scratch: Path) -> list[dict[str, Any]]:
    # Only here: a child takes the client its PYTHONPATH names (today's, or the baseline's).
    sys.path.insert(0, str(CLIENT))
    from fma_client import DeveloperClient
    from tests.servers import RunningServer

    old_client = _baseline_client(baseline, scratch)
    server = RunningServer(
        scratch / "server", admin_password=PASSWORD, env={"FMA_AGGREGATION_TRIGGER": "none"}
    ).wait_ready()
    rows: list[dict[str, Any]] = []
    try:
        token = DeveloperClient(server.url, progress=False).login("admin", PASSWORD)
        for size in sizes:
            parameters = size // 4
            _write_model(parameters, scratch / "model.safetensors")
            for mode in MODES:
                client_path = old_client if mode == "baseline" else CLIENT
                command = [sys.executable, __file__, "--child", mode, "--url", server.url, "--token", token]
                command += ["--parameters", str(parameters), "--scratch", str(scratch)]
                done = subprocess.run(command, check=True, capture_output=True, text=True, env=_child_env(client_path))
                rows.append({"mode": mode, "model_bytes": parameters * 4, **json.loads(done.stdout)})
                print(_line(rows[-1], rows), file=sys.stderr, flush=True)
            (scratch / "model.safetensors").unlink()
    finally:
        server.stop()
    return rows


def _child_env(client_path: Path) -> dict[str, str]:
    paths = [str(client_path), str(REPOSITORY), str(REPOSITORY / "api_service")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _line(row: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    return f"{row['model_bytes'] / MB:.0f} MB {row['mode']}: " + ", ".join(
        f"{stage} {(row[stage] - row['idle']) / MB:.0f} MB" for stage in ("arrays", "upload", "download")
    )


def table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table: per size and way, each stage's peak above idle, / model size, / the baseline's."""
    lines = [
        "| model | client | idle RSS | holding arrays | upload peak | / model | / baseline | upload s "
        "| download peak | / model | / baseline | download s |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        size = row["model_bytes"]
        base = next(other for other in rows if other["mode"] == "baseline" and other["model_bytes"] == size)
        cells = [f"{size / MB:,.0f} MB", row["mode"], f"{row['idle'] / MB:.0f} MB"]
        cells.append(f"{(row['arrays'] - row['idle']) / MB:,.0f} MB")
        for stage in ("upload", "download"):
            above = row[stage] - row["idle"]
            cells += [f"{above / MB:,.0f} MB", f"{above / size:.2f}", f"{above / (base[stage] - base['idle']):.2f}"]
            cells.append(f"{row[stage + '_s']:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="model sizes in bytes, comma-separated")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit of the client to compare with")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    parser.add_argument("--parameters", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.url, args.token, args.parameters, args.scratch)))
        return 0
    sizes = [int(float(size)) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="fma-client-memory-") as scratch:
        rows = run(sizes=sizes, baseline=args.baseline, scratch=Path(scratch))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(row["complete"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
