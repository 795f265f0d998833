"""``fma_client`` says through ``logging`` when it waits: a run throttled by the real local server is not silent.

A module of its own: it spends its server's registration brake (30 new clients a minute from one address).
"""

import logging
import re

import pytest

from fma_client import RetryPolicy, TooManyRequests, WebClient

pytestmark = pytest.mark.integration

# The local server's brake on registering new clients from one address (settings_base: "registration").
REGISTRATIONS_A_MINUTE = 30


def test_a_throttled_registration_logs_the_wait_and_the_route(developer, caplog):
    caplog.set_level(logging.WARNING, logger="fma_client")
    model = developer.create_model("throttled")
    sleeps = []
    policy = RetryPolicy(attempts=2, sleep=sleeps.append)
    for _ in range(REGISTRATIONS_A_MINUTE):
        WebClient(model.id, url=developer.url, retry=policy).register()
    assert sleeps == []
    assert caplog.records == [], "no wait, nothing said"

    with pytest.raises(TooManyRequests):
        WebClient(model.id, url=developer.url, retry=policy).register()

    [record] = caplog.records
    assert (record.levelno, record.name.partition(".")[0]) == (logging.WARNING, "fma_client")
    said = re.fullmatch(
        rf"POST /api/v1/models/{model.id}/register_client/ answered 429, Retry-After (\d+) s: "
        r"waiting (\d+\.\d) s before attempt 2 of 2",
        record.getMessage(),
    )
    assert said, record.getMessage()
    assert float(said[2]) == round(sleeps[0], 1) >= float(said[1]) >= 1, "the wait named is the wait slept"
