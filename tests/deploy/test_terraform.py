"""terraform_deploy/: parses, declares what it uses, validates, passes the static scan, and applies."""

import json
import os
import re
import shutil
import subprocess
import urllib.request
import zipfile
from pathlib import Path

import boto3
import hcl2
import pytest
from cfnlint.decode import decode
from moto.server import ThreadedMotoServer

from fma_django_connectors.services import UPLOADS_FOLDER
from fma_django_connectors.storage.downloads import DOWNLOADS_FOLDER
from tests.deploy.support import REPOSITORY, TEMPLATE, TERRAFORM_DIR, names_read_by_the_service, start_remote_settings

HCL_OPTIONS = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
TF_FILES = sorted(path for path in TERRAFORM_DIR.rglob("*.tf") if ".terraform" not in path.parts)
MODULE_DIRS = sorted({path.parent for path in TF_FILES})
CHECKOV = REPOSITORY / ".venv-checkov" / "bin" / "checkov"


def load(path):
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=HCL_OPTIONS)


def blocks(module_dir, kind):
    """``{name: body}`` of the ``kind`` blocks (variable, locals, ...) of one module's files."""
    found = {}
    for path in sorted(module_dir.glob("*.tf")):
        for block in load(path).get(kind, []):
            found |= block
    return found


def plugin_dir():
    candidates = [os.environ.get("FMA_TF_PLUGIN_DIR"), "/opt/tf-plugins", Path.home() / ".terraform.d" / "plugins"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "registry.terraform.io" / "hashicorp" / "aws").is_dir():
            return Path(candidate)
    return None


def terraform_environment():
    return os.environ | {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}


