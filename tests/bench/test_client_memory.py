"""bench/client_memory.py runs end to end through the local server on a tiny size; memory is reported, not asserted."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "client_memory.py"


@pytest.mark.integration
def test_every_way_uploads_and_downloads_the_whole_model(tmp_path):
    rows_file = tmp_path / "rows.json"

    # HEAD as the baseline: the script's way of running an older client, without depending on the history.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "4e5", "--baseline", "HEAD", "--json", str(rows_file)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )

    rows = json.loads(rows_file.read_text())
    assert [row["mode"] for row in rows] == ["baseline", "arrays", "files"]
    assert all(row["complete"] and row["model_bytes"] == 400_000 for row in rows)
    assert "| 0 MB | files |" in done.stdout
