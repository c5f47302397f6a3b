"""An EKS managed node group on a hardened launch template, ready for cluster-autoscaler."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdktf import ITerraformDependable, TerraformResourceLifecycle, Token
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require
from constructs.core.iam import service_role
from constructs.core.refs import KmsKeyRef
from constructs.eks.cluster import EksCluster
from constructs.eks.settings import EksGpuNodeGroupSettings, EksNodeGroupSettings

# EKS-optimized Amazon Linux 2023 AMIs. AL2 AMIs are not published for Kubernetes 1.33 and later.
AMI_TYPES = ("AL2023_x86_64_STANDARD", "AL2023_x86_64_NVIDIA")
# The EKS API spells taint effects in upper case; Kubernetes and cluster-autoscaler tags in camel case.
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}
NODE_TYPE_LABEL = "ml-platform/node-type"
AUTOSCALER_TAG_PREFIX = "k8s.io/cluster-autoscaler"
# Root device of the EKS-optimized AL2023 AMIs.
ROOT_DEVICE = "/dev/xvda"
# Managed node group names are at most 63 characters; a name prefix leaves 26 for Terraform's suffix.
MAX_NAME_PREFIX = 37
_LABEL_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_LABEL_KEY = re.compile(rf"([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}")
_LABEL_VALUE = re.compile(rf"({_LABEL_NAME})?")
_NAME = re.compile(r"[a-z][a-z0-9-]*[a-z0-9]")

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"


@dataclass(frozen=True)
class NodeTaint:
    """A Kubernetes taint in EKS API form: effect is NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."""

    key: str
    value: str
    effect: str = "NO_SCHEDULE"

    @property
    def kubernetes_effect(self) -> str:
        """The effect as Kubernetes spells it (``NoSchedule``)."""
        return TAINT_EFFECTS[self.effect]

    def toleration(self) -> dict[str, str]:
        """The Kubernetes toleration of exactly this taint (its key, value and effect)."""
        return {"key": self.key, "operator": "Equal", "value": self.value, "effect": self.kubernetes_effect}


@dataclass(frozen=True)
class EksNodeGroupProps:
    """Props for :class:`EksNodeGroup`.

    name: node group name prefix (``<cluster>-<purpose>``); Terraform appends a suffix so a
      replacement group can come up before the old one is drained.
    cluster: the cluster the nodes join.
    subnet_ids: private subnets to launch nodes in (one per AZ).
    settings: the group's shape.
    ami_type: an EKS-optimized AL2023 AMI type (``AL2023_x86_64_STANDARD`` or ``AL2023_x86_64_NVIDIA``).
    volume_key: KMS key encrypting the nodes' root volumes.
    labels: Kubernetes node labels.
    taints: Kubernetes node taints.
    autoscaler_resources: extended resources per node (``{"nvidia.com/gpu": "1"}``) announced to
      cluster-autoscaler, so it can scale the group up from zero for pods that request them.
    depends_on: resources that must exist before nodes join (cluster access, networking add-ons).
    scheduled_bounds: scheduled actions set the group's minimum and maximum (off hours): Terraform sets them at
      creation only, and the schedule that restores them carries the configured values.
    """

    name: str
    cluster: EksCluster
    subnet_ids: Sequence[str]
    settings: EksNodeGroupSettings
    ami_type: str
    volume_key: KmsKeyRef
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[NodeTaint, ...] = ()
    autoscaler_resources: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()
    scheduled_bounds: bool = False


def autoscaler_tags(
    cluster_name: str, labels: Mapping[str, str], taints: Sequence[NodeTaint], resources: Mapping[str, str]
) -> dict[str, str]:
    """cluster-autoscaler auto-discovery and node-template tags for a managed node group.

    EKS does not copy node group tags to the group's Auto Scaling group; cluster-autoscaler (1.32 and
    later) reads them, with the group's labels and taints, through ``eks:DescribeNodegroup`` when the
    group has no nodes to look at, which is what lets it scale a group up from zero.
    """
    tags = {f"{AUTOSCALER_TAG_PREFIX}/enabled": "true", f"{AUTOSCALER_TAG_PREFIX}/{cluster_name}": "owned"}
    for key, value in labels.items():
        tags[f"{AUTOSCALER_TAG_PREFIX}/node-template/label/{key}"] = value
    for taint in taints:
        effect = TAINT_EFFECTS[taint.effect]
        tags[f"{AUTOSCALER_TAG_PREFIX}/node-template/taint/{taint.key}"] = f"{taint.value}:{effect}"
    for resource, amount in resources.items():
        tags[f"{AUTOSCALER_TAG_PREFIX}/node-template/resources/{resource}"] = amount
    return tags


class EksNodeGroup(Construct):
    """A managed node group with its own node role and a hardened launch template.

    - IMDSv2 only, hop limit 1: pods (which get AWS credentials through IRSA) cannot reach the
      instance metadata service and borrow the node role.
    - gp3 root volume encrypted with the platform's data key; instances and volumes carry the owner tags.
    - Node role with the three AWS-managed node policies EKS requires (worker, ECR read, VPC CNI).
    - cluster-autoscaler tags; ``desired_size`` is left to the autoscaler after creation.
    - Replaced create-before-destroy, and rolled 33% at a time on launch template changes.
    """

    def __init__(self, scope: Construct, id: str, props: EksNodeGroupProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            bool(_NAME.fullmatch(props.name)) and len(props.name) < MAX_NAME_PREFIX,
            where,
            "name",
            props.name,
            f"lowercase letters, digits and '-', starting with a letter, shorter than {MAX_NAME_PREFIX} characters",
        )
        require(props.ami_type in AMI_TYPES, where, "ami_type", props.ami_type, f"one of {AMI_TYPES}")
        require(len(props.subnet_ids) > 0, where, "subnet_ids", props.subnet_ids, "at least one subnet")
        for key, value in props.labels.items():
            require(bool(_LABEL_KEY.fullmatch(key)), where, "labels", key, "Kubernetes label keys ([prefix/]name)")
            require(bool(_LABEL_VALUE.fullmatch(value)), where, "labels", value, "Kubernetes label values")
        for taint in props.taints:
            require(bool(_LABEL_KEY.fullmatch(taint.key)), where, "taints", taint.key, "Kubernetes taint keys")
            require(taint.effect in TAINT_EFFECTS, where, "taints", taint.effect, f"one of {tuple(TAINT_EFFECTS)}")
        for resource, amount in props.autoscaler_resources.items():
            require(
                amount.isdigit() and int(amount) > 0,
                where,
                "autoscaler_resources",
                {resource: amount},
                "a positive whole number per resource",
            )
        self.props = props
        s = props.settings
        cluster = props.cluster

        self.role = service_role(
            self,
            "node-role",
            name=f"{props.name}-node",
            services=("ec2.amazonaws.com",),
            description=f"Nodes of the EKS node group {props.name}",
        )
        self.role_attachments = [
            aws.iam_role_policy_attachment.IamRolePolicyAttachment(
                self, f"node-{policy}", role=self.role.name, policy_arn=cluster.context.managed_policy_arn(policy)
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy")
        ]

        launched_tags = {**cluster.context.owner_tags, "Name": props.name}
        self.launch_template = aws.launch_template.LaunchTemplate(
            self,
            "launch-template",
            name_prefix=f"{props.name}-",
            description=f"Nodes of the EKS node group {props.name}",
            update_default_version=True,
            metadata_options=aws.launch_template.LaunchTemplateMetadataOptions(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=1,
                instance_metadata_tags="disabled",
            ),
            block_device_mappings=[
                aws.launch_template.LaunchTemplateBlockDeviceMappings(
                    device_name=ROOT_DEVICE,
                    ebs=aws.launch_template.LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=s.disk_size_gib,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=props.volume_key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            tag_specifications=[
                aws.launch_template.LaunchTemplateTagSpecifications(resource_type=kind, tags=launched_tags)
                for kind in ("instance", "volume")
            ],
        )

        # EKS reports the Auto Scaling group's current sizes: cluster-autoscaler moves the desired size, and off-hours
        # schedules the bounds.
        scaled_outside_terraform = ["desired_size", *(("min_size", "max_size") if props.scheduled_bounds else ())]
        self.node_group = aws.eks_node_group.EksNodeGroup(
            self,
            "node-group",
            cluster_name=cluster.cluster.name,
            node_group_name_prefix=f"{props.name}-",
            version=cluster.cluster.version,
            node_role_arn=self.role.arn,
            subnet_ids=list(props.subnet_ids),
            ami_type=props.ami_type,
            capacity_type=s.capacity_type,
            instance_types=list(s.instance_types),
            scaling_config=aws.eks_node_group.EksNodeGroupScalingConfig(
                min_size=s.min_size, max_size=s.max_size, desired_size=s.desired_size
            ),
            update_config=aws.eks_node_group.EksNodeGroupUpdateConfig(max_unavailable_percentage=33),
            node_repair_config=aws.eks_node_group.EksNodeGroupNodeRepairConfig(enabled=True),
            launch_template=aws.eks_node_group.EksNodeGroupLaunchTemplate(
                id=self.launch_template.id, version=Token.as_string(self.launch_template.latest_version)
            ),
            labels=dict(props.labels) or None,
            taint=[
                aws.eks_node_group.EksNodeGroupTaint(key=t.key, value=t.value, effect=t.effect) for t in props.taints
            ]
            or None,
            tags=autoscaler_tags(cluster.name, props.labels, props.taints, props.autoscaler_resources),
            # The role keeps its policies until the nodes are gone, and nodes join only once the
            # deploying principal's access and the networking add-ons exist.
            depends_on=[*self.role_attachments, *props.depends_on],
            lifecycle=TerraformResourceLifecycle(
                create_before_destroy=True,
                ignore_changes=[f"scaling_config[0].{size}" for size in scaled_outside_terraform],
            ),
        )

    @property
    def name(self) -> str:
        """The node group's full name (known after apply)."""
        return self.node_group.node_group_name