def terraform(workdir, *args, timeout=300):
    result = subprocess.run(
        ["terraform", *args, "-no-color"],
        cwd=workdir,
        env=terraform_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"terraform {args[0]} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def initialised_copy(destination):
    """A copy of terraform_deploy/ (nothing written to the checkout), initialised from the local plugin mirror."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on the PATH")
    plugins = plugin_dir()
    if plugins is None:
        pytest.skip("no local mirror of the hashicorp/aws provider (set FMA_TF_PLUGIN_DIR)")
    shutil.copytree(TERRAFORM_DIR, destination, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    terraform(destination, "init", "-backend=false", f"-plugin-dir={plugins}")
    return destination


def test_there_is_configuration_to_check():
    names = {path.name for path in TF_FILES}
    assert {"provider.tf", "iam-lambda.tf", "lambda.tf", "variables.tf", "outputs.tf"} <= names


@pytest.mark.parametrize("path", TF_FILES, ids=lambda path: str(path.relative_to(TERRAFORM_DIR)))
def test_every_file_parses(path):
    assert load(path), f"{path} holds no configuration"


@pytest.mark.parametrize("module_dir", MODULE_DIRS, ids=lambda path: str(path.relative_to(REPOSITORY)))
def test_every_variable_used_is_declared_and_every_declared_one_used(module_dir):
    declared = set(blocks(module_dir, "variable"))
    parsed = json.dumps([load(path) for path in sorted(module_dir.glob("*.tf"))])
    used = set(re.findall(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)", parsed))
    assert not used - declared, f"used but not declared: {sorted(used - declared)}"
    assert not declared - used, f"declared but never used: {sorted(declared - used)}"


def test_every_variable_is_described_and_typed():
    for module_dir in MODULE_DIRS:
        for name, body in blocks(module_dir, "variable").items():
            assert body.get("description"), f"{module_dir.name}: variable {name} has no description"
            assert body.get("type"), f"{module_dir.name}: variable {name} has no type"


def function_environment_names():
    merged = blocks(TERRAFORM_DIR, "locals")["function_environment"]
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+) =", merged))


def test_the_functions_get_the_variables_settings_remote_needs():
    names = function_environment_names()
    assert not names - names_read_by_the_service() - {"DJANGO_SETTINGS_MODULE"}
    result = start_remote_settings(names)
    assert result.returncode == 0, result.stderr


def test_terraform_and_sam_deploy_the_same_functions():
    template, _ = decode(str(TEMPLATE))
    sam_functions = {
        resource["Properties"]["Handler"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    functions = blocks(TERRAFORM_DIR, "locals")["functions"]
    assert {function["handler"] for function in functions.values()} == sam_functions
    variables = blocks(TERRAFORM_DIR, "variable")
    assert variables["lambda_runtime"]["default"] == template["Globals"]["Function"]["Runtime"]
    # SAM sets FMA_LOCAL_DATA_DIR only for its local mode; Terraform deploys settings_remote alone.
    sam_environment = set(template["Globals"]["Function"]["Environment"]["Variables"]) - {"FMA_LOCAL_DATA_DIR"}
    assert function_environment_names() == sam_environment


def test_log_retention_is_one_value_in_both_stacks():
    template, _ = decode(str(TEMPLATE))
    retention = blocks(TERRAFORM_DIR, "variable")["log_retention_days"]["default"]
    assert template["Parameters"]["LogRetentionDays"]["Default"] == retention
    sam_groups = [resource for resource in template["Resources"].values() if resource["Type"] == "AWS::Logs::LogGroup"]
    assert all(group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"} for group in sam_groups)
    terraform_groups = blocks(TERRAFORM_DIR, "resource")["aws_cloudwatch_log_group"]
    assert all(group["retention_in_days"] == "${var.log_retention_days}" for group in terraform_groups.values())


def test_terraform_files_are_formatted():
    if shutil.which("terraform") is None:
        pytest.skip("terraform is not on the PATH")
    # Exit 3 and the names of the files to reformat when any is not in canonical format.
    terraform(TERRAFORM_DIR, "fmt", "-check", "-recursive")


def test_terraform_validate(tmp_path):
    workdir = initialised_copy(tmp_path / "terraform_deploy")
    assert "The configuration is valid" in terraform(workdir, "validate").stdout


def test_checkov_finds_nothing():
    if not CHECKOV.exists():
        pytest.skip("checkov is not installed: `make checkov-install` puts it in .venv-checkov")
    result = subprocess.run(
        [CHECKOV, "-d", str(TERRAFORM_DIR), "--framework", "terraform", "--compact", "--quiet"],
        env=os.environ | {"BC_SKIP_MAPPING": "TRUE"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


# --- apply against moto ------------------------------------------------------------------------------

MOTO_SERVICES = [
    "apigatewayv2",
    "cloudwatch",
    "cloudwatchlogs",
    "ec2",
    "events",
    "iam",
    "kms",
    "lambda",
    "rds",
    "s3",
    "scheduler",
    "secretsmanager",
    "sqs",
]
MOTO_SERVICES += ["sts"]
MOTO_PROVIDER = """provider "aws" {{
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  endpoints {{
{endpoints}
  }}
}}
"""
# moto evaluates bucket policies without their conditions, so the TLS-only Deny would refuse every
# request; in its place a Deny of an action nothing here uses still exercises the policy's creation.
MOTO_BUCKET_POLICY = """resource "aws_s3_bucket_policy" "this" {
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{
      Sid = "DenyWebsites", Effect = "Deny", Principal = "*", Action = "s3:PutBucketWebsite",
      Resource = aws_s3_bucket.this.arn
    }]
  })
}
"""
# The functions, their roles and policies, the buckets, the secrets, the HTTP API and the schedule group
# with the role its schedules invoke the aggregator with (with what they depend on).
MOTO_TARGETS = [
    "aws_lambda_function.fma",
    "aws_iam_role_policy.api_aggregation",
    "aws_iam_role_policy.schedules",
    "aws_iam_role_policy.scheduler_invoke",
    "aws_lambda_permission.api_from_gateway",
    "aws_secretsmanager_secret_version.django_secret_key",
    "aws_secretsmanager_secret_version.admin",
    "aws_apigatewayv2_route.fma",
    "aws_apigatewayv2_stage.default",
]


@pytest.fixture
def moto_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"lambda": {"use_docker": False}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()
    yield url
    # moto's backends live in this process, not in the server: the next test starts from an empty account.
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    server.stop()


@pytest.fixture
def deployer_account(moto_url, monkeypatch):
    """What a deployer brings, in moto: a VPC with two private subnets, and a database with its secret."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = {"endpoint_url": moto_url, "region_name": "us-east-1"}
    ec2 = boto3.client("ec2", **aws)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for index, zone in enumerate(["us-east-1a", "us-east-1b"])
    ]
    boto3.client("rds", **aws).create_db_instance(
        DBInstanceIdentifier="fma-existing",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="fma_admin",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
    )
    db_secret_arn = boto3.client("secretsmanager", **aws).create_secret(
        Name="fma-existing-db", SecretString=json.dumps({"username": "fma_admin", "password": "not-a-real-password"})
    )["ARN"]
    return aws, {
        "vpc_id": vpc_id,
        "subnet_ids": subnet_ids,
        "existing_db_instance_identifier": "fma-existing",
        "existing_db_secret_arn": db_secret_arn,
    }


