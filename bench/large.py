"""Benchmark: weights of real model sizes through the local server, from a fresh start.

N clients (default 3) each upload a P-parameter float32 update as safetensors through the upload flow
(``POST /api/v1/uploads/`` → ``PUT`` → ``complete``), the aggregate is made (``manage.py run_aggregator``
in its own process, so that its peak memory is its own), and a client downloads it as safetensors (a
``303`` to the server's signed URL) and checks it equals the mean. Next to it, in the same run, a
1M-parameter update goes in and out as JSON and as safetensors.

Reported per stage: wall time, MB/s, the peak RSS of the server process (reset before each stage through
``/proc/<pid>/clear_refs``) and of the aggregation. The bars of the issue are printed as PASS/FAIL: the
server's peak RSS stays under 1 GiB during uploads and downloads; the aggregation's stays within
``AGGREGATOR_SETTINGS["memory_budget_bytes"]``. Timings are reported, never asserted. Usage::

    python bench/large.py                          # 3 clients x 10M parameters (~40 MB each)
    python bench/large.py --parameters 100000000   # the issue's figure: 3 x 100M (~400 MB each)
    python bench/large.py --clients 10 --parameters 100000000 --json rows.json
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import http.client
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
for folder in (REPOSITORY, REPOSITORY / "api_service"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from fma_core.serialization import Structure, TensorSpec  # noqa: E402
from fma_core.settings import AGGREGATOR_DEFAULTS  # noqa: E402
from fma_core.tensors import FileRangeReader, parse_safetensors, write_safetensors  # noqa: E402
from tests.servers import RunningServer, server_environment  # noqa: E402

DEFAULT_PARAMETERS = 10_000_000
DEFAULT_CLIENTS = 3
TENSORS = 10
DEFAULT_JSON_PARAMETERS = 1_000_000
SERVER_RSS_BAR = 1024**3
PASSWORD = "bench-large-admin-password"
_BLOCK = 1024 * 1024
MB = 1e6


@dataclass(frozen=True)
class Generated:
    """A client's update, regenerated tensor by tensor on demand (the ``TensorSource`` protocol)."""

    parameters: int
    seed: int

    @property
    def structure(self) -> Structure:
        size, extra = divmod(self.parameters, TENSORS)
        sizes = [size + (1 if index < extra else 0) for index in range(TENSORS)]
        return Structure(
            tensors=tuple(
                TensorSpec(name=f"layers.{index}.weight", shape=(count,), dtype="float32")
                for index, count in enumerate(sizes)
                if count
            )
        )

    def tensor(self, index: int) -> np.ndarray:
        count = self.structure.tensors[index].shape[0]
        return np.random.default_rng((self.seed, index)).standard_normal(count, dtype=np.float32)


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def _reset_peak_rss(pid: int) -> None:
    # "5" resets the peak resident set size (VmHWM) to the current one (Linux >= 4.0, proc(5)).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class Http:
    """Plain HTTP to the server (and to the URLs it hands out), as a client's code would do it."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base.rstrip("/")
        self.headers = headers

    def send(self, method: str, url: str, *, body: Any = None, headers: dict[str, str] | None = None, sink=None):
        parts = urlsplit(url if "://" in url else self.base + url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=3600, blocksize=_BLOCK)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            connection.request(method, target, body=body, headers={**self.headers, **(headers or {})})
            response = connection.getresponse()
            if sink is None:
                return response.status, response.headers, response.read()
            while chunk := response.read(_BLOCK):
                sink.write(chunk)
            return response.status, response.headers, b""
        finally:
            connection.close()

    def json(self, method: str, path: str, body: Any = None, *, expect: int) -> Any:
        data = None if body is None else json.dumps(body).encode()
        status, _, answer = self.send(method, path, body=data, headers={"Content-Type": "application/json"})
        if status != expect:
            raise RuntimeError(f"{method} {path}: {status} {answer[:500]!r}")
        return json.loads(answer)


def _upload(api: Http, model_id: int, path: Path, fmt: str) -> tuple[dict[str, Any], float, float]:
    """The upload flow for the file at ``path``; returns the completion's body and the PUT and complete times."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_BLOCK):
            digest.update(chunk)
    fields = {"federated_model": model_id, "format": fmt, "size": size, "sha256": digest.hexdigest()}
    target = api.json("POST", "/api/v1/uploads/", fields, expect=201)
    started = time.perf_counter()
    with path.open("rb") as stream:
        status, _, answer = api.send("PUT", target["upload_url"], body=stream, headers=target["headers"])
    put_seconds = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"PUT: {status} {answer[:500]!r}")
    started = time.perf_counter()
    body = api.json("POST", f"/api/v1/uploads/{target['id']}/complete/", expect=201)
    return body, put_seconds, time.perf_counter() - started


