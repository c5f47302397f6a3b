"""The GPU node group: NVIDIA g5-class nodes that only GPU pods land on, scaled from zero."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from constructs import Construct
from constructs.eks_node_group import NODE_TYPE_LABEL, EksNodeGroup, EksNodeGroupProps, EksNodeGroupSettings, NodeTaint
from constructs.validation import require

if TYPE_CHECKING:
    from constructs.eks_cluster import EksCluster

GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_TAINT = NodeTaint(key=GPU_RESOURCE, value="true", effect="NO_SCHEDULE")
GPU_AMI_TYPE = "AL2023_x86_64_NVIDIA"

# NVIDIA GPUs per instance for the x86_64 families the AL2023 NVIDIA AMI supports. A group must be
# one shape (cluster-autoscaler builds one node template per group), so all its types share a count.
NVIDIA_GPUS_PER_INSTANCE: Mapping[str, int] = {
    **{f"{family}.{size}": 1 for family in ("g4dn", "g5", "g6", "g6e") for size in ("xlarge", "2xlarge", "4xlarge")},
    **{f"{family}.{size}": 1 for family in ("g4dn", "g5", "g6", "g6e") for size in ("8xlarge", "16xlarge")},
    **{f"{family}.12xlarge": 4 for family in ("g4dn", "g5", "g6", "g6e")},
    **{f"{family}.24xlarge": 4 for family in ("g5", "g6", "g6e")},
    **{f"{family}.48xlarge": 8 for family in ("g5", "g6", "g6e")},
    "g4dn.metal": 8,
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "p5en.48xlarge": 8,
}


@dataclass(frozen=True)
class EksGpuNodeGroupSettings(EksNodeGroupSettings):
    """Per-environment shape of the GPU node group.

    Same fields as :class:`EksNodeGroupSettings`, with GPU defaults: g5 instances with one NVIDIA
    A10G each, scaled from zero (``min_size`` 0) so an idle platform pays for no GPU, on Spot unless
    the environment asks for On-Demand. Every instance type must be an NVIDIA x86_64 type with the
    same number of GPUs.
    """

    instance_types: tuple[str, ...] = ("g5.xlarge", "g5.2xlarge")
    min_size: int = 0
    max_size: int = 4
    desired_size: int = 0
    capacity_type: str = "SPOT"
    disk_size_gib: int = 100

    def validate(self, where: str) -> None:
        """The base checks, plus: NVIDIA GPU instance types only, all with the same GPU count."""
        super().validate(where)
        for instance_type in self.instance_types:
            require(
                instance_type in NVIDIA_GPUS_PER_INSTANCE,
                where,
                "instance_types",
                instance_type,
                "an NVIDIA GPU instance type (x86_64) such as 'g5.xlarge' or 'g5.2xlarge'",
            )
        counts = {NVIDIA_GPUS_PER_INSTANCE[t] for t in self.instance_types}
        require(
            len(counts) == 1,
            where,
            "instance_types",
            self.instance_types,
            "instance types with the same number of GPUs (one node shape per group)",
        )

    @property
    def gpus_per_instance(self) -> int:
        """NVIDIA GPUs on each node of the group."""
        return NVIDIA_GPUS_PER_INSTANCE[self.instance_types[0]]


@dataclass(frozen=True)
class EksGpuNodeGroupProps:
    """Props for :class:`EksGpuNodeGroup`.

    name: node group name prefix (``<cluster>-gpu``).
    cluster: the cluster the nodes join.
    subnet_ids: private subnets to launch nodes in.
    settings: the group's shape (validated GPU instance types).
    volume_key: KMS key encrypting the nodes' root volumes.
    owner_tags: cost tags for launched instances and volumes.
    depends_on: resources that must exist before nodes join.
    """

    name: str
    cluster: EksCluster
    subnet_ids: Sequence[str]
    settings: EksGpuNodeGroupSettings
    volume_key: Any
    owner_tags: Mapping[str, str]
    depends_on: Sequence[Any] = ()


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
        require(
            isinstance(props.settings, EksGpuNodeGroupSettings),
            self.node.path,
            "settings",
            type(props.settings).__name__,
            "EksGpuNodeGroupSettings (validated NVIDIA GPU instance types)",
        )
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
                owner_tags=props.owner_tags,
                labels=self.labels,
                taints=(GPU_TAINT,),
                autoscaler_resources={GPU_RESOURCE: str(props.settings.gpus_per_instance)},
                depends_on=props.depends_on,
            ),
        )
        self.node_group = self.group.node_group
