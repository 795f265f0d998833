"""bench/capacity.py runs the real handlers on a tiny size; the counts it reports hold together."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "capacity.py"


@pytest.mark.integration
def test_reports_the_cost_of_an_update_and_of_an_aggregation(tmp_path):
    rows_file = tmp_path / "rows.json"

    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--parameters", "100", "--clients", "3", "--json", str(rows_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )

    rows = {row["step"]: row for row in json.loads(rows_file.read_text())}
    update = rows["one update, 100 float64 as JSON"]
    aggregation = rows["one aggregation of 3 updates (aggregator, direct invoke)"]
    latest = rows["a client fetches the latest model as JSON"]
    # An update stores its values as float64 (and a header), asks the aggregator once and wakes the schedule.
    assert update["stored"] > 800
    assert update["writes"] >= 1
    assert update["aws"] == {"lambda.Invoke": 1, "scheduler.UpdateSchedule": 1}
    # The aggregation reads every update's file, stores one result of the same shape, settles the schedule.
    assert aggregation["read"] == 3 * update["stored"]
    assert aggregation["stored"] == update["stored"]
    assert aggregation["aws"] == {"scheduler.UpdateSchedule": 1}
    assert latest["read"] == aggregation["stored"]
    assert "| one update, 100 float64 as JSON | 1 |" in completed.stdout
    assert all(row["seconds"] > 0 for row in rows.values())
