"""SageMaker real-time serving: image repository, execution role, model, endpoint, autoscaling, alarms.

A fresh environment has no trained model yet, and SageMaker cannot create a model or bring an
endpoint InService without a real ``model.tar.gz`` in S3. So everything that does not need the model
is always provisioned (image repository, execution role and its policies, log group, the
CloudWatch alarms), and the model, endpoint configuration, endpoint, autoscaling and (in VPC mode)
the model's security group are added once ``model_version`` names a published model. Publishing a
new version is a one-line change that SageMaker rolls out blue/green and rolls back on the alarms
(see docs/sagemaker.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement
from constructs.core.instance_types import has_instance_storage
from constructs.core.logs import encrypted_log_group
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef, SecurityGroupRef, SubnetRef, VpcRef
from constructs.sagemaker.execution_role import (
    SageMakerExecutionRole,
    https_only_security_group,
    require_vpc_network,
)
from constructs.sagemaker.idle import EndpointIdlePolicy, EndpointIdlePolicyProps
from constructs.sagemaker.idle_settings import IDLE_TAG
from constructs.sagemaker.image_repository import ModelImageRepository, ModelImageRepositoryProps
from constructs.sagemaker.images import ResolvedImage, default_pytorch_image, resolve_image, uses_own_repository
from constructs.sagemaker.settings import (
    InstanceVariantSettings,
    SageMakerEndpointSettings,
    ServerlessVariantSettings,
)
from constructs.storage.bucket import SecureBucket

# Endpoint configurations are named <endpoint>-<26-character unique suffix>, at most 63 characters.
MAX_ENDPOINT_NAME_LENGTH = 36
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
_NAME_PREFIX = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class SageMakerEndpointProps:
    """Props for :class:`SageMakerEndpoint`.

    context: the environment; its name prefix starts every name (``<prefix>-<model_name>``).
    settings: the environment's serving settings.
    model_artifacts: bucket holding ``models/<model_name>/<version>/model.tar.gz`` (read) and the
      captured data (``data-capture/<model_name>/``, write).
    data_key: KMS key for the image repository, storage volumes and captured data.
    logs_key: KMS key for the endpoint's log group.
    vpc, private_subnets: the network for VPC mode (required when ``settings.vpc``).
    """

    context: PlatformContext
    settings: SageMakerEndpointSettings
    model_artifacts: SecureBucket
    data_key: KmsKeyRef
    logs_key: KmsKeyRef
    vpc: VpcRef | None = None
    private_subnets: Sequence[SubnetRef] = ()


class SageMakerEndpoint(Construct):
    """A SageMaker real-time endpoint with blue/green deployments that roll back on alarms.

    Always created: the image repository (:class:`ModelImageRepository`), a KMS-encrypted log group,
    the execution role (trusted by SageMaker for this account only) with one least-privilege policy
    per intent, and per variant a 5xx-error alarm and a p99 model-latency alarm. Once
    ``settings.model_version`` is set: in VPC mode the HTTPS-only security group and the permission
    to create network interfaces, one model per served version,
    an endpoint configuration (KMS-encrypted volumes unless an instance type has local NVMe storage,
    whose volumes the instance encrypts in hardware; data capture), the endpoint with its
    deployment guardrails, target-tracking autoscaling per instance variant and, with ``settings.idle``, the
    idle policy (:class:`~constructs.sagemaker.idle.EndpointIdlePolicy`; the endpoint is tagged with it).
    """

    def __init__(self, scope: Construct, id: str, props: SageMakerEndpointProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        s = props.settings
        c = props.context
        require(
            bool(_NAME_PREFIX.fullmatch(c.name_prefix)),
            where,
            "name_prefix",
            c.name_prefix,
            "lowercase letters, digits and single hyphens, such as 'mlp-prod'",
        )
        self.endpoint_name = f"{c.name_prefix}-{s.model_name}"
        require(
            len(self.endpoint_name) <= MAX_ENDPOINT_NAME_LENGTH,
            where,
            "name_prefix",
            c.name_prefix,
            f"a prefix short enough that '<prefix>-{s.model_name}' has at most {MAX_ENDPOINT_NAME_LENGTH} characters",
        )
        if s.vpc:
            require_vpc_network(where, props.vpc, props.private_subnets)
        self.props = props
        self.artifact_prefix = f"models/{s.model_name}/"
        self.data_capture_prefix = f"data-capture/{s.model_name}/"
        # SageMaker refuses a volume KMS key when any variant's instances have local NVMe storage.
        self.volume_kms_key_applied = not any(has_instance_storage(t) for t in s.instance_types)

        self.image_repository = ModelImageRepository(
            self,
            "images",
            ModelImageRepositoryProps(
                name=f"{c.name_prefix}/{s.model_name}",
                kms_key=props.data_key,
                settings=s.image_repository,
                protected=c.protected,
            ),
        )
        self.image_template = s.inference_image or default_pytorch_image(s.instance_types, training=False)
        self.image: ResolvedImage = resolve_image(
            self.image_template,
            region=c.region,
            account_id=c.account_id,
            partition=c.partition,
            own_repository=self.image_repository,
        )
        self.log_group_name = f"/aws/sagemaker/Endpoints/{self.endpoint_name}"
        self.log_group = encrypted_log_group(
            self,
            "log-group",
            name=self.log_group_name,
            retention_days=s.log_retention_days,
            key=props.logs_key,
            protected=c.protected,
        )
        self.execution_role = SageMakerExecutionRole(
            self,
            "execution-role",
            name=c.global_name(f"{self.endpoint_name}-sagemaker"),
            description=f"Execution role of the SageMaker endpoint {self.endpoint_name}",
            context=c,
        )
        self.role = self.execution_role.role
        self._grants()
        self.role_policies = self.execution_role.policies
        self.alarms: dict[str, list[Any]] = {v.name: self._alarms(v.name) for v in s.variants}

        self.security_group: SecurityGroupRef | None = None
        self.models: dict[str, Any] = {}
        self.endpoint_configuration: Any | None = None
        self.endpoint: Any | None = None
        self.scalable_targets: dict[str, Any] = {}
        self.scaling_policies: dict[str, Any] = {}
        self.idle: EndpointIdlePolicy | None = None
        if s.deployed:
            self._deploy()

    def _grants(self) -> None:
        p = self.props
        s = p.settings
        role = self.execution_role
        role.grant_read(p.model_artifacts, prefix=self.artifact_prefix)
        role.grant_pull("pull-serving-image", self.image.repository_arn)
        role.grant_logs("write-endpoint-logs", self.log_group_name)
        role.grant_metrics("publish-endpoint-metrics", METRICS_NAMESPACE)
        if s.data_capture_percentage is not None:
            role.grant(
                "write-data-capture",
                PolicyStatement(
                    sid="WriteCapturedData",
                    actions=("s3:PutObject",),
                    resources=(f"{p.model_artifacts.arn}/{self.data_capture_prefix}*",),
                ),
                PolicyStatement(
                    sid="EncryptCapturedData",
                    actions=("kms:Encrypt", "kms:GenerateDataKey"),
                    resources=(p.data_key.arn,),
                    conditions={"StringEquals": {"kms:ViaService": p.context.via_service("s3")}},
                ),
            )
        if self.volume_kms_key_applied and not s.serverless:
            role.grant("encrypt-endpoint-volumes", role.volume_key_statement(p.data_key))

    def _alarms(self, variant: str) -> list[Any]:
        s = self.props.settings
        dimensions = {"EndpointName": self.endpoint_name, "VariantName": variant}
        alarm = aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm
        errors = alarm(
            self,
            f"alarm-{variant}-5xx",
            alarm_name=f"{self.endpoint_name}-{variant}-5xx-errors",
            alarm_description=(
                f"Variant {variant} of {self.endpoint_name} returns model errors; "
                "rolls back a blue/green deployment in progress"
            ),
            namespace="AWS/SageMaker",
            metric_name="Invocation5XXErrors",
            dimensions=dimensions,
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=s.error_5xx_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            treat_missing_data="notBreaching",
        )
        latency = alarm(
            self,
            f"alarm-{variant}-latency",
            alarm_name=f"{self.endpoint_name}-{variant}-model-latency-p99",
            alarm_description=(
                f"p99 model latency of variant {variant} of {self.endpoint_name} is above "
                f"{s.model_latency_p99_ms} ms; rolls back a blue/green deployment in progress"
            ),
            namespace="AWS/SageMaker",
            metric_name="ModelLatency",
            dimensions=dimensions,
            extended_statistic="p99",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=3,
            # ModelLatency is reported in microseconds.
            threshold=s.model_latency_p99_ms * 1000,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
        )
        return [errors, latency]

    @property
    def rollback_alarms(self) -> list[Any]:
        """Every alarm, in variant order; any of them rolls a deployment back."""
        return [a for variant in self.props.settings.variants for a in self.alarms[variant.name]]

    def _version_of(self, variant: InstanceVariantSettings | ServerlessVariantSettings) -> str:
        version = variant.model_version or self.props.settings.model_version
        assert version is not None
        return version

    def model_data_url(self, version: str) -> str:
        """``s3://<model-artifacts>/models/<model_name>/<version>/model.tar.gz``."""
        return self.props.model_artifacts.s3_uri(f"{self.artifact_prefix}{version}/model.tar.gz")

    def _deploy(self) -> None:
        s = self.props.settings
        if s.vpc:
            self._vpc_network()
        for variant in s.variants:
            version = self._version_of(variant)
            if version not in self.models:
                self.models[version] = self._model(version)
        self.endpoint_configuration = self._endpoint_configuration()
        self.endpoint = aws.sagemaker_endpoint.SagemakerEndpoint(
            self,
            "endpoint",
            name=self.endpoint_name,
            endpoint_config_name=self.endpoint_configuration.name,
            deployment_config=None if s.serverless else self._deployment_config(),
            # A new model version updates the endpoint in place; replacing it (a renamed model) is an outage
            # and starts its invocation metrics and alarms from nothing.
            lifecycle=prevent_destroy(self.props.context.protected),
            # The drift check reads a deleted endpoint with this tag as parked by its idle policy.
            tags={IDLE_TAG: s.idle.action} if s.idle is not None else None,
        )
        if s.autoscaling:
            for variant in s.variants:
                self._autoscaling(variant.name)
        if s.idle is not None:
            idle = EndpointIdlePolicyProps.of_endpoint(self.props.context, self.endpoint_name, s, self.props.logs_key)
            self.idle = EndpointIdlePolicy(self, "idle", idle)

    def _vpc_network(self) -> None:
        # Created with the model that attaches it, so no group (and no permission to create network
        # interfaces) exists before there is something to run in the VPC.
        p = self.props
        assert p.vpc is not None
        self.security_group = https_only_security_group(
            self,
            "security-group",
            name=f"{self.endpoint_name}-sagemaker",
            description=f"SageMaker endpoint {self.endpoint_name}: no ingress, HTTPS egress only",
            vpc_id=p.vpc.id,
        )
        self.execution_role.grant_vpc_access(
            "manage-vpc-network-interfaces", vpc=p.vpc, subnets=p.private_subnets, security_group=self.security_group
        )

    def _model(self, version: str) -> Any:
        p = self.props
        s = p.settings
        environment = {"SAGEMAKER_REGION": p.context.region, **dict(s.container_environment)}
        model_data_url = self.model_data_url(version)
        sagemaker_model = aws.sagemaker_model
        vpc_config = None
        subnet_ids: list[str] = []
        security_group_ids: list[str] = []
        if s.vpc and self.security_group is not None:
            subnet_ids = [subnet.id for subnet in p.private_subnets]
            security_group_ids = [self.security_group.id]
            vpc_config = sagemaker_model.SagemakerModelVpcConfig(
                security_group_ids=security_group_ids, subnets=subnet_ids
            )
        # Every model argument forces a replacement, and create_before_destroy needs the new model to
        # have a new name: the suffix is a hash of everything that can change, computed by Terraform
        # so that subnet and security group IDs take part too. Region and account never change within
        # a stack, so the image enters unresolved and references stay whole (no token inside a string).
        inputs: dict[str, Any] = {
            "image": self.image_template,
            "model_data": {"bucket": p.model_artifacts.name, "key": f"{self.artifact_prefix}{version}/model.tar.gz"},
            "environment": environment,
            "network_isolation": s.network_isolation,
            "subnets": subnet_ids,
            "security_groups": security_group_ids,
            "role": self.role.arn,
        }
        if uses_own_repository(self.image_template):
            inputs["image_repository"] = self.image_repository.repository_url
        fingerprint = Fn.substr(Fn.md5(Fn.jsonencode(inputs)), 0, 8)
        base = f"{self.endpoint_name}-{version.replace('.', '-')}"[:54].rstrip("-")
        return sagemaker_model.SagemakerModel(
            self,
            f"model-{version}",
            name=f"{base}-{fingerprint}",
            execution_role_arn=self.role.arn,
            primary_container=sagemaker_model.SagemakerModelPrimaryContainer(
                image=self.image.uri,
                model_data_url=model_data_url,
                environment=environment,
            ),
            enable_network_isolation=s.network_isolation,
            vpc_config=vpc_config,
            depends_on=self.role_policies,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    def _endpoint_configuration(self) -> Any:
        p = self.props
        s = p.settings
        config = aws.sagemaker_endpoint_configuration
        variants = []
        for variant in s.variants:
            model_name = self.models[self._version_of(variant)].name
            if isinstance(variant, ServerlessVariantSettings):
                variants.append(
                    config.SagemakerEndpointConfigurationProductionVariants(
                        variant_name=variant.name,
                        model_name=model_name,
                        serverless_config=config.SagemakerEndpointConfigurationProductionVariantsServerlessConfig(
                            memory_size_in_mb=variant.memory_size_in_mb,
                            max_concurrency=variant.max_concurrency,
                            provisioned_concurrency=variant.provisioned_concurrency,
                        ),
                    )
                )
            else:
                variants.append(
                    config.SagemakerEndpointConfigurationProductionVariants(
                        variant_name=variant.name,
                        model_name=model_name,
                        instance_type=variant.instance_type,
                        initial_instance_count=variant.initial_instance_count,
                        initial_variant_weight=variant.initial_weight,
                    )
                )
        data_capture = None
        if s.data_capture_percentage is not None:
            data_capture = config.SagemakerEndpointConfigurationDataCaptureConfig(
                enable_capture=True,
                initial_sampling_percentage=s.data_capture_percentage,
                destination_s3_uri=p.model_artifacts.s3_uri(self.data_capture_prefix),
                kms_key_id=p.data_key.arn,
                capture_options=[
                    config.SagemakerEndpointConfigurationDataCaptureConfigCaptureOptions(capture_mode="Input"),
                    config.SagemakerEndpointConfigurationDataCaptureConfigCaptureOptions(capture_mode="Output"),
                ],
                capture_content_type_header=config.SagemakerEndpointConfigurationDataCaptureConfigCaptureContentTypeHeader(
                    json_content_types=["application/json"], csv_content_types=["text/csv"]
                ),
            )
        # Endpoint configurations cannot be changed, and one in use must not be deleted: every change
        # creates a new one (unique name from the prefix) before the endpoint moves to it.
        return config.SagemakerEndpointConfiguration(
            self,
            "endpoint-configuration",
            name_prefix=f"{self.endpoint_name}-",
            production_variants=variants,
            kms_key_arn=p.data_key.arn if self.volume_kms_key_applied else None,
            data_capture_config=data_capture,
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    def _deployment_config(self) -> Any:
        s = self.props.settings
        ep = aws.sagemaker_endpoint
        routing = ep.SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfiguration
        if s.traffic_shifting == "CANARY":
            traffic = routing(
                type="CANARY",
                wait_interval_in_seconds=s.wait_interval_seconds,
                canary_size=ep.SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySize(
                    type="INSTANCE_COUNT", value=s.canary_instance_count
                ),
            )
        elif s.traffic_shifting == "LINEAR":
            traffic = routing(
                type="LINEAR",
                wait_interval_in_seconds=s.wait_interval_seconds,
                linear_step_size=ep.SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationLinearStepSize(
                    type="INSTANCE_COUNT", value=s.linear_step_instance_count
                ),
            )
        else:
            traffic = routing(type="ALL_AT_ONCE", wait_interval_in_seconds=s.wait_interval_seconds)
        return ep.SagemakerEndpointDeploymentConfig(
            blue_green_update_policy=ep.SagemakerEndpointDeploymentConfigBlueGreenUpdatePolicy(
                traffic_routing_configuration=traffic,
                termination_wait_in_seconds=s.termination_wait_seconds,
                maximum_execution_timeout_in_seconds=s.deployment_timeout_seconds,
            ),
            auto_rollback_configuration=ep.SagemakerEndpointDeploymentConfigAutoRollbackConfiguration(
                alarms=[
                    ep.SagemakerEndpointDeploymentConfigAutoRollbackConfigurationAlarms(alarm_name=alarm.alarm_name)
                    for alarm in self.rollback_alarms
                ]
            ),
        )

    def _autoscaling(self, variant: str) -> None:
        s = self.props.settings
        assert self.endpoint is not None
        target = aws.appautoscaling_target.AppautoscalingTarget(
            self,
            f"scaling-target-{variant}",
            service_namespace="sagemaker",
            scalable_dimension="sagemaker:variant:DesiredInstanceCount",
            resource_id=f"endpoint/{self.endpoint.name}/variant/{variant}",
            min_capacity=s.min_instance_count,
            max_capacity=s.max_instance_count,
        )
        policy = aws.appautoscaling_policy
        self.scalable_targets[variant] = target
        self.scaling_policies[variant] = policy.AppautoscalingPolicy(
            self,
            f"scaling-policy-{variant}",
            name=f"{self.endpoint_name}-{variant}-invocations-per-instance",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration=policy.AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                target_value=s.target_invocations_per_instance,
                predefined_metric_specification=policy.AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                    predefined_metric_type="SageMakerVariantInvocationsPerInstance"
                ),
                scale_in_cooldown=s.scale_in_cooldown_seconds,
                scale_out_cooldown=s.scale_out_cooldown_seconds,
            ),
        )
