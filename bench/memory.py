"""Benchmark: peak memory of aggregation against ``AGGREGATOR_SETTINGS["memory_budget_bytes"]``.

The script writes N float32 updates of L layers as ``.safetensors`` files (as the service stores them), then
aggregates them in a fresh Python process per case, reading tensors lazily from the files as the service does,
with each memory budget. Per case it reports:

* ``arrays peak``: the high-water mark of memory allocated while aggregating, from ``tracemalloc`` (numpy
  reports its arrays to it): what the budget bounds, plus the result in the model's dtype;
* ``RSS growth``: the process's peak RSS (``VmHWM``) less its RSS just before aggregating (interpreter, numpy,
  imports): what the operating system saw, including the page cache of the files read through the process.

Timings and memory are reported, never asserted here. A full run takes well under a minute::

    python bench/memory.py                          # 16 layers x 250k (4M parameters), N in {5, 20}
    python bench/memory.py --layers 10 --layer-size 1e6 --counts 8 --budgets 64e6,256e6 --aggregators fed_avg
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

# Run as a plain script from anywhere: the repository root holds fma_core.
REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from fma_core.algorithms import call_aggregator  # noqa: E402
from fma_core.serialization import Weights  # noqa: E402
from fma_core.tensors import FileRangeReader, SafetensorsTensors, encode_safetensors  # noqa: E402
from fma_core.types import AggregationContext, ClientUpdate, InMemoryUpdates  # noqa: E402

MIB = 1024 * 1024
ARGS: dict[str, dict[str, Any]] = {"multi_krum": {"f": 1}, "krum": {"f": 1}}


class FileUpdates:
    """An ``UpdateStream`` of ``.safetensors`` files, each opened when reached and read a tensor at a time."""

    def __init__(self, paths: list[Path]) -> None:
        self._paths = paths

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self):
        for path in self._paths:
            yield ClientUpdate(weights=SafetensorsTensors(FileRangeReader(path)))


def _rss_mib(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def run_case(directory: Path, count: int, name: str, budget: int) -> dict[str, float]:
    """Aggregate the first ``count`` updates in this process; seconds, arrays peak and RSS growth in MiB."""
    paths = [directory / f"{index}.safetensors" for index in range(count)]
    # Once on a tiny input first, so that what numpy and the registry set up on first use is not counted.
    tiny = InMemoryUpdates([ClientUpdate(weights=Weights((np.full(2, float(i)),), layered=True)) for i in range(5)])
    call_aggregator(name, tiny, AggregationContext(), ARGS.get(name))
    before = _rss_mib("VmRSS:")
    tracemalloc.start()
    started = time.perf_counter()
    result = call_aggregator(name, FileUpdates(paths), AggregationContext(memory_budget_bytes=budget), ARGS.get(name))
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "seconds": seconds,
        "arrays_peak_mib": peak / MIB,
        "rss_growth_mib": _rss_mib("VmHWM:") - before,
        "result_mib": sum(layer.nbytes for layer in result.weights.layers) / MIB,
    }


def _numbers(text: str) -> list[int]:
    return [int(float(item)) for item in text.split(",")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--layer-size", type=lambda text: int(float(text)), default=250_000)
    parser.add_argument("--counts", type=_numbers, default=[5, 20], help="numbers of updates (at least 5), e.g. 5,20")
    parser.add_argument("--budgets", type=_numbers, default=[64 * MIB, 256 * MIB], help="bytes, e.g. 64e6,256e6")
    parser.add_argument("--aggregators", default="fed_avg,fed_median,multi_krum")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    options = parser.parse_args(argv)

    directory = Path(tempfile.mkdtemp(prefix="fma-bench-memory-"))
    rows = []
    try:
        rng = np.random.default_rng(0)
        for index in range(max(options.counts)):
            layers = tuple(rng.standard_normal(options.layer_size, dtype=np.float32) for _ in range(options.layers))
            (directory / f"{index}.safetensors").write_bytes(encode_safetensors(Weights(layers, layered=True)))
        update_mib = options.layers * options.layer_size * 4 / MIB
        for name in options.aggregators.split(","):
            for budget in options.budgets:
                for count in options.counts:
                    completed = subprocess.run(
                        [sys.executable, __file__, "--child", str(directory), str(count), name, str(budget)],
                        check=True,
                        capture_output=True,
                        text=True,
                    )
                    row = {"case": name, "budget_mib": budget / MIB, "count": count, "update_mib": update_mib}
                    rows.append({**row, **json.loads(completed.stdout)})
                    print(f"{name} budget {budget / MIB:.0f} MiB N={count}: done", file=sys.stderr)
    finally:
        shutil.rmtree(directory)

    print(
        "| case | budget (MiB) | N | updates in all (MiB, float32) | arrays peak (MiB) | result (MiB) | "
        "RSS growth (MiB) | time (s) |"
    )
    print("|:---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['case']} | {row['budget_mib']:.0f} | {row['count']} | {row['count'] * row['update_mib']:.0f} | "
            f"{row['arrays_peak_mib']:.1f} | {row['result_mib']:.1f} | {row['rss_growth_mib']:.1f} | "
            f"{row['seconds']:.2f} |"
        )
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        _, _, folder, count, name, budget = sys.argv
        print(json.dumps(run_case(Path(folder), int(count), name, int(budget))))
    else:
        sys.exit(main())
