"""bench/aggregate.py runs end to end on a tiny size; its timings are reported, never asserted here."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fma_core.algorithms import aggregators

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "aggregate.py"


@pytest.mark.integration
def test_reports_every_aggregator_next_to_the_baseline_and_cleans_up(tmp_path):
    # Prepare: temporary inputs go under tmp_path so that their removal can be checked.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rows_file = tmp_path / "rows.json"

    # Execute
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "7x1000", "--json", str(rows_file)],
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )

    # Assert
    rows = json.loads(rows_file.read_text())
    assert [row["case"] for row in rows] == ["idle", "naive", *aggregators.names()]
    for row in rows[2:]:
        assert row["speedup"] > 0
        assert row["rss_fraction"] > 0
    (fed_avg,) = (row for row in rows if row["case"] == "fed_avg")
    assert fed_avg["max_abs_difference_from_naive"] < 1e-9
    assert "| 7 | 1,000 | fed_avg |" in completed.stdout
    assert list(scratch.iterdir()) == []
