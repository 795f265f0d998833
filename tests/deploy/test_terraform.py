"""terraform_deploy/: parses, declares what it uses, validates, passes the static scan, and applies."""

import contextlib
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
    output = result.stdout + result.stderr
    errors = output[output.find("Error:") :] if "Error:" in output else output[-3000:]
    assert result.returncode == 0, f"terraform {args[0]} failed:\n{errors[:5000]}"
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
    "sns",
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


@contextlib.contextmanager
def moto_server():
    """A moto server on a free loopback port, its Lambda without Docker; reset and stopped on exit."""
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
    try:
        yield url
    finally:
        # moto's backends live in this process, not in the server: the next test starts from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
        server.stop()


@pytest.fixture
def moto_url():
    with moto_server() as url:
        yield url


def moto_account(moto_url, monkeypatch):
    """Credentials for moto in this process (and terraform's), and a VPC with two private subnets."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # The created database's monitoring role attaches an AWS-managed policy.
    monkeypatch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    aws = {"endpoint_url": moto_url, "region_name": "us-east-1"}
    ec2 = boto3.client("ec2", **aws)
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_ids = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for index, zone in enumerate(["us-east-1a", "us-east-1b"])
    ]
    return aws, {"vpc_id": vpc_id, "subnet_ids": subnet_ids}


@pytest.fixture
def deployer_vpc(moto_url, monkeypatch):
    """What every deployer brings, in moto: a VPC with two private subnets."""
    return moto_account(moto_url, monkeypatch)


@pytest.fixture
def deployer_account(deployer_vpc):
    """What a deployer brings, in moto: a VPC with two private subnets, and a database with its secret."""
    aws, network = deployer_vpc
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
    return aws, network | {
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
    # The API and the schedules invoke the aggregator's live alias; the schedules' role may invoke the function
    # with any qualifier.
    assert outputs["aggregator_function_arn"].endswith(":function:fma-aggregator:live")
    assert_schedules_are_the_deployments_own(aws, environment, outputs["aggregator_function_arn"].removesuffix(":live"))

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


# Every deployment's alarms: errors and throttles of each function, failures waiting, the API's 5xx rate and
# latency, the database's CPU, connections and free storage (and the proxy's pool with create_rds_proxy).
ALARMS = {
    "fma-api-errors",
    "fma-api-throttles",
    "fma-aggregator-errors",
    "fma-aggregator-throttles",
    "fma-aggregator-failures-queued",
    "fma-api-5xx-rate",
    "fma-api-latency-p99",
    "fma-db-cpu",
    "fma-db-connections",
    "fma-db-free-storage",
}


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
        "com.amazonaws.us-east-1.s3": "Gateway",
    }
    assert all(
        resources[f'aws_vpc_endpoint.interface["{service}"]']["private_dns_enabled"]
        for service in ("secretsmanager", "lambda", "scheduler", "events")
    )
    assert "aws_vpc_security_group_ingress_rule.endpoints_from_lambda[0]" in resources

    invoke_config = resources["aws_lambda_function_event_invoke_config.aggregator"]
    assert invoke_config["function_name"] == "fma-aggregator"
    assert invoke_config["destination_config"][0]["on_failure"]
    assert resources["aws_sqs_queue.aggregator_failures"]["name"] == "fma-aggregator-failures"

    alarms = {values["alarm_name"]: values for address, values in resources.items() if "metric_alarm" in address}
    assert set(alarms) == ALARMS
    assert alarms["fma-aggregator-failures-queued"]["metric_name"] == "ApproximateNumberOfMessagesVisible"

    # Migrations on the aggregator (900 s), re-run with each new version (and app role secret); then the
    # first admin on the API.
    migrate = resources["aws_lambda_invocation.migrate"]
    assert (migrate["function_name"], json.loads(migrate["input"])) == (
        "fma-aggregator",
        {"detail": "update_metadata_db"},
    )
    invocations = {
        name: body
        for block in load(TERRAFORM_DIR / "lambda.tf")["resource"]
        for name, body in block.get("aws_lambda_invocation", {}).items()
    }
    assert set(invocations["migrate"]["triggers"]) == {"version", "app_db_secret"}
    sweep = resources["aws_lambda_invocation.delete_orphan_results"]
    assert (sweep["function_name"], json.loads(sweep["input"])) == (
        "fma-aggregator",
        {"detail": "delete_orphan_results"},
    )
    assert set(invocations["delete_orphan_results"]["triggers"]) == {"version"}
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


# --- The production example: networking, release order, alarms, teardown -----------------------------


def production_arguments(network, *arguments):
    """``examples/production.tfvars`` in the moto account's VPC (it creates its database), then ``arguments``."""
    variables = [f"-var=vpc_id={network['vpc_id']}", f"-var=subnet_ids={json.dumps(network['subnet_ids'])}"]
    return ["-var-file=examples/production.tfvars", *variables, *arguments]


