"""A scale-to-zero GPU training cluster: placement group, launch template, spot-aware Auto Scaling group,
checkpoint-on-termination, interruption notifications and idle auto-shutdown.

Training runs start by raising the Auto Scaling group's desired capacity and end by lowering it again (or
by the idle alarm, or a nightly schedule). Nodes boot the AWS Deep Learning AMI, run
``assets/gpu_training_node.sh`` (rendered by :mod:`constructs.user_data`), restore the newest checkpoint
and save one before they terminate. docs/training-cluster.md is the operator's and the job's side of it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import AssetType, Fn, TerraformAsset, TerraformLocal, TerraformResourceLifecycle, Token
from constructs import Construct
from constructs.iam_policy import PolicyStatement, grant, policy_document, service_role
from constructs.platform_keys import KEY_ADMIN_ACTIONS, KEY_USE_ACTIONS
from constructs.platform_network import LOG_RETENTION_DAYS
from constructs.provider_bindings import aws
from constructs.secure_bucket import SecureBucket
from constructs.user_data import GpuNodeBootstrapParams, render_gpu_node_user_data
from constructs.validation import (
    ConfigurationError,
    require,
    require_field_types,
    require_int_range,
    require_min_max,
    require_one_of,
)


@dataclass(frozen=True)
class GpuInstanceSpec:
    """What the cluster needs to know about one GPU instance type.

    gpus: GPUs per instance (a distributed job's world size is nodes x gpus).
    gpu_memory_gib: memory of each GPU.
    open_driver: the GPU is Turing or newer, so NVIDIA's open kernel modules, and with them the
      "OSS Nvidia Driver" Deep Learning AMIs, support it (Volta, i.e. P3, is not supported).
    efa: the type supports an Elastic Fabric Adapter.
    """

    gpus: int
    gpu_memory_gib: int
    open_driver: bool
    efa: bool


# x86_64 NVIDIA GPU types the cluster accepts. A type missing here is rejected rather than guessed at,
# because a wrong GPU count silently changes a job's world size.
GPU_INSTANCE_TYPES: Mapping[str, GpuInstanceSpec] = {
    # 1 GPU
    "g4dn.xlarge": GpuInstanceSpec(1, 16, True, False),
    "g4dn.2xlarge": GpuInstanceSpec(1, 16, True, False),
    "g5.xlarge": GpuInstanceSpec(1, 24, True, False),
    "g5.2xlarge": GpuInstanceSpec(1, 24, True, False),
    "g6.xlarge": GpuInstanceSpec(1, 24, True, False),
    "g6.2xlarge": GpuInstanceSpec(1, 24, True, False),
    "g6e.xlarge": GpuInstanceSpec(1, 48, True, False),
    "g6e.2xlarge": GpuInstanceSpec(1, 48, True, False),
    # 4 GPUs
    "p3.8xlarge": GpuInstanceSpec(4, 16, False, False),
    "g4dn.12xlarge": GpuInstanceSpec(4, 16, True, True),
    "g5.12xlarge": GpuInstanceSpec(4, 24, True, True),
    "g5.24xlarge": GpuInstanceSpec(4, 24, True, True),
    "g6.12xlarge": GpuInstanceSpec(4, 24, True, True),
    "g6.24xlarge": GpuInstanceSpec(4, 24, True, True),
    "g6e.12xlarge": GpuInstanceSpec(4, 48, True, True),
    "g6e.24xlarge": GpuInstanceSpec(4, 48, True, True),
    # 8 GPUs
    "p3.16xlarge": GpuInstanceSpec(8, 16, False, False),
    "p3dn.24xlarge": GpuInstanceSpec(8, 32, False, True),
    "g5.48xlarge": GpuInstanceSpec(8, 24, True, True),
    "g6.48xlarge": GpuInstanceSpec(8, 24, True, True),
    "g6e.48xlarge": GpuInstanceSpec(8, 48, True, True),
    "p4d.24xlarge": GpuInstanceSpec(8, 40, True, True),
    "p4de.24xlarge": GpuInstanceSpec(8, 80, True, True),
    "p5.48xlarge": GpuInstanceSpec(8, 80, True, True),
}

# The framework version is part of the parameter name; `latest` is the newest build of that line only.
DEFAULT_AMI_SSM_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-amazon-linux-2023/latest/ami-id"
)
OPEN_DRIVER_AMI_MARKER = "oss-nvidia-driver"

# Where the node's CloudWatch agent publishes GPU utilization (see configure_gpu_metrics in the script).
METRICS_NAMESPACE = "MLPlatform/GPUTraining"
GPU_UTILIZATION_METRIC = "nvidia_smi_utilization_gpu"
IDLE_ALARM_PERIOD_SECONDS = 300
TERMINATION_HOOK_NAME = "checkpoint-on-terminate"
SPOT_EVENT_TYPES = ("EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation")
ASG_METRICS = (
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
)

FUNCTION_SOURCE = Path(__file__).resolve().parent.parent / "functions" / "idle_shutdown"
FUNCTION_HANDLER = "handler.handler"
FUNCTION_RUNTIME = "python3.12"

_CRON = re.compile(r"^[0-9*,/\-]+ [0-9*,/\-]+ [0-9*,/\-LW?]+ [0-9A-Za-z*,/\-]+ [0-9A-Za-z*,/\-L#?]+$")
_TIME_ZONE = re.compile(r"^(UTC|Etc/[A-Za-z0-9+\-]+|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+\-]+){1,2})$")
_SSM_PARAMETER = re.compile(r"^/[A-Za-z0-9_.\-/]+$")
_DATA_PREFIX = re.compile(r"^([A-Za-z0-9._=\-]+/)*$")
_ECR_REPOSITORY_ARN = re.compile(r"^arn:aws[a-z\-]*:ecr:[a-z0-9\-]+:\d{12}:repository/[a-z0-9._/\-*]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CLUSTER_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,37}$")


@dataclass(frozen=True)
class GpuTrainingClusterSettings:
    """Per-environment shape of the GPU training cluster.

    instance_types: GPU instance types the Auto Scaling group may launch, in on-demand priority order; all
      must have the same GPU count, and none less GPU memory than the first (see GPU_INSTANCE_TYPES).
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

    instance_types: tuple[str, ...] = ("g5.12xlarge", "g6.12xlarge")
    min_size: int = 0
    max_size: int = 2
    on_demand_base_capacity: int = 0
    on_demand_percentage_above_base: int = 0
    root_volume_size_gb: int = 100
    root_device_name: str = "/dev/xvda"
    ami_ssm_parameter: str = DEFAULT_AMI_SSM_PARAMETER
    imds_hop_limit: int = 1
    efa_enabled: bool = False
    data_prefix: str = "datasets/"
    checkpoint_grace_seconds: int = 60
    termination_heartbeat_seconds: int = 300
    idle_minutes: int = 60
    idle_gpu_utilization_percent: int = 5
    scale_to_zero_cron: str | None = None
    schedule_time_zone: str = "UTC"
    ecr_repository_arns: tuple[str, ...] = ()
    log_retention_days: int = 30
    notification_emails: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        where = "GpuTrainingClusterSettings"
        require_field_types(self, where)
        self._validate_instance_types(where)
        require_int_range(where, "max_size", self.max_size, 1, 100)
        require_int_range(where, "min_size", self.min_size, 0, 100)
        require_min_max(where, "min_size", self.min_size, "max_size", self.max_size)
        require_int_range(where, "on_demand_base_capacity", self.on_demand_base_capacity, 0, self.max_size)
        require_int_range(where, "on_demand_percentage_above_base", self.on_demand_percentage_above_base, 0, 100)
        if self.on_demand_percentage_above_base < 100:
            require(
                len(self.instance_types) >= 2,
                where,
                "instance_types",
                self.instance_types,
                "at least two types when spot is used (on_demand_percentage_above_base < 100), so one "
                "type's spot shortage does not block the cluster",
            )
        require_int_range(where, "root_volume_size_gb", self.root_volume_size_gb, 100, 16384)
        self._validate_ami(where)
        require_one_of(where, "imds_hop_limit", self.imds_hop_limit, (1, 2))
        require(isinstance(self.efa_enabled, bool), where, "efa_enabled", self.efa_enabled, "True or False")
        require(
            isinstance(self.data_prefix, str) and bool(_DATA_PREFIX.match(self.data_prefix)),
            where,
            "data_prefix",
            self.data_prefix,
            "'' or a relative S3 prefix ending in '/', such as 'datasets/'",
        )
        require_int_range(where, "checkpoint_grace_seconds", self.checkpoint_grace_seconds, 5, 110)
        require_int_range(
            where,
            "termination_heartbeat_seconds",
            self.termination_heartbeat_seconds,
            self.checkpoint_grace_seconds + 60,
            7200,
        )
        ok = isinstance(self.idle_minutes, int) and not isinstance(self.idle_minutes, bool)
        require(
            ok and 15 <= self.idle_minutes <= 1440 and self.idle_minutes % 5 == 0,
            where,
            "idle_minutes",
            self.idle_minutes,
            "a multiple of 5 from 15 to 1440 (the alarm evaluates 5-minute periods over at most a day)",
        )
        require_int_range(where, "idle_gpu_utilization_percent", self.idle_gpu_utilization_percent, 1, 50)
        self._validate_schedule(where)
        self._validate_tuple(where, "ecr_repository_arns", _ECR_REPOSITORY_ARN, "ECR repository ARNs")
        require_one_of(where, "log_retention_days", self.log_retention_days, LOG_RETENTION_DAYS)
        self._validate_tuple(where, "notification_emails", _EMAIL, "e-mail addresses")

    def _validate_instance_types(self, where: str) -> None:
        types = self.instance_types
        require(
            isinstance(types, tuple) and len(types) > 0 and all(isinstance(t, str) for t in types),
            where,
            "instance_types",
            types,
            "a non-empty tuple of GPU instance types",
        )
        require(len(set(types)) == len(types), where, "instance_types", types, "each type at most once")
        for instance_type in types:
            require_one_of(where, "instance_types", instance_type, tuple(GPU_INSTANCE_TYPES))
        specs = {t: GPU_INSTANCE_TYPES[t] for t in types}
        counts = {t: spec.gpus for t, spec in specs.items()}
        require(
            len(set(counts.values())) == 1,
            where,
            "instance_types",
            types,
            "types with the same GPU count, because a job's world size must not depend on which type Auto "
            f"Scaling picks (GPUs per type: {counts})",
        )
        primary = types[0]
        smaller = [t for t, spec in specs.items() if spec.gpu_memory_gib < specs[primary].gpu_memory_gib]
        require(
            not smaller,
            where,
            "instance_types",
            types,
            f"alternatives with at least the GPU memory of {primary} ({specs[primary].gpu_memory_gib} GiB), so a "
            f"job sized for it fits on every type (less on {', '.join(smaller)})",
        )

    def _validate_ami(self, where: str) -> None:
        parameter = self.ami_ssm_parameter
        require(
            isinstance(parameter, str) and bool(_SSM_PARAMETER.match(parameter)) and "/arm64/" not in parameter,
            where,
            "ami_ssm_parameter",
            parameter,
            "the name of an SSM parameter holding an x86_64 AMI ID, such as " + repr(DEFAULT_AMI_SSM_PARAMETER),
        )
        if OPEN_DRIVER_AMI_MARKER in parameter:
            unsupported = [t for t in self.instance_types if not GPU_INSTANCE_TYPES[t].open_driver]
            require(
                not unsupported,
                where,
                "instance_types",
                self.instance_types,
                f"Turing or newer GPUs: {', '.join(unsupported)} (Volta) cannot run the OSS-driver AMI in "
                "ami_ssm_parameter; choose g4dn/g5/g6/g6e/p4/p5 types or a proprietary-driver AMI",
            )
        require_one_of(where, "root_device_name", self.root_device_name, ("/dev/xvda", "/dev/sda1"))
        expected = "/dev/sda1" if "ubuntu" in parameter else "/dev/xvda" if "amazon-linux" in parameter else None
        require(
            expected is None or self.root_device_name == expected,
            where,
            "root_device_name",
            self.root_device_name,
            f"{expected!r}, the root device of the AMI in ami_ssm_parameter (another name adds a second volume "
            "and leaves the root volume unsized)",
        )
        if self.efa_enabled:
            no_efa = [t for t in self.instance_types if not GPU_INSTANCE_TYPES[t].efa]
            require(
                not no_efa,
                where,
                "efa_enabled",
                self.efa_enabled,
                f"False, or only EFA-capable types ({', '.join(no_efa)} have no EFA)",
            )

    def _validate_schedule(self, where: str) -> None:
        require(
            isinstance(self.schedule_time_zone, str) and bool(_TIME_ZONE.match(self.schedule_time_zone)),
            where,
            "schedule_time_zone",
            self.schedule_time_zone,
            "an IANA time zone such as 'UTC' or 'America/New_York'",
        )
        cron = self.scale_to_zero_cron
        if cron is None:
            return
        require(
            isinstance(cron, str) and bool(_CRON.match(cron)),
            where,
            "scale_to_zero_cron",
            cron,
            "a 5-field cron expression such as '0 20 * * *' (minute hour day-of-month month day-of-week)",
        )
        require(
            self.min_size == 0,
            where,
            "min_size",
            self.min_size,
            "0 when scale_to_zero_cron is set (a nightly scale to zero below the minimum would fail)",
        )

    def _validate_tuple(self, where: str, field: str, pattern: re.Pattern[str], what: str) -> None:
        values = getattr(self, field)
        require(isinstance(values, tuple), where, field, values, f"a tuple of {what}")
        for value in values:
            require(isinstance(value, str) and bool(pattern.match(value)), where, field, value, what)


@dataclass(frozen=True)
class GpuTrainingClusterProps:
    """Props for :class:`GpuTrainingCluster`.

    name: cluster name (lowercase, up to 38 characters); names the ASG, launch template, roles, function,
      alarm and topic, and the checkpoint prefix ``checkpoints/<name>/``.
    settings: the environment's cluster shape.
    vpc_id: VPC of the nodes' security group.
    subnet_id: the ONE private subnet the nodes run in (a cluster placement group lives in one AZ).
    data_key: KMS key encrypting the nodes' root volumes.
    logs_key: KMS key encrypting the function's log group.
    training_data: bucket nodes read the dataset from (under ``settings.data_prefix``).
    checkpoints: bucket nodes read and write checkpoints in (under ``checkpoints/<name>/``).
    artifacts: bucket jobs write outputs to (under ``artifacts/<name>/``).
    account_id, region, partition: where the cluster lives; usually data-source tokens.
    tags: owner tags, copied onto launched instances and volumes (default_tags cannot reach them).
    key_deletion_window_days: recovery window of the notification topic's KMS key (the environment's
      key setting, so every key of an environment follows the same rule).
    """

    name: str
    settings: GpuTrainingClusterSettings
    vpc_id: str
    subnet_id: str
    data_key: Any
    logs_key: Any
    training_data: SecureBucket
    checkpoints: SecureBucket
    artifacts: SecureBucket
    account_id: str
    region: str
    partition: str
    tags: Mapping[str, str]
    key_deletion_window_days: int = 30


@dataclass(frozen=True)
class FunctionArchive:
    """A Lambda deployment package built at synthesis.

    path: the zip file (in a content-addressed folder under the system's temp directory).
    sha256_hex: its SHA-256, hex (names the asset folder).
    sha256_base64: its SHA-256, base64: what Lambda reports as CodeSha256 and Terraform's source_code_hash.
    """

    path: Path
    sha256_hex: str
    sha256_base64: str


def build_function_archive(source: Path) -> FunctionArchive:
    """Zip ``source``'s Python files reproducibly: sorted, stored, with fixed timestamps and modes.

    The same code always gives the same bytes, on any machine, so ``source_code_hash`` changes only when
    the code does; ``__pycache__`` and anything that is not ``*.py`` stay out of the package.
    """
    files = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise ConfigurationError("GpuTrainingCluster", "function source", str(source), "a folder with *.py files")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes())
    data = buffer.getvalue()
    digest = hashlib.sha256(data)
    folder = Path(tempfile.gettempdir()) / "ml-platform-assets" / digest.hexdigest()
    target = folder / f"{source.name}.zip"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # Write-then-rename, so a concurrent synthesis never sees a partial file.
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_bytes(data)
        partial.replace(target)
    return FunctionArchive(target, digest.hexdigest(), base64.b64encode(digest.digest()).decode())


