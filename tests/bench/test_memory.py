"""bench/memory.py runs end to end on a tiny size; its numbers are reported, never asserted here."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "memory.py"


@pytest.mark.integration
def test_reports_each_case_of_budget_and_update_count(tmp_path):
    rows_file = tmp_path / "rows.json"

    sizes = ["--layers", "3", "--layer-size", "1000", "--counts", "5,6", "--budgets", "1e6"]
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), *sizes, "--aggregators", "fed_avg,fed_median", "--json", str(rows_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    rows = json.loads(rows_file.read_text())
    assert [(row["case"], row["count"]) for row in rows] == [
        ("fed_avg", 5),
        ("fed_avg", 6),
        ("fed_median", 5),
        ("fed_median", 6),
    ]
    assert all(row["arrays_peak_mib"] > 0 for row in rows)
    assert "| fed_median | 1 | 6 |" in completed.stdout
