"""Per-environment shape of the GPU training cluster."""

from __future__ import annotations

import re
from typing import Annotated, Self

from constructs.core.errors import FieldError, require_field
from constructs.core.formats import AWS_PARTITIONS, AWS_REGIONS, Cron, Email, IdleMinutes, LogRetentionDays, TimeZone
from constructs.core.instance_types import NVIDIA_GPU_INSTANCES, NvidiaGpuInstanceType
from constructs.core.settings import Settings, predicate
from constructs.storage.settings import S3KeyPrefix
from pydantic import Field, model_validator

# The framework version is part of the parameter name; `latest` is the newest build of that line only.
DEFAULT_AMI_SSM_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-amazon-linux-2023/latest/ami-id"
)
OPEN_DRIVER_AMI_MARKER = "oss-nvidia-driver"
ROOT_DEVICES = {"ubuntu": "/dev/sda1", "amazon-linux": "/dev/xvda"}
# A spot interruption notice leaves about 120 s: the job's checkpoint and the sync to S3 must both fit.
CHECKPOINT_GRACE_SECONDS = (5, 110)

# SSM parameter names: at most 15 levels and 1011 characters of letters, digits and _ . -.
_SSM_PARAMETER = re.compile(r"(?=.{2,1011}$)(?:/[A-Za-z0-9_.-]+){1,15}")
# An exact repository: a wildcard would widen the nodes' pull grant beyond what the matrix names.
_ECR_REPOSITORY_ARN = re.compile(
    rf"arn:(?:{'|'.join(AWS_PARTITIONS)}):ecr:(?P<region>[a-z0-9-]+):\d{{12}}:repository/"
    r"(?=.{2,256}$)(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
)

AmiSsmParameter = Annotated[
    str,
    predicate(
        lambda value: bool(_SSM_PARAMETER.fullmatch(value)) and "/arm64/" not in value,
        "the name of an SSM parameter holding an x86_64 AMI ID, such as " + repr(DEFAULT_AMI_SSM_PARAMETER),
    ),
]
EcrRepositoryArn = Annotated[
    str,
    predicate(
        lambda value: (match := _ECR_REPOSITORY_ARN.fullmatch(value)) is not None and match["region"] in AWS_REGIONS,
        "ECR repository ARNs such as 'arn:aws:ecr:us-east-1:123456789012:repository/team/trainer' (one exact "
        "repository: no wildcard)",
    ),
]


