"""Idle auto-shutdown of the GPU training cluster: a GPU-utilization alarm that invokes a Lambda function.

The function (``functions/idle_shutdown/handler.py``) re-checks the metric and scales the Auto Scaling group
to zero. Its resources belong to the cluster: they are created in the cluster's scope, under the ids they had
when they were part of the cluster's own module, so their Terraform addresses never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cdktf import AssetType, TerraformAsset
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.formats import IDLE_PERIOD_MINUTES
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.refs import KmsKeyRef, LogGroupRef, RoleRef, TopicRef
from constructs.training.function_archive import FUNCTION_SOURCE, FunctionArchive, build_function_archive
from constructs.training.settings import GpuTrainingClusterSettings

# Where the node's CloudWatch agent publishes GPU utilization (see configure_gpu_metrics in the script).
METRICS_NAMESPACE = "MLPlatform/GPUTraining"
GPU_UTILIZATION_METRIC = "nvidia_smi_utilization_gpu"
IDLE_ALARM_PERIOD_SECONDS = IDLE_PERIOD_MINUTES * 60
FUNCTION_HANDLER = "handler.handler"
FUNCTION_RUNTIME = "python3.12"
FUNCTION_NAME_SUFFIX = "-idle-shutdown"


@dataclass(frozen=True)
class IdleShutdown:
    """The idle-shutdown resources of one cluster.

    archive, asset: the function's deployment package and its Terraform asset.
    log_group, role, policy, function: the function, its encrypted log group, its role and permissions.
    alarm: the GPU-utilization alarm whose action invokes the function.
    """

    archive: FunctionArchive
    asset: TerraformAsset
    log_group: LogGroupRef
    role: RoleRef
    policy: Any
    function: Any
    alarm: Any


def add_idle_shutdown(
    scope: Construct,
    *,
    cluster_name: str,
    settings: GpuTrainingClusterSettings,
    context: PlatformContext,
    asg_name: str,
    asg_arn: str,
    topic: TopicRef,
    notifications_key: KmsKeyRef,
    logs_key: KmsKeyRef,
) -> IdleShutdown:
    """Create the idle alarm, the function it invokes, and what the function needs, in ``scope``.

    The function may only describe Auto Scaling groups, read metrics, set this group's desired capacity and
    publish to the cluster's topic (using the topic's key only through SNS).
    """
    s = settings
    function_name = f"{cluster_name}{FUNCTION_NAME_SUFFIX}"
    alarm_name = f"{cluster_name}-idle"
    periods = s.idle_minutes * 60 // IDLE_ALARM_PERIOD_SECONDS
    archive = build_function_archive(FUNCTION_SOURCE)
    asset = TerraformAsset(
        scope, "idle-shutdown-code", path=str(archive.path), type=AssetType.FILE, asset_hash=archive.sha256_hex
    )
    log_group: LogGroupRef = encrypted_log_group(
        scope,
        "idle-shutdown-logs",
        name=f"/aws/lambda/{function_name}",
        retention_days=s.log_retention_days,
        key=logs_key,
        protected=context.protected,
    )
    role = service_role(
        scope,
        "idle-shutdown-role",
        name=function_name,
        services=("lambda.amazonaws.com",),
        description=f"Scales {cluster_name} to zero when its GPUs are idle",
    )
    policy = grant(
        scope,
        "idle-shutdown-permissions",
        role,
        PolicyStatement(
            sid="WriteOwnLogs",
            actions=("logs:CreateLogStream", "logs:PutLogEvents"),
            resources=(f"{log_group.arn}:*",),
        ),
        # Describe* and GetMetricData have no resource-level permissions.
        PolicyStatement(
            sid="DescribeAutoScalingGroups", actions=("autoscaling:DescribeAutoScalingGroups",), resources=("*",)
        ),
        PolicyStatement(sid="RecheckUtilization", actions=("cloudwatch:GetMetricData",), resources=("*",)),
        PolicyStatement(
            sid="ScaleThisClusterToZero", actions=("autoscaling:SetDesiredCapacity",), resources=(asg_arn,)
        ),
        PolicyStatement(sid="NotifyOperators", actions=("sns:Publish",), resources=(topic.arn,)),
        PolicyStatement(
            sid="UseNotificationKeyThroughSns",
            actions=("kms:Decrypt", "kms:GenerateDataKey"),
            resources=(notifications_key.arn,),
            conditions={"StringEquals": {"kms:ViaService": context.via_service("sns")}},
        ),
        name="idle-shutdown",
    )
    lam = aws.lambda_function
    function = lam.LambdaFunction(
        scope,
        "idle-shutdown",
        function_name=function_name,
        description=f"Scales the GPU training cluster {cluster_name} to zero when its idle alarm fires",
        role=role.arn,
        runtime=FUNCTION_RUNTIME,
        handler=FUNCTION_HANDLER,
        architectures=["arm64"],
        filename=asset.path,
        source_code_hash=archive.sha256_base64,
        memory_size=128,
        timeout=60,
        # No reserved concurrency: reserving any needs an account limit above the default 10 of a new
        # account (the deploy would fail there), and the handler is idempotent, so overlapping
        # invocations at worst set a desired capacity of 0 twice.
        environment=lam.LambdaFunctionEnvironment(
            variables={
                "ASG_NAME": asg_name,
                "SNS_TOPIC_ARN": topic.arn,
                "ALARM_NAME": alarm_name,
                "IDLE_THRESHOLD": str(s.idle_gpu_utilization_percent),
                "EVALUATION_PERIODS": str(periods),
            }
        ),
        # Alarm actions invoke asynchronously; an invocation that keeps failing reaches operators.
        dead_letter_config=lam.LambdaFunctionDeadLetterConfig(target_arn=topic.arn),
        logging_config=lam.LambdaFunctionLoggingConfig(log_format="Text", log_group=log_group.name),
        depends_on=[log_group, policy],
    )
    alarm = aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
        scope,
        "idle-alarm",
        alarm_name=alarm_name,
        alarm_description=(
            f"Every GPU of {cluster_name} below {s.idle_gpu_utilization_percent}% for {s.idle_minutes} minutes: "
            "the idle-shutdown function scales the cluster to zero."
        ),
        namespace=METRICS_NAMESPACE,
        metric_name=GPU_UTILIZATION_METRIC,
        dimensions={"AutoScalingGroupName": asg_name},
        statistic="Maximum",
        period=IDLE_ALARM_PERIOD_SECONDS,
        evaluation_periods=periods,
        datapoints_to_alarm=periods,
        threshold=s.idle_gpu_utilization_percent,
        comparison_operator="LessThanThreshold",
        # A cluster scaled to zero publishes nothing; that must read as "not idle", never as an alarm.
        treat_missing_data="notBreaching",
        alarm_actions=[function.arn],
    )
    aws.lambda_permission.LambdaPermission(
        scope,
        "idle-alarm-invokes-function",
        statement_id="IdleAlarmInvokes",
        action="lambda:InvokeFunction",
        function_name=function.function_name,
        principal="lambda.alarms.cloudwatch.amazonaws.com",
        source_arn=alarm.arn,
        source_account=context.account_id,
    )
    return IdleShutdown(archive, asset, log_group, role, policy, function, alarm)
