"""The endpoint idle policy as synthesized: in staging once a model is published (idle alarm, function and its
package, log group, exact role policy, alarm permission, parking schedule and its role, the endpoint's tag),
nowhere else; then the construct alone: the scale-to-minimum policy, several variants, a notification topic, no
schedule, and what it refuses."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile

import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.sagemaker.idle import FUNCTION_SOURCE, EndpointIdlePolicy, EndpointIdlePolicyProps
from constructs.sagemaker.idle_settings import EndpointIdleSettings
from constructs.sagemaker.settings import InstanceVariantSettings, SageMakerEndpointSettings

from tests.sagemaker.tiny import endpoint_stack
from tests.support.stacks import TinyStack, context
from tests.support.synth_json import (
    ENVIRONMENTS,
    allow,
    arguments,
    arn_parts,
    data_ref,
    doc,
    names_of,
    policy,
    ref,
    resources,
    role_attachments,
    role_policies,
)

IDLE = "platform/sagemaker/idle"
ENDPOINT = "mlp-staging-inference"


def idle_paths(stack: dict) -> list[str]:
    """Construct paths of every resource of the idle policy in a synthesized stack."""
    return [
        body["//"]["metadata"]["path"]
        for bodies in stack.get("resource", {}).values()
        for body in bodies.values()
        if "/sagemaker/idle/" in body["//"]["metadata"]["path"]
    ]


def test_staging_alarm_invokes_the_function_after_an_idle_hour(published) -> None:
    stack = published["staging"]
    alarm = arguments(stack, "aws_cloudwatch_metric_alarm", f"{IDLE}/alarm-primary")
    assert {k: v for k, v in alarm.items() if k != "alarm_description"} == {
        "alarm_name": f"{ENDPOINT}-primary-idle",
        "namespace": "AWS/SageMaker",
        "metric_name": "Invocations",
        "dimensions": {"EndpointName": ENDPOINT, "VariantName": "primary"},
        "statistic": "Sum",
        "period": 300,
        # 60 idle minutes are twelve 5-minute periods, every one of them without a request.
        "evaluation_periods": 12,
        "datapoints_to_alarm": 12,
        "threshold": 1,
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "breaching",
        "alarm_actions": [ref(stack, "aws_lambda_function", f"{IDLE}/function", "arn")],
    }
    assert arguments(stack, "aws_lambda_permission", f"{IDLE}/alarm-primary-invokes-function") == {
        "statement_id": "IdleAlarm-primary",
        "action": "lambda:InvokeFunction",
        "function_name": ref(stack, "aws_lambda_function", f"{IDLE}/function", "function_name"),
        "principal": "lambda.alarms.cloudwatch.amazonaws.com",
        "source_arn": ref(stack, "aws_cloudwatch_metric_alarm", f"{IDLE}/alarm-primary", "arn"),
        "source_account": data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
    }


def test_staging_function_its_package_and_its_log_group(published, published_dir) -> None:
    stack = published["staging"]
    function = arguments(stack, "aws_lambda_function", f"{IDLE}/function")
    assert function["function_name"] == f"{ENDPOINT}-idle"
    assert (function["runtime"], function["handler"], function["architectures"]) == (
        "python3.12",
        "handler.handler",
        ["arm64"],
    )
    assert function["role"] == ref(stack, "aws_iam_role", f"{IDLE}/role", "arn")
    # No topic serves the endpoint: the function logs its notices, and has no dead-letter target.
    assert function["environment"] == {
        "variables": {
            "ENDPOINT_NAME": ENDPOINT,
            "IDLE_ACTION": "delete_endpoint",
            "IDLE_MINUTES": "60",
            "ALARM_NAMES": f"{ENDPOINT}-primary-idle",
        }
    }
    assert "dead_letter_config" not in function and "reserved_concurrent_executions" not in function
    assert arguments(stack, "aws_cloudwatch_log_group", f"{IDLE}/logs") == {
        "name": f"/aws/lambda/{ENDPOINT}-idle",
        "retention_in_days": 30,
        "kms_key_id": ref(stack, "aws_kms_key", "platform/keys/logs", "arn"),
    }
    assert function["logging_config"] == {
        "log_format": "Text",
        "log_group": ref(stack, "aws_cloudwatch_log_group", f"{IDLE}/logs", "name"),
    }
    package = (published_dir / "stacks" / "staging" / function["filename"]).read_bytes()
    assert function["source_code_hash"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    with zipfile.ZipFile(published_dir / "stacks" / "staging" / function["filename"]) as archive:
        assert archive.namelist() == ["handler.py"]
        assert archive.read("handler.py") == (FUNCTION_SOURCE / "handler.py").read_bytes()


def test_staging_function_role_may_delete_this_tagged_endpoint_only(published) -> None:
    stack = published["staging"]
    partition, region, account = arn_parts(stack)
    role = arguments(stack, "aws_iam_role", f"{IDLE}/role")
    assert role["name"] == f"{ENDPOINT}-idle"
    assert policy(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    arn = f"arn:{partition}:sagemaker:{region}:{account}:endpoint/{ENDPOINT}"
    assert role_policies(stack, f"{IDLE}/role") == {
        "idle-policy": doc(
            allow(
                "WriteOwnLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                ref(stack, "aws_cloudwatch_log_group", f"{IDLE}/logs", "arn") + ":*",
            ),
            allow("DescribeThisEndpoint", "sagemaker:DescribeEndpoint", arn),
            allow(
                "DescribeItsConfigurations",
                "sagemaker:DescribeEndpointConfig",
                f"arn:{partition}:sagemaker:{region}:{account}:endpoint-config/{ENDPOINT}-*",
            ),
            allow("RecheckInvocations", "cloudwatch:GetMetricData", "*"),
            allow("ReadThisEndpointsTags", "sagemaker:ListTags", arn),
            allow(
                "DeleteThisEndpointWhileTagged",
                "sagemaker:DeleteEndpoint",
                arn,
                StringEquals={"aws:ResourceTag/ml-platform:idle-policy": "delete_endpoint"},
            ),
            allow(
                "DeregisterItsScalableTargets",
                "application-autoscaling:DeregisterScalableTarget",
                f"arn:{partition}:application-autoscaling:{region}:{account}:scalable-target/*",
            ),
        )
    }
    assert role_attachments(stack, f"{IDLE}/role") == []


def test_staging_parks_on_weekday_evenings_in_new_york(published) -> None:
    stack = published["staging"]
    function_arn = ref(stack, "aws_lambda_function", f"{IDLE}/function", "arn")
    schedule = arguments(stack, "aws_scheduler_schedule", f"{IDLE}/parking-schedule")
    assert {k: v for k, v in schedule.items() if k not in ("description", "depends_on")} == {
        "name": f"{ENDPOINT}-parking",
        "schedule_expression": "cron(0 20 ? * MON-FRI *)",
        "schedule_expression_timezone": "America/New_York",
        "flexible_time_window": {"mode": "OFF"},
        "target": {
            "arn": function_arn,
            "role_arn": ref(stack, "aws_iam_role", f"{IDLE}/schedule-role", "arn"),
            "input": json.dumps({"action": "park", "source": "schedule"}),
            "retry_policy": {"maximum_event_age_in_seconds": 3600, "maximum_retry_attempts": 3},
        },
    }
    # The schedule starts once its role may invoke the function.
    assert schedule["depends_on"] == [
        f"aws_iam_role_policy.{names_of(stack, 'aws_iam_role_policy', f'{IDLE}/schedule-permissions')[0]}"
    ]
    role = arguments(stack, "aws_iam_role", f"{IDLE}/schedule-role")
    (trust,) = policy(role["assume_role_policy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": data_ref(stack, "aws_caller_identity", "platform/account", "account_id")}
    }
    assert role_policies(stack, f"{IDLE}/schedule-role") == {
        "invoke-idle-function": doc(allow("InvokeTheIdleFunction", "lambda:InvokeFunction", function_arn))
    }


def test_staging_endpoint_carries_the_idle_tag(published) -> None:
    endpoint = arguments(published["staging"], "aws_sagemaker_endpoint", "platform/sagemaker/endpoint")
    assert endpoint["tags"] == {"ml-platform:idle-policy": "delete_endpoint"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_idle_policy_in_dev_or_prod(published, env) -> None:
    stack = published[env]
    # Dev is serverless (nothing to save); prod serves around the clock.
    assert idle_paths(stack) == []
    assert resources(stack, "aws_scheduler_schedule") == {}
    assert "tags" not in arguments(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_idle_policy_before_a_model_is_published(stacks, env) -> None:
    assert idle_paths(stacks[env]) == []
    assert resources(stacks[env], "aws_scheduler_schedule") == {}


# --- the construct on its own ------------------------------------------------------------------------------


def _endpoint(idle: EndpointIdleSettings, **changes: object) -> tuple[dict, object]:
    values: dict[str, object] = {
        "model_version": "v1",
        "variants": (
            InstanceVariantSettings(name="primary", instance_type="ml.m5.xlarge", initial_instance_count=2),
            InstanceVariantSettings(name="candidate", instance_type="ml.m5.xlarge", model_version="v2"),
        ),
        "min_instance_count": 1,
        "max_instance_count": 3,
        "idle": idle,
    }
    values.update(changes)
    return endpoint_stack(SageMakerEndpointSettings(**values))  # type: ignore[arg-type]


def test_scale_to_minimum_may_change_instance_counts_only() -> None:
    stack, construct = _endpoint(EndpointIdleSettings(idle_minutes=15, log_retention_days=7))
    statements = {
        s["Sid"]: s for s in policy(arguments(stack, "aws_iam_role_policy", "idle/permissions")["policy"])["Statement"]
    }
    assert statements["ScaleThisEndpointToMinimum"] == allow(
        "ScaleThisEndpointToMinimum",
        "sagemaker:UpdateEndpointWeightsAndCapacities",
        "arn:aws:sagemaker:us-east-1:123456789012:endpoint/p-test-inference",
    )
    assert not {"ReadThisEndpointsTags", "DeleteThisEndpointWhileTagged", "DeregisterItsScalableTargets"} & set(
        statements
    )
    variables = arguments(stack, "aws_lambda_function", "idle/function")["environment"]["variables"]
    assert variables == {
        "ENDPOINT_NAME": "p-test-inference",
        "IDLE_ACTION": "scale_to_minimum",
        "IDLE_MINUTES": "15",
        "ALARM_NAMES": "p-test-inference-primary-idle,p-test-inference-candidate-idle",
        "MIN_INSTANCE_COUNT": "1",
    }
    # One alarm and one permission per variant, three 5-minute periods each; no schedule without a cron.
    for variant in ("primary", "candidate"):
        alarm = arguments(stack, "aws_cloudwatch_metric_alarm", f"idle/alarm-{variant}")
        assert alarm["dimensions"] == {"EndpointName": "p-test-inference", "VariantName": variant}
        assert (alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (3, 3)
        assert names_of(stack, "aws_lambda_permission", f"idle/alarm-{variant}-invokes-function")
    assert resources(stack, "aws_scheduler_schedule") == {}
    assert names_of(stack, "aws_iam_role", "idle/schedule-role") == []
    assert arguments(stack, "aws_cloudwatch_log_group", "idle/logs")["retention_in_days"] == 7
    assert arguments(stack, "aws_sagemaker_endpoint", "sagemaker/endpoint")["tags"] == {
        "ml-platform:idle-policy": "scale_to_minimum"
    }
    assert construct.idle is not None and set(construct.idle.alarms) == {"primary", "candidate"}


def test_without_autoscaling_deleting_needs_no_deregistration() -> None:
    stack, _ = _endpoint(
        EndpointIdleSettings(action="delete_endpoint"),
        min_instance_count=2,
        max_instance_count=2,
        variants=(InstanceVariantSettings(instance_type="ml.m5.xlarge", initial_instance_count=2),),
    )
    sids = [
        s["Sid"] for s in policy(arguments(stack, "aws_iam_role_policy", "idle/permissions")["policy"])["Statement"]
    ]
    assert sids == [
        "WriteOwnLogs",
        "DescribeThisEndpoint",
        "DescribeItsConfigurations",
        "RecheckInvocations",
        "ReadThisEndpointsTags",
        "DeleteThisEndpointWhileTagged",
    ]


def _policy_alone(tiny: TinyStack, idle: EndpointIdleSettings, **changes: object) -> EndpointIdlePolicy:
    props: dict[str, object] = {
        "context": tiny.context,
        "endpoint_name": "p-test-inference",
        "settings": idle,
        "instance_variants": ("primary",),
        "min_instance_count": 1,
        "autoscaling": True,
        "logs_key": tiny.key,
    }
    props.update(changes)
    return EndpointIdlePolicy(tiny.stack, "idle", EndpointIdlePolicyProps(**props))  # type: ignore[arg-type]


def test_a_notification_topic_reaches_the_function() -> None:
    tiny = TinyStack()
    topic_key = aws.kms_key.KmsKey(tiny.stack, "topic-key", enable_key_rotation=True)
    topic = aws.sns_topic.SnsTopic(tiny.stack, "topic", name="serving-events", kms_master_key_id=topic_key.arn)
    _policy_alone(tiny, EndpointIdleSettings(action="delete_endpoint"), topic=topic, topic_key=topic_key)
    stack = tiny.synth_with_paths()
    topic_arn = ref(stack, "aws_sns_topic", "tiny/topic", "arn")
    function = arguments(stack, "aws_lambda_function", "idle/function")
    assert function["environment"]["variables"]["SNS_TOPIC_ARN"] == topic_arn
    assert function["dead_letter_config"] == {"target_arn": topic_arn}
    statements = policy(arguments(stack, "aws_iam_role_policy", "idle/permissions")["policy"])["Statement"]
    assert statements[-2:] == [
        allow("NotifyOperators", "sns:Publish", topic_arn),
        allow(
            "UseNotificationKeyThroughSns",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            ref(stack, "aws_kms_key", "tiny/topic-key", "arn"),
            StringEquals={"kms:ViaService": "sns.us-east-1.amazonaws.com"},
        ),
    ]


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"context": context(protected=True)}, "settings.action", "in a protected environment"),
        ({"instance_variants": ()}, "instance_variants", "at least one instance variant"),
    ],
)
def test_the_construct_refuses_what_it_must_never_build(changes: dict, field: str, fragment: str) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as raised:
        _policy_alone(tiny, EndpointIdleSettings(action="delete_endpoint"), **changes)
    assert raised.value.field == field
    assert fragment in raised.value.allowed


def test_a_protected_environment_may_scale_to_its_minimum() -> None:
    tiny = TinyStack()
    tiny.context = context(protected=True)
    idle = _policy_alone(tiny, EndpointIdleSettings(action="scale_to_minimum"))
    stack = tiny.synth_with_paths()
    # Its function's logs are kept like every other protected log group.
    assert arguments(stack, "aws_cloudwatch_log_group", "idle/logs")["lifecycle"] == {"prevent_destroy": True}
    assert idle.schedule is None
