"""The throttles' shared counts: a sliding window over two fixed ones, refusals that count nothing, old rows removed.

Times are given to ``take`` explicitly, at chosen points of a 10-per-minute window (the ``login`` default).
"""

from __future__ import annotations

import pytest

from fma_django_connectors.access import throttling
from fma_django_connectors.access.throttling import Rate, give_back, take
from fma_django_connectors.models import ThrottleCount

pytestmark = pytest.mark.django_db

RATE = Rate.parse("10/min")
# The start of a fixed window.
T0 = 1_800_000_000 - 1_800_000_000 % 60


def _take_until_refused(key, now, limit=100):
    """How many requests ``key`` got in at ``now``, and the wait of the first refusal."""
    for taken in range(limit):
        wait = take([key], RATE, now=now)
        if wait is not None:
            return taken, wait
    raise AssertionError(f"never refused after {limit} requests")


def _counts(key):
    return dict(ThrottleCount.objects.filter(key=key).values_list("window_start", "count"))


class TestSlidingWindow:
    def test_the_rate_is_taken_within_a_window_then_refused(self):
        assert _take_until_refused("k", T0 + 5) == (10, pytest.approx(55 + 6))

    def test_a_window_boundary_does_not_double_the_allowance(self):
        assert _take_until_refused("k", T0 + 59)[0] == 10
        # One second later the sliding window still holds nearly all ten: nothing gets in.
        taken, wait = _take_until_refused("k", T0 + 61)
        assert taken == 0
        # Ten requests weighted by 59/60 leave room for one once they weigh 9 or less: 6 s into the window.
        assert wait == pytest.approx(5)

    def test_the_previous_window_weighs_less_as_the_current_one_goes_on(self):
        assert _take_until_refused("k", T0 + 30)[0] == 10
        assert _take_until_refused("k", T0 + 60 + 6)[0] == 1  # 10 * 0.9 + 1 <= 10
        assert _take_until_refused("k", T0 + 60 + 30)[0] == 4  # 10 * 0.5 + 5 <= 10, one of them already taken
        assert _take_until_refused("k", T0 + 60 + 59)[0] == 4  # 10 / 60 + 9 <= 10, five already taken

    def test_two_windows_later_the_whole_rate_is_back(self):
        assert _take_until_refused("k", T0 + 59)[0] == 10
        assert _take_until_refused("k", T0 + 120)[0] == 10

    def test_keys_are_counted_apart(self):
        assert _take_until_refused("k", T0)[0] == 10
        assert _take_until_refused("other", T0)[0] == 10


class TestRefusals:
    def test_a_refused_request_counts_nowhere(self):
        _take_until_refused("k", T0)
        for _ in range(5):
            assert take(["k"], RATE, now=T0 + 1) is not None
        assert _counts("k") == {T0: 10}

    def test_a_request_refused_by_one_key_is_taken_back_from_the_others(self):
        _take_until_refused("user", T0)
        assert take(["ip", "user"], RATE, now=T0 + 1) is not None
        assert _counts("ip") == {T0: 0}
        assert take(["ip"], RATE, now=T0 + 1) is None

    def test_give_back_uncounts_one_request(self):
        take(["a", "b"], RATE, now=T0)
        take(["a"], RATE, now=T0)
        give_back(["a", "b"], T0)
        assert (_counts("a"), _counts("b")) == ({T0: 1}, {T0: 0})
        give_back(["b"], T0)
        assert _counts("b") == {T0: 0}

    def test_the_wait_reaches_into_the_next_window_when_this_one_is_full(self):
        # Ten requests at the start of a window: the next window must run a tenth of its length before
        # their weight (10 * 0.9) leaves room for one.
        assert _take_until_refused("k", T0)[1] == pytest.approx(60 + 6)

    def test_a_rate_of_zero_refuses_everything(self):
        assert take(["k"], Rate.parse("0/min"), now=T0) == 60
        assert _counts("k") == {}


class TestKeys:
    def test_a_long_identity_is_stored_as_its_digest(self):
        key = throttling.LoginGuard().key("user:" + "x" * 10_000)
        assert key.startswith("throttle:login:sha256:")
        assert len(key) < ThrottleCount._meta.get_field("key").max_length
        assert take([key], RATE, now=T0) is None


class TestCleanup:
    def test_rows_no_window_weighs_are_deleted_when_a_new_row_is_written(self, monkeypatch):
        monkeypatch.setattr(throttling, "_last_cleanup", 0.0)
        take(["old"], RATE, now=T0)
        take(["previous"], RATE, now=T0 + 60)
        monkeypatch.setattr(throttling, "_last_cleanup", 0.0)
        take(["new"], RATE, now=T0 + 120)
        assert set(ThrottleCount.objects.values_list("key", flat=True)) == {"previous", "new"}

    def test_at_most_once_per_interval_in_a_process(self, monkeypatch):
        monkeypatch.setattr(throttling, "_last_cleanup", 0.0)
        take(["old"], RATE, now=T0)
        take(["new"], RATE, now=T0 + 120)
        take(["newer"], RATE, now=T0 + 120 + throttling.CLEANUP_INTERVAL_SECONDS - 1)
        take(["old-too"], RATE, now=T0 + 1)  # expired by now, but the interval has not passed
        assert ThrottleCount.objects.count() == 3
