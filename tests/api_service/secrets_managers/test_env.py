"""``env``: secrets from the environment only."""

import pytest

from secrets_managers import SecretUnavailableError
from secrets_managers.env import get_secret


def test_reads_the_variable_named_like_the_secret(monkeypatch):
    monkeypatch.setenv("FMA_KEY", "value")

    assert get_secret("FMA_KEY") == "value"


def test_json_object_is_decoded(monkeypatch):
    monkeypatch.setenv("FMA_DB", '{"username": "fma", "password": "pw"}')

    assert get_secret("FMA_DB") == {"username": "fma", "password": "pw"}


def test_missing_variable_names_the_secret(monkeypatch):
    monkeypatch.delenv("FMA_ABSENT", raising=False)

    with pytest.raises(
        SecretUnavailableError, match=r"^Secret 'FMA_ABSENT' is not set: no environment variable FMA_ABSENT$"
    ):
        get_secret("FMA_ABSENT")
