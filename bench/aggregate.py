"""Benchmark: every registered aggregator against a naive JSON + numpy baseline, in one run.

For each size (N updates of P parameters) the script writes the updates once as ``.safetensors`` files (the form
the service stores, ``fma_core.tensors.write_safetensors``) and once as JSON documents, then runs each case in
a fresh Python process so that peak RSS is the case's own:

* naive: ``json.load`` every file, stack them, ``np.average`` weighted by ``num_examples``, ``json.dump`` the result;
* each aggregator: stream the ``.safetensors`` files from disk through it (tensors read lazily, as the service
  does), write the result as ``.safetensors``.

Wall time covers loading, aggregating and writing the result (not interpreter start-up); peak RSS is the child
process's high-water mark (``VmHWM``) and so includes the interpreter and numpy (shown as the ``idle`` row). Timings are
reported, never asserted. Usage::

    python bench/aggregate.py                    # N in {10, 50, 100} x P in {100k, 1M}
    python bench/aggregate.py --quick            # N = 10 x P = 100k
    python bench/aggregate.py --sizes 50x1000000 --aggregators fed_avg,avg_values_if_data --repeat 3
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

# Run as a plain script from anywhere: the repository root holds fma_core.
REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from fma_core.algorithms import aggregators, call_aggregator  # noqa: E402
from fma_core.exceptions import ConfigurationError  # noqa: E402
from fma_core.serialization import Weights  # noqa: E402
from fma_core.tensors import FileRangeReader, SafetensorsTensors, encode_safetensors, load_stored  # noqa: E402
from fma_core.types import AggregationContext, ClientUpdate  # noqa: E402

FULL_SIZES = [(count, parameters) for parameters in (100_000, 1_000_000) for count in (10, 50, 100)]
QUICK_SIZES = [(10, 100_000)]
# Arguments that suit every N benchmarked (Krum needs N >= 2f + 3).
AGGREGATOR_ARGS: dict[str, dict[str, Any]] = {
    "fed_trimmed_mean": {"beta": 0.1},
    "krum": {"f": 2},
    "multi_krum": {"f": 2},
}
BAR_SIZE = (50, 1_000_000)
BAR_AGGREGATORS = ("fed_avg", "avg_values_if_data")
BAR_SPEEDUP = 10.0
BAR_RSS_FRACTION = 0.2
NAIVE = "naive"
IDLE = "idle"


class FileUpdates:
    """An ``UpdateStream`` opening one ``.safetensors`` update file at a time; tensors are read when asked for."""

    def __init__(self, paths: list[Path], num_examples: list[int], staleness: list[int]) -> None:
        self._paths = paths
        self._num_examples = num_examples
        self._staleness = staleness

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[ClientUpdate]:
        for path, examples, stale in zip(self._paths, self._num_examples, self._staleness, strict=True):
            weights = SafetensorsTensors(FileRangeReader(path))
            yield ClientUpdate(weights=weights, num_examples=examples, staleness=stale)


def _write_inputs(directory: Path, count: int, parameters: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    meta = {
        "num_examples": rng.integers(1, 1000, size=count).tolist(),
        "staleness": rng.integers(0, 5, size=count).tolist(),
    }
    (directory / "meta.json").write_text(json.dumps(meta))
    current = Weights((rng.standard_normal(parameters),), False)
    (directory / "current.safetensors").write_bytes(encode_safetensors(current))
    for index in range(count):
        values = rng.standard_normal(parameters)
        (directory / f"update_{index}.safetensors").write_bytes(encode_safetensors(Weights((values,), False)))
        (directory / f"update_{index}.json").write_bytes(orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY))


def _run_naive(directory: Path, count: int, meta: dict[str, list[int]]) -> None:
    documents = []
    for index in range(count):
        with (directory / f"update_{index}.json").open() as stream:
            documents.append(json.load(stream))
    result = np.average(np.array(documents), axis=0, weights=meta["num_examples"])
    with (directory / "result_naive.json").open("w") as stream:
        json.dump(result.tolist(), stream)


def _run_aggregator(name: str, directory: Path, count: int, meta: dict[str, list[int]]) -> None:
    updates = FileUpdates(
        [directory / f"update_{index}.safetensors" for index in range(count)], meta["num_examples"], meta["staleness"]
    )
    current = load_stored(FileRangeReader(directory / "current.safetensors"))
    result = call_aggregator(name, updates, AggregationContext(current=current), AGGREGATOR_ARGS.get(name))
    (directory / f"result_{name}.safetensors").write_bytes(encode_safetensors(result.weights))


def run_case(case: str, directory: Path, count: int) -> dict[str, float]:
    """Run one case in this process; its wall time in seconds and this process's peak RSS in MiB."""
    meta = json.loads((directory / "meta.json").read_text())
    started = time.perf_counter()
    if case == NAIVE:
        _run_naive(directory, count, meta)
    elif case != IDLE:
        _run_aggregator(case, directory, count, meta)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mib": _peak_rss_mib()}


