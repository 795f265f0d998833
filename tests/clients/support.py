"""What the SDK's tests share: the admin's password on their servers, small weights, a bounded wait."""

import time

import numpy as np

PASSWORD = "client-admin-password"
INITIAL = [np.zeros(3), np.zeros(2)]
UPDATE = [np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0])]
# A guard against a hang, not a measurement: aggregation in the server takes milliseconds.
AGGREGATE_TIMEOUT = 20.0


def wait_for(poll):
    """``poll()`` again until it returns something other than None (at most ``AGGREGATE_TIMEOUT`` seconds)."""
    deadline = time.monotonic() + AGGREGATE_TIMEOUT
    while (found := poll()) is None:
        assert time.monotonic() < deadline, f"nothing after {AGGREGATE_TIMEOUT} s"
        time.sleep(0.05)
    return found