def stub_artifact(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("service_initialization.py", "def handler(event, context):\n    return event\n")
    return path


def point_at_moto(workdir, moto_url):
    endpoints = "\n".join(f'    {service} = "{moto_url}"' for service in MOTO_SERVICES)
    (workdir / "moto_override.tf").write_text(MOTO_PROVIDER.format(endpoints=endpoints))
    (workdir / "modules" / "private_bucket" / "moto_override.tf").write_text(MOTO_BUCKET_POLICY)


@pytest.mark.integration
def test_apply_and_destroy_against_moto(tmp_path, moto_url, deployer_account):
    aws, tfvars = deployer_account
    db_secret_arn = tfvars["existing_db_secret_arn"]
    artifact = stub_artifact(tmp_path / "fma-lambda.zip")
    workdir = initialised_copy(tmp_path / "terraform_deploy")
    point_at_moto(workdir, moto_url)
    (workdir / "moto.auto.tfvars.json").write_text(json.dumps(tfvars | {"lambda_zip_path": str(artifact)}))

    terraform(workdir, "apply", "-auto-approve", *[f"-target={target}" for target in MOTO_TARGETS])
    outputs = {name: value["value"] for name, value in json.loads(terraform(workdir, "output", "-json").stdout).items()}

    lambda_client = boto3.client("lambda", **aws)
    api = lambda_client.get_function_configuration(FunctionName="fma-api")
    assert api["Handler"] == "service_initialization.handler"
    assert api["Runtime"] == "python3.12"
    environment = api["Environment"]["Variables"]
    assert environment["FMA_DB_SECRET_PATH"] == db_secret_arn
    assert environment["FMA_DATABASE_HOST"] == outputs["db_address"]
    assert environment["FMA_MODEL_DATA_BUCKET"] == outputs["model_data_bucket"]
    assert environment["AGGREGATOR_LAMBDA_ARN"] == outputs["aggregator_function_arn"]
    assert environment["TRUSTED_ORIGIN"] == outputs["api_url"].rstrip("/")

    aggregator = lambda_client.get_function_configuration(FunctionName="fma-aggregator")
    assert aggregator["Handler"] == "aggregator_initialization.handler"
    # Schedules invoke it with a role of their own: no resource policy lets EventBridge rules in.
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException):
        lambda_client.get_policy(FunctionName="fma-aggregator")

    iam = boto3.client("iam", **aws)
    api_policy = iam.get_role_policy(RoleName="fma-api-lambda", PolicyName="aggregation")["PolicyDocument"]
    resources = {statement["Sid"]: statement["Resource"] for statement in api_policy["Statement"]}
    assert resources == {"InvokeAggregator": outputs["aggregator_function_arn"]}
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role_policy(RoleName="fma-aggregator-lambda", PolicyName="aggregation")
    assert_schedules_are_the_deployments_own(aws, environment, outputs["aggregator_function_arn"])

    s3 = boto3.client("s3", **aws)
    encryption = s3.get_bucket_encryption(Bucket=outputs["model_data_bucket"])
    assert (
        encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"][
            "SSEAlgorithm"
        ]
        == "aws:kms"
    )
    assert all(
        s3.get_public_access_block(Bucket=outputs["model_data_bucket"])["PublicAccessBlockConfiguration"].values()
    )

    secrets_manager = boto3.client("secretsmanager", **aws)
    secret_key = secrets_manager.get_secret_value(SecretId=environment["FMA_SECRET_KEY_SECRET_ID"])["SecretString"]
    assert len(secret_key) == 64
    admin = json.loads(secrets_manager.get_secret_value(SecretId=outputs["admin_secret_arn"])["SecretString"])
    assert admin["username"] == "admin"
    assert len(admin["password"]) == 32
    assert environment["FMA_ADMIN_SECRET_ID"] == outputs["admin_secret_arn"]
    # Generated by Secrets Manager and written write-only: neither value is in Terraform's state.
    state = (workdir / "terraform.tfstate").read_text()
    assert secret_key not in state
    assert admin["password"] not in state

    routes = boto3.client("apigatewayv2", **aws).get_routes(ApiId=outputs["api_url"].split("//")[1].split(".")[0])
    assert {route["RouteKey"] for route in routes["Items"]} == {
        "ANY /api/{proxy+}",
        "ANY /admin",
        "ANY /admin/{proxy+}",
        "GET /static/{proxy+}",
        "ANY /dashboard",
        "ANY /dashboard/{proxy+}",
        "GET /",
        "POST /api-token-auth",
    }

    # A schedule the service put in the group goes with the stack: nothing is left behind.
    scheduler = boto3.client("scheduler", **aws)
    scheduler.create_schedule(
        GroupName="fma",
        Name="model-1",
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": outputs["aggregator_function_arn"], "RoleArn": environment["FMA_SCHEDULE_ROLE_ARN"]},
    )

    terraform(workdir, "destroy", "-auto-approve", "-refresh=false")
    assert terraform(workdir, "state", "list").stdout.strip() == ""
    assert lambda_client.list_functions()["Functions"] == []
    assert [group["Name"] for group in scheduler.list_schedule_groups()["ScheduleGroups"]] == ["default"]
    assert scheduler.list_schedules()["Schedules"] == []