class GpuTrainingClusterSettings(Settings):
    """Per-environment shape of the GPU training cluster.

    instance_types: GPU instance types the Auto Scaling group may launch, in on-demand priority order; all must
      have the same GPU count, and none less GPU memory than the first (see ``NVIDIA_GPU_INSTANCES``).
    min_size, max_size: node count bounds. min_size stays 0 so the cluster costs nothing when unused.
    on_demand_base_capacity: the first N nodes are on-demand.
    on_demand_percentage_above_base: share of on-demand nodes above the base; the rest are spot.
    root_volume_size_gb: gp3 root volume size (the GPU AMIs need about 100 GB).
    root_device_name: the AMI's root device (``/dev/xvda`` on Amazon Linux, ``/dev/sda1`` on Ubuntu).
    ami_ssm_parameter: public SSM parameter holding the AMI ID; EC2 resolves it at each launch.
    imds_hop_limit: IMDSv2 response hop limit; 1 keeps credentials off bridged containers (use host networking).
    efa_enabled: attach an Elastic Fabric Adapter (every type must support EFA).
    data_prefix: key prefix of the dataset in the training data bucket ("" for the whole bucket).
    checkpoint_grace_seconds: how long a node waits for the job's checkpoint after SIGUSR1 (5-110 s).
    termination_heartbeat_seconds: how long Auto Scaling waits for a terminating node to save and sync.
    idle_minutes: GPUs below the idle threshold for this long scale the cluster to zero.
    idle_gpu_utilization_percent: the busiest GPU's utilization below which the cluster counts as idle.
    scale_to_zero_cron: nightly scale-to-zero (5-field cron); None for none.
    schedule_time_zone: IANA time zone of that schedule.
    ecr_repository_arns: ECR repositories nodes may pull from; empty means every repository of the account
      and region.
    log_retention_days: retention of the idle-shutdown function's log group.
    notification_emails: addresses subscribed to the cluster's event topic.
    """

    instance_types: Annotated[tuple[NvidiaGpuInstanceType, ...], Field(min_length=1)] = ("g5.12xlarge", "g6.12xlarge")
    min_size: Annotated[int, Field(ge=0, le=100)] = 0
    max_size: Annotated[int, Field(ge=1, le=100)] = 2
    on_demand_base_capacity: Annotated[int, Field(ge=0, le=100)] = 0
    on_demand_percentage_above_base: Annotated[int, Field(ge=0, le=100)] = 0
    root_volume_size_gb: Annotated[int, Field(ge=100, le=16384)] = 100
    root_device_name: Annotated[str, predicate(lambda v: v in ROOT_DEVICES.values(), "'/dev/xvda' or '/dev/sda1'")] = (
        "/dev/xvda"
    )
    ami_ssm_parameter: AmiSsmParameter = DEFAULT_AMI_SSM_PARAMETER
    imds_hop_limit: Annotated[int, Field(ge=1, le=2)] = 1
    efa_enabled: bool = False
    data_prefix: S3KeyPrefix = "datasets/"
    checkpoint_grace_seconds: Annotated[int, Field(ge=CHECKPOINT_GRACE_SECONDS[0], le=CHECKPOINT_GRACE_SECONDS[1])] = 60
    termination_heartbeat_seconds: Annotated[int, Field(le=7200)] = 300
    idle_minutes: IdleMinutes = 60
    idle_gpu_utilization_percent: Annotated[int, Field(ge=1, le=50)] = 5
    scale_to_zero_cron: Cron | None = None
    schedule_time_zone: TimeZone = "UTC"
    ecr_repository_arns: tuple[EcrRepositoryArn, ...] = ()
    log_retention_days: LogRetentionDays = 30
    notification_emails: tuple[Email, ...] = ()

    @model_validator(mode="after")
    def _instance_types_make_one_node_shape(self) -> Self:
        types = self.instance_types
        specs = {t: NVIDIA_GPU_INSTANCES[t] for t in types}
        counts = {t: spec.gpus for t, spec in specs.items()}
        require_field(
            len(set(counts.values())) == 1,
            "instance_types",
            types,
            "types with the same GPU count, because a job's world size must not depend on which type Auto "
            f"Scaling picks (GPUs per type: {counts})",
        )
        primary = specs[types[0]]
        smaller = [t for t, spec in specs.items() if spec.gpu_memory_gib < primary.gpu_memory_gib]
        require_field(
            not smaller,
            "instance_types",
            types,
            f"alternatives with at least the GPU memory of {types[0]} ({primary.gpu_memory_gib} GiB), so a job "
            f"sized for it fits on every type (less on {', '.join(smaller)})",
        )
        if self.on_demand_percentage_above_base < 100:
            require_field(
                len(types) >= 2,
                "instance_types",
                types,
                "at least two types when spot is used (on_demand_percentage_above_base < 100), so one type's spot "
                "shortage does not block the cluster",
            )
        if self.efa_enabled:
            no_efa = [t for t in types if not specs[t].efa]
            require_field(
                not no_efa, "efa_enabled", True, f"False, or only EFA-capable types ({', '.join(no_efa)} have no EFA)"
            )
        return self

    @model_validator(mode="after")
    def _sizes_fit(self) -> Self:
        require_field(
            self.min_size <= self.max_size, "min_size", self.min_size, f"a value <= max_size ({self.max_size})"
        )
        require_field(
            self.on_demand_base_capacity <= self.max_size,
            "on_demand_base_capacity",
            self.on_demand_base_capacity,
            f"a whole number from 0 to max_size ({self.max_size})",
        )
        lowest = self.checkpoint_grace_seconds + 60
        require_field(
            self.termination_heartbeat_seconds >= lowest,
            "termination_heartbeat_seconds",
            self.termination_heartbeat_seconds,
            f"a whole number from {lowest} (checkpoint_grace_seconds + 60 s to sync) to 7200",
        )
        if self.scale_to_zero_cron is not None:
            require_field(
                self.min_size == 0,
                "min_size",
                self.min_size,
                "0 when scale_to_zero_cron is set (a nightly scale to zero below the minimum would fail)",
            )
        return self

    @model_validator(mode="after")
    def _ami_matches_types_and_root_device(self) -> Self:
        parameter = self.ami_ssm_parameter
        if OPEN_DRIVER_AMI_MARKER in parameter:
            unsupported = [t for t in self.instance_types if not NVIDIA_GPU_INSTANCES[t].open_driver]
            require_field(
                not unsupported,
                "instance_types",
                self.instance_types,
                f"Turing or newer GPUs: {', '.join(unsupported)} (Volta) cannot run the OSS-driver AMI in "
                "ami_ssm_parameter; choose g4dn/g5/g6/g6e/p4/p5 types or a proprietary-driver AMI",
            )
        expected = next((device for os_name, device in ROOT_DEVICES.items() if os_name in parameter), None)
        if expected is not None and self.root_device_name != expected:
            raise FieldError(
                "root_device_name",
                self.root_device_name,
                f"{expected!r}, the root device of the AMI in ami_ssm_parameter (another name adds a second "
                "volume and leaves the root volume unsized)",
            )
        return self

    @property
    def gpus_per_node(self) -> int:
        """GPUs on every node (all types have the same count)."""
        return NVIDIA_GPU_INSTANCES[self.instance_types[0]].gpus
