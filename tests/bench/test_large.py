"""bench/large.py runs end to end through the local server on a tiny size; its timings are reported, never asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "large.py"


@pytest.mark.integration
def test_reports_every_stage_and_checks_the_mean(tmp_path):
    rows_file = tmp_path / "rows.json"

    subprocess.run(
        [
            *(sys.executable, str(SCRIPT), "--parameters", "20000", "--clients", "2"),
            *("--json-parameters", "400000", "--json", str(rows_file)),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )

    rows = {row["stage"]: row for row in json.loads(rows_file.read_text())}
    (mean,) = [row for stage, row in rows.items() if stage.startswith("aggregate equals the mean")]
    assert mean["bar"] is True
    assert rows["download the aggregate as safetensors (303 + GET)"]["status"] == 200
    # 400k numbers as JSON are more than a Lambda request carries: only the upload flow takes them.
    assert rows["400,000 float64: POST /api/v1/model_updates/ as JSON"]["status"] == 413
    assert rows["400,000 float64: GET data as safetensors"]["status"] == 200