class GpuTrainingCluster(Construct):
    """GPU nodes in one cluster placement group, scaled from zero on demand and back to zero when idle.

    - Launch template: DLAMI resolved from SSM at launch, encrypted gp3 root volume, IMDSv2 only, the
      bootstrap script as user data, owner tags on instances and volumes, no SSH (SSM Session Manager).
    - Auto Scaling group in one private subnet: mixed instance types of equal GPU count, spot with
      price-capacity-optimized allocation and capacity rebalancing, min 0 / desired 0, and Terraform never
      resets the desired capacity of a running job.
    - A termination lifecycle hook gives nodes time to checkpoint; spot interruption and rebalance events
      are published to the cluster's SNS topic.
    - An idle alarm on GPU utilization invokes a Lambda function that scales the group to zero.
    """

    def __init__(self, scope: Construct, id: str, props: GpuTrainingClusterProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            isinstance(props.name, str) and bool(_CLUSTER_NAME.match(props.name)),
            where,
            "name",
            props.name,
            "1-38 lowercase letters, digits and '-', starting with a letter or digit",
        )
        require(bool(props.subnet_id), where, "subnet_id", props.subnet_id, "one private subnet ID")
        require(bool(props.tags), where, "tags", props.tags, "the owner tags (launched instances need them)")
        require_int_range(where, "key_deletion_window_days", props.key_deletion_window_days, 7, 30)
        self.props = props
        self.settings = props.settings
        self.name = props.name
        self.asg_name = props.name
        self.asg_arn = (
            f"arn:{props.partition}:autoscaling:{props.region}:{props.account_id}:autoScalingGroup:*:"
            f"autoScalingGroupName/{self.asg_name}"
        )
        self.checkpoint_prefix = f"checkpoints/{props.name}/"
        self.artifacts_prefix = f"artifacts/{props.name}/"

        self._notifications()
        self._node_security_group()
        self._node_role()
        self._launch_template()
        self._auto_scaling_group()
        self._interruption_events()
        self._idle_shutdown()

    def _notifications(self) -> None:
        p = self.props
        root = f"arn:{p.partition}:iam::{p.account_id}:root"
        # A key of its own: EventBridge can only publish to an encrypted topic whose key policy lets it
        # use the key, and aws/sns cannot be changed; the data key should not serve EventBridge.
        self.notifications_key = aws.kms_key.KmsKey(
            self,
            "notifications-key",
            description=f"GPU training cluster {p.name}: SNS notifications",
            enable_key_rotation=True,
            deletion_window_in_days=p.key_deletion_window_days,
            policy=policy_document(
                PolicyStatement(
                    sid="AccountAdministersKey",
                    principals={"AWS": root},
                    actions=KEY_ADMIN_ACTIONS,
                    resources=("*",),
                ),
                PolicyStatement(
                    sid="AccountUsesKeyThroughSns",
                    principals={"AWS": root},
                    actions=KEY_USE_ACTIONS,
                    resources=("*",),
                    conditions={"StringEquals": {"kms:ViaService": f"sns.{p.region}.amazonaws.com"}},
                ),
                # The topic policy restricts publishing to this cluster's rule; EventBridge passes no
                # source condition to KMS on SNS's behalf, so none can be required here.
                PolicyStatement(
                    sid="EventBridgePublishesToTopic",
                    principals={"Service": "events.amazonaws.com"},
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    resources=("*",),
                ),
            ),
        )
        aws.kms_alias.KmsAlias(
            self,
            "notifications-key-alias",
            name=f"alias/{p.name}-notifications",
            target_key_id=self.notifications_key.key_id,
        )
        self.topic = aws.sns_topic.SnsTopic(
            self, "events-topic", name=f"{p.name}-events", kms_master_key_id=self.notifications_key.arn
        )
        for index, email in enumerate(self.settings.notification_emails):
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"events-email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=email
            )

    def _node_security_group(self) -> None:
        p = self.props
        self.security_group = aws.security_group.SecurityGroup(
            self,
            "nodes-sg",
            name=f"{p.name}-nodes",
            description="GPU training nodes: inbound only from each other, outbound HTTPS and to each other",
            vpc_id=p.vpc_id,
            tags={"Name": f"{p.name}-nodes"},
        )
        sg_id = self.security_group.id
        # NCCL (and EFA) open arbitrary ports between ranks, in both directions.
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            self,
            "nodes-ingress-from-cluster",
            security_group_id=sg_id,
            description="All traffic from the cluster's own nodes (NCCL, EFA)",
            ip_protocol="-1",
            referenced_security_group_id=sg_id,
        )
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self,
            "nodes-egress-to-cluster",
            security_group_id=sg_id,
            description="All traffic to the cluster's own nodes (NCCL, EFA)",
            ip_protocol="-1",
            referenced_security_group_id=sg_id,
        )
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self,
            "nodes-egress-https",
            security_group_id=sg_id,
            description="HTTPS to AWS APIs, S3, ECR and package repositories",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
        )

    def _node_role(self) -> None:
        p = self.props
        s = self.settings
        self.node_role = service_role(
            self,
            "node-role",
            name=f"{p.name}-node",
            services=("ec2.amazonaws.com",),
            description=f"GPU training nodes of {p.name}: data, checkpoints, images, metrics, lifecycle",
        )
        p.training_data.grant_read(self.node_role, prefix=s.data_prefix)
        p.checkpoints.grant_read_write(self.node_role, prefix=self.checkpoint_prefix)
        p.artifacts.grant_read_write(self.node_role, prefix=self.artifacts_prefix)
        repositories = s.ecr_repository_arns or (f"arn:{p.partition}:ecr:{p.region}:{p.account_id}:repository/*",)
        self.node_policy = grant(
            self,
            "node-operations",
            self.node_role,
            # GetAuthorizationToken has no resource-level permissions; the token alone grants no image.
            PolicyStatement(sid="EcrAuthorizationToken", actions=("ecr:GetAuthorizationToken",), resources=("*",)),
            PolicyStatement(
                sid="EcrPullImages",
                actions=("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
                resources=repositories,
            ),
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            PolicyStatement(
                sid="PublishGpuMetrics",
                actions=("cloudwatch:PutMetricData",),
                resources=("*",),
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
            # The CloudWatch agent reads the instance's aws:autoscaling:groupName tag to label metrics with
            # AutoScalingGroupName; DescribeTags has no resource-level permissions.
            PolicyStatement(sid="ReadOwnAutoScalingGroupTag", actions=("ec2:DescribeTags",), resources=("*",)),
            PolicyStatement(
                sid="CompleteTerminationLifecycleAction",
                actions=("autoscaling:CompleteLifecycleAction",),
                resources=(self.asg_arn,),
            ),
            name="node-operations",
        )
        # AWS-managed but narrow: the SSM agent's channel for Session Manager, so nodes need no SSH.
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self,
            "node-ssm-core",
            role=self.node_role.name,
            policy_arn=f"arn:{p.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
        )
        self.instance_profile = aws.iam_instance_profile.IamInstanceProfile(
            self, "node-profile", name=f"{p.name}-node", role=self.node_role.name
        )

    def _user_data(self) -> TerraformLocal:
        """The bootstrap script as a Terraform local: a plain template string, so Terraform resolves the bucket
        names in its header and unescapes ``$${`` in its body; the launch template base64-encodes the local."""
        p = self.props
        try:
            params = GpuNodeBootstrapParams(
                region=p.region,
                cluster_name=p.name,
                data_bucket=p.training_data.name,
                checkpoint_bucket=p.checkpoints.name,
                artifacts_bucket=p.artifacts.name,
                lifecycle_hook_name=TERMINATION_HOOK_NAME,
                asg_name=self.asg_name,
                data_prefix=self.settings.data_prefix,
                metrics_namespace=METRICS_NAMESPACE,
                checkpoint_grace_seconds=self.settings.checkpoint_grace_seconds,
            )
            script = render_gpu_node_user_data(params, escape_body=True)
        except ValueError as error:
            raise ConfigurationError(self.node.path, "user_data", p.name, str(error)) from None
        return TerraformLocal(self, "node-user-data", script)

    def _launch_template(self) -> None:
        p = self.props
        s = self.settings
        lt = aws.launch_template
        self.placement_group = aws.placement_group.PlacementGroup(
            self, "placement-group", name=p.name, strategy="cluster"
        )
        self.user_data = self._user_data()
        launched_tags = {**p.tags, "Name": f"{p.name}-node"}
        network: dict[str, Any]
        if s.efa_enabled:
            network = {
                "network_interfaces": [
                    lt.LaunchTemplateNetworkInterfaces(
                        device_index=0,
                        interface_type="efa",
                        security_groups=[self.security_group.id],
                        delete_on_termination="true",
                    )
                ]
            }
        else:
            network = {"vpc_security_group_ids": [self.security_group.id]}
        self.launch_template = lt.LaunchTemplate(
            self,
            "launch-template",
            name=p.name,
            description=f"GPU training node of {p.name}",
            # Resolved by EC2 at each launch: nodes get the newest AMI of the line without a new template
            # version, so an AMI release never triggers an instance refresh of a running job.
            image_id=f"resolve:ssm:{s.ami_ssm_parameter}",
            instance_type=s.instance_types[0],
            update_default_version=True,
            iam_instance_profile=lt.LaunchTemplateIamInstanceProfile(arn=self.instance_profile.arn),
            metadata_options=lt.LaunchTemplateMetadataOptions(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=s.imds_hop_limit,
            ),
            monitoring=lt.LaunchTemplateMonitoring(enabled=True),
            # A node shut down from inside must not linger as a stopped instance with a billed volume.
            instance_initiated_shutdown_behavior="terminate",
            block_device_mappings=[
                lt.LaunchTemplateBlockDeviceMappings(
                    device_name=s.root_device_name,
                    ebs=lt.LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=s.root_volume_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=p.data_key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            user_data=Fn.base64encode(self.user_data.as_string),
            tag_specifications=[
                lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=launched_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            **network,
        )

    def _auto_scaling_group(self) -> None:
        p = self.props
        s = self.settings
        asg = aws.autoscaling_group
        self.asg = asg.AutoscalingGroup(
            self,
            "asg",
            name=self.asg_name,
            min_size=s.min_size,
            max_size=s.max_size,
            desired_capacity=0,
            vpc_zone_identifier=[p.subnet_id],
            placement_group=self.placement_group.id,
            capacity_rebalance=True,
            default_cooldown=300,
            health_check_type="EC2",
            health_check_grace_period=300,
            # Spot capacity may not be there right away; Terraform must not wait for instances.
            wait_for_capacity_timeout="0",
            enabled_metrics=list(ASG_METRICS),
            metrics_granularity="1Minute",
            mixed_instances_policy=asg.AutoscalingGroupMixedInstancesPolicy(
                instances_distribution=asg.AutoscalingGroupMixedInstancesPolicyInstancesDistribution(
                    on_demand_allocation_strategy="prioritized",
                    on_demand_base_capacity=s.on_demand_base_capacity,
                    on_demand_percentage_above_base_capacity=s.on_demand_percentage_above_base,
                    spot_allocation_strategy="price-capacity-optimized",
                ),
                launch_template=asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplate(
                    launch_template_specification=asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecification(
                        launch_template_id=self.launch_template.id,
                        version=Token.as_string(self.launch_template.latest_version),
                    ),
                    override=[
                        asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplateOverride(instance_type=t)
                        for t in s.instance_types
                    ],
                ),
            ),
            # Training nodes are not a serving fleet: replace them all at once; the termination hook
            # still lets each one checkpoint first.
            instance_refresh=asg.AutoscalingGroupInstanceRefresh(
                strategy="Rolling",
                preferences=asg.AutoscalingGroupInstanceRefreshPreferences(
                    min_healthy_percentage=0, skip_matching=True
                ),
            ),
            tag=[
                asg.AutoscalingGroupTag(key=key, value=value, propagate_at_launch=True)
                for key, value in {**p.tags, "Name": f"{p.name}-node"}.items()
            ],
            # Desired capacity belongs to whoever runs jobs (and to the idle function): an apply during a
            # run must not scale it back to the configured 0.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_capacity"]),
        )
        self.termination_hook = aws.autoscaling_lifecycle_hook.AutoscalingLifecycleHook(
            self,
            "termination-hook",
            name=TERMINATION_HOOK_NAME,
            autoscaling_group_name=self.asg.name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
            heartbeat_timeout=s.termination_heartbeat_seconds,
            default_result="CONTINUE",
        )
        self.schedule = None
        if s.scale_to_zero_cron is not None:
            # -1 leaves min and max alone; the provider's default of 0 would also zero max_size.
            self.schedule = aws.autoscaling_schedule.AutoscalingSchedule(
                self,
                "nightly-scale-to-zero",
                scheduled_action_name=f"{p.name}-scale-to-zero",
                autoscaling_group_name=self.asg.name,
                recurrence=s.scale_to_zero_cron,
                time_zone=s.schedule_time_zone,
                desired_capacity=0,
                min_size=-1,
                max_size=-1,
            )

    def _interruption_events(self) -> None:
        p = self.props
        # Spot events name only the instance, so the rule covers the account's spot instances in the region.
        self.interruption_rule = aws.cloudwatch_event_rule.CloudwatchEventRule(
            self,
            "spot-interruption-rule",
            name=f"{p.name}-spot-interruptions",
            description="Spot interruption warnings and rebalance recommendations, for operators",
            event_pattern=json.dumps({"source": ["aws.ec2"], "detail-type": list(SPOT_EVENT_TYPES)}),
        )
        aws.cloudwatch_event_target.CloudwatchEventTarget(
            self,
            "spot-interruption-to-topic",
            rule=self.interruption_rule.name,
            target_id="events-topic",
            arn=self.topic.arn,
            input_transformer=aws.cloudwatch_event_target.CloudwatchEventTargetInputTransformer(
                input_paths={
                    "kind": "$.detail-type",
                    "instance": "$.detail.instance-id",
                    "time": "$.time",
                    "region": "$.region",
                },
                input_template=(
                    f'"<kind>: instance <instance> in <region> at <time>. A node of {p.name} saves a checkpoint '
                    f'to {p.checkpoints.s3_uri(self.checkpoint_prefix)} before it stops."'
                ),
            ),
        )
        aws.sns_topic_policy.SnsTopicPolicy(
            self,
            "events-topic-policy",
            arn=self.topic.arn,
            policy=policy_document(
                PolicyStatement(
                    sid="InterruptionRulePublishes",
                    principals={"Service": "events.amazonaws.com"},
                    actions=("sns:Publish",),
                    resources=(self.topic.arn,),
                    conditions={"ArnEquals": {"aws:SourceArn": self.interruption_rule.arn}},
                )
            ),
        )

    def _idle_shutdown(self) -> None:
        p = self.props
        s = self.settings
        function_name = f"{p.name}-idle-shutdown"
        alarm_name = f"{p.name}-idle"
        periods = s.idle_minutes * 60 // IDLE_ALARM_PERIOD_SECONDS
        self.function_archive = build_function_archive(FUNCTION_SOURCE)
        self.function_asset = TerraformAsset(
            self,
            "idle-shutdown-code",
            path=str(self.function_archive.path),
            type=AssetType.FILE,
            asset_hash=self.function_archive.sha256_hex,
        )
        self.function_log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self,
            "idle-shutdown-logs",
            name=f"/aws/lambda/{function_name}",
            retention_in_days=s.log_retention_days,
            kms_key_id=p.logs_key.arn,
        )
        self.function_role = service_role(
            self,
            "idle-shutdown-role",
            name=function_name,
            services=("lambda.amazonaws.com",),
            description=f"Scales {p.name} to zero when its GPUs are idle",
        )
        self.function_policy = grant(
            self,
            "idle-shutdown-permissions",
            self.function_role,
            PolicyStatement(
                sid="WriteOwnLogs",
                actions=("logs:CreateLogStream", "logs:PutLogEvents"),
                resources=(f"{self.function_log_group.arn}:*",),
            ),
            # Describe* and GetMetricData have no resource-level permissions.
            PolicyStatement(
                sid="DescribeAutoScalingGroups", actions=("autoscaling:DescribeAutoScalingGroups",), resources=("*",)
            ),
            PolicyStatement(sid="RecheckUtilization", actions=("cloudwatch:GetMetricData",), resources=("*",)),
            PolicyStatement(
                sid="ScaleThisClusterToZero", actions=("autoscaling:SetDesiredCapacity",), resources=(self.asg_arn,)
            ),
            PolicyStatement(sid="NotifyOperators", actions=("sns:Publish",), resources=(self.topic.arn,)),
            PolicyStatement(
                sid="UseNotificationKeyThroughSns",
                actions=("kms:Decrypt", "kms:GenerateDataKey"),
                resources=(self.notifications_key.arn,),
                conditions={"StringEquals": {"kms:ViaService": f"sns.{p.region}.amazonaws.com"}},
            ),
            name="idle-shutdown",
        )
        lam = aws.lambda_function
        self.function = lam.LambdaFunction(
            self,
            "idle-shutdown",
            function_name=function_name,
            description=f"Scales the GPU training cluster {p.name} to zero when its idle alarm fires",
            role=self.function_role.arn,
            runtime=FUNCTION_RUNTIME,
            handler=FUNCTION_HANDLER,
            architectures=["arm64"],
            filename=self.function_asset.path,
            source_code_hash=self.function_archive.sha256_base64,
            memory_size=128,
            timeout=60,
            # No reserved concurrency: reserving any needs an account limit above the default 10 of a new
            # account (the deploy would fail there), and the handler is idempotent, so overlapping
            # invocations at worst set a desired capacity of 0 twice.
            environment=lam.LambdaFunctionEnvironment(
                variables={
                    "ASG_NAME": self.asg_name,
                    "SNS_TOPIC_ARN": self.topic.arn,
                    "ALARM_NAME": alarm_name,
                    "IDLE_THRESHOLD": str(s.idle_gpu_utilization_percent),
                    "EVALUATION_PERIODS": str(periods),
                }
            ),
            # Alarm actions invoke asynchronously; an invocation that keeps failing reaches operators.
            dead_letter_config=lam.LambdaFunctionDeadLetterConfig(target_arn=self.topic.arn),
            logging_config=lam.LambdaFunctionLoggingConfig(log_format="Text", log_group=self.function_log_group.name),
            depends_on=[self.function_log_group, self.function_policy],
        )
        self.idle_alarm = aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "idle-alarm",
            alarm_name=alarm_name,
            alarm_description=(
                f"Every GPU of {p.name} below {s.idle_gpu_utilization_percent}% for {s.idle_minutes} minutes: "
                "the idle-shutdown function scales the cluster to zero."
            ),
            namespace=METRICS_NAMESPACE,
            metric_name=GPU_UTILIZATION_METRIC,
            dimensions={"AutoScalingGroupName": self.asg_name},
            statistic="Maximum",
            period=IDLE_ALARM_PERIOD_SECONDS,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            threshold=s.idle_gpu_utilization_percent,
            comparison_operator="LessThanThreshold",
            # A cluster scaled to zero publishes nothing; that must read as "not idle", never as an alarm.
            treat_missing_data="notBreaching",
            alarm_actions=[self.function.arn],
        )
        aws.lambda_permission.LambdaPermission(
            self,
            "idle-alarm-invokes-function",
            statement_id="IdleAlarmInvokes",
            action="lambda:InvokeFunction",
            function_name=self.function.function_name,
            principal="lambda.alarms.cloudwatch.amazonaws.com",
            source_arn=self.idle_alarm.arn,
            source_account=p.account_id,
        )
