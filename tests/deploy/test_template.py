"""template.yaml: valid for CloudFormation, and wired to the code and the Makefile it deploys."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode

from fma_django_connectors.services import UPLOADS_FOLDER
from fma_django_connectors.storage.downloads import DOWNLOADS_FOLDER
from tests.deploy.support import REPOSITORY, TEMPLATE, names_read_by_the_service, start_remote_settings

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


@pytest.fixture(scope="module")
def template():
    loaded, problems = decode(str(TEMPLATE))
    assert not problems, problems
    return loaded


@pytest.fixture(scope="module")
def functions(template):
    return {
        name: resource for name, resource in template["Resources"].items() if resource["Type"] == SERVERLESS_FUNCTION
    }


@pytest.fixture(scope="module")
def environment(template):
    return dict(template["Globals"]["Function"]["Environment"]["Variables"])


def test_cfn_lint_finds_nothing():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_and_the_aggregator_are_deployed(functions):
    handlers = {resource["Properties"]["Handler"] for resource in functions.values()}
    assert handlers == {"service_initialization.handler", "aggregator_initialization.handler"}


def test_every_handler_is_a_function_of_the_code_root(functions):
    for name, resource in functions.items():
        module_name, _, attribute = resource["Properties"]["Handler"].rpartition(".")
        # The artifact's root is api_service/: the module must be a file there, not found elsewhere.
        assert (REPOSITORY / "api_service" / f"{module_name}.py").is_file(), name
        handler = getattr(importlib.import_module(module_name), attribute)
        assert callable(handler), name


def test_every_function_is_built_by_a_makefile_target(functions, tmp_path):
    for name, resource in functions.items():
        assert resource["Metadata"]["BuildMethod"] == "makefile"
        # SAM runs `make build-<logical id>` with ARTIFACTS_DIR set; -n shows the recipe without running it.
        result = subprocess.run(
            ["make", "-n", "-C", str(REPOSITORY), f"build-{name}", f"ARTIFACTS_DIR={tmp_path}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f'--target "{tmp_path}"' in result.stdout
        assert "collectstatic" in result.stdout


def test_the_runtime_is_the_one_the_wheels_are_built_for(template):
    makefile = (REPOSITORY / "Makefile").read_text()
    built_for = re.search(r"^LAMBDA_PYTHON_VERSION := (\S+)$", makefile, re.MULTILINE).group(1)
    assert template["Globals"]["Function"]["Runtime"] == f"python{built_for}"


def test_the_settings_parameter_selects_a_settings_module(template, environment):
    selector = environment["DJANGO_SETTINGS_MODULE"]["Fn::Sub"]
    for choice in template["Parameters"]["Settings"]["AllowedValues"]:
        module_name = selector.replace("${Settings}", choice)
        assert (REPOSITORY / "api_service" / (module_name.replace(".", "/") + ".py")).is_file(), module_name


def test_every_variable_the_template_sets_is_read_by_the_service(environment):
    unread = set(environment) - names_read_by_the_service() - {"DJANGO_SETTINGS_MODULE"}
    assert not unread, f"the template sets variables no code reads: {sorted(unread)}"


def test_settings_remote_starts_with_the_variables_the_template_sets(environment):
    result = start_remote_settings(environment)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert loaded["database"] == ["fma", "fma-db.abcdefghij.us-east-1.rds.amazonaws.com", 5432, "fma_admin"]
    assert loaded["bucket"] == "fma-model-data-123456789012"


def test_settings_remote_refuses_to_start_without_them():
    # The counterpart of the test above: the environment is what makes it pass.
    result = start_remote_settings([])
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr


def test_the_default_trusted_origin_admits_the_api_hosts_of_the_region(environment):
    # The API's own host cannot be named without a cycle; a leading dot admits its subdomains in Django.
    fallback = environment["TRUSTED_ORIGIN"]["Fn::If"][2]["Fn::Sub"]
    assert fallback == ".execute-api.${AWS::Region}.${AWS::URLSuffix}"


def test_the_api_routes_cover_the_contract(functions):
    events = functions["ApiFunction"]["Properties"]["Events"].values()
    routes = {(event["Properties"]["Method"], event["Properties"]["Path"]) for event in events}
    assert routes == {
        ("ANY", "/api/{proxy+}"),
        ("ANY", "/admin"),
        ("ANY", "/admin/{proxy+}"),
        ("GET", "/static/{proxy+}"),
        ("POST", "/api-token-auth"),
    }


def _statement(function, sid):
    statements = [
        statement
        for policy in function["Properties"]["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]
    (found,) = [statement for statement in statements if statement["Sid"] == sid]
    return found


def _in_the_stacks_group(statement):
    return statement["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:scheduler:${AWS::Region}:${AWS::AccountId}:schedule/${AggregationSchedules}/*"
    }


def test_the_stack_owns_its_schedule_group(template, environment):
    group = template["Resources"]["AggregationSchedules"]
    assert group["Type"] == "AWS::Scheduler::ScheduleGroup"
    assert group["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    assert "DeletionPolicy" not in group  # deleting the stack deletes the group and its schedules
    assert environment["FMA_SCHEDULE_GROUP"] == {"Ref": "AggregationSchedules"}
    assert environment["FMA_SCHEDULE_ROLE_ARN"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}


def test_the_schedules_role_may_invoke_only_the_aggregator_for_only_the_stacks_group(template):
    role = template["Resources"]["SchedulerRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": ["AggregationSchedules", "Arn"]}}
    (policy,) = role["Policies"]
    (invoke,) = policy["PolicyDocument"]["Statement"]
    aggregator = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-aggregator"
    assert invoke["Action"] == "lambda:InvokeFunction"
    assert invoke["Resource"] == [{"Fn::Sub": aggregator}, {"Fn::Sub": f"{aggregator}:*"}]


def test_the_api_may_manage_only_the_schedules_of_the_stacks_group(functions):
    schedules = _statement(functions["ApiFunction"], "DeploymentSchedules")
    assert _in_the_stacks_group(schedules)
    assert sorted(schedules["Action"]) == [
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "scheduler:UpdateSchedule",
    ]
    assert _statement(functions["ApiFunction"], "PassSchedulerRole")["Resource"] == {
        "Fn::GetAtt": ["SchedulerRole", "Arn"]
    }


def test_the_aggregator_may_settle_only_the_schedules_of_the_stacks_group(functions):
    schedules = _statement(functions["AggregatorFunction"], "DeploymentSchedules")
    assert _in_the_stacks_group(schedules)
    assert sorted(schedules["Action"]) == ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]
    passed = _statement(functions["AggregatorFunction"], "PassSchedulerRole")
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    legacy = _statement(functions["AggregatorFunction"], "DeleteLegacyRules")
    assert legacy["Resource"]["Fn::Sub"].endswith(":rule/fma-scheduled-*")


def test_no_eventbridge_rule_may_invoke_the_aggregator(template):
    permissions = [
        resource for resource in template["Resources"].values() if resource["Type"] == "AWS::Lambda::Permission"
    ]
    assert all(permission["Properties"]["Principal"] != "events.amazonaws.com" for permission in permissions)


def test_the_aggregator_has_reserved_concurrency_and_an_on_failure_queue(template, functions):
    properties = functions["AggregatorFunction"]["Properties"]
    assert properties["ReservedConcurrentExecutions"] == {"Ref": "AggregatorConcurrency"}
    assert template["Parameters"]["AggregatorConcurrency"]["MinValue"] == 1
    on_failure = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "SQS", "Destination": {"Fn::GetAtt": ["AggregatorFailuresQueue", "Arn"]}}


def test_alarms_watch_errors_throttles_and_the_failures_queue(template):
    alarms = [
        resource["Properties"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    ]
    watched = {
        (
            alarm["MetricName"],
            alarm["Dimensions"][0]["Value"].get("Ref") or alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0],
        )
        for alarm in alarms
    }
    assert watched == {
        ("Errors", "ApiFunction"),
        ("Throttles", "ApiFunction"),
        ("Errors", "AggregatorFunction"),
        ("Throttles", "AggregatorFunction"),
        ("ApproximateNumberOfMessagesVisible", "AggregatorFailuresQueue"),
    }


def test_vpc_endpoints_are_created_unless_the_vpc_routes_to_aws(template):
    endpoints = {
        resource["Properties"]["ServiceName"]["Fn::Sub"].rpartition(".")[2]: resource
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::EC2::VPCEndpoint"
    }
    assert set(endpoints) == {"secretsmanager", "lambda", "scheduler", "events", "logs", "s3"}
    assert template["Parameters"]["VpcRoutesToAws"]["Default"] == "false"
    assert template["Conditions"]["CreateEndpoints"] == {
        "Fn::And": [{"Condition": "HasVpc"}, {"Fn::Equals": [{"Ref": "VpcRoutesToAws"}, "false"]}]
    }
    for service in ("secretsmanager", "lambda", "scheduler", "events", "logs"):
        assert endpoints[service]["Condition"] == "CreateEndpoints"
        assert endpoints[service]["Properties"]["PrivateDnsEnabled"] is True


def test_the_admin_password_is_generated_by_cloudformation(template, functions):
    generated = template["Resources"]["AdminSecret"]["Properties"]["GenerateSecretString"]
    assert generated["GenerateStringKey"] == "password"
    assert "password" not in generated["SecretStringTemplate"]["Fn::Sub"]
    statements = [
        statement
        for policy in functions["ApiFunction"]["Properties"]["Policies"]
        if isinstance(policy, dict) and "Statement" in policy
        for statement in policy["Statement"]
    ]
    (admin,) = [statement for statement in statements if statement["Sid"] == "AdminSecret"]
    assert admin["Resource"] == {"Ref": "AdminSecret"}


def test_transient_objects_expire_in_the_model_data_bucket(template):
    rules = template["Resources"]["ModelDataBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]

    expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule}
    assert expiring == {f"{UPLOADS_FOLDER}/": 1, f"{DOWNLOADS_FOLDER}/": 1}
    (versions,) = [rule for rule in rules if "NoncurrentVersionExpiration" in rule]
    assert versions["NoncurrentVersionExpiration"] == {"NoncurrentDays": 90}


def test_sam_bootstrap_migrates_the_schedules_after_the_database():
    # -n prints the recipe without running it (nothing reaches AWS).
    result = subprocess.run(
        ["make", "-n", "-C", str(REPOSITORY), "sam-bootstrap", "STACK=fma"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = re.findall(r'--event \'\{"detail": "([a-z_]+)"\}\'', result.stdout)
    assert events[0] == "update_metadata_db"
    assert "migrate_schedules" in events[1:]
