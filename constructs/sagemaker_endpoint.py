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

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformResourceLifecycle
from constructs import Construct
from constructs.iam_policy import PolicyStatement, grant
from constructs.model_image_repository import ModelImageRepository, ModelImageRepositoryProps
from constructs.platform_network import LOG_RETENTION_DAYS
from constructs.provider_bindings import aws
from constructs.sagemaker_common import (
    ResolvedImage,
    default_pytorch_image,
    ecr_pull_statements,
    execution_role,
    has_instance_storage,
    https_only_security_group,
    log_group_arn,
    log_statements,
    metric_statement,
    network_interface_statements,
    resolve_image,
    validate_image,
    volume_key_statement,
)
from constructs.secure_bucket import SecureBucket
from constructs.validation import (
    ConfigurationError,
    require,
    require_field_types,
    require_int_range,
    require_min_max,
    require_one_of,
    require_sagemaker_instance_type,
)

# SageMaker's VariantName pattern.
_VARIANT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MODEL_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_MODEL_VERSION = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,30}[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,1023}$")
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
TRAFFIC_SHIFTING_MODES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
# Each variant has two rollback alarms and SageMaker accepts at most 10 rollback alarms.
MAX_VARIANTS = 5
# Endpoint configurations are named <endpoint>-<26-character unique suffix>, at most 63 characters.
MAX_ENDPOINT_NAME_LENGTH = 36
# Time a blue/green deployment may spend provisioning the new fleet (large GPU images take minutes).
PROVISIONING_ALLOWANCE_SECONDS = 1800
MAX_DEPLOYMENT_SECONDS = 28800
DEFAULT_CONTAINER_ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "20"),
    ("SAGEMAKER_PROGRAM", "inference.py"),
    ("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code"),
)
METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"


def _require_name(where: str, field: str, value: Any) -> None:
    require(
        isinstance(value, str) and bool(_VARIANT_NAME.match(value)),
        where,
        field,
        value,
        "1-63 letters, digits and hyphens, starting and ending with a letter or digit",
    )


