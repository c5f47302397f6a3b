"""The environment matrix: everything that differs between dev, staging and prod, in one place.

Each environment is a frozen :class:`EnvironmentConfig`. Its sections are the feature constructs'
own settings classes, so a value here is exactly what the construct receives; the stack only maps
sections to constructs. Field-level rules live in the settings classes (``__post_init__``); rules
that span sections or environments live in :func:`validate_environment` and :func:`validate_matrix`.

Values can be overridden without editing code, through ``ML_PLATFORM_OVERRIDES`` (inline JSON) or
``ML_PLATFORM_OVERRIDES_FILE`` (a JSON file), keyed by environment and dotted field path::

    ML_PLATFORM_OVERRIDES='{"staging": {"network.az_count": 2, "budget.monthly_limit_usd": 900}}'

An override passes through the same validation as the matrix and fails with the same messages.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from constructs.cost_budget import BudgetSettings
from constructs.eks_cluster import EksClusterSettings
from constructs.eks_gpu_node_group import EksGpuNodeGroupSettings
from constructs.eks_node_group import EksNodeGroupSettings
from constructs.gpu_training_cluster import GpuTrainingClusterSettings
from constructs.ml_storage import StorageSettings
from constructs.platform_keys import PlatformKeysSettings
from constructs.platform_network import NetworkSettings
from constructs.sagemaker_endpoint import (
    DEFAULT_CONTAINER_ENVIRONMENT,
    InstanceVariantSettings,
    SageMakerEndpointSettings,
    ServerlessVariantSettings,
)
from constructs.sagemaker_training import SageMakerTrainingSettings
from constructs.validation import (
    SUPPORTED_REGIONS,
    ConfigurationError,
    is_gpu_instance_type,
    require,
    require_field_types,
    require_one_of,
)

ENVIRONMENT_NAMES = ("dev", "staging", "prod")
# Environments holding production data: an override cannot switch their protection off.
PROTECTED_ENVIRONMENTS = ("prod",)
OVERRIDES_ENV = "ML_PLATFORM_OVERRIDES"
OVERRIDES_FILE_ENV = "ML_PLATFORM_OVERRIDES_FILE"

# AWS tag values: letters, digits, spaces and + - = . _ : / @, 1 to 256 characters.
_TAG_VALUE = re.compile(r"^[\w\s+\-=.:/@]{1,256}$")


@dataclass(frozen=True)
class OwnerTags:
    """Cost-attribution tags put on every resource (with ``environment``).

    team: owning team; cost_center: finance cost center; project: project or product name.
    """

    team: str
    cost_center: str
    project: str

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            require(
                isinstance(value, str) and bool(_TAG_VALUE.match(value)),
                "OwnerTags",
                field.name,
                value,
                "a non-empty tag value of letters, digits, spaces and + - = . _ : / @ (at most 256)",
            )

    def as_tags(self, environment: str) -> dict[str, str]:
        """The tag map every taggable resource carries."""
        return {"environment": environment, "team": self.team, "cost_center": self.cost_center, "project": self.project}


@dataclass(frozen=True)
class EnvironmentConfig:
    """One environment of the platform.

    name: the stack name (dev, staging, prod).
    region: AWS region of every resource of the environment.
    gpu_enabled: whether GPU (and other accelerated) instance types may appear anywhere in it.
    multi_az: production-grade availability: a NAT gateway per AZ and workloads spread over >= 3 AZs.
    protected: the environment holds data that must survive ``terraform destroy``: the security pack
      (rule PROT-1) requires deletion protection on every stateful resource, and the storage and key
      settings must protect data (prevent_destroy, a 30-day key deletion window).
    tags: owner tags for cost attribution.
    network, keys, storage, budget: the feature sections (see each settings class).
    eks: the EKS cluster for ML workloads (named after ``name_prefix``), or None for none.
    training: the GPU training cluster, or None for an environment without one.
    sagemaker: SageMaker serving (endpoint, image repository, alarms), or None for none.
    sagemaker_training: SageMaker training jobs' role and job specification, or None for none.
    """

    name: str
    region: str
    gpu_enabled: bool
    multi_az: bool
    protected: bool
    tags: OwnerTags
    network: NetworkSettings
    keys: PlatformKeysSettings
    storage: StorageSettings
    budget: BudgetSettings
    eks: EksClusterSettings | None
    training: GpuTrainingClusterSettings | None
    sagemaker: SageMakerEndpointSettings | None
    sagemaker_training: SageMakerTrainingSettings | None

    def __post_init__(self) -> None:
        require_field_types(self, "EnvironmentConfig")

    @property
    def name_prefix(self) -> str:
        """Prefix of resource names: ``<project>-<environment>``."""
        return f"{self.tags.project}-{self.name}"


_OWNERS = OwnerTags(team="ml-platform", cost_center="cc-4711", project="mlp")
_ALERTS = ("ml-platform-alerts@example.com",)

BASE_MATRIX: Mapping[str, EnvironmentConfig] = {
    # Dev: cheapest shape that still exercises every code path; no GPUs; throw-away data.
    "dev": EnvironmentConfig(
        name="dev",
        region="us-east-1",
        gpu_enabled=False,
        multi_az=False,
        protected=False,
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.10.0.0/16",
            az_count=2,
            nat_gateways="single",
            interface_endpoints=(),
            flow_log_retention_days=14,
        ),
        keys=PlatformKeysSettings(deletion_window_days=7),
        storage=StorageSettings(
            force_destroy=True,
            prevent_destroy=False,
            checkpoint_expiry_days=7,
            backup_retention_days=31,
            access_logging=False,
        ),
        budget=BudgetSettings(monthly_limit_usd=500, alert_emails=_ALERTS),
        # A small CPU-only cluster. Its API endpoint is private as everywhere; an operator may open it
        # to named CIDRs with an override of eks.public_access_cidrs (never in a protected environment).
        eks=EksClusterSettings(
            log_retention_days=14,
            support_type="STANDARD",
            storage_reclaim_policy="Delete",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("t3.large", "m6i.large"),
                min_size=1,
                max_size=3,
                desired_size=1,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=None,
        ),
        # No GPUs in dev: training code is exercised in staging.
        training=None,
        # Serverless serving: nothing runs (or bills) between requests; cold starts are fine in dev.
        # No VPC, network isolation or data capture: Serverless Inference supports none of them.
        sagemaker=SageMakerEndpointSettings(
            variants=(ServerlessVariantSettings(memory_size_in_mb=2048, max_concurrency=5),),
            # One model-server worker per serverless container, as SageMaker recommends.
            container_environment=(*DEFAULT_CONTAINER_ENVIRONMENT, ("SAGEMAKER_MODEL_SERVER_WORKERS", "1")),
            network_isolation=False,
            vpc=False,
            data_capture_percentage=None,
            min_instance_count=1,
            max_instance_count=1,
            log_retention_days=14,
            image_keep_count=10,
            untagged_image_expiry_days=3,
            image_force_delete=True,
        ),
        # CPU training on spot capacity: exercises the job specification without GPU cost.
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.m5.xlarge",
            volume_size_gb=50,
            max_runtime_seconds=4 * 3600,
            max_wait_seconds=8 * 3600,
            vpc=False,
        ),
    ),
    # Staging: production's configuration at a smaller scale, so a change is proven before prod.
    "staging": EnvironmentConfig(
        name="staging",
        region="us-east-1",
        gpu_enabled=True,
        multi_az=True,
        protected=False,
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.20.0.0/16",
            az_count=3,
            nat_gateways="per_az",
            interface_endpoints=("ecr.api", "ecr.dkr", "sts", "logs", "sagemaker.api", "sagemaker.runtime"),
            flow_log_retention_days=30,
        ),
        keys=PlatformKeysSettings(deletion_window_days=14),
        storage=StorageSettings(
            force_destroy=False,
            prevent_destroy=False,
            checkpoint_expiry_days=14,
            backup_retention_days=60,
            access_logging=True,
        ),
        budget=BudgetSettings(monthly_limit_usd=3000, alert_emails=_ALERTS),
        # Production's cluster shape; Spot GPU nodes, since a reclaimed node only costs a retried test.
        eks=EksClusterSettings(
            log_retention_days=30,
            support_type="STANDARD",
            storage_reclaim_policy="Delete",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("m6i.xlarge",),
                min_size=2,
                max_size=6,
                desired_size=2,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=EksGpuNodeGroupSettings(
                instance_types=("g5.xlarge", "g5.2xlarge"),
                min_size=0,
                max_size=4,
                desired_size=0,
                capacity_type="SPOT",
                disk_size_gib=100,
            ),
        ),
        # Production's node types at a quarter of its size, all spot, and switched off every night.
        training=GpuTrainingClusterSettings(
            instance_types=("g5.12xlarge", "g6.12xlarge"),
            max_size=2,
            on_demand_base_capacity=0,
            on_demand_percentage_above_base=0,
            idle_minutes=30,
            scale_to_zero_cron="0 20 * * *",
            schedule_time_zone="America/New_York",
            log_retention_days=30,
            notification_emails=_ALERTS,
        ),
        # Production's serving shape with one instance (autoscaling to two) and full data capture.
        sagemaker=SageMakerEndpointSettings(
            variants=(InstanceVariantSettings(instance_type="ml.g5.xlarge", initial_instance_count=1),),
            data_capture_percentage=100,
            min_instance_count=1,
            max_instance_count=2,
            target_invocations_per_instance=100,
            # A single instance cannot be split into a canary: all at once, baked, rolled back on alarms.
            traffic_shifting="ALL_AT_ONCE",
            wait_interval_seconds=600,
            termination_wait_seconds=300,
            log_retention_days=30,
            image_keep_count=30,
        ),
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.p3.8xlarge",
            max_runtime_seconds=24 * 3600,
            max_wait_seconds=48 * 3600,
        ),
    ),
    # Prod: high availability, protected data, longest retention.
    "prod": EnvironmentConfig(
        name="prod",
        region="us-east-1",
        gpu_enabled=True,
        multi_az=True,
        protected=True,
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.30.0.0/16",
            az_count=3,
            nat_gateways="per_az",
            interface_endpoints=("ecr.api", "ecr.dkr", "sts", "logs", "sagemaker.api", "sagemaker.runtime"),
            flow_log_retention_days=365,
        ),
        keys=PlatformKeysSettings(deletion_window_days=30),
        storage=StorageSettings(
            force_destroy=False,
            prevent_destroy=True,
            checkpoint_expiry_days=30,
            backup_retention_days=90,
            access_logging=True,
        ),
        budget=BudgetSettings(monthly_limit_usd=20000, alert_emails=_ALERTS),
        # On-Demand GPU nodes (serving must not be reclaimed), volumes kept after their claims, and
        # extended support so EKS never force-upgrades production when standard support ends.
        eks=EksClusterSettings(
            # Every control-plane log: scheduler and controller-manager decisions matter in an incident.
            log_types=("api", "audit", "authenticator", "controllerManager", "scheduler"),
            log_retention_days=365,
            support_type="EXTENDED",
            storage_reclaim_policy="Retain",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("m6i.xlarge",),
                min_size=2,
                max_size=6,
                desired_size=3,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=EksGpuNodeGroupSettings(
                instance_types=("g5.xlarge", "g5.2xlarge"),
                min_size=0,
                max_size=10,
                desired_size=0,
                capacity_type="ON_DEMAND",
                disk_size_gib=100,
            ),
        ),
        # On-demand: a synchronous data-parallel job stops when any one node is interrupted, so spot
        # would put production runs' deadlines at risk; runs may last overnight, so no nightly stop.
        training=GpuTrainingClusterSettings(
            instance_types=("g5.12xlarge", "g6.12xlarge"),
            max_size=8,
            on_demand_base_capacity=0,
            on_demand_percentage_above_base=100,
            idle_minutes=60,
            log_retention_days=365,
            notification_emails=_ALERTS,
        ),
        # At least two instances spread over the private subnets' AZs, up to six under load; a new
        # model version reaches one canary instance first and is rolled back if the alarms fire.
        sagemaker=SageMakerEndpointSettings(
            variants=(InstanceVariantSettings(instance_type="ml.g5.xlarge", initial_instance_count=2),),
            data_capture_percentage=20,
            min_instance_count=2,
            max_instance_count=6,
            target_invocations_per_instance=100,
            traffic_shifting="CANARY",
            canary_instance_count=1,
            wait_interval_seconds=900,
            termination_wait_seconds=900,
            log_retention_days=365,
            image_keep_count=100,
            untagged_image_expiry_days=14,
        ),
        # Managed spot with S3 checkpoints: SageMaker resumes an interrupted job by itself.
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.p3.8xlarge",
            max_runtime_seconds=72 * 3600,
            max_wait_seconds=96 * 3600,
        ),
    ),
}


def _where(env: str) -> str:
    return f"environment '{env}'"


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield (dotted path, value) for every leaf of a nested dataclass."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _walk(getattr(value, field.name), f"{path}.{field.name}" if path else field.name)
    elif isinstance(value, tuple) and value and all(dataclasses.is_dataclass(item) for item in value):
        # A tuple of settings objects (SageMaker variants): each item's fields are leaves too.
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value


def validate_environment(config: EnvironmentConfig) -> None:
    """Rules that span sections of one environment."""
    where = _where(config.name)
    require_one_of(where, "region", config.region, SUPPORTED_REGIONS)
    if not config.gpu_enabled:
        for path, value in _walk(config):
            types = value if isinstance(value, tuple) else (value,)
            if "instance_type" in path.rsplit(".", 1)[-1]:
                for instance_type in types:
                    require(
                        not (isinstance(instance_type, str) and is_gpu_instance_type(instance_type)),
                        where,
                        path,
                        value,
                        f"non-GPU instance types only (gpu_enabled is False for {config.name})",
                    )
    if config.multi_az:
        require(
            config.network.nat_gateways == "per_az",
            where,
            "network.nat_gateways",
            config.network.nat_gateways,
            "'per_az' when multi_az is True (a single NAT gateway is a single point of failure)",
        )
        require(
            config.network.az_count >= 3,
            where,
            "network.az_count",
            config.network.az_count,
            "3 or more when multi_az is True",
        )
    if config.protected:
        require(
            config.storage.prevent_destroy,
            where,
            "storage.prevent_destroy",
            config.storage.prevent_destroy,
            "True when protected is True (Terraform must never destroy protected data)",
        )
        require(
            config.keys.deletion_window_days == 30,
            where,
            "keys.deletion_window_days",
            config.keys.deletion_window_days,
            "30 when protected is True (the longest window to cancel a key deletion)",
        )
        if config.eks is not None:
            require(
                not config.eks.public_access_cidrs,
                where,
                "eks.public_access_cidrs",
                config.eks.public_access_cidrs,
                "empty when protected is True (a protected environment's Kubernetes API stays private)",
            )


def validate_matrix(configs: Mapping[str, EnvironmentConfig]) -> None:
    """Rules across environments: names match keys, VPC CIDRs do not overlap (they may be peered)."""
    for key, config in configs.items():
        require(config.name == key, _where(key), "name", config.name, f"the matrix key {key!r}")
    for key in PROTECTED_ENVIRONMENTS:
        if key in configs:
            require(configs[key].protected, _where(key), "protected", configs[key].protected, "True (production data)")
    seen: list[tuple[str, ipaddress.IPv4Network]] = []
    for key, config in configs.items():
        block = ipaddress.IPv4Network(config.network.vpc_cidr)
        for other_key, other in seen:
            require(
                not block.overlaps(other),
                _where(key),
                "network.vpc_cidr",
                config.network.vpc_cidr,
                f"a block that does not overlap {other_key}'s {other}",
            )
        seen.append((key, block))


def _coerce(value: Any, current: Any) -> Any:
    # JSON has no tuples; settings use tuples so they stay immutable.
    if isinstance(current, tuple) and isinstance(value, list):
        return tuple(value)
    return value


def _override(obj: Any, parts: list[str], value: Any, env: str, full_path: str) -> Any:
    """Return ``obj`` with the field at ``parts`` replaced, re-running every settings validation."""
    where = _where(env)
    all_parts = full_path.split(".")
    prefix = ".".join(all_parts[: len(all_parts) - len(parts)])
    head = parts[0]
    field_path = f"{prefix}.{head}" if prefix else head
    if not (dataclasses.is_dataclass(obj) and not isinstance(obj, type)):
        raise ConfigurationError(where, full_path, value, f"a path into an enabled section ('{prefix}' is {obj!r})")
    require_one_of(where, field_path, head, [f.name for f in dataclasses.fields(obj)])
    current = getattr(obj, head)
    new_value = _coerce(value, current) if len(parts) == 1 else _override(current, parts[1:], value, env, full_path)
    try:
        return dataclasses.replace(obj, **{head: new_value})
    except ConfigurationError as error:
        if error.where.startswith("environment "):
            raise
        raise error.located(where, prefix) from None
    except TypeError as error:
        raise ConfigurationError(where, full_path, value, f"a value of the field's type ({error})") from None


def apply_overrides(
    configs: Mapping[str, EnvironmentConfig], overrides: Mapping[str, Any]
) -> dict[str, EnvironmentConfig]:
    """Return the matrix with ``overrides`` ({env: {dotted.path: value}}) applied and validated."""
    result = dict(configs)
    require(isinstance(overrides, Mapping), "overrides", "<root>", overrides, "a JSON object keyed by environment name")
    for env, fields in overrides.items():
        require_one_of("overrides", "environment", env, tuple(configs))
        require(
            isinstance(fields, Mapping),
            _where(env),
            "<overrides>",
            fields,
            'a JSON object such as {"network.az_count": 2}',
        )
        for path, value in fields.items():
            require(path != "name", _where(env), path, value, "any field but 'name'")
            result[env] = _override(result[env], path.split("."), value, env, path)
    return result


def read_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overrides from ``ML_PLATFORM_OVERRIDES`` (JSON) and/or ``ML_PLATFORM_OVERRIDES_FILE``."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = {}
    sources: list[tuple[str, str]] = []
    if environ.get(OVERRIDES_FILE_ENV):
        path = environ[OVERRIDES_FILE_ENV]
        try:
            with open(path, encoding="utf-8") as handle:
                sources.append((OVERRIDES_FILE_ENV, handle.read()))
        except OSError as error:
            raise ConfigurationError(
                "overrides", OVERRIDES_FILE_ENV, path, f"a readable JSON file ({error.strerror})"
            ) from None
    if environ.get(OVERRIDES_ENV):
        sources.append((OVERRIDES_ENV, environ[OVERRIDES_ENV]))
    for source, text in sources:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                "overrides", source, text, f"valid JSON ({error.msg} at position {error.pos})"
            ) from None
        require(isinstance(data, dict), "overrides", source, data, "a JSON object keyed by environment name")
        for env, fields in data.items():
            require(
                isinstance(fields, dict), _where(env), source, fields, 'a JSON object such as {"network.az_count": 2}'
            )
            merged.setdefault(env, {}).update(fields)
    return merged


def load_environments(environ: Mapping[str, str] | None = None) -> dict[str, EnvironmentConfig]:
    """The validated matrix with the user's overrides applied. Raises :class:`ConfigurationError`."""
    configs = apply_overrides(BASE_MATRIX, read_overrides(environ))
    for config in configs.values():
        validate_environment(config)
    validate_matrix(configs)
    return configs
