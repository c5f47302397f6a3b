"""The idle policy of a SageMaker real-time endpoint: idle alarms, the function they invoke, and night parking.

One alarm per instance variant watches ``Invocations`` and invokes the function (``functions/endpoint_idle``)
after ``idle_minutes`` without a request; the function re-checks every variant before it applies the policy
(scale every instance variant to its minimum, or delete the endpoint until the next deploy). An optional
EventBridge Scheduler schedule invokes the same function to park the endpoint at night. docs/sagemaker.md,
"Idle endpoints and night parking", is the operator's side.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import AssetType, TerraformAsset
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.formats import IDLE_PERIOD_MINUTES
from constructs.core.function_archive import FUNCTIONS_DIR, build_function_archive
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.refs import KmsKeyRef, LogGroupRef, RoleRef, TopicRef
from constructs.sagemaker.idle_settings import IDLE_TAG, PARK_EVENT, EndpointIdleSettings
from constructs.sagemaker.settings import InstanceVariantSettings, SageMakerEndpointSettings

FUNCTION_SOURCE = FUNCTIONS_DIR / "endpoint_idle"
FUNCTION_RUNTIME = "python3.12"
FUNCTION_HANDLER = "handler.handler"
# A parking run that could not start within the hour is dropped rather than delivered hours later.
SCHEDULE_MAX_EVENT_AGE_SECONDS = 3600
SCHEDULE_RETRIES = 3


@dataclass(frozen=True)
class EndpointIdlePolicyProps:
    """Props for :class:`EndpointIdlePolicy`.

    context: the environment (account, region and partition of the ARNs; ``protected`` forbids deleting).
    endpoint_name: the endpoint the policy applies to (names the function, roles, alarms and schedule).
    settings: the policy.
    instance_variants: names of the endpoint's instance variants, one idle alarm each.
    min_instance_count: the variants' autoscaling minimum, which ``scale_to_minimum`` sets them to.
    autoscaling: the variants are Application Auto Scaling targets (deleting the endpoint deregisters them).
    logs_key: KMS key of the function's log group.
    topic: SNS topic notified of every change; None: the function only logs.
    topic_key: the topic's KMS key when it has one, used by the function through SNS only.
    """

    context: PlatformContext
    endpoint_name: str
    settings: EndpointIdleSettings
    instance_variants: Sequence[str]
    min_instance_count: int
    autoscaling: bool
    logs_key: KmsKeyRef
    topic: TopicRef | None = None
    topic_key: KmsKeyRef | None = None

    @classmethod
    def of_endpoint(
        cls, context: PlatformContext, endpoint_name: str, settings: SageMakerEndpointSettings, logs_key: KmsKeyRef
    ) -> EndpointIdlePolicyProps:
        """The props for the endpoint ``endpoint_name`` with ``settings`` (whose ``idle`` must be set)."""
        assert settings.idle is not None
        return cls(
            context=context,
            endpoint_name=endpoint_name,
            settings=settings.idle,
            instance_variants=tuple(v.name for v in settings.variants if isinstance(v, InstanceVariantSettings)),
            min_instance_count=settings.min_instance_count,
            autoscaling=settings.autoscaling,
            logs_key=logs_key,
        )


class EndpointIdlePolicy(Construct):
    """Applies an endpoint's idle policy when every variant has been idle, and at the parking hour.

    - A KMS-encrypted log group and a function (Python 3.12, arm64, packaged reproducibly at synthesis) whose
      role may describe this endpoint and its configurations, read metrics, write its own log stream and
      either change this endpoint's instance counts or delete it (only while it carries the idle tag).
    - Per instance variant an alarm, ``Invocations`` Sum below 1 in every 5-minute period of ``idle_minutes``,
      missing data breaching (an idle endpoint publishes no datapoint), whose action invokes the function
      through a permission limited to that alarm and this account.
    - With ``parking_cron``: an EventBridge Scheduler schedule in its time zone, with a role that may invoke this
      function only, sending ``{"action": "park", "source": "schedule"}``.
    """

    def __init__(self, scope: Construct, id: str, props: EndpointIdlePolicyProps) -> None:
        super().__init__(scope, id)
        s = props.settings
        c = props.context
        require(
            not (c.protected and s.action == "delete_endpoint"),
            self.node.path,
            "settings.action",
            s.action,
            "'scale_to_minimum' in a protected environment (its endpoint is never deleted)",
        )
        require(
            bool(props.instance_variants),
            self.node.path,
            "instance_variants",
            list(props.instance_variants),
            "at least one instance variant (a serverless endpoint costs nothing while idle)",
        )
        self.props = props
        self.function_name = f"{props.endpoint_name}-idle"
        self.endpoint_arn = c.arn("sagemaker", f"endpoint/{props.endpoint_name}")
        self.alarm_names = {v: f"{props.endpoint_name}-{v}-idle" for v in props.instance_variants}
        self.archive = build_function_archive(FUNCTION_SOURCE, owner="EndpointIdlePolicy")
        self.asset = TerraformAsset(
            self, "code", path=str(self.archive.path), type=AssetType.FILE, asset_hash=self.archive.sha256_hex
        )
        self.log_group: LogGroupRef = encrypted_log_group(
            self,
            "logs",
            name=f"/aws/lambda/{self.function_name}",
            retention_days=s.log_retention_days,
            key=props.logs_key,
            protected=c.protected,
        )
        self.role: RoleRef = service_role(
            self,
            "role",
            name=c.global_name(self.function_name),
            services=("lambda.amazonaws.com",),
            description=f"Applies the idle policy ({s.action}) of the SageMaker endpoint {props.endpoint_name}",
        )
        self.policy = grant(self, "permissions", self.role, *self.statements(), name="idle-policy")
        self.function = self._function()
        self.alarms = {variant: self._alarm(variant) for variant in props.instance_variants}
        self.schedule: Any | None = None
        self.schedule_role: RoleRef | None = None
        if s.schedule_expression is not None:
            self._parking_schedule(s.schedule_expression)

    def statements(self) -> list[PolicyStatement]:
        """The function's permissions: this endpoint only, and the one action its policy needs."""
        p = self.props
        c = p.context
        statements = [
            PolicyStatement(
                sid="WriteOwnLogs",
                actions=("logs:CreateLogStream", "logs:PutLogEvents"),
                resources=(f"{self.log_group.arn}:*",),
            ),
            PolicyStatement(
                sid="DescribeThisEndpoint", actions=("sagemaker:DescribeEndpoint",), resources=(self.endpoint_arn,)
            ),
            PolicyStatement(
                sid="DescribeItsConfigurations",
                actions=("sagemaker:DescribeEndpointConfig",),
                # Configurations are named <endpoint>-<unique suffix>, a new one for every change.
                resources=(c.arn("sagemaker", f"endpoint-config/{p.endpoint_name}-*"),),
            ),
            # GetMetricData has no resource-level permissions.
            PolicyStatement(sid="RecheckInvocations", actions=("cloudwatch:GetMetricData",), resources=("*",)),
        ]
        if p.settings.action == "scale_to_minimum":
            statements.append(
                PolicyStatement(
                    sid="ScaleThisEndpointToMinimum",
                    actions=("sagemaker:UpdateEndpointWeightsAndCapacities",),
                    resources=(self.endpoint_arn,),
                )
            )
        else:
            statements += [
                PolicyStatement(
                    sid="ReadThisEndpointsTags", actions=("sagemaker:ListTags",), resources=(self.endpoint_arn,)
                ),
                PolicyStatement(
                    sid="DeleteThisEndpointWhileTagged",
                    actions=("sagemaker:DeleteEndpoint",),
                    resources=(self.endpoint_arn,),
                    conditions={"StringEquals": {f"aws:ResourceTag/{IDLE_TAG}": "delete_endpoint"}},
                ),
            ]
            if p.autoscaling:
                # Deleting an endpoint deregisters its variants' scalable targets with the caller's permission.
                # Scalable-target ARNs end in an opaque ID, so this endpoint's cannot be named.
                statements.append(
                    PolicyStatement(
                        sid="DeregisterItsScalableTargets",
                        actions=("application-autoscaling:DeregisterScalableTarget",),
                        resources=(c.arn("application-autoscaling", "scalable-target/*"),),
                    )
                )
        if p.topic is not None:
            statements.append(
                PolicyStatement(sid="NotifyOperators", actions=("sns:Publish",), resources=(p.topic.arn,))
            )
        if p.topic is not None and p.topic_key is not None:
            statements.append(
                PolicyStatement(
                    sid="UseNotificationKeyThroughSns",
                    actions=("kms:Decrypt", "kms:GenerateDataKey"),
                    resources=(p.topic_key.arn,),
                    conditions={"StringEquals": {"kms:ViaService": c.via_service("sns")}},
                )
            )
        return statements

    def _function(self) -> Any:
        p = self.props
        s = p.settings
        variables = {
            "ENDPOINT_NAME": p.endpoint_name,
            "IDLE_ACTION": s.action,
            "IDLE_MINUTES": str(s.idle_minutes),
            "ALARM_NAMES": ",".join(self.alarm_names.values()),
        }
        if s.action == "scale_to_minimum":
            variables["MIN_INSTANCE_COUNT"] = str(p.min_instance_count)
        if p.topic is not None:
            variables["SNS_TOPIC_ARN"] = p.topic.arn
        lam = aws.lambda_function
        return lam.LambdaFunction(
            self,
            "function",
            function_name=self.function_name,
            description=f"Idle policy of the SageMaker endpoint {p.endpoint_name}: {s.action}",
            role=self.role.arn,
            runtime=FUNCTION_RUNTIME,
            handler=FUNCTION_HANDLER,
            architectures=["arm64"],
            filename=self.asset.path,
            source_code_hash=self.archive.sha256_base64,
            memory_size=128,
            timeout=60,
            # No reserved concurrency: it needs an account limit above a new account's default, and the handler
            # is idempotent (a second run finds the endpoint gone or at its minimum).
            environment=lam.LambdaFunctionEnvironment(variables=variables),
            dead_letter_config=lam.LambdaFunctionDeadLetterConfig(target_arn=p.topic.arn) if p.topic else None,
            logging_config=lam.LambdaFunctionLoggingConfig(log_format="Text", log_group=self.log_group.name),
            depends_on=[self.log_group, self.policy],
        )

    def _alarm(self, variant: str) -> Any:
        p = self.props
        s = p.settings
        name = self.alarm_names[variant]
        alarm = aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            f"alarm-{variant}",
            alarm_name=name,
            alarm_description=(
                f"No request to variant {variant} of {p.endpoint_name} for {s.idle_minutes} minutes: the idle "
                f"function applies {s.action} once every variant is idle."
            ),
            namespace="AWS/SageMaker",
            metric_name="Invocations",
            dimensions={"EndpointName": p.endpoint_name, "VariantName": variant},
            statistic="Sum",
            period=IDLE_PERIOD_MINUTES * 60,
            evaluation_periods=s.periods,
            datapoints_to_alarm=s.periods,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # SageMaker publishes no datapoint for a minute without requests: missing data is what idle looks like.
            treat_missing_data="breaching",
            alarm_actions=[self.function.arn],
        )
        aws.lambda_permission.LambdaPermission(
            self,
            f"alarm-{variant}-invokes-function",
            statement_id=f"IdleAlarm-{variant}",
            action="lambda:InvokeFunction",
            function_name=self.function.function_name,
            principal="lambda.alarms.cloudwatch.amazonaws.com",
            source_arn=alarm.arn,
            source_account=p.context.account_id,
        )
        return alarm

    def _parking_schedule(self, expression: str) -> None:
        p = self.props
        c = p.context
        s = p.settings
        self.schedule_role = service_role(
            self,
            "schedule-role",
            name=c.global_name(f"{p.endpoint_name}-idle-schedule"),
            services=("scheduler.amazonaws.com",),
            description=f"Lets the parking schedule of {p.endpoint_name} invoke its idle function",
            trust_conditions={"StringEquals": {"aws:SourceAccount": c.account_id}},
        )
        role_policy = grant(
            self,
            "schedule-permissions",
            self.schedule_role,
            PolicyStatement(
                sid="InvokeTheIdleFunction", actions=("lambda:InvokeFunction",), resources=(self.function.arn,)
            ),
            name="invoke-idle-function",
        )
        schedule = aws.scheduler_schedule
        self.schedule = schedule.SchedulerSchedule(
            self,
            "parking-schedule",
            name=f"{p.endpoint_name}-parking",
            description=f"Parks {p.endpoint_name} ({s.action}) at '{s.parking_cron}' {s.schedule_time_zone}",
            schedule_expression=expression,
            schedule_expression_timezone=s.schedule_time_zone,
            flexible_time_window=schedule.SchedulerScheduleFlexibleTimeWindow(mode="OFF"),
            target=schedule.SchedulerScheduleTarget(
                arn=self.function.arn,
                role_arn=self.schedule_role.arn,
                input=json.dumps(PARK_EVENT),
                retry_policy=schedule.SchedulerScheduleTargetRetryPolicy(
                    maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE_SECONDS,
                    maximum_retry_attempts=SCHEDULE_RETRIES,
                ),
            ),
            depends_on=[role_policy],
        )
