"""bench/client_memory.py runs end to end through the local server on a tiny size; memory is reported, not asserted."""

import pytest

from tests.bench.support import run_bench


@pytest.mark.integration
def test_every_way_uploads_and_downloads_the_whole_model(tmp_path):
    # HEAD as the baseline: the script's way of running an older client, without depending on the history.
    rows, printed = run_bench("client_memory.py", "--sizes", "4e5", "--baseline", "HEAD", tmp_path=tmp_path)

    assert [row["mode"] for row in rows] == ["baseline", "arrays", "files"]
    assert all(row["complete"] and row["model_bytes"] == 400_000 for row in rows)
    assert "| 0 MB | files |" in printed