def _require_version(where: str, field: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    require(
        isinstance(value, str) and bool(_MODEL_VERSION.match(value)),
        where,
        field,
        value,
        "a version such as 'v3', '1.4.2' or '2025-06-01' (lowercase letters, digits, '.', '-'; at most 32)",
    )


@dataclass(frozen=True)
class InstanceVariantSettings:
    """A production variant served by dedicated instances.

    name: variant name (also in alarm and scaling-policy names); keep it stable across releases,
      because SageMaker blue/green deployments match old and new fleets by variant name.
    instance_type: SageMaker instance type, with the ``ml.`` prefix (``ml.g5.xlarge``).
    initial_instance_count: instances when the variant is created or redeployed; autoscaling moves
      the count between the endpoint's min and max afterwards.
    initial_weight: relative share of traffic (A/B tests: 9 and 1 send 90% and 10%); must be > 0.
    model_version: published model version this variant serves; None serves the endpoint's
      ``model_version`` (set it on one variant to A/B-test a new version against the current one).
    """

    name: str = "primary"
    instance_type: str = "ml.m5.xlarge"
    initial_instance_count: int = 1
    initial_weight: float = 1.0
    model_version: str | None = None

    def __post_init__(self) -> None:
        where = "InstanceVariantSettings"
        require_field_types(self, where)
        _require_name(where, "name", self.name)
        require_sagemaker_instance_type(where, "instance_type", self.instance_type)
        require_int_range(where, "initial_instance_count", self.initial_instance_count, 1, 100)
        weight = self.initial_weight
        require(
            isinstance(weight, (int, float)) and not isinstance(weight, bool) and math.isfinite(weight) and weight > 0,
            where,
            "initial_weight",
            weight,
            "a number greater than 0 (weights are relative: 9 and 1 send 90% and 10% of requests)",
        )
        _require_version(where, "model_version", self.model_version, optional=True)


@dataclass(frozen=True)
class ServerlessVariantSettings:
    """A serverless variant: no instances, billed per request, scales to zero (cold starts).

    SageMaker Serverless Inference supports one variant per endpoint and no GPUs, VPC, network
    isolation or data capture, so an endpoint with a serverless variant has none of those.

    name: variant name.
    memory_size_in_mb: 1024 to 6144 in 1 GB steps; vCPUs grow with memory.
    max_concurrency: concurrent invocations before requests are throttled (1-200).
    provisioned_concurrency: warm capacity that avoids cold starts (billed while idle); None for none.
    model_version: as for :class:`InstanceVariantSettings`.
    """

    name: str = "primary"
    memory_size_in_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None
    model_version: str | None = None

    def __post_init__(self) -> None:
        where = "ServerlessVariantSettings"
        require_field_types(self, where)
        _require_name(where, "name", self.name)
        require_one_of(where, "memory_size_in_mb", self.memory_size_in_mb, SERVERLESS_MEMORY_SIZES)
        require_int_range(where, "max_concurrency", self.max_concurrency, 1, 200)
        if self.provisioned_concurrency is not None:
            require_int_range(where, "provisioned_concurrency", self.provisioned_concurrency, 1, self.max_concurrency)
        _require_version(where, "model_version", self.model_version, optional=True)


VariantSettings = InstanceVariantSettings | ServerlessVariantSettings


def _variant_from(value: Any) -> VariantSettings:
    """A variant from a settings object or from a JSON override (an object with the same fields)."""
    if isinstance(value, (InstanceVariantSettings, ServerlessVariantSettings)):
        return value
    if isinstance(value, Mapping):
        fields = dict(value)
        serverless = "memory_size_in_mb" in fields or "max_concurrency" in fields
        cls = ServerlessVariantSettings if serverless else InstanceVariantSettings
        try:
            return cls(**fields)
        except TypeError as error:
            raise ConfigurationError(
                cls.__name__, "<fields>", value, f"the fields of {cls.__name__} ({error})"
            ) from None
    raise ConfigurationError("variants", "<item>", value, "an InstanceVariantSettings or ServerlessVariantSettings")


def _environment_from(value: Any) -> tuple[tuple[str, str], ...]:
    pairs = value.items() if isinstance(value, Mapping) else value
    allowed = "a mapping of environment variable names to string values (at most 100)"
    try:
        normalized = tuple(sorted((k, v) for k, v in pairs))
    except (TypeError, ValueError):
        raise ConfigurationError("SageMakerEndpointSettings", "container_environment", value, allowed) from None
    ok = len(normalized) <= 100 and all(
        isinstance(k, str) and bool(_ENV_NAME.match(k)) and isinstance(v, str) and len(v) <= 1024 for k, v in normalized
    )
    require(
        ok and len({k for k, _ in normalized}) == len(normalized),
        "SageMakerEndpointSettings",
        "container_environment",
        value,
        allowed,
    )
    return normalized


@dataclass(frozen=True)
class SageMakerEndpointSettings:
    """Per-environment SageMaker serving.

    model_name: the model's short name: endpoint ``<prefix>-<model_name>``, image repository
      ``<prefix>/<model_name>``, artifacts under ``s3://<model-artifacts>/models/<model_name>/``.
    model_version: the published version to serve (``models/<model_name>/<version>/model.tar.gz``);
      None until a model is published: the model, endpoint configuration, endpoint and autoscaling
      are created only once it is set, everything else (role, image repository, alarms) always.
    variants: instance variants (one or more, for A/B tests) or exactly one serverless variant. In
      JSON overrides a variant is an object with the same fields; one with ``memory_size_in_mb`` or
      ``max_concurrency`` is serverless.
    inference_image: serving image; None picks the AWS PyTorch inference DLC for the region (the GPU
      build for accelerated instance types). Placeholders: ``{region}``, ``{account}``, and
      ``{repository}`` for this platform's image repository (``{repository}:1.4.2``).
    container_environment: environment variables of the serving container (a dict or name/value pairs).
    network_isolation: the container gets no network access; SageMaker still downloads the model
      data for it. Not available for serverless variants.
    vpc: run the model's network interfaces in the private subnets with an HTTPS-only security
      group. Not available for serverless variants.
    data_capture_percentage: share of requests and responses captured to S3 (KMS-encrypted, under
      ``data-capture/<model_name>/``) for monitoring; None disables capture (always for serverless).
    min_instance_count, max_instance_count: autoscaling bounds of every instance variant; when equal,
      no autoscaling is configured (instance type changes then need no deregistration).
    target_invocations_per_instance: target of the target-tracking policy
      (SageMakerVariantInvocationsPerInstance, requests per instance per minute).
    scale_in_cooldown_seconds, scale_out_cooldown_seconds: scaling cooldowns.
    traffic_shifting: blue/green traffic shifting when a new version deploys: ``ALL_AT_ONCE``,
      ``CANARY`` (``canary_instance_count`` instances first) or ``LINEAR`` (``linear_step_instance_count``
      instances per step). Canary and linear steps must be at most half the fleet, so they need
      ``min_instance_count`` >= 2. Serverless endpoints use SageMaker's default (all at once).
    wait_interval_seconds: baking time after each traffic shift, during which the alarms roll back.
    termination_wait_seconds: how long the old fleet is kept after the last shift (fast manual rollback).
    error_5xx_threshold: model errors (Invocation5XXErrors) per minute that trip the error alarm.
    model_latency_p99_ms: p99 ModelLatency, in milliseconds, that trips the latency alarm.
    log_retention_days: retention of the endpoint's log group (a CloudWatch Logs retention value).
    image_keep_count, untagged_image_expiry_days, image_force_delete: the image repository's
      lifecycle (see :class:`ModelImageRepositoryProps`).
    """

    model_name: str = "inference"
    model_version: str | None = None
    variants: tuple[VariantSettings, ...] = (InstanceVariantSettings(),)
    inference_image: str | None = None
    container_environment: tuple[tuple[str, str], ...] = DEFAULT_CONTAINER_ENVIRONMENT
    network_isolation: bool = True
    vpc: bool = True
    data_capture_percentage: int | None = 20
    min_instance_count: int = 1
    max_instance_count: int = 2
    target_invocations_per_instance: int = 100
    scale_in_cooldown_seconds: int = 300
    scale_out_cooldown_seconds: int = 60
    traffic_shifting: str = "ALL_AT_ONCE"
    canary_instance_count: int = 1
    linear_step_instance_count: int = 1
    wait_interval_seconds: int = 600
    termination_wait_seconds: int = 300
    error_5xx_threshold: int = 5
    model_latency_p99_ms: int = 1000
    log_retention_days: int = 90
    image_keep_count: int = 30
    untagged_image_expiry_days: int = 7
    image_force_delete: bool = False

    def __post_init__(self) -> None:
        where = "SageMakerEndpointSettings"
        require(
            isinstance(self.model_name, str)
            and len(self.model_name) <= 24
            and bool(_MODEL_NAME.match(self.model_name)),
            where,
            "model_name",
            self.model_name,
            "1-24 lowercase letters and digits, single hyphens between them",
        )
        _require_version(where, "model_version", self.model_version, optional=True)
        self._normalize_variants(where)
        if self.inference_image is not None:
            validate_image(where, "inference_image", self.inference_image, allow_own_repository=True)
        object.__setattr__(self, "container_environment", _environment_from(self.container_environment))
        require_field_types(self, where)
        if self.data_capture_percentage is not None:
            require_int_range(where, "data_capture_percentage", self.data_capture_percentage, 1, 100)
        require_int_range(where, "min_instance_count", self.min_instance_count, 1, 100)
        require_int_range(where, "max_instance_count", self.max_instance_count, 1, 100)
        require_min_max(
            where, "min_instance_count", self.min_instance_count, "max_instance_count", self.max_instance_count
        )
        require_int_range(where, "target_invocations_per_instance", self.target_invocations_per_instance, 1, 100000)
        require_int_range(where, "scale_in_cooldown_seconds", self.scale_in_cooldown_seconds, 0, 3600)
        require_int_range(where, "scale_out_cooldown_seconds", self.scale_out_cooldown_seconds, 0, 3600)
        require_one_of(where, "traffic_shifting", self.traffic_shifting, TRAFFIC_SHIFTING_MODES)
        require_int_range(where, "canary_instance_count", self.canary_instance_count, 1, 50)
        require_int_range(where, "linear_step_instance_count", self.linear_step_instance_count, 1, 50)
        require_int_range(where, "wait_interval_seconds", self.wait_interval_seconds, 0, 3600)
        require_int_range(where, "termination_wait_seconds", self.termination_wait_seconds, 0, 3600)
        require_int_range(where, "error_5xx_threshold", self.error_5xx_threshold, 1, 100000)
        require_int_range(where, "model_latency_p99_ms", self.model_latency_p99_ms, 1, 600000)
        require_one_of(where, "log_retention_days", self.log_retention_days, LOG_RETENTION_DAYS)
        require_int_range(where, "image_keep_count", self.image_keep_count, 1, 1000)
        require_int_range(where, "untagged_image_expiry_days", self.untagged_image_expiry_days, 1, 365)
        if self.serverless:
            self._validate_serverless(where)
        else:
            self._validate_instances(where)
        if self.inference_image is None:
            try:
                default_pytorch_image(self.instance_types, training=False)
            except ValueError:
                raise ConfigurationError(
                    where,
                    "inference_image",
                    None,
                    f"an explicit image when variants mix GPU and CPU instance types {list(self.instance_types)}",
                ) from None

    def _normalize_variants(self, where: str) -> None:
        raw = self.variants
        require(
            isinstance(raw, (tuple, list)) and 1 <= len(raw) <= MAX_VARIANTS,
            where,
            "variants",
            raw,
            f"a tuple of 1 to {MAX_VARIANTS} variants (each has two rollback alarms; SageMaker allows 10)",
        )
        variants: list[VariantSettings] = []
        for index, item in enumerate(raw):
            try:
                variants.append(_variant_from(item))
            except ConfigurationError as error:
                raise error.located(where, f"variants[{index}]") from None
        object.__setattr__(self, "variants", tuple(variants))
        seen: set[str] = set()
        for index, variant in enumerate(variants):
            require(
                variant.name not in seen,
                where,
                f"variants[{index}].name",
                variant.name,
                f"a name not used by another variant (already used: {sorted(seen)})",
            )
            seen.add(variant.name)

    def _validate_serverless(self, where: str) -> None:
        require(
            len(self.variants) == 1,
            where,
            "variants",
            [v.name for v in self.variants],
            "exactly one variant when it is serverless (serverless endpoints have a single variant)",
        )
        why = "for a serverless variant (SageMaker Serverless Inference does not support it)"
        require(not self.vpc, where, "vpc", self.vpc, "False " + why)
        require(not self.network_isolation, where, "network_isolation", self.network_isolation, "False " + why)
        require(
            self.data_capture_percentage is None,
            where,
            "data_capture_percentage",
            self.data_capture_percentage,
            "None " + why,
        )
        require(
            self.traffic_shifting == "ALL_AT_ONCE",
            where,
            "traffic_shifting",
            self.traffic_shifting,
            "'ALL_AT_ONCE' for a serverless variant (canary and linear steps are sized in instances)",
        )

    def _validate_instances(self, where: str) -> None:
        for index, variant in enumerate(self.variants):
            require(
                isinstance(variant, InstanceVariantSettings),
                where,
                f"variants[{index}]",
                variant,
                "instance variants only, or exactly one serverless variant (they cannot be mixed)",
            )
            assert isinstance(variant, InstanceVariantSettings)
            require(
                self.min_instance_count <= variant.initial_instance_count <= self.max_instance_count,
                where,
                f"variants[{index}].initial_instance_count",
                variant.initial_instance_count,
                f"a count within min_instance_count..max_instance_count "
                f"({self.min_instance_count}..{self.max_instance_count})",
            )
        if self.traffic_shifting == "CANARY":
            require(
                2 * self.canary_instance_count <= self.min_instance_count,
                where,
                "canary_instance_count",
                self.canary_instance_count,
                f"at most half of min_instance_count ({self.min_instance_count}); a canary is at most 50% of "
                "the fleet, use 'ALL_AT_ONCE' with a baking period for single-instance variants",
            )
        if self.traffic_shifting == "LINEAR":
            step = self.linear_step_instance_count
            require(
                2 * step <= self.min_instance_count and 10 * step >= self.max_instance_count,
                where,
                "linear_step_instance_count",
                step,
                f"10% to 50% of the fleet at every size from min_instance_count ({self.min_instance_count}) "
                f"to max_instance_count ({self.max_instance_count})",
            )
        require(
            self.deployment_timeout_seconds <= MAX_DEPLOYMENT_SECONDS,
            where,
            "wait_interval_seconds",
            self.wait_interval_seconds,
            f"a baking time whose deployment (baking steps, termination wait and "
            f"{PROVISIONING_ALLOWANCE_SECONDS} s provisioning) fits SageMaker's {MAX_DEPLOYMENT_SECONDS} s limit",
        )

    @property
    def serverless(self) -> bool:
        """True when the endpoint's (single) variant is serverless."""
        return any(isinstance(v, ServerlessVariantSettings) for v in self.variants)

    @property
    def deployed(self) -> bool:
        """True once a published model version is named: the endpoint then exists."""
        return self.model_version is not None

    @property
    def instance_types(self) -> tuple[str, ...]:
        """Instance types of the instance variants (empty for serverless)."""
        return tuple(v.instance_type for v in self.variants if isinstance(v, InstanceVariantSettings))

    @property
    def autoscaling(self) -> bool:
        """Autoscaling applies to instance variants whose bounds differ."""
        return not self.serverless and self.max_instance_count > self.min_instance_count

    @property
    def baking_steps(self) -> int:
        """Baking periods of one blue/green deployment (one per traffic shift)."""
        if self.traffic_shifting == "CANARY":
            return 2
        if self.traffic_shifting == "LINEAR":
            return math.ceil(self.max_instance_count / self.linear_step_instance_count)
        return 1

    @property
    def deployment_timeout_seconds(self) -> int:
        """Maximum execution time of one blue/green deployment, at least SageMaker's 600 s minimum."""
        total = (
            self.baking_steps * self.wait_interval_seconds
            + self.termination_wait_seconds
            + PROVISIONING_ALLOWANCE_SECONDS
        )
        return max(600, total)


@dataclass(frozen=True)
class SageMakerEndpointProps:
    """Props for :class:`SageMakerEndpoint`.

    name_prefix: prefix of every name (``<project>-<environment>``).
    settings: the environment's serving settings.
    account_id, region, partition: where the endpoint lives; usually data-source tokens.
    model_artifacts: bucket holding ``models/<model_name>/<version>/model.tar.gz`` (read) and the
      captured data (``data-capture/<model_name>/``, write).
    data_key: KMS key for the image repository, storage volumes and captured data.
    logs_key: KMS key for the endpoint's log group.
    vpc, private_subnets: the network for VPC mode (required when ``settings.vpc``).
    """

    name_prefix: str
    settings: SageMakerEndpointSettings
    account_id: str
    region: str
    partition: str
    model_artifacts: SecureBucket
    data_key: Any
    logs_key: Any
    vpc: Any | None = None
    private_subnets: Sequence[Any] = ()


class SageMakerEndpoint(Construct):
    """A SageMaker real-time endpoint with blue/green deployments that roll back on alarms.

    Always created: the image repository (:class:`ModelImageRepository`), a KMS-encrypted log group,
    the execution role (trusted by SageMaker for this account only) with one least-privilege policy
    per intent, and per variant a 5xx-error alarm and a p99 model-latency alarm. Once
    ``settings.model_version`` is set: in VPC mode the HTTPS-only security group and the permission
    to create network interfaces, one model per served version,
    an endpoint configuration (KMS-encrypted volumes unless an instance type has local NVMe storage,
    whose volumes the instance encrypts in hardware; data capture), the endpoint with its
    deployment guardrails, and target-tracking autoscaling per instance variant.
    """

    def __init__(self, scope: Construct, id: str, props: SageMakerEndpointProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        s = props.settings
        require(
            isinstance(props.name_prefix, str) and bool(_MODEL_NAME.match(props.name_prefix)),
            where,
            "name_prefix",
            props.name_prefix,
            "lowercase letters, digits and single hyphens, such as 'mlp-prod'",
        )
        self.endpoint_name = f"{props.name_prefix}-{s.model_name}"
        require(
            len(self.endpoint_name) <= MAX_ENDPOINT_NAME_LENGTH,
            where,
            "name_prefix",
            props.name_prefix,
            f"a prefix short enough that '<prefix>-{s.model_name}' has at most {MAX_ENDPOINT_NAME_LENGTH} characters",
        )
        if s.vpc:
            require(props.vpc is not None, where, "vpc", props.vpc, "the platform VPC when settings.vpc is True")
            require(
                len(props.private_subnets) >= 1,
                where,
                "private_subnets",
                list(props.private_subnets),
                "at least one private subnet (one per AZ spreads instances over AZs) when settings.vpc is True",
            )
        self.props = props
        self.artifact_prefix = f"models/{s.model_name}/"
        self.data_capture_prefix = f"data-capture/{s.model_name}/"
        # SageMaker refuses a volume KMS key when any variant's instances have local NVMe storage.
        self.volume_kms_key_applied = not any(has_instance_storage(t) for t in s.instance_types)

        self.image_repository = ModelImageRepository(
            self,
            "images",
            ModelImageRepositoryProps(
                name=f"{props.name_prefix}/{s.model_name}",
                kms_key=props.data_key,
                keep_image_count=s.image_keep_count,
                untagged_expiry_days=s.untagged_image_expiry_days,
                force_delete=s.image_force_delete,
            ),
        )
        self.image_template = s.inference_image or default_pytorch_image(s.instance_types, training=False)
        self.image: ResolvedImage = resolve_image(
            self.image_template,
            region=props.region,
            account_id=props.account_id,
            partition=props.partition,
            own_repository=self.image_repository,
        )
        self.log_group_name = f"/aws/sagemaker/Endpoints/{self.endpoint_name}"
        self.log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self,
            "log-group",
            name=self.log_group_name,
            retention_in_days=s.log_retention_days,
            kms_key_id=props.logs_key.arn,
        )
        self.role = execution_role(
            self,
            "execution-role",
            name=f"{self.endpoint_name}-sagemaker",
            account_id=props.account_id,
            description=f"Execution role of the SageMaker endpoint {self.endpoint_name}",
        )
        self.role_policies = self._grants()
        self.alarms: dict[str, list[Any]] = {v.name: self._alarms(v.name) for v in s.variants}

        self.security_group: Any | None = None
        self.models: dict[str, Any] = {}
        self.endpoint_configuration: Any | None = None
        self.endpoint: Any | None = None
        self.scalable_targets: dict[str, Any] = {}
        self.scaling_policies: dict[str, Any] = {}
        if s.deployed:
            self._deploy()

    def _grants(self) -> list[Any]:
        p = self.props
        s = p.settings
        policies = [
            p.model_artifacts.grant_read(self.role, prefix=self.artifact_prefix),
            grant(self, "pull-serving-image", self.role, *ecr_pull_statements(self.image.repository_arn)),
            grant(
                self,
                "write-endpoint-logs",
                self.role,
                *log_statements(log_group_arn(p.partition, p.region, p.account_id, self.log_group_name)),
            ),
            grant(self, "publish-endpoint-metrics", self.role, metric_statement(METRICS_NAMESPACE)),
        ]
        if s.data_capture_percentage is not None:
            policies.append(
                grant(
                    self,
                    "write-data-capture",
                    self.role,
                    PolicyStatement(
                        sid="WriteCapturedData",
                        actions=("s3:PutObject",),
                        resources=(f"{p.model_artifacts.arn}/{self.data_capture_prefix}*",),
                    ),
                    PolicyStatement(
                        sid="EncryptCapturedData",
                        actions=("kms:Encrypt", "kms:GenerateDataKey"),
                        resources=(p.data_key.arn,),
                        conditions={"StringEquals": {"kms:ViaService": f"s3.{p.region}.amazonaws.com"}},
                    ),
                )
            )
        if self.volume_kms_key_applied and not s.serverless:
            policies.append(
                grant(self, "encrypt-endpoint-volumes", self.role, volume_key_statement(p.data_key.arn, p.region))
            )
        return policies

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

    def _version_of(self, variant: VariantSettings) -> str:
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
        )
        if s.autoscaling:
            for variant in s.variants:
                self._autoscaling(variant.name)

    def _vpc_network(self) -> None:
        # Created with the model that attaches it, so no group (and no permission to create network
        # interfaces) exists before there is something to run in the VPC.
        p = self.props
        self.security_group = https_only_security_group(
            self,
            "security-group",
            name=f"{self.endpoint_name}-sagemaker",
            description=f"SageMaker endpoint {self.endpoint_name}: no ingress, HTTPS egress only",
            vpc_id=p.vpc.id,
        )
        self.role_policies.append(
            grant(
                self,
                "manage-vpc-network-interfaces",
                self.role,
                *network_interface_statements(
                    partition=p.partition,
                    region=p.region,
                    account_id=p.account_id,
                    vpc_arn=p.vpc.arn,
                    subnet_arns=[subnet.arn for subnet in p.private_subnets],
                    security_group_arns=[self.security_group.arn],
                ),
            )
        )

    def _model(self, version: str) -> Any:
        p = self.props
        s = p.settings
        environment = {"SAGEMAKER_REGION": p.region, **dict(s.container_environment)}
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
        if self.image_template.startswith("{repository}"):
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
