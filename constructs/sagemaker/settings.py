"""Per-environment SageMaker serving (endpoint, variants, image repository) and training settings."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from constructs.core.errors import FieldError, require_field
from constructs.core.formats import LogRetentionDays
from constructs.core.instance_types import SageMakerInstanceType
from constructs.core.settings import IDENTITY, Settings, choice, matches, predicate, unique
from constructs.sagemaker.idle_settings import EndpointIdleSettings
from constructs.sagemaker.images import InferenceImage, TrainingImage, default_pytorch_image
from constructs.storage.settings import S3KeyPrefix
from pydantic import Discriminator, Field, Tag, field_validator, model_validator

# SageMaker's VariantName pattern.
_VARIANT_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
_MODEL_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_MODEL_VERSION = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,30}[a-z0-9])?")
_ENV_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]{0,1023}")
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
# Each variant has two rollback alarms and SageMaker accepts at most 10 rollback alarms.
MAX_VARIANTS = 5
# Time a blue/green deployment may spend provisioning the new fleet (large GPU images take minutes).
PROVISIONING_ALLOWANCE_SECONDS = 1800
MAX_DEPLOYMENT_SECONDS = 28800
# SageMaker's limit for MaxRuntimeInSeconds and MaxWaitTimeInSeconds: 28 days.
MAX_JOB_SECONDS = 28 * 24 * 3600
DEFAULT_CONTAINER_ENVIRONMENT: tuple[tuple[str, str], ...] = (
    ("SAGEMAKER_CONTAINER_LOG_LEVEL", "20"),
    ("SAGEMAKER_PROGRAM", "inference.py"),
    ("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code"),
)

VariantName = Annotated[
    str, matches(_VARIANT_NAME, "1-63 letters, digits and hyphens, starting and ending with a letter or digit")
]
ModelVersion = Annotated[
    str,
    matches(
        _MODEL_VERSION,
        "a version such as 'v3', '1.4.2' or '2025-06-01' (lowercase letters, digits, '.', '-'; at most 32)",
    ),
]
ModelName = Annotated[
    str,
    predicate(
        lambda value: len(value) <= 24 and bool(_MODEL_NAME.fullmatch(value)),
        "1-24 lowercase letters and digits, single hyphens between them",
    ),
]
ImageKeepCount = Annotated[int, Field(ge=1, le=1000)]
"""Images an image repository keeps, newest first."""
UntaggedImageExpiryDays = Annotated[int, Field(ge=1, le=365)]
"""Days after which an untagged image expires."""


class ImageRepositorySettings(Settings):
    """Lifecycle of an image repository (see :class:`~constructs.sagemaker.image_repository.ModelImageRepository`).

    keep_image_count: images kept, newest first; older ones expire. Keep at least as many as the releases you
      may need to roll back to: a deleted image cannot be pulled when an endpoint scales out.
    untagged_expiry_days: untagged images (superseded pushes, failed builds) expire after this many days.
    force_delete: let ``terraform destroy`` delete a repository that still holds images (dev only).
    """

    keep_image_count: ImageKeepCount = 30
    untagged_expiry_days: UntaggedImageExpiryDays = 7
    force_delete: bool = False


class InstanceVariantSettings(Settings):
    """A production variant served by dedicated instances.

    name: variant name (also in alarm and scaling-policy names); keep it stable across releases, because
      SageMaker blue/green deployments match old and new fleets by variant name.
    instance_type: SageMaker instance type, with the ``ml.`` prefix (``ml.g5.xlarge``).
    initial_instance_count: instances when the variant is created or redeployed; autoscaling moves the count
      between the endpoint's min and max afterwards.
    initial_weight: relative share of traffic (A/B tests: 9 and 1 send 90% and 10%); must be > 0.
    model_version: published model version this variant serves; None serves the endpoint's ``model_version``
      (set it on one variant to A/B-test a new version against the current one).
    """

    name: VariantName = "primary"
    instance_type: SageMakerInstanceType = "ml.m5.xlarge"
    initial_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    initial_weight: Annotated[
        float,
        Field(
            gt=0,
            allow_inf_nan=False,
            description="a number greater than 0 (weights are relative: 9 and 1 send 90% and 10% of requests)",
        ),
    ] = 1.0
    model_version: ModelVersion | None = None


class ServerlessVariantSettings(Settings):
    """A serverless variant: no instances, billed per request, scales to zero (cold starts).

    SageMaker Serverless Inference supports one variant per endpoint and no GPUs, VPC, network isolation or
    data capture, so an endpoint with a serverless variant has none of those.

    name: variant name.
    memory_size_in_mb: 1024 to 6144 in 1 GB steps; vCPUs grow with memory.
    max_concurrency: concurrent invocations before requests are throttled (1-200).
    provisioned_concurrency: warm capacity that avoids cold starts (billed while idle); None for none.
    model_version: as for :class:`InstanceVariantSettings`.
    """

    name: VariantName = "primary"
    memory_size_in_mb: Annotated[int, choice(SERVERLESS_MEMORY_SIZES)] = 2048
    max_concurrency: Annotated[int, Field(ge=1, le=200)] = 5
    provisioned_concurrency: Annotated[int, Field(ge=1, le=200)] | None = None
    model_version: ModelVersion | None = None

    @model_validator(mode="after")
    def _provisioned_within_concurrency(self) -> Self:
        if self.provisioned_concurrency is not None:
            require_field(
                self.provisioned_concurrency <= self.max_concurrency,
                "provisioned_concurrency",
                self.provisioned_concurrency,
                f"a whole number from 1 to max_concurrency ({self.max_concurrency})",
            )
        return self


def _variant_kind(value: Any) -> str:
    # In JSON overrides a variant is an object; memory or concurrency make it serverless.
    if isinstance(value, Mapping):
        return "serverless" if {"memory_size_in_mb", "max_concurrency"} & set(value) else "instance"
    return "serverless" if isinstance(value, ServerlessVariantSettings) else "instance"


VariantSettings = Annotated[
    Annotated[InstanceVariantSettings, Tag("instance")] | Annotated[ServerlessVariantSettings, Tag("serverless")],
    Discriminator(_variant_kind),
]


def _environment_pairs(value: Any) -> Any:
    """A container environment as sorted (name, value) pairs, from a mapping or pairs."""
    pairs = value.items() if isinstance(value, Mapping) else value
    try:
        return tuple(sorted((name, text) for name, text in pairs))
    except (TypeError, ValueError):
        raise ValueError("a mapping of environment variable names to string values (at most 100)") from None


EnvironmentName = Annotated[str, matches(_ENV_NAME, "environment variable names such as 'LOG_LEVEL'")]
EnvironmentValue = Annotated[
    str,
    Field(max_length=1024),
    predicate(str.isprintable, "printable text of at most 1024 characters (no newline, tab or other control)"),
]


class SageMakerEndpointSettings(Settings):
    """Per-environment SageMaker serving.

    model_name: the model's short name: endpoint ``<prefix>-<model_name>``, image repository
      ``<prefix>/<model_name>``, artifacts under ``s3://<model-artifacts>/models/<model_name>/``.
    model_version: the published version to serve (``models/<model_name>/<version>/model.tar.gz``); None until a
      model is published: the model, endpoint configuration, endpoint and autoscaling are created only once it
      is set, everything else (role, image repository, alarms) always.
    variants: instance variants (one or more, for A/B tests) or exactly one serverless variant. In JSON
      overrides a variant is an object with the same fields; one with ``memory_size_in_mb`` or
      ``max_concurrency`` is serverless.
    inference_image: serving image; None picks the AWS PyTorch inference DLC for the region (the GPU build for
      accelerated instance types). Placeholders: ``{region}``, ``{account}``, and ``{repository}`` for this
      platform's image repository (``{repository}:1.4.2``).
    container_environment: environment variables of the serving container (a mapping or name/value pairs).
    network_isolation: the container gets no network access; SageMaker still downloads the model data for it.
      Not available for serverless variants.
    vpc: run the model's network interfaces in the private subnets with an HTTPS-only security group. Not
      available for serverless variants.
    data_capture_percentage: share of requests and responses captured to S3 (KMS-encrypted, under
      ``data-capture/<model_name>/``) for monitoring; None disables capture (always for serverless).
    min_instance_count, max_instance_count: autoscaling bounds of every instance variant; when equal, no
      autoscaling is configured (instance type changes then need no deregistration).
    target_invocations_per_instance: target of the target-tracking policy (SageMakerVariantInvocationsPerInstance,
      requests per instance per minute).
    scale_in_cooldown_seconds, scale_out_cooldown_seconds: scaling cooldowns.
    traffic_shifting: blue/green traffic shifting when a new version deploys: ``ALL_AT_ONCE``, ``CANARY``
      (``canary_instance_count`` instances first) or ``LINEAR`` (``linear_step_instance_count`` instances per
      step). Canary and linear steps must be at most half the fleet, so they need ``min_instance_count`` >= 2.
      Serverless endpoints use SageMaker's default (all at once).
    wait_interval_seconds: baking time after each traffic shift, during which the alarms roll back.
    termination_wait_seconds: how long the old fleet is kept after the last shift (fast manual rollback).
    error_5xx_threshold: model errors (Invocation5XXErrors) per minute that trip the error alarm.
    model_latency_p99_ms: p99 ModelLatency, in milliseconds, that trips the latency alarm.
    log_retention_days: retention of the endpoint's log group (a CloudWatch Logs retention value).
    image_keep_count, untagged_image_expiry_days, image_force_delete: the image repository's lifecycle (see
      :class:`ImageRepositorySettings`).
    idle: what happens when the endpoint serves nothing for a while, and its night parking (see
      :class:`~constructs.sagemaker.idle_settings.EndpointIdleSettings`); None leaves an idle endpoint running.
      Instance variants only: a serverless variant already costs nothing while idle.
    """

    model_name: Annotated[ModelName, IDENTITY] = "inference"
    model_version: ModelVersion | None = None
    variants: Annotated[
        tuple[VariantSettings, ...],
        Field(
            min_length=1,
            max_length=MAX_VARIANTS,
            description=f"a list of 1 to {MAX_VARIANTS} variants (each has two rollback alarms; SageMaker allows 10)",
        ),
    ] = (InstanceVariantSettings(),)
    inference_image: InferenceImage | None = None
    container_environment: Annotated[tuple[tuple[EnvironmentName, EnvironmentValue], ...], Field(max_length=100)] = (
        DEFAULT_CONTAINER_ENVIRONMENT
    )
    network_isolation: bool = True
    vpc: bool = True
    data_capture_percentage: Annotated[int, Field(ge=1, le=100)] | None = 20
    min_instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    max_instance_count: Annotated[int, Field(ge=1, le=100)] = 2
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100000)] = 100
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    traffic_shifting: Literal["ALL_AT_ONCE", "CANARY", "LINEAR"] = "ALL_AT_ONCE"
    canary_instance_count: Annotated[int, Field(ge=1, le=50)] = 1
    linear_step_instance_count: Annotated[int, Field(ge=1, le=50)] = 1
    wait_interval_seconds: Annotated[int, Field(ge=0, le=3600)] = 600
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)] = 300
    error_5xx_threshold: Annotated[int, Field(ge=1, le=100000)] = 5
    model_latency_p99_ms: Annotated[int, Field(ge=1, le=600000)] = 1000
    log_retention_days: LogRetentionDays = 90
    image_keep_count: ImageKeepCount = 30
    untagged_image_expiry_days: UntaggedImageExpiryDays = 7
    image_force_delete: bool = False
    idle: EndpointIdleSettings | None = None

    @field_validator("container_environment", mode="before")
    @classmethod
    def _as_sorted_pairs(cls, value: Any) -> Any:
        return _environment_pairs(value)

    @model_validator(mode="after")
    def _variants_and_counts_agree(self) -> Self:
        unique_names = [variant.name for variant in self.variants]
        for index, name in enumerate(unique_names):
            require_field(
                name not in unique_names[:index],
                f"variants[{index}].name",
                name,
                f"a name not used by another variant (already used: {sorted(set(unique_names[:index]))})",
            )
        unique([name for name, _ in self.container_environment], "container_environment", "variable")
        require_field(
            self.min_instance_count <= self.max_instance_count,
            "min_instance_count",
            self.min_instance_count,
            f"a value <= max_instance_count ({self.max_instance_count})",
        )
        if self.serverless:
            self._check_serverless()
        else:
            self._check_instances()
        if self.idle is not None:
            self._check_idle(self.idle)
        if self.inference_image is None:
            try:
                default_pytorch_image(self.instance_types, training=False)
            except ValueError:
                raise FieldError(
                    "inference_image",
                    None,
                    f"an explicit image when variants mix GPU and CPU instance types {list(self.instance_types)}",
                ) from None
        return self

    def _check_serverless(self) -> None:
        require_field(
            len(self.variants) == 1,
            "variants",
            [v.name for v in self.variants],
            "exactly one variant when it is serverless (serverless endpoints have a single variant)",
        )
        why = "for a serverless variant (SageMaker Serverless Inference does not support it)"
        require_field(not self.vpc, "vpc", self.vpc, "False " + why)
        require_field(not self.network_isolation, "network_isolation", self.network_isolation, "False " + why)
        require_field(
            self.data_capture_percentage is None, "data_capture_percentage", self.data_capture_percentage, "None " + why
        )
        require_field(
            self.traffic_shifting == "ALL_AT_ONCE",
            "traffic_shifting",
            self.traffic_shifting,
            "'ALL_AT_ONCE' for a serverless variant (canary and linear steps are sized in instances)",
        )

    def _check_instances(self) -> None:
        for index, variant in enumerate(self.variants):
            if not isinstance(variant, InstanceVariantSettings):
                raise FieldError(
                    f"variants[{index}]",
                    variant,
                    "instance variants only, or exactly one serverless variant (they cannot be mixed)",
                )
            require_field(
                self.min_instance_count <= variant.initial_instance_count <= self.max_instance_count,
                f"variants[{index}].initial_instance_count",
                variant.initial_instance_count,
                f"a count within min_instance_count..max_instance_count "
                f"({self.min_instance_count}..{self.max_instance_count})",
            )
        if self.traffic_shifting == "CANARY":
            require_field(
                2 * self.canary_instance_count <= self.min_instance_count,
                "canary_instance_count",
                self.canary_instance_count,
                f"at most half of min_instance_count ({self.min_instance_count}); a canary is at most 50% of "
                "the fleet, use 'ALL_AT_ONCE' with a baking period for single-instance variants",
            )
        if self.traffic_shifting == "LINEAR":
            step = self.linear_step_instance_count
            require_field(
                2 * step <= self.min_instance_count and 10 * step >= self.max_instance_count,
                "linear_step_instance_count",
                step,
                f"10% to 50% of the fleet at every size from min_instance_count ({self.min_instance_count}) "
                f"to max_instance_count ({self.max_instance_count})",
            )
        require_field(
            self.deployment_timeout_seconds <= MAX_DEPLOYMENT_SECONDS,
            "wait_interval_seconds",
            self.wait_interval_seconds,
            f"a baking time whose deployment (baking steps, termination wait and {PROVISIONING_ALLOWANCE_SECONDS} s "
            f"provisioning) fits SageMaker's {MAX_DEPLOYMENT_SECONDS} s limit",
        )

    def _check_idle(self, idle: EndpointIdleSettings) -> None:
        require_field(
            not self.serverless,
            "idle",
            idle.model_dump(),
            "None for a serverless endpoint (a serverless variant costs nothing while idle)",
        )
        require_field(
            idle.action == "delete_endpoint" or self.min_instance_count < self.max_instance_count,
            "idle.action",
            idle.action,
            f"'delete_endpoint' when min_instance_count equals max_instance_count ({self.min_instance_count}): "
            "every variant always runs at its minimum, so scaling to it saves nothing",
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

    @property
    def image_repository(self) -> ImageRepositorySettings:
        """The lifecycle of the endpoint's image repository."""
        return ImageRepositorySettings(
            keep_image_count=self.image_keep_count,
            untagged_expiry_days=self.untagged_image_expiry_days,
            force_delete=self.image_force_delete,
        )