def _download(api: Http, path: str, destination: Path) -> tuple[int, float]:
    """GET ``path`` (following a 303 to its signed URL) into ``destination``; returns the status and seconds."""
    started = time.perf_counter()
    status, headers, answer = api.send("GET", path)
    if status == 303:
        with destination.open("wb") as sink:
            status, _, _ = api.send("GET", headers["Location"], sink=sink)
    else:
        destination.write_bytes(answer)
    return status, time.perf_counter() - started


def _aggregate(data_dir: Path, model_id: int) -> tuple[float, int]:
    """``run_aggregator --once`` in its own process; returns its wall time and peak RSS."""
    code = (
        "import time, django; django.setup();"
        "from django.core.management import call_command;"
        "started = time.perf_counter();"
        f"call_command('run_aggregator', '--once', '--model', '{model_id}');"
        "seconds = time.perf_counter() - started;"
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1];"
        "print('BENCH', seconds, int(peak) * 1024)"
    )
    env = server_environment(data_dir, DJANGO_SETTINGS_MODULE="federated_learning_project.settings_local")
    completed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=REPOSITORY
    )
    if "new aggregate" not in completed.stdout:
        raise RuntimeError(f"no aggregate was made:\n{completed.stdout}\n{completed.stderr}")
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH"))
    _, seconds, peak = line.split()
    return float(seconds), int(peak)