def _peak_rss_mib() -> float:
    # Linux carries the forking parent's RSS over exec into ru_maxrss; VmHWM belongs to this process image alone.
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _measure(case: str, directory: Path, count: int, repeat: int) -> dict[str, float]:
    """The fastest of ``repeat`` runs of the case, each in a fresh process."""
    runs = []
    for _ in range(repeat):
        completed = subprocess.run(
            [sys.executable, __file__, "--child", case, str(directory), str(count)],
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append(json.loads(completed.stdout))
    return min(runs, key=lambda run: run["seconds"])


def _max_difference(directory: Path, name: str) -> float:
    naive = np.asarray(json.loads((directory / "result_naive.json").read_text()))
    ours = load_stored(FileRangeReader(directory / f"result_{name}.safetensors")).layers[0]
    return float(np.abs(naive - ours).max())


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    try:
        sizes = [
            (int(count), int(float(parameters)))
            for count, _, parameters in (item.partition("x") for item in text.split(","))
        ]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated NxP such as 10x100000,50x1e6, got {text!r}"
        ) from None
    return sizes


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| N | P | case | time (s) | peak RSS (MiB) | speed-up vs naive | RSS / naive RSS |",
        "|---:|---:|:---|---:|---:|---:|---:|",
    ]
    for row in rows:
        speedup = f"{row['speedup']:.1f}x" if "speedup" in row else ""
        fraction = f"{row['rss_fraction']:.3f}" if "rss_fraction" in row else ""
        lines.append(
            f"| {row['count']} | {row['parameters']:,} | {row['case']} | {row['seconds']:.3f} | "
            f"{row['peak_rss_mib']:.0f} | {speedup} | {fraction} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only N=10 x P=100k")
    parser.add_argument("--sizes", type=_parse_sizes, help="comma-separated NxP, e.g. 10x100000,50x1e6")
    parser.add_argument("--aggregators", help="comma-separated names (default: every registered aggregator)")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    parser.add_argument("--repeat", type=int, default=1, help="run each case this many times, keep the fastest")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)

    sizes = options.sizes or (QUICK_SIZES if options.quick else FULL_SIZES)
    names = options.aggregators.split(",") if options.aggregators else aggregators.names()
    for name in names:
        try:
            aggregators.get(name)
        except ConfigurationError as error:
            parser.error(str(error))

    rows: list[dict[str, Any]] = []
    for count, parameters in sizes:
        directory = Path(tempfile.mkdtemp(prefix=f"fma-bench-{count}x{parameters}-"))
        size = {"count": count, "parameters": parameters}
        try:
            _write_inputs(directory, count, parameters, options.seed)
            rows.append({**size, "case": IDLE, **_measure(IDLE, directory, count, options.repeat)})
            naive = _measure(NAIVE, directory, count, options.repeat)
            rows.append({**size, "case": NAIVE, **naive})
            for name in names:
                measured = _measure(name, directory, count, options.repeat)
                row = {
                    **size,
                    "case": name,
                    **measured,
                    "speedup": naive["seconds"] / measured["seconds"],
                    "rss_fraction": measured["peak_rss_mib"] / naive["peak_rss_mib"],
                }
                if name == "fed_avg":
                    row["max_abs_difference_from_naive"] = _max_difference(directory, name)
                rows.append(row)
                print(f"{count}x{parameters} {name}: {measured['seconds']:.3f}s", file=sys.stderr)
        finally:
            shutil.rmtree(directory)

    print(_table(rows))
    print()
    for row in rows:
        if "max_abs_difference_from_naive" in row:
            print(
                f"fed_avg at {row['count']}x{row['parameters']:,} equals the naive result up to "
                f"{row['max_abs_difference_from_naive']:.1e}"
            )
    for row in rows:
        if (row["count"], row["parameters"]) == BAR_SIZE and row["case"] in BAR_AGGREGATORS:
            met = row["speedup"] >= BAR_SPEEDUP and row["rss_fraction"] <= BAR_RSS_FRACTION
            print(
                f"bar for {row['case']} at 50x1M (>= {BAR_SPEEDUP:g}x faster, <= {BAR_RSS_FRACTION:g} of the RSS): "
                f"{row['speedup']:.1f}x, {row['rss_fraction']:.3f} -> {'met' if met else 'NOT met'}"
            )
    if options.json:
        options.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        print(json.dumps(run_case(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]))))
    else:
        sys.exit(main())
