"""What the benchmarks' tests share: running a script of bench/ on a tiny size and reading the rows it writes."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_bench(script: str, *args: str, tmp_path: Path) -> tuple[list, str]:
    """Run ``bench/<script>`` with ``args`` and ``--json``: the rows it wrote, and what it printed."""
    rows_file = tmp_path / "rows.json"
    completed = subprocess.run(
        [sys.executable, str(BENCH / script), *args, "--json", str(rows_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(rows_file.read_text()), completed.stdout