def assert_schedules_are_the_deployments_own(aws, environment, aggregator_arn):
    """The stack's schedule group, named in the functions' environment; the functions may change the schedules
    of that group alone, and hand them a role that may invoke the aggregator alone."""
    assert environment["FMA_SCHEDULE_GROUP"] == "fma"
    group = boto3.client("scheduler", **aws).get_schedule_group(Name="fma")
    assert group["State"] == "ACTIVE"
    iam = boto3.client("iam", **aws)
    in_group = "arn:aws:scheduler:us-east-1:123456789012:schedule/fma/*"
    role = iam.get_role(RoleName="fma-scheduler")["Role"]
    assert role["Arn"] == environment["FMA_SCHEDULE_ROLE_ARN"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": group["Arn"]}
    (invoke,) = iam.get_role_policy(RoleName="fma-scheduler", PolicyName="invoke-aggregator")["PolicyDocument"][
        "Statement"
    ]
    assert (invoke["Action"], sorted(invoke["Resource"])) == (
        "lambda:InvokeFunction",
        [aggregator_arn, f"{aggregator_arn}:*"],
    )

    def statements(function):
        document = iam.get_role_policy(RoleName=f"fma-{function}-lambda", PolicyName="schedules")["PolicyDocument"]
        return {statement["Sid"]: statement for statement in document["Statement"]}

    api, aggregator = statements("api"), statements("aggregator")
    assert set(api) == {"DeploymentSchedules", "PassSchedulerRole"}
    assert api["DeploymentSchedules"]["Resource"] == in_group
    assert sorted(api["DeploymentSchedules"]["Action"]) == [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:UpdateSchedule",
    ]
    assert aggregator["DeploymentSchedules"]["Resource"] == in_group
    assert sorted(aggregator["DeploymentSchedules"]["Action"]) == [
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
    ]
    for granted in (api, aggregator):
        assert granted["PassSchedulerRole"]["Resource"] == role["Arn"]
        assert granted["PassSchedulerRole"]["Condition"] == {
            "StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}
        }
    # The deploy-time migration deletes rules of earlier versions, of that name only.
    assert aggregator["DeleteLegacyRules"]["Resource"] == "arn:aws:events:us-east-1:123456789012:rule/fma-scheduled-*"


def planned(workdir, *args):
    """``{address: planned values}`` of every resource a plan would create, and the root module's outputs."""
    terraform(workdir, "plan", "-out=fma.tfplan", *args)
    plan = json.loads(terraform(workdir, "show", "-json", "fma.tfplan").stdout)
    creations = [change for change in plan["resource_changes"] if "create" in change["change"]["actions"]]
    after = {change["address"].removeprefix("module.fma."): change["change"]["after"] for change in creations}
    return after, plan.get("output_changes", {})


@pytest.fixture
def wrapper(tmp_path, moto_url, deployer_account):
    """terraform_deploy/ used as a module from another folder, its artifact where the default expects it."""
    _, tfvars = deployer_account
    module = initialised_copy(tmp_path / "terraform_deploy")
    point_at_moto(module, moto_url)
    stub_artifact(tmp_path / "artifacts" / "fma-lambda.zip")
    root = tmp_path / "elsewhere" / "root"
    root.mkdir(parents=True)
    arguments = "\n".join(f"  {name} = {json.dumps(value)}" for name, value in tfvars.items())
    # A relative source is used in place (an absolute one would be copied under .terraform/).
    (root / "main.tf").write_text(f'module "fma" {{\n  source = "../../{module.name}"\n{arguments}\n}}\n')
    terraform(root, "init", "-backend=false", f"-plugin-dir={plugin_dir()}")
    return root


@pytest.mark.integration
def test_plan_lists_the_endpoints_the_destination_the_alarms_and_the_deploy_invocations(wrapper):
    resources, _ = planned(wrapper)

    endpoints = {
        values["service_name"]: values["vpc_endpoint_type"]
        for address, values in resources.items()
        if address.startswith("aws_vpc_endpoint.")
    }
    assert endpoints == {
        "com.amazonaws.us-east-1.secretsmanager": "Interface",
        "com.amazonaws.us-east-1.lambda": "Interface",
        "com.amazonaws.us-east-1.scheduler": "Interface",
        "com.amazonaws.us-east-1.events": "Interface",
        "com.amazonaws.us-east-1.logs": "Interface",
        "com.amazonaws.us-east-1.s3": "Gateway",
    }
    assert all(
        resources[f'aws_vpc_endpoint.interface["{service}"]']["private_dns_enabled"]
        for service in ("secretsmanager", "lambda", "scheduler", "events", "logs")
    )
    assert "aws_vpc_security_group_ingress_rule.endpoints_from_lambda[0]" in resources

    invoke_config = resources["aws_lambda_function_event_invoke_config.aggregator"]
    assert invoke_config["function_name"] == "fma-aggregator"
    assert invoke_config["destination_config"][0]["on_failure"]
    assert resources["aws_sqs_queue.aggregator_failures"]["name"] == "fma-aggregator-failures"

    alarms = {values["alarm_name"]: values for address, values in resources.items() if "metric_alarm" in address}
    assert set(alarms) == {
        "fma-api-errors",
        "fma-api-throttles",
        "fma-aggregator-errors",
        "fma-aggregator-throttles",
        "fma-aggregator-failures-queued",
    }
    assert alarms["fma-aggregator-failures-queued"]["metric_name"] == "ApproximateNumberOfMessagesVisible"

    # Migrations on the aggregator (900 s), re-run with each new code; then the first admin on the API.
    migrate = resources["aws_lambda_invocation.migrate"]
    assert (migrate["function_name"], json.loads(migrate["input"])) == (
        "fma-aggregator",
        {"detail": "update_metadata_db"},
    )
    assert set(migrate["triggers"]) == {"source_code_hash"}
    sweep = resources["aws_lambda_invocation.delete_orphan_results"]
    assert (sweep["function_name"], json.loads(sweep["input"])) == (
        "fma-aggregator",
        {"detail": "delete_orphan_results"},
    )
    assert set(sweep["triggers"]) == {"source_code_hash"}
    schedules = resources["aws_lambda_invocation.migrate_schedules"]
    assert (schedules["function_name"], json.loads(schedules["input"])) == (
        "fma-aggregator",
        {"detail": "migrate_schedules"},
    )
    assert set(schedules["triggers"]) == {"source_code_hash"}
    assert resources["aws_scheduler_schedule_group.fma"]["name"] == "fma"
    bootstrap = resources["aws_lambda_invocation.bootstrap_admin"]
    assert (bootstrap["function_name"], json.loads(bootstrap["input"])) == ("fma-api", {"detail": "bootstrap_admin"})

    lifecycle = resources["module.model_data_bucket.aws_s3_bucket_lifecycle_configuration.this"]
    expiring = {rule["filter"][0]["prefix"]: rule["expiration"][0]["days"] for rule in lifecycle["rule"][1:]}
    assert expiring == {f"{UPLOADS_FOLDER}/": 1, f"{DOWNLOADS_FOLDER}/": 1}

    aggregator = resources['aws_lambda_function.fma["aggregator"]']
    assert aggregator["reserved_concurrent_executions"] == 10
    assert aggregator["timeout"] == 900
    assert not any(address.startswith("aws_db_proxy") for address in resources)


@pytest.mark.integration
def test_the_production_example_with_a_nat_has_an_rds_proxy_and_no_endpoints(tmp_path, moto_url, deployer_account):
    _, tfvars = deployer_account
    workdir = initialised_copy(tmp_path / "terraform_deploy")
    point_at_moto(workdir, moto_url)
    artifact = stub_artifact(tmp_path / "fma-lambda.zip")
    # A VPC that routes to AWS through a NAT gateway needs no endpoints.
    overrides = tfvars | {"lambda_zip_path": str(artifact), "vpc_routes_to_aws": "true"}
    # The example's placeholders give way to the moto account's VPC (later -var options win).
    arguments = [
        f"-var={name}={json.dumps(value) if isinstance(value, list) else value}" for name, value in overrides.items()
    ]

    resources, outputs = planned(workdir, "-var-file=examples/production.tfvars", *arguments)

    assert resources["aws_db_proxy.fma[0]"]["require_tls"] is True
    assert resources["aws_db_proxy_target.fma[0]"]["db_instance_identifier"] == "fma-existing"
    # The functions' host (output db_address) is the proxy's endpoint, known once the proxy exists; the
    # instance's address would be known now (it is read from the existing instance).
    assert outputs["db_address"]["after_unknown"] is True
    assert not [address for address in resources if "endpoint" in address]
