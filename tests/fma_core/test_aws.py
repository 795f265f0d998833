"""fma_core.aws: every boto3 client's timeouts, retries and region, as configured, and AWS failures in words."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from fma_core.aws import AWS_DEFAULTS, AwsSettings, aws_client, aws_errors, client_config
from fma_core.exceptions import ConfigurationError, ServiceUnavailableError


@pytest.fixture(autouse=True)
def _credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def settings_of(config):
    return config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]


class TestConfig:
    def test_defaults_fit_inside_lambdas_init_phase(self):
        assert settings_of(client_config(settings=AWS_DEFAULTS)) == (2.0, 2.0, 2)

    def test_values_given(self):
        given = AwsSettings(connect_timeout=0.5, read_timeout=3.0, max_attempts=4)

        assert settings_of(client_config(settings=given)) == (0.5, 3.0, 4)

    def test_best_effort_clients_try_once_with_their_own_timeout(self):
        assert settings_of(client_config(best_effort=True, settings=AwsSettings(max_attempts=4))) == (1.0, 1.0, 1)

        given = AwsSettings(max_attempts=4, best_effort_timeout=0.25)
        assert settings_of(client_config(best_effort=True, settings=given)) == (0.25, 0.25, 1)

    def test_s3_signs_with_version_4_and_keeps_the_bounds(self):
        config = client_config(service="s3", settings=AwsSettings(read_timeout=3.0))

        assert settings_of(config) == (2.0, 3.0, 2)
        assert config.signature_version == "s3v4"
        assert client_config().signature_version is None

    def test_clients_get_the_configured_values(self, aws_settings):
        aws_settings(AwsSettings(connect_timeout=0.5, read_timeout=3.0, max_attempts=4))

        assert settings_of(aws_client("lambda", region_name="eu-west-1").meta.config) == (0.5, 3.0, 4)


class TestClient:
    def test_one_client_per_service_region_and_kind(self, aws_settings):
        aws_settings(AWS_DEFAULTS)
        lambda_client = aws_client("lambda", region_name="eu-west-1")

        assert aws_client("lambda", region_name="eu-west-1") is lambda_client
        assert aws_client("lambda", region_name="eu-west-1", best_effort=True) is not lambda_client
        assert lambda_client.meta.region_name == "eu-west-1"
        assert settings_of(lambda_client.meta.config) == (2.0, 2.0, 2)

    def test_the_configured_region(self, aws_settings):
        aws_settings(AwsSettings(region="ap-south-1"))

        assert aws_client("s3").meta.region_name == "ap-south-1"

    def test_endpoint_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")

        assert aws_client("events", region_name="us-east-1").meta.endpoint_url == "http://127.0.0.1:4566"

    def test_a_silent_endpoint_fails_instead_of_hanging(self, monkeypatch, silent_endpoint, aws_settings):
        monkeypatch.setenv("AWS_ENDPOINT_URL", silent_endpoint)
        aws_settings(AwsSettings(best_effort_timeout=0.2))
        client = aws_client("lambda", region_name="us-east-1", best_effort=True)

        with (
            pytest.raises(ServiceUnavailableError, match=r"^Invoke: AWS Lambda is unreachable \(Read timeout"),
            aws_errors("Invoke", service="AWS Lambda", setting="AGGREGATOR_LAMBDA_ARN"),
        ):
            client.invoke(FunctionName="f", InvocationType="Event", Payload=b"{}")


class TestErrors:
    def test_a_refusal_names_service_code_and_setting(self):
        refusal = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Invoke")

        with (
            pytest.raises(ServiceUnavailableError) as raised,
            aws_errors("Could not invoke", service="AWS Lambda", setting="AGGREGATOR_LAMBDA_ARN"),
        ):
            raise refusal

        assert str(raised.value) == (
            "Could not invoke: AWS Lambda refused the call: AccessDeniedException no "
            "(check AGGREGATOR_LAMBDA_ARN and the IAM role)"
        )
        assert raised.value.__cause__ is refusal

    def test_an_unreachable_service_names_the_route_to_check(self):
        with (
            pytest.raises(ConfigurationError) as raised,
            aws_errors("Reading", service="AWS S3", setting="FMA_MODEL_DATA_BUCKET", error=ConfigurationError),
        ):
            raise EndpointConnectionError(endpoint_url="https://s3.amazonaws.com")

        assert str(raised.value) == (
            'Reading: AWS S3 is unreachable (Could not connect to the endpoint URL: "https://s3.amazonaws.com"); '
            "check the network route to it (VPC endpoint or NAT) and FMA_MODEL_DATA_BUCKET"
        )

    def test_other_errors_pass_through(self):
        with pytest.raises(KeyError), aws_errors("x", service="AWS S3", setting="Y"):
            raise KeyError("not AWS")
