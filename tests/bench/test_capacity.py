"""bench/capacity.py runs the real handlers on a tiny size; the counts it reports hold together."""

import pytest

from tests.bench.support import run_bench


@pytest.mark.integration
def test_reports_the_cost_of_an_update_and_of_an_aggregation(tmp_path):
    written, printed = run_bench("capacity.py", "--parameters", "100", "--clients", "3", tmp_path=tmp_path)

    rows = {row["step"]: row for row in written}
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
    assert "| one update, 100 float64 as JSON | 1 |" in printed
    assert all(row["seconds"] > 0 for row in rows.values())