def run(*, parameters: int, clients: int, json_parameters: int, scratch: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(stage: str, seconds: float, size: int | None = None, **extra: Any) -> None:
        rate = None if size is None or seconds == 0 else size / MB / seconds
        rows.append(
            {"stage": stage, "seconds": seconds, "MB": None if size is None else size / MB, "MB/s": rate, **extra}
        )

    data_dir = scratch / "server"
    server = RunningServer(data_dir, admin_password=PASSWORD, env={"FMA_AGGREGATION_TRIGGER": "none"}).wait_ready()
    try:
        pid = server.process.pid
        basic = "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
        developer = Http(server.url, {"Authorization": basic})
        model = developer.json(
            "POST",
            "/api/v1/models/",
            {"name": "large", "aggregator": "avg_values_if_data", "allow_aggregation": True},
            expect=201,
        )
        sources = [Generated(parameters, seed) for seed in range(clients)]
        apis = []
        for _ in sources:
            uuid = developer.json("POST", f"/api/v1/models/{model['id']}/register_client/", expect=200)["uuid"]
            apis.append(Http(server.url, {"CLIENT-UUID": uuid}))

        _reset_peak_rss(pid)
        for index, (api, source) in enumerate(zip(apis, sources, strict=True)):
            path = scratch / f"update-{index}.safetensors"
            with path.open("wb") as stream:
                write_safetensors(source, stream)
            size = path.stat().st_size
            _, put_seconds, complete_seconds = _upload(api, model["id"], path, "safetensors")
            row(f"client {index}: PUT {parameters:,} float32 as safetensors", put_seconds, size)
            row(f"client {index}: complete (digest, checks, store)", complete_seconds, size)
            path.unlink()
        upload_peak = _peak_rss(pid)
        row("server peak RSS during uploads", 0.0, server_rss=upload_peak, bar=upload_peak < SERVER_RSS_BAR)

        seconds, aggregation_peak = _aggregate(data_dir, model["id"])
        # The server runs with the embedded default's settings, which keep the core's budget.
        budget = AGGREGATOR_DEFAULTS["memory_budget_bytes"]
        row(
            f"aggregate {clients} x {parameters:,} (run_aggregator)",
            seconds,
            clients * parameters * 4,
            aggregation_rss=aggregation_peak,
            budget=budget,
            bar=aggregation_peak <= budget,
        )

        _reset_peak_rss(pid)
        destination = scratch / "aggregate.safetensors"
        status, seconds = _download(
            apis[0], f"/api/v1/models/{model['id']}/get_latest_aggregate/?format=safetensors", destination
        )
        download_peak = _peak_rss(pid)
        row(
            "download the aggregate as safetensors (303 + GET)",
            seconds,
            destination.stat().st_size,
            status=status,
            server_rss=download_peak,
            bar=download_peak < SERVER_RSS_BAR,
        )
        downloaded = parse_safetensors(FileRangeReader(destination))
        largest = 0.0
        for index in range(len(sources[0].structure.tensors)):
            expected = np.mean([source.tensor(index).astype(np.float64) for source in sources], axis=0)
            largest = max(largest, float(np.max(np.abs(downloaded.tensor(index) - expected))))
        row(
            f"aggregate equals the mean (largest difference {largest:.1e})", 0.0, difference=largest, bar=largest < 1e-5
        )
        destination.unlink()

        rows.extend(_json_next_to_safetensors(developer, apis[0], scratch, parameters=json_parameters))
    finally:
        server.stop()
    return rows


def _json_next_to_safetensors(developer: Http, client: Http, scratch: Path, *, parameters: int) -> list[dict[str, Any]]:
    """POST + GET of an update (1M parameters by default) as JSON and as safetensors, on a model of its own."""
    label = f"{parameters:,} float64"
    rows = []
    model = developer.json(
        "POST", "/api/v1/models/", {"name": "json-next-to-safetensors", "aggregator": "avg_values_if_data"}, expect=201
    )
    # With its CLIENT-UUID, registering registers that client.
    client.json("POST", f"/api/v1/models/{model['id']}/register_client/", expect=200)
    values = np.random.default_rng(7).standard_normal(parameters)
    document = json.dumps(values.tolist()).encode()

    started = time.perf_counter()
    body = json.dumps({"federated_model": model["id"], "data": values.tolist()}).encode()
    status, _, _ = client.send(
        "POST", "/api/v1/model_updates/", body=body, headers={"Content-Type": "application/json"}
    )
    rows.append(
        {
            "stage": f"{label}: POST /api/v1/model_updates/ as JSON",
            "seconds": time.perf_counter() - started,
            "MB": len(body) / MB,
            "MB/s": None,
            "status": status,
        }
    )
    for fmt, data in (("json", document), ("safetensors", None)):
        path = scratch / f"json-path.{fmt}"
        if data is None:
            with path.open("wb") as stream:
                write_safetensors(_Single(values.astype(np.float64)), stream)
        else:
            path.write_bytes(data)
        started = time.perf_counter()
        update, _, _ = _upload(client, model["id"], path, fmt)
        seconds = time.perf_counter() - started
        rows.append(
            {
                "stage": f"{label}: upload flow as {fmt}",
                "seconds": seconds,
                "MB": path.stat().st_size / MB,
                "MB/s": path.stat().st_size / MB / seconds,
            }
        )
        destination = scratch / f"json-path-out.{fmt}"
        status, seconds = _download(client, f"/api/v1/model_updates/{update['id']}/data/?format={fmt}", destination)
        size = destination.stat().st_size
        rows.append(
            {
                "stage": f"{label}: GET data as {fmt}",
                "seconds": seconds,
                "MB": size / MB,
                "MB/s": size / MB / seconds,
                "status": status,
            }
        )
        path.unlink()
        destination.unlink()
    return rows


@dataclass(frozen=True)
class _Single:
    values: np.ndarray

    @property
    def structure(self) -> Structure:
        return Structure(
            tensors=(TensorSpec(name="0", shape=self.values.shape, dtype=self.values.dtype.name),), layered=False
        )

    def tensor(self, index: int) -> np.ndarray:
        return self.values


def _table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any, digits: int = 2) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "PASS" if value else "FAIL"
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value)

    lines = [
        "| stage | time (s) | MB | MB/s | server peak RSS (MiB) | aggregation peak RSS (MiB) | status | bar |",
        "|:---|---:|---:|---:|---:|---:|---:|:---|",
    ]
    for row in rows:
        server = row.get("server_rss")
        aggregation = row.get("aggregation_rss")
        lines.append(
            f"| {row['stage']} | {cell(row['seconds'], 3)} | {cell(row['MB'], 1)} | {cell(row['MB/s'], 1)} | "
            f"{'' if server is None else server // 2**20} | {'' if aggregation is None else aggregation // 2**20} | "
            f"{cell(row.get('status'))} | {cell(row.get('bar'))} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parameters", type=float, default=DEFAULT_PARAMETERS, help="parameters per update")
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS, help="updates to aggregate")
    parser.add_argument(
        "--json-parameters",
        type=float,
        default=DEFAULT_JSON_PARAMETERS,
        help="parameters of the update sent as JSON and as safetensors",
    )
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fma-bench-large-") as scratch:
        rows = run(
            parameters=int(arguments.parameters),
            clients=arguments.clients,
            json_parameters=int(arguments.json_parameters),
            scratch=Path(scratch),
        )
    print(_table(rows))
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
