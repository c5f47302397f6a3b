"""The cluster's idle auto-shutdown as synthesized: the GPU-utilization alarm, the function it invokes (with
its packaged code), the function's log group and its role's exact policy."""

from __future__ import annotations

import base64
import hashlib
import zipfile

import pytest
from constructs.training.function_archive import FUNCTION_SOURCE
from constructs.training.settings import GpuTrainingClusterSettings

from tests.support.synth_json import (
    allow,
    arn_parts,
    data_ref,
    doc,
    only,
    policy,
    ref,
    role_attachments,
    role_policies,
)
from tests.training.clusters import CLUSTER_ENVS, EXPECTED, asg_arn, build_cluster, training


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_idle_alarm_invokes_the_shutdown_function(stacks, env) -> None:
    stack = stacks[env]
    periods = EXPECTED[env]["idle_periods"]
    function_arn = ref(stack, "aws_lambda_function", "training/idle-shutdown", "arn")
    alarm = training(stack, "aws_cloudwatch_metric_alarm", "idle-alarm")
    assert {k: v for k, v in alarm.items() if k not in ("//", "alarm_description")} == {
        "alarm_name": f"mlp-{env}-training-idle",
        "namespace": "MLPlatform/GPUTraining",
        "metric_name": "nvidia_smi_utilization_gpu",
        "dimensions": {"AutoScalingGroupName": f"mlp-{env}-training"},
        "statistic": "Maximum",
        "period": 300,
        "evaluation_periods": periods,
        "datapoints_to_alarm": periods,
        "threshold": 5,
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "notBreaching",
        "alarm_actions": [function_arn],
    }
    permission = training(stack, "aws_lambda_permission", "idle-alarm-invokes-function")
    assert {k: v for k, v in permission.items() if k != "//"} == {
        "statement_id": "IdleAlarmInvokes",
        "action": "lambda:InvokeFunction",
        "function_name": ref(stack, "aws_lambda_function", "training/idle-shutdown", "function_name"),
        "principal": "lambda.alarms.cloudwatch.amazonaws.com",
        "source_arn": ref(stack, "aws_cloudwatch_metric_alarm", "training/idle-alarm", "arn"),
        "source_account": data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
    }


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_idle_shutdown_function(stacks, synth_dir, env) -> None:
    stack = stacks[env]
    function = training(stack, "aws_lambda_function", "idle-shutdown")
    topic_arn = ref(stack, "aws_sns_topic", "training/events-topic", "arn")
    assert function["function_name"] == f"mlp-{env}-training-idle-shutdown"
    assert (function["runtime"], function["handler"]) == ("python3.12", "handler.handler")
    # Reserving concurrency would fail on new accounts (default limit 10); the handler is idempotent.
    assert "reserved_concurrent_executions" not in function
    assert function["role"] == ref(stack, "aws_iam_role", "training/idle-shutdown-role", "arn")
    assert function["environment"] == {
        "variables": {
            "ASG_NAME": f"mlp-{env}-training",
            "SNS_TOPIC_ARN": topic_arn,
            "ALARM_NAME": f"mlp-{env}-training-idle",
            "IDLE_THRESHOLD": "5",
            "EVALUATION_PERIODS": str(EXPECTED[env]["idle_periods"]),
        }
    }
    assert function["dead_letter_config"] == {"target_arn": topic_arn}
    log_group = training(stack, "aws_cloudwatch_log_group", "idle-shutdown-logs")
    assert log_group["name"] == f"/aws/lambda/mlp-{env}-training-idle-shutdown"
    assert log_group["retention_in_days"] == EXPECTED[env]["retention"]
    assert log_group["kms_key_id"] == ref(stack, "aws_kms_key", "platform/keys/logs", "arn")
    assert function["logging_config"] == {
        "log_format": "Text",
        "log_group": ref(stack, "aws_cloudwatch_log_group", "training/idle-shutdown-logs", "name"),
    }
    # The package is shipped with the stack, holds exactly the handler, and its hash is what Lambda reports.
    package = synth_dir / "stacks" / env / function["filename"]
    data = package.read_bytes()
    assert function["source_code_hash"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    with zipfile.ZipFile(package) as archive:
        assert archive.namelist() == ["handler.py"]
        assert archive.read("handler.py") == (FUNCTION_SOURCE / "handler.py").read_bytes()


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_function_role_policy_is_exactly_least_privilege(stacks, env) -> None:
    stack = stacks[env]
    _, region, _ = arn_parts(stack)
    role = training(stack, "aws_iam_role", "idle-shutdown-role")
    assert role["name"] == f"mlp-{env}-training-idle-shutdown"
    assert policy(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    log_group_arn = ref(stack, "aws_cloudwatch_log_group", "training/idle-shutdown-logs", "arn")
    assert role_policies(stack, "training/idle-shutdown-role") == {
        "idle-shutdown": doc(
            allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], log_group_arn + ":*"),
            allow("DescribeAutoScalingGroups", "autoscaling:DescribeAutoScalingGroups", "*"),
            allow("RecheckUtilization", "cloudwatch:GetMetricData", "*"),
            allow("ScaleThisClusterToZero", "autoscaling:SetDesiredCapacity", asg_arn(stack, env)),
            allow("NotifyOperators", "sns:Publish", ref(stack, "aws_sns_topic", "training/events-topic", "arn")),
            allow(
                "UseNotificationKeyThroughSns",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                ref(stack, "aws_kms_key", "training/notifications-key", "arn"),
                StringEquals={"kms:ViaService": f"sns.{region}.amazonaws.com"},
            ),
        )
    }
    assert role_attachments(stack, "training/idle-shutdown-role") == []


def test_idle_settings_shape_the_alarm_and_the_function() -> None:
    settings = GpuTrainingClusterSettings(idle_minutes=15, idle_gpu_utilization_percent=20, log_retention_days=7)
    tiny, cluster = build_cluster(settings)
    config = tiny.synth_with_paths()
    alarm = only(config, "aws_cloudwatch_metric_alarm", "test/training/idle-alarm")
    # 15 minutes are three 5-minute periods, every one of them below 20 %.
    assert (alarm["period"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"]) == (300, 3, 3)
    assert alarm["threshold"] == 20
    assert alarm["alarm_name"] == "t-training-idle"
    variables = only(config, "aws_lambda_function", "test/training/idle-shutdown")["environment"]["variables"]
    assert (variables["IDLE_THRESHOLD"], variables["EVALUATION_PERIODS"]) == ("20", "3")
    assert only(config, "aws_cloudwatch_log_group", "test/training/idle-shutdown-logs")["retention_in_days"] == 7
    # The cluster keeps what it made as one record.
    idle = cluster.idle_shutdown
    function = only(config, "aws_lambda_function", "test/training/idle-shutdown")
    assert config["resource"]["aws_lambda_function"].keys() == {tiny.stack.get_logical_id(idle.function)}
    assert config["resource"]["aws_cloudwatch_metric_alarm"].keys() == {tiny.stack.get_logical_id(idle.alarm)}
    assert idle.archive.sha256_base64 == function["source_code_hash"]
