"""template.yaml: valid for CloudFormation, and wired to the code and the Makefile it deploys."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

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


class _NoManagedPolicyNames:
    """The translator looks managed policies up by name in IAM; the template names none (only ARNs and Refs)."""

    def load(self):
        return {}


def translate(template, code_uri="s3://fma-artifacts/0123abcd.zip"):
    """The CloudFormation template SAM deploys, translated offline as `sam deploy` does after `sam package`
    (which replaces CodeUri with the uploaded artifact's S3 address)."""
    packaged = json.loads(json.dumps(template))
    packaged["Globals"]["Function"]["CodeUri"] = code_uri
    return transform(packaged, {"AWS::Region": "us-east-1"}, _NoManagedPolicyNames())["Resources"]


@pytest.fixture(scope="module")
def deployed(template, monkeypatch_module):
    return translate(template)


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        # The translator asks boto3 for the region of the pseudo parameters; nothing is called.
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield patch


def test_cfn_lint_finds_nothing():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([cfn_lint, str(TEMPLATE)], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_api_and_the_aggregator_are_deployed(functions):
    handlers = {resource["Properties"]["Handler"] for resource in functions.values()}
    assert handlers == {"service_initialization.handler", "aggregator_initialization.handler"}


class TestDeployOperations:
    """Each deploy migrates the database and creates the first admin before the new code serves."""

    def test_a_custom_resource_runs_them_on_the_new_version_of_the_deploy_function(self, deployed):
        properties = deployed["DeployOperations"]["Properties"]
        assert deployed["DeployOperations"]["Type"].startswith("Custom::")
        # The alias is moved to the new version before the request is sent (it is referenced).
        assert properties["ServiceToken"] == {"Ref": "DeployFunctionAliaslive"}
        assert (
            deployed["DeployFunctionAliaslive"]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
            == (properties["CodeVersion"]["Ref"])
        )
        # The handler that answers custom resource requests (tests/api_service/test_aggregator_initialization.py).
        assert deployed["DeployFunction"]["Properties"]["Handler"] == "aggregator_initialization.handler"
        assert deployed["DeployFunction"]["Properties"]["Timeout"] == 900

    def test_a_new_artifact_sends_it_an_update(self, template, monkeypatch_module):
        # CloudFormation sends Update only when a property changes: the version changes with the artifact.
        first = translate(template, "s3://fma-artifacts/0123abcd.zip")["DeployOperations"]["Properties"]
        second = translate(template, "s3://fma-artifacts/4567ef01.zip")["DeployOperations"]["Properties"]
        assert first["CodeVersion"] != second["CodeVersion"]
        assert first["ServiceToken"] == second["ServiceToken"]  # CloudFormation refuses a changed ServiceToken

    @pytest.mark.parametrize("function", ["ApiFunction", "AggregatorFunction"])
    def test_the_functions_change_only_after_it_succeeded(self, deployed, function):
        # Their code, new version and alias all wait: a failed migration rolls back before any traffic moves.
        assert deployed[function]["DependsOn"] == "DeployOperations"
        alias = deployed[f"{function}Aliaslive"]["Properties"]
        assert alias["FunctionName"] == {"Ref": function}

    def test_the_deploy_function_reads_the_admin_secret(self, functions):
        admin = _statement(functions["DeployFunction"], "AdminSecret")
        assert (admin["Action"], admin["Resource"]) == ("secretsmanager:GetSecretValue", {"Ref": "AdminSecret"})

    def test_in_private_subnets_it_waits_for_the_endpoints_it_needs(self, template):
        endpoints = template["Resources"]["DeployOperations"]["Properties"]["Endpoints"]["Fn::If"]
        assert endpoints[0] == "CreateEndpoints"
        assert endpoints[1] == [
            {"Ref": "SecretsManagerEndpoint"},
            {"Ref": "S3Endpoint"},
            {"Ref": "SchedulerEndpoint"},
            {"Ref": "EventsEndpoint"},
        ]

    def test_nothing_else_runs_them_by_hand(self):
        makefile = (REPOSITORY / "Makefile").read_text()
        assert "sam-bootstrap" not in makefile


class TestReleases:
    """Both functions publish a version per deploy; callers invoke the live alias, so a rollback is moving it back."""

    @pytest.mark.parametrize("function", ["ApiFunction", "AggregatorFunction", "DeployFunction"])
    def test_each_function_publishes_versions_behind_a_live_alias(self, functions, function):
        assert functions[function]["Properties"]["AutoPublishAlias"] == "live"

    def test_api_gateway_invokes_the_alias(self, deployed):
        body = deployed["FmaApi"]["Properties"]["Body"]
        uris = {
            method["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
            for path in body["paths"].values()
            for method in path.values()
        }
        assert uris == {
            "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
            "${ApiFunctionAliaslive}/invocations"
        }
        permissions = [
            resource["Properties"]["FunctionName"]
            for resource in deployed.values()
            if resource["Type"] == "AWS::Lambda::Permission"
            and resource["Properties"]["Principal"] == "apigateway.amazonaws.com"
        ]
        assert permissions
        assert all(name == {"Ref": "ApiFunctionAliaslive"} for name in permissions)

    def test_the_api_and_the_schedules_invoke_the_aggregators_alias(self, deployed, environment, functions):
        assert environment["AGGREGATOR_LAMBDA_ARN"]["Fn::Sub"].endswith(":function:${AWS::StackName}-aggregator:live")
        invoke = _statement(functions["ApiFunction"], "InvokeAggregator")
        assert invoke["Resource"] == {"Ref": "AggregatorFunction.Alias"}
        # The schedules' role may invoke the aggregator's versions and aliases (SchedulerRole).
        # Retries and the on-failure queue apply to what the callers invoke.
        assert deployed["AggregatorFunctionEventInvokeConfig"]["Properties"]["Qualifier"] == "live"


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
    # The functions connect as the application role the template's AppDbSecretArn names.
    assert loaded["database"] == ["fma", "fma-db.abcdefghij.us-east-1.rds.amazonaws.com", 5432, "fma_app"]
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
        ("ANY", "/dashboard"),
        ("ANY", "/dashboard/{proxy+}"),
        ("GET", "/"),
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


def _alarms(template):
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def _watched(metric):
    value = metric["Dimensions"][0]["Value"]
    return (metric["MetricName"], value.get("Ref") or value["Fn::GetAtt"][0])


def test_alarms_watch_errors_throttles_latency_and_the_failures_queue(template):
    watched = set()
    for alarm in _alarms(template).values():
        if "Metrics" in alarm:
            watched |= {
                _watched(metric["MetricStat"]["Metric"]) for metric in alarm["Metrics"] if "MetricStat" in metric
            }
        else:
            watched.add(_watched(alarm))
    assert watched == {
        ("Errors", "ApiFunction"),
        ("Throttles", "ApiFunction"),
        ("5xx", "FmaApi"),
        ("Count", "FmaApi"),
        ("Latency", "FmaApi"),
        ("Errors", "AggregatorFunction"),
        ("Throttles", "AggregatorFunction"),
        ("ApproximateNumberOfMessagesVisible", "AggregatorFailuresQueue"),
    }


def test_the_api_alarms_on_its_5xx_rate_and_p99_latency(template):
    alarms = _alarms(template)
    rate = alarms["ApiServerErrorRateAlarm"]
    (expression,) = [metric for metric in rate["Metrics"] if metric["ReturnData"]]
    assert expression["Expression"] == "IF(requests > 0, 100 * errors / requests, 0)"
    assert (rate["ComparisonOperator"], rate["Threshold"]) == ("GreaterThanThreshold", 5)
    latency = alarms["ApiLatencyAlarm"]
    assert latency["ExtendedStatistic"] == "p99"
    assert latency["Threshold"] == {"Ref": "ApiLatencyAlarmMilliseconds"}


def test_every_alarm_tells_the_alarm_topic_when_it_fires_and_clears(template):
    for name, alarm in _alarms(template).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
    subscription = template["Resources"]["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert template["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_the_dashboard_shows_every_alarm(template):
    body = template["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    # CloudFormation substitutes ${Resource} and ${Resource.Attribute}; what remains must be JSON.
    dashboard = json.loads(re.sub(r"\$\{([A-Za-z:]+)(?:\.(\w+))?\}", r"\1", body))
    (alarm_widget,) = [widget for widget in dashboard["widgets"] if widget["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(_alarms(template))
    referenced = set(re.findall(r"\$\{(\w+)", body)) - {"AWS"}
    assert referenced <= set(template["Resources"])


def test_the_stage_throttle_and_the_api_concurrency_are_parameters(template, functions):
    route = template["Resources"]["FmaApi"]["Properties"]["DefaultRouteSettings"]
    assert route == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottleBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottleRateLimit"},
    }
    reserved = functions["ApiFunction"]["Properties"]["ReservedConcurrentExecutions"]["Fn::If"]
    assert reserved == ["HasApiReservedConcurrency", {"Ref": "ApiReservedConcurrency"}, {"Ref": "AWS::NoValue"}]
    # -1 reserves nothing, as Terraform's reserved_concurrent_executions.
    assert template["Parameters"]["ApiReservedConcurrency"]["Default"] == -1


def test_a_stack_deleted_and_deployed_again_under_its_name_finds_its_names_free(template, functions):
    resources = template["Resources"]
    secrets = [resource for resource in resources.values() if resource["Type"] == "AWS::SecretsManager::Secret"]
    assert len(secrets) == 2
    for secret in secrets:
        # Delete: without a recovery window, as CloudFormation deletes secrets; Retain would keep the name taken.
        assert (secret["DeletionPolicy"], secret["UpdateReplacePolicy"]) == ("Delete", "Delete")
    for name, function in functions.items():
        # Lambda creates /aws/lambda/<function> itself when invoked before CloudFormation made it, or after it was
        # deleted, and the next stack then fails on "already exists": each function waits for its log group.
        log_group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        group_name = resources[log_group]["Properties"]["LogGroupName"]["Fn::Sub"]
        assert group_name == "/aws/lambda/" + function["Properties"]["FunctionName"]["Fn::Sub"], name


def _rule_value(expression, parameters):
    """The value of a rule expression for the given parameter values. CloudFormation evaluates Rules before
    any change and no offline tool does (cfn-lint reasons about them symbolically): this covers the functions
    the template's Rules use, and fails on any other."""
    if not isinstance(expression, dict):
        return expression
    ((function, argument),) = expression.items()
    if function == "Ref":
        return parameters[argument]
    values = [_rule_value(item, parameters) for item in argument]
    return {
        "Fn::And": lambda: all(values),
        "Fn::Not": lambda: not values[0],
        "Fn::Equals": lambda: values[0] == values[1],
        "Fn::Contains": lambda: values[1] in values[0],
    }[function]()


def _refusals(template, **parameters):
    """The AssertDescriptions CloudFormation would answer a deploy with (a list parameter left empty is [""])."""
    values = {"SubnetIds": [""], "RouteTableIds": [""], "VpcRoutesToAws": "false", **parameters}
    refusals = []
    for rule in template["Rules"].values():
        if not _rule_value(rule.get("RuleCondition", True), values):
            continue
        refusals += [
            item["AssertDescription"] for item in rule["Assertions"] if not _rule_value(item["Assert"], values)
        ]
    return refusals


class TestS3FromPrivateSubnets:
    """In private subnets S3 is reached through the gateway endpoint, or a NAT gateway the deployer declares."""

    def test_private_subnets_without_route_tables_are_refused(self, template):
        (refusal,) = _refusals(template, SubnetIds=["subnet-1", "subnet-2"])
        assert refusal.startswith("RouteTableIds must list the route tables of SubnetIds")
        assert 'VpcRoutesToAws to "true"' in refusal

    @pytest.mark.parametrize(
        "parameters",
        [
            {},
            {"SubnetIds": ["subnet-1"], "RouteTableIds": ["rtb-1"]},
            {"SubnetIds": ["subnet-1"], "VpcRoutesToAws": "true"},
        ],
        ids=["outside-a-vpc", "route-tables-given", "nat-declared"],
    )
    def test_other_deploys_are_admitted(self, template, parameters):
        assert _refusals(template, **parameters) == []

    def test_the_gateway_endpoint_comes_with_the_other_endpoints(self, template):
        endpoint = template["Resources"]["S3Endpoint"]
        assert endpoint["Condition"] == "CreateEndpoints"
        assert endpoint["Properties"]["RouteTableIds"] == {"Ref": "RouteTableIds"}
        assert endpoint["Properties"]["VpcEndpointType"] == "Gateway"


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
    for service in ("secretsmanager", "lambda", "scheduler", "events"):
        assert endpoints[service]["Condition"] == "CreateEndpoints"
        assert endpoints[service]["Properties"]["PrivateDnsEnabled"] is True


def test_the_logs_endpoint_only_when_asked(template):
    # Lambda delivers the functions' logs without one; an interface endpoint costs by the hour and subnet.
    assert template["Parameters"]["CreateLogsEndpoint"]["Default"] == "false"
    assert template["Resources"]["LogsEndpoint"]["Condition"] == "CreateLogsEndpoint"
    assert template["Conditions"]["CreateLogsEndpoint"] == {
        "Fn::And": [{"Condition": "CreateEndpoints"}, {"Fn::Equals": [{"Ref": "CreateLogsEndpoint"}, "true"]}]
    }


def test_the_application_role_secret_is_optional_and_readable(template, environment):
    assert template["Parameters"]["AppDbSecretArn"]["Default"] == ""
    assert environment["FMA_APP_DB_SECRET_PATH"] == {
        "Fn::If": ["HasAppDbSecret", {"Ref": "AppDbSecretArn"}, {"Ref": "AWS::NoValue"}]
    }
    statements = template["Resources"]["ServiceDataPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (secrets,) = [statement for statement in statements if statement["Sid"] == "ServiceSecrets"]
    assert {"Fn::If": ["HasAppDbSecret", {"Ref": "AppDbSecretArn"}, {"Ref": "AWS::NoValue"}]} in secrets["Resource"]


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


def test_the_deploy_and_the_aggregator_may_settle_only_the_schedules_of_the_stacks_group(template, functions):
    # The aggregator settles its model's schedule after each run; the deploy function runs migrate_schedules.
    for name in ("AggregatorFunction", "DeployFunction"):
        assert {"Ref": "ScheduleUpkeepPolicy"} in functions[name]["Properties"]["Policies"]
    statements = {
        statement["Sid"]: statement
        for statement in template["Resources"]["ScheduleUpkeepPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    }
    assert _in_the_stacks_group(statements["DeploymentSchedules"])
    settling = sorted(statements["DeploymentSchedules"]["Action"])
    assert settling == ["scheduler:CreateSchedule", "scheduler:UpdateSchedule"]
    passed = statements["PassSchedulerRole"]
    assert passed["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert statements["DeleteLegacyRules"]["Resource"]["Fn::Sub"].endswith(":rule/fma-scheduled-*")
