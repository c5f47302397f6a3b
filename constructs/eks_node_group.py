"""An EKS managed node group on a hardened launch template, ready for cluster-autoscaler."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cdktf import TerraformResourceLifecycle, Token
from constructs import Construct
from constructs.iam_policy import service_role
from constructs.provider_bindings import aws
from constructs.validation import (
    ConfigurationError,
    require,
    require_field_types,
    require_instance_type,
    require_int_range,
    require_min_max,
    require_non_empty_tuple,
    require_one_of,
)

if TYPE_CHECKING:
    from constructs.eks_cluster import EksCluster

CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
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
_LABEL_KEY = re.compile(rf"^([a-z0-9]([-a-z0-9.]{{0,251}}[a-z0-9])?/)?{_LABEL_NAME}$")
_LABEL_VALUE = re.compile(rf"^({_LABEL_NAME})?$")
_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")


@dataclass(frozen=True)
class EksNodeGroupSettings:
    """Per-environment shape of a managed node group (the CPU group for serving and system pods).

    instance_types: EC2 instance types of similar size (cluster-autoscaler assumes one shape per group).
    min_size, max_size: bounds cluster-autoscaler scales within.
    desired_size: size at creation; afterwards cluster-autoscaler owns it (Terraform ignores drift).
    capacity_type: ``"ON_DEMAND"`` or ``"SPOT"`` (up to 90% cheaper, can be reclaimed at 2 minutes' notice).
    disk_size_gib: root volume size (gp3, encrypted with the data key), 20-2000 GiB.
    """

    instance_types: tuple[str, ...] = ("m6i.xlarge",)
    min_size: int = 2
    max_size: int = 6
    desired_size: int = 2
    capacity_type: str = "ON_DEMAND"
    disk_size_gib: int = 50

    def __post_init__(self) -> None:
        self.validate(type(self).__name__)

    def validate(self, where: str) -> None:
        """Check every field; errors are reported at ``where``."""
        require_field_types(self, where)
        require_non_empty_tuple(where, "instance_types", self.instance_types)
        for instance_type in self.instance_types:
            require_instance_type(where, "instance_types", instance_type)
        require_int_range(where, "min_size", self.min_size, 0, 100)
        require_int_range(where, "max_size", self.max_size, 1, 100)
        require_min_max(where, "min_size", self.min_size, "max_size", self.max_size)
        require_int_range(where, "desired_size", self.desired_size, 0, 100)
        require(
            self.min_size <= self.desired_size <= self.max_size,
            where,
            "desired_size",
            self.desired_size,
            f"a value from min_size ({self.min_size}) to max_size ({self.max_size})",
        )
        require_one_of(where, "capacity_type", self.capacity_type, CAPACITY_TYPES)
        require_int_range(where, "disk_size_gib", self.disk_size_gib, 20, 2000)


@dataclass(frozen=True)
class NodeTaint:
    """A Kubernetes taint in EKS API form: effect is NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE."""

    key: str
    value: str
    effect: str = "NO_SCHEDULE"


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
    owner_tags: cost tags for launched instances and volumes (default_tags does not reach them).
    labels: Kubernetes node labels.
    taints: Kubernetes node taints.
    autoscaler_resources: extended resources per node (``{"nvidia.com/gpu": "1"}``) announced to
      cluster-autoscaler, so it can scale the group up from zero for pods that request them.
    depends_on: resources that must exist before nodes join (cluster access, networking add-ons).
    """

    name: str
    cluster: EksCluster
    subnet_ids: Sequence[str]
    settings: EksNodeGroupSettings
    ami_type: str
    volume_key: Any
    owner_tags: Mapping[str, str]
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[NodeTaint, ...] = ()
    autoscaler_resources: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[Any] = ()


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
            isinstance(props.name, str) and bool(_NAME.match(props.name)) and len(props.name) < MAX_NAME_PREFIX,
            where,
            "name",
            props.name,
            f"lowercase letters, digits and '-', starting with a letter, shorter than {MAX_NAME_PREFIX} characters",
        )
        require_one_of(where, "ami_type", props.ami_type, AMI_TYPES)
        require(len(props.subnet_ids) > 0, where, "subnet_ids", props.subnet_ids, "at least one subnet")
        for key, value in props.labels.items():
            require(bool(_LABEL_KEY.match(key)), where, "labels", key, "Kubernetes label keys ([prefix/]name)")
            require(bool(_LABEL_VALUE.match(value)), where, "labels", value, "Kubernetes label values")
        for taint in props.taints:
            require(bool(_LABEL_KEY.match(taint.key)), where, "taints", taint.key, "Kubernetes taint keys")
            require_one_of(where, "taints", taint.effect, TAINT_EFFECTS)
        for resource, amount in props.autoscaler_resources.items():
            require(
                amount.isdigit() and int(amount) > 0,
                where,
                "autoscaler_resources",
                {resource: amount},
                "a positive whole number per resource",
            )
        missing = [key for key in ("environment", "team", "cost_center", "project") if not props.owner_tags.get(key)]
        if missing:
            raise ConfigurationError(where, "owner_tags", dict(props.owner_tags), f"a map with {missing}")
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
        partition = cluster.props.partition
        self.role_attachments = [
            aws.iam_role_policy_attachment.IamRolePolicyAttachment(
                self, f"node-{policy}", role=self.role.name, policy_arn=f"arn:{partition}:iam::aws:policy/{policy}"
            )
            for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy")
        ]

        launched_tags = {**props.owner_tags, "Name": props.name}
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
                create_before_destroy=True, ignore_changes=["scaling_config[0].desired_size"]
            ),
        )

    @property
    def name(self) -> str:
        """The node group's full name (known after apply)."""
        return self.node_group.node_group_name