JobNamePrefix = Annotated[
    str,
    predicate(
        lambda value: len(value) <= 40 and bool(_MODEL_NAME.fullmatch(value)),
        "1-40 lowercase letters and digits with single hyphens",
    ),
]


class SageMakerTrainingSettings(Settings):
    """Per-environment SageMaker training.

    instance_type: training instance type with the ``ml.`` prefix (``ml.p3.8xlarge``: 4 V100 GPUs).
    instance_count: instances per job (distributed training above 1).
    volume_size_gb: storage volume per instance (ignored by SageMaker on NVMe instance types).
    training_image: training image; None picks the AWS PyTorch training DLC for the region (the GPU build for
      accelerated instance types). Placeholders: ``{region}`` and ``{account}``.
    input_mode: how the ``training`` channel reaches the container (``File``, ``FastFile``, ``Pipe``).
    training_data_prefix: prefix of the training data bucket the job reads (``""``: the whole bucket).
    job_name_prefix: base of job names; checkpoints go under ``s3://<checkpoints>/<job_name_prefix>/``.
    managed_spot: train on spare capacity (typically 60-90% cheaper); jobs resume from checkpoints.
    max_runtime_seconds: the job is stopped after this much training time.
    max_wait_seconds: with spot, the total time including waiting for capacity (>= max_runtime_seconds).
    vpc: run the job's network interfaces in the private subnets (HTTPS-only egress; traffic between the job's
      instances is allowed when instance_count > 1).
    """

    instance_type: SageMakerInstanceType = "ml.p3.8xlarge"
    instance_count: Annotated[int, Field(ge=1, le=100)] = 1
    volume_size_gb: Annotated[int, Field(ge=1, le=16384)] = 100
    training_image: TrainingImage | None = None
    input_mode: Literal["File", "FastFile", "Pipe"] = "File"
    training_data_prefix: S3KeyPrefix = ""
    job_name_prefix: JobNamePrefix = "train"
    managed_spot: bool = True
    max_runtime_seconds: Annotated[int, Field(ge=60, le=MAX_JOB_SECONDS)] = 24 * 3600
    max_wait_seconds: Annotated[int, Field(le=MAX_JOB_SECONDS)] = 48 * 3600
    vpc: bool = True

    @model_validator(mode="after")
    def _spot_waits_at_least_the_runtime(self) -> Self:
        if self.managed_spot:
            require_field(
                self.max_wait_seconds >= self.max_runtime_seconds,
                "max_wait_seconds",
                self.max_wait_seconds,
                f"a whole number from max_runtime_seconds ({self.max_runtime_seconds}) to {MAX_JOB_SECONDS}",
            )
        return self
