"""Choosing a secrets manager by name, and pulling the secrets a service lists at cold start."""

import pytest

from fma_core.exceptions import ConfigurationError
from secrets_managers import (
    SecretUnavailableError,
    aws_secrets,
    env,
    get_secrets_manager,
    pull_secrets,
    secrets_managers,
)


def test_both_managers_are_registered():
    assert secrets_managers.names() == ["aws_secrets", "env"]
    assert get_secrets_manager("env", setting="X") is env.get_secret
    assert get_secrets_manager("aws_secrets", setting="X") is aws_secrets.get_secret


def test_unknown_manager_lists_the_choices():
    with pytest.raises(
        ConfigurationError,
        match=r"""Unknown secrets manager 'vault' \(setting API_SERVICE_SETTINGS\["secrets_manager"\]\); """
        r"registered: aws_secrets, env",
    ):
        pull_secrets({"secrets_manager": "vault", "secrets_name": []}, setting="API_SERVICE_SETTINGS")


def test_pulls_every_listed_secret(monkeypatch):
    monkeypatch.setenv("FMA_ONE", "1st")
    monkeypatch.setenv("FMA_TWO", '["a", "b"]')

    secrets = pull_secrets({"secrets_manager": "env", "secrets_name": ["FMA_ONE", "FMA_TWO"]}, setting="S")

    assert secrets == {"FMA_ONE": "1st", "FMA_TWO": ["a", "b"]}


def test_a_missing_secret_stops_the_pull_naming_it(monkeypatch):
    monkeypatch.setenv("FMA_ONE", "1st")
    monkeypatch.delenv("FMA_MISSING", raising=False)

    with pytest.raises(SecretUnavailableError, match="FMA_MISSING") as raised:
        pull_secrets({"secrets_manager": "env", "secrets_name": ["FMA_ONE", "FMA_MISSING"]}, setting="S")
    assert "1st" not in str(raised.value)


def test_secrets_name_must_be_a_list():
    with pytest.raises(ConfigurationError, match=r'AGGREGATOR_SETTINGS\["secrets_name"\] must be a list of secret ids'):
        pull_secrets({"secrets_manager": "env", "secrets_name": "FMA_ONE"}, setting="AGGREGATOR_SETTINGS")