def plan_json(workdir, *arguments):
    terraform(workdir, "plan", "-out=fma.tfplan", *arguments)
    return json.loads(terraform(workdir, "show", "-json", "fma.tfplan").stdout)


def created(plan):
    return {
        change["address"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if "create" in change["change"]["actions"]
    }


def planned_change(plan, address):
    (change,) = [change["change"] for change in plan["resource_changes"] if change["address"] == address]
    return change


def configured(plan):
    """``{address: configuration}`` of the root module's resources (expressions, references, depends_on)."""
    return {resource["address"]: resource for resource in plan["configuration"]["root_module"]["resources"]}


def references(configuration, argument):
    """What the expression of ``argument`` refers to (resources, their attributes, variables)."""
    return set(json_references(configuration["expressions"][argument]))


def json_references(expression):
    if isinstance(expression, dict):
        yield from expression.get("references", [])
        for key, value in expression.items():
            if key != "references":
                yield from json_references(value)
    elif isinstance(expression, list):
        for item in expression:
            yield from json_references(item)


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
# The example with its optional parts set: someone to tell, a custom domain, the sizing knobs.
PRODUCTION_OPTIONS = [
    "-var=alarm_email=oncall@example.org",
    "-var=custom_domain_name=fma.example.org",
    f"-var=custom_domain_certificate_arn={CERTIFICATE}",
    "-var=api_throttle_rate_limit=250",
    "-var=api_reserved_concurrency=40",
]


@pytest.fixture(scope="module")
def production_plans(tmp_path_factory):
    """Plans of the production example: with PRODUCTION_OPTIONS, and with the opt-ins (a Logs endpoint, no
    deletion protection). Made once for the tests below, which read them."""
    root = tmp_path_factory.mktemp("production")
    workdir = initialised_copy(root / "terraform_deploy")
    with moto_server() as url, pytest.MonkeyPatch.context() as monkeypatch:
        _, network = moto_account(url, monkeypatch)
        point_at_moto(workdir, url)
        artifact = f"-var=lambda_zip_path={stub_artifact(root / 'fma-lambda.zip')}"
        given = plan_json(workdir, *production_arguments(network, artifact, *PRODUCTION_OPTIONS))
        opted_in = plan_json(
            workdir,
            *production_arguments(network, artifact, "-var=logs_endpoint=true", "-var=deletion_protection=false"),
        )
        console = subprocess.run(
            ["terraform", "console", *production_arguments(network, artifact, *PRODUCTION_OPTIONS)],
            input="local.trusted_origin\n",
            cwd=workdir,
            env=terraform_environment(),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    return given, opted_in, json.loads(console.stdout.strip())


@pytest.mark.integration
def test_the_proxy_reaches_secrets_manager_and_the_functions_reach_only_the_endpoints(production_plans):
    plan, opted_in, _ = production_plans
    resources = created(plan)
    rules = {address: values for address, values in resources.items() if "security_group_" in address}

    # The proxy signs in with secrets it reads through the Secrets Manager endpoint: egress to it, and admitted.
    (proxy_https,) = [
        values
        for address, values in rules.items()
        if "egress" in address and "rds_proxy" in address and values.get("from_port") == 443
    ]
    assert proxy_https["cidr_ipv4"] is None
    assert "aws_vpc_security_group_ingress_rule.endpoints_from_rds_proxy[0]" in rules
    config = configured(plan)
    assert references(
        config["aws_vpc_security_group_egress_rule.rds_proxy_to_secrets_manager"], "referenced_security_group_id"
    ) >= {"aws_security_group.endpoints[0].id"}
    assert references(
        config["aws_vpc_security_group_ingress_rule.endpoints_from_rds_proxy"], "referenced_security_group_id"
    ) >= {"aws_security_group.rds_proxy[0].id"}

    # The functions' HTTPS goes to the endpoints' group and S3's prefix list, nowhere else.
    lambda_https = [
        address
        for address, values in rules.items()
        if "egress" in address and "lambda" in address and values.get("from_port") == 443
    ]
    assert sorted(lambda_https) == [
        "aws_vpc_security_group_egress_rule.lambda_endpoints[0]",
        "aws_vpc_security_group_egress_rule.lambda_s3[0]",
    ]
    assert all(rules[address]["cidr_ipv4"] is None for address in lambda_https)
    assert references(config["aws_vpc_security_group_egress_rule.lambda_s3"], "prefix_list_id") >= {
        "aws_vpc_endpoint.s3[0].prefix_list_id"
    }

    # Lambda ships its logs outside the VPC: no Logs endpoint unless asked for.
    services = {
        values["service_name"].rsplit(".", 1)[1]
        for address, values in resources.items()
        if "aws_vpc_endpoint." in address
    }
    assert services == {"secretsmanager", "lambda", "scheduler", "events", "s3"}
    assert 'aws_vpc_endpoint.interface["logs"]' in created(opted_in)


@pytest.mark.integration
def test_the_database_is_migrated_through_an_available_proxy_with_the_app_role_secret(production_plans):
    plan, opted_in, _ = production_plans
    resources, config = created(plan), configured(plan)

    migrate = config["aws_lambda_invocation.migrate"]
    # The created instance (available when it exists) and the proxy's registered target come first, and
    # the proxy's route to its secrets.
    assert {
        "aws_db_instance.fma",
        "aws_db_proxy_target.fma",
        "aws_vpc_security_group_egress_rule.rds_proxy_to_secrets_manager",
        "aws_vpc_security_group_ingress_rule.endpoints_from_rds_proxy",
    } <= set(migrate["depends_on"])

    # The service signs in as its own role, whose secret the proxy knows too; the master user only migrates.
    assert resources["aws_secretsmanager_secret.app_db"]["name"] == "fma/app-db-user"
    environment = blocks(TERRAFORM_DIR, "locals")["function_environment"]
    assert re.search(r"\bFMA_APP_DB_SECRET_PATH = aws_secretsmanager_secret\.app_db\.arn\b", environment)
    assert len(resources["aws_db_proxy.fma[0]"]["auth"]) == 2
    assert references(config["aws_db_proxy.fma"], "auth") >= {"aws_secretsmanager_secret.app_db.arn"}
    # A new app secret version re-runs the migration, which sets the role's password from it.
    assert references(migrate, "triggers") >= {"aws_secretsmanager_secret_version.app_db.version_id"}

    # A stack destroyed and created again takes a second final snapshot instead of failing on the name:
    # the name is unknown until applied (it carries the creation time; the apply test reads it).
    database = planned_change(plan, "aws_db_instance.fma[0]")
    assert database["after_unknown"]["final_snapshot_identifier"] is True
    assert database["after"]["deletion_protection"] is True
    assert created(opted_in)["aws_db_instance.fma[0]"]["deletion_protection"] is False


@pytest.mark.integration
def test_every_alarm_tells_the_alarm_topic_and_the_service_is_watched(production_plans):
    plan, _, _ = production_plans
    resources = created(plan)

    subscription = resources["aws_sns_topic_subscription.alarm_email[0]"]
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "oncall@example.org")
    alarms = {
        change["change"]["after"]["alarm_name"]: change["change"]
        for change in plan["resource_changes"]
        if change["type"] == "aws_cloudwatch_metric_alarm"
    }
    # Every alarm, when it fires and when it clears, tells the topic (whose ARN is known once it exists).
    assert "aws_sns_topic.alarms.arn" in blocks(TERRAFORM_DIR, "locals")["alarm_actions"]
    config = configured(plan)
    for address in {change["address"].split("[")[0] for change in plan["resource_changes"]}:
        if address.startswith("aws_cloudwatch_metric_alarm."):
            assert references(config[address], "alarm_actions") >= {"local.alarm_actions"}, address
            assert references(config[address], "ok_actions") >= {"local.alarm_actions"}, address
    for name, alarm in alarms.items():
        assert alarm["after_unknown"]["alarm_actions"] in (True, [True]), name
    assert references(configured(plan)["aws_sns_topic_subscription.alarm_email"], "topic_arn") >= {
        "aws_sns_topic.alarms.arn"
    }

    assert set(alarms) == ALARMS | {"fma-db-proxy-borrow-latency"}
    rate = {query["id"]: query for query in alarms["fma-api-5xx-rate"]["after"]["metric_query"]}
    assert rate["errors"]["metric"][0]["metric_name"] == "5xx"
    assert rate["requests"]["metric"][0]["metric_name"] == "Count"
    assert alarms["fma-api-latency-p99"]["after"]["extended_statistic"] == "p99"
    assert alarms["fma-db-proxy-borrow-latency"]["after"]["metric_name"] == "DatabaseConnectionsBorrowLatency"
    assert "aws_cloudwatch_dashboard.fma[0]" in resources


@pytest.mark.integration
def test_callers_reach_the_live_alias_which_moves_after_the_migration(production_plans):
    plan, _, _ = production_plans
    resources, config = created(plan), configured(plan)

    assert all(resources[f'aws_lambda_function.fma["{name}"]']["publish"] for name in ("api", "aggregator"))
    assert {resources[f'aws_lambda_alias.live["{name}"]']["name"] for name in ("api", "aggregator")} == {"live"}
    # The migration runs on the version just published, and the alias waits for it.
    migrate = config["aws_lambda_invocation.migrate"]
    assert references(migrate, "qualifier") >= {'aws_lambda_function.fma["aggregator"].version'}
    assert "aws_lambda_invocation.migrate" in config["aws_lambda_alias.live"]["depends_on"]
    assert references(config["aws_lambda_alias.live"], "function_version") >= {"var.live_versions"}
    # API Gateway, the API's invokes and the failure destination go through the alias.
    assert references(config["aws_apigatewayv2_integration.api_function"], "integration_uri") >= {
        'aws_lambda_alias.live["api"].invoke_arn'
    }
    assert references(config["aws_lambda_permission.api_from_gateway"], "qualifier") >= {
        'aws_lambda_alias.live["api"].name'
    }
    assert references(config["aws_lambda_function_event_invoke_config.aggregator"], "qualifier") >= {
        'aws_lambda_alias.live["aggregator"].name'
    }
    assert blocks(TERRAFORM_DIR, "locals")["aggregator_live_arn"].endswith(":live")

    stage = resources["aws_apigatewayv2_stage.default"]["default_route_settings"][0]
    assert (stage["throttling_rate_limit"], stage["throttling_burst_limit"]) == (250, 200)
    assert resources['aws_lambda_function.fma["api"]']["reserved_concurrent_executions"] == 40


@pytest.mark.integration
def test_a_custom_domain_is_mapped_to_the_stage_and_is_the_trusted_origin(production_plans):
    plan, opted_in, trusted_origin = production_plans
    resources = created(plan)
    assert trusted_origin == "https://fma.example.org"
    domain = resources["aws_apigatewayv2_domain_name.fma[0]"]
    assert domain["domain_name"] == "fma.example.org"
    assert domain["domain_name_configuration"][0]["certificate_arn"] == CERTIFICATE
    assert "aws_apigatewayv2_api_mapping.fma[0]" in resources
    assert not [address for address in created(opted_in) if "domain_name" in address or "api_mapping" in address]


def state_attributes(workdir):
    """``{(type, name, index): attributes}`` of the managed resources in the state."""
    state = json.loads((workdir / "terraform.tfstate").read_text())
    return {
        (resource["type"], resource["name"], instance.get("index_key")): instance["attributes"]
        for resource in state["resources"]
        if resource["mode"] == "managed"
        for instance in resource["instances"]
    }


# What a release touches: the database behind its proxy, the functions with their aliases and deploy-time
# invocations, the HTTP API in front (and whatever these depend on). Left out: the S3 lifecycle rules and
# the queue, which the provider waits on for a minute against moto, and the custom domain, whose status
# moto does not report.
RELEASE_TARGETS = [
    "aws_lambda_alias.live",
    "aws_lambda_invocation.delete_orphan_results",
    "aws_lambda_invocation.bootstrap_admin",
    "aws_lambda_permission.api_from_gateway",
    "aws_apigatewayv2_route.fma",
    "aws_apigatewayv2_stage.default",
]


@pytest.mark.integration
def test_upgrade_rollback_and_teardown_of_the_production_example(tmp_path, deployer_vpc):
    """Apply, upgrade to a new artifact, roll back to the first version, then destroy down to an empty state."""
    aws, network = deployer_vpc
    workdir = initialised_copy(tmp_path / "terraform_deploy")
    point_at_moto(workdir, aws["endpoint_url"])
    artifact = stub_artifact(tmp_path / "fma-lambda.zip")
    arguments = production_arguments(
        network,
        f"-var=lambda_zip_path={artifact}",
        "-var=deletion_protection=false",
    )
    targets = [f"-target={target}" for target in RELEASE_TARGETS]
    lambda_client = boto3.client("lambda", **aws)

    def live_versions():
        return {
            name: lambda_client.get_alias(FunctionName=f"fma-{name}", Name="live")["FunctionVersion"]
            for name in ("api", "aggregator")
        }

    terraform(workdir, "apply", "-auto-approve", *arguments, *targets)
    assert live_versions() == {"api": "1", "aggregator": "1"}
    state = state_attributes(workdir)
    environment = lambda_client.get_function_configuration(FunctionName="fma-api", Qualifier="live")["Environment"]
    app_secret = state[("aws_secretsmanager_secret", "app_db", None)]["arn"]
    assert environment["Variables"]["FMA_APP_DB_SECRET_PATH"] == app_secret
    assert environment["Variables"]["AGGREGATOR_LAMBDA_ARN"] == state[("aws_lambda_alias", "live", "aggregator")]["arn"]
    secrets_manager = boto3.client("secretsmanager", **aws)
    app_role = json.loads(secrets_manager.get_secret_value(SecretId=app_secret)["SecretString"])
    assert (app_role["username"], len(app_role["password"])) == ("fma_app", 40)
    integration = state[("aws_apigatewayv2_integration", "api_function", None)]
    assert integration["integration_uri"] == state[("aws_lambda_alias", "live", "api")]["invoke_arn"]
    database = boto3.client("rds", **aws).describe_db_instances(DBInstanceIdentifier="fma-db")["DBInstances"][0]
    assert database["DeletionProtection"] is False
    snapshot_name = state[("aws_db_instance", "fma", 0)]["final_snapshot_identifier"]
    assert re.fullmatch(r"fma-db-final-\d{14}", snapshot_name)

    # An upgrade: the new code is published, migrated on its own version, then made live.
    with zipfile.ZipFile(artifact, "a") as archive:
        archive.writestr("release.txt", "2")
    terraform(workdir, "apply", "-auto-approve", *arguments, *targets)
    state = state_attributes(workdir)
    assert state[("aws_lambda_invocation", "migrate", None)]["qualifier"] == "2"
    assert live_versions() == {"api": "2", "aggregator": "2"}
    assert state[("aws_db_instance", "fma", 0)]["final_snapshot_identifier"] == snapshot_name

    # The rollback: both aliases back on version 1; nothing published, nothing migrated again.
    rollback = json.dumps({"api": "1", "aggregator": "1"})
    terraform(workdir, "apply", "-auto-approve", *arguments, *targets, f"-var=live_versions={rollback}")
    assert live_versions() == {"api": "1", "aggregator": "1"}
    assert state_attributes(workdir)[("aws_lambda_invocation", "migrate", None)]["qualifier"] == "2"
    for name in ("api", "aggregator"):
        versions = lambda_client.list_versions_by_function(FunctionName=f"fma-{name}")["Versions"]
        assert sorted(version["Version"] for version in versions) == ["$LATEST", "1", "2"]

    # Teardown: with deletion protection off, destroy removes everything, the database after its snapshot.
    terraform(workdir, "destroy", "-auto-approve", *arguments)
    assert terraform(workdir, "state", "list").stdout.strip() == ""
    assert boto3.client("rds", **aws).describe_db_instances()["DBInstances"] == []
    assert lambda_client.list_functions()["Functions"] == []