GPU_TAINT = NodeTaint(key=GPU_RESOURCE, value="true", effect="NO_SCHEDULE")


@dataclass(frozen=True)
class EksGpuNodeGroupProps:
    """Props for :class:`EksGpuNodeGroup`.

    name: node group name prefix (``<cluster>-gpu``).
    cluster: the cluster the nodes join.
    subnet_ids: private subnets to launch nodes in.
    settings: the group's shape (validated NVIDIA GPU instance types).
    volume_key: KMS key encrypting the nodes' root volumes.
    depends_on: resources that must exist before nodes join.
    """

    name: str
    cluster: EksCluster
    subnet_ids: Sequence[str]
    settings: EksGpuNodeGroupSettings
    volume_key: KmsKeyRef
    depends_on: Sequence[ITerraformDependable] = ()


class EksGpuNodeGroup(Construct):
    """A managed node group of NVIDIA GPU nodes, tainted so only pods that tolerate it run there.

    Nodes use the EKS-optimized AL2023 NVIDIA AMI (driver and container toolkit included; the NVIDIA
    device plugin, installed by the cluster components, advertises ``nvidia.com/gpu``). The taint
    ``nvidia.com/gpu=true:NoSchedule`` keeps CPU pods off costly nodes; the labels
    ``nvidia.com/gpu.present=true`` and ``ml-platform/node-type=gpu`` select them. The autoscaler's
    node-template tags announce labels, taint and GPU count, so a pending GPU pod scales the group
    up from zero.
    """

    def __init__(self, scope: Construct, id: str, props: EksGpuNodeGroupProps) -> None:
        super().__init__(scope, id)
        self.settings = props.settings
        self.labels = {NODE_TYPE_LABEL: "gpu", GPU_PRESENT_LABEL: "true"}
        self.taint = GPU_TAINT
        self.group = EksNodeGroup(
            self,
            "group",
            EksNodeGroupProps(
                name=props.name,
                cluster=props.cluster,
                subnet_ids=props.subnet_ids,
                settings=props.settings,
                ami_type=GPU_AMI_TYPE,
                volume_key=props.volume_key,
                labels=self.labels,
                taints=(GPU_TAINT,),
                autoscaler_resources={GPU_RESOURCE: str(props.settings.gpus_per_instance)},
                depends_on=props.depends_on,
                scheduled_bounds=props.settings.off_hours is not None,
            ),
        )
        self.node_group = self.group.node_group
        self.off_hours = self._off_hours(props.name) if props.settings.off_hours is not None else None

    def _off_hours(self, name: str) -> tuple[Any, Any]:
        """The nightly stop and the morning start, as scheduled actions of the group's Auto Scaling group.

        EKS creates the Auto Scaling group, so its bounds are set there rather than on the node group (whose
        maximum cannot be 0); cluster-autoscaler reads them, and EKS drains nodes the group terminates.
        """
        s = self.settings
        hours = s.off_hours
        assert hours is not None
        asg_name = self.node_group.resources.get(0).autoscaling_groups.get(0).name
        stop = aws.autoscaling_schedule.AutoscalingSchedule(
            self,
            "off-hours-stop",
            scheduled_action_name=f"{name}-off-hours-stop",
            autoscaling_group_name=asg_name,
            recurrence=hours.stop_cron,
            time_zone=hours.time_zone,
            min_size=0,
            max_size=0,
            desired_capacity=0,
        )
        # -1 leaves the desired capacity to cluster-autoscaler: it starts nodes once GPU pods are pending.
        start = aws.autoscaling_schedule.AutoscalingSchedule(
            self,
            "off-hours-start",
            scheduled_action_name=f"{name}-off-hours-start",
            autoscaling_group_name=asg_name,
            recurrence=hours.start_cron,
            time_zone=hours.time_zone,
            min_size=s.min_size,
            max_size=s.max_size,
            desired_capacity=-1,
        )
        return stop, start
