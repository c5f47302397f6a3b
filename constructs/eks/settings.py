"""Per-environment settings of the EKS cluster and its node groups."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from constructs.core.errors import FieldError, require, require_field
from constructs.core.formats import (
    Cron,
    IamRoleArn,
    LogRetentionDays,
    TimeZone,
    private_cidr_block,
    public_cidr_block,
)
from constructs.core.instance_types import NVIDIA_GPU_INSTANCES, Ec2InstanceType, NvidiaGpuInstanceType, is_accelerated
from constructs.core.settings import Settings, choice
from constructs.eks.releases import (
    DEFAULT_KUBERNETES_VERSION,
    KUBERNETES_RELEASES,
    KubernetesRelease,
    supported_versions,
)
from pydantic import Field, model_validator

LogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
REQUIRED_LOG_TYPES: tuple[LogType, ...] = ("api", "audit", "authenticator")
# The public endpoint answers the internet: a source range is an egress address of the operator's own (an
# office, a VPN, a CI runner's NAT), at most a /24. Wider public ranges are shared (an ISP's customers, every
# tenant of a cloud's address pool); private and shared space never reaches a public endpoint at all.
PUBLIC_ACCESS_CIDRS_ALLOWED = (
    "public IPv4 CIDR blocks of at most 256 addresses (prefix /24 to /32) such as '203.0.113.0/24' (never "
    "0.0.0.0/0; no private, shared 100.64.0.0/10, loopback, link-local, multicast or reserved space; the "
    "documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are accepted for examples)"
)
PRIVATE_ACCESS_CIDRS_ALLOWED = (
    "private IPv4 CIDR blocks such as '10.99.0.0/16' inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 "
    "(RFC 1918) or 100.64.0.0/10 (RFC 6598) (never 0.0.0.0/0; prefix /8 or longer)"
)


PublicAccessCidr = Annotated[str, public_cidr_block(24, 32, PUBLIC_ACCESS_CIDRS_ALLOWED)]
PrivateAccessCidr = Annotated[str, private_cidr_block(8, 32, PRIVATE_ACCESS_CIDRS_ALLOWED)]


class EksNodeGroupSettings(Settings):
    """Per-environment shape of a managed node group (the CPU group for serving and system pods).

    instance_types: EC2 instance types of similar size (cluster-autoscaler assumes one shape per group).
    min_size, max_size: bounds cluster-autoscaler scales within.
    desired_size: size at creation; afterwards cluster-autoscaler owns it (Terraform ignores drift).
    capacity_type: ``"ON_DEMAND"`` or ``"SPOT"`` (up to 90% cheaper, can be reclaimed at 2 minutes' notice).
    disk_size_gib: root volume size (gp3, encrypted with the data key), 20-2000 GiB.
    """

    instance_types: Annotated[tuple[Ec2InstanceType, ...], Field(min_length=1)] = ("m6i.xlarge",)
    min_size: Annotated[int, Field(ge=0, le=100)] = 2
    max_size: Annotated[int, Field(ge=1, le=100)] = 6
    desired_size: Annotated[int, Field(ge=0, le=100)] = 2
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    disk_size_gib: Annotated[int, Field(ge=20, le=2000)] = 50

    @model_validator(mode="after")
    def _sizes_fit(self) -> Self:
        require_field(
            self.min_size <= self.max_size, "min_size", self.min_size, f"a value <= max_size ({self.max_size})"
        )
        require_field(
            self.min_size <= self.desired_size <= self.max_size,
            "desired_size",
            self.desired_size,
            f"a value from min_size ({self.min_size}) to max_size ({self.max_size})",
        )
        return self


class OffHours(Settings):
    """When a group's GPU capacity is switched off outside working hours.

    stop_cron: when it stops (5-field cron in ``time_zone``), such as ``'0 20 * * 1-5'`` (weekday evenings).
    start_cron: when it may run again, such as ``'0 7 * * 1-5'`` (weekday mornings): Friday evening's stop then
      lasts the weekend.
    time_zone: IANA time zone of both, so the hours follow daylight saving time.
    """

    stop_cron: Cron
    start_cron: Cron
    time_zone: TimeZone = "UTC"

    @model_validator(mode="after")
    def _stop_differs_from_start(self) -> Self:
        require_field(
            self.stop_cron != self.start_cron,
            "start_cron",
            self.start_cron,
            f"a schedule other than stop_cron ({self.stop_cron!r}): both at once leave the capacity undefined",
        )
        return self


class EksGpuNodeGroupSettings(EksNodeGroupSettings):
    """Per-environment shape of the GPU node group.

    Same fields as :class:`EksNodeGroupSettings`, with GPU defaults: g5 instances with one NVIDIA A10G each,
    scaled from zero (``min_size`` 0) so an idle platform pays for no GPU, on Spot unless the environment asks
    for On-Demand. Every instance type must be an NVIDIA x86_64 type, all with the same number of GPUs (one
    node shape per group: cluster-autoscaler builds one node template per group).

    off_hours: a nightly and weekend stop: from ``stop_cron`` to ``start_cron`` the group's Auto Scaling group
      holds no node (its maximum is 0, so cluster-autoscaler cannot start one; running GPU pods are drained and
      evicted at the stop), then its bounds return to ``min_size``/``max_size``. None: GPUs whenever pods ask.
    """

    instance_types: Annotated[tuple[NvidiaGpuInstanceType, ...], Field(min_length=1)] = ("g5.xlarge", "g5.2xlarge")
    min_size: Annotated[int, Field(ge=0, le=100)] = 0
    max_size: Annotated[int, Field(ge=1, le=100)] = 4
    desired_size: Annotated[int, Field(ge=0, le=100)] = 0
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "SPOT"
    disk_size_gib: Annotated[int, Field(ge=20, le=2000)] = 100
    off_hours: OffHours | None = None

    @model_validator(mode="after")
    def _one_node_shape(self) -> Self:
        require_field(
            len({NVIDIA_GPU_INSTANCES[t].gpus for t in self.instance_types}) == 1,
            "instance_types",
            self.instance_types,
            "instance types with the same number of GPUs (one node shape per group)",
        )
        return self

    @property
    def gpus_per_instance(self) -> int:
        """NVIDIA GPUs on each node of the group."""
        return NVIDIA_GPU_INSTANCES[self.instance_types[0]].gpus

    @property
    def max_gpus(self) -> int:
        """GPUs the group holds at its maximum size: more than this can never run at once."""
        return self.max_size * self.gpus_per_instance


class EksClusterSettings(Settings):
    """Per-environment settings of the EKS cluster and its node groups.

    kubernetes_version: a key of ``KUBERNETES_RELEASES``, which pins the matching add-on versions. The cluster
      checks it against the EKS calendar when it is synthesized (see :meth:`require_supported_on`), not here:
      the matrix is validated whenever it is loaded, and a value that expires on a date must still be
      correctable with an override on that date.
    public_access_cidrs: source ranges allowed to reach a public API endpoint. Empty (the default) means no
      public endpoint at all; the private endpoint is always on. Listing public CIDRs of at most a /24 turns
      the public endpoint on for exactly those, where the matrix allows it.
    private_access_cidrs: private networks (RFC 1918 or RFC 6598) outside the VPC (VPN, peered CI) that may reach
      the private endpoint on 443, in addition to the VPC itself.
    log_types: control-plane logs sent to CloudWatch; at least api, audit and authenticator.
    log_retention_days: retention of the control-plane log group (a CloudWatch Logs retention value).
    admin_role_arns: IAM roles given cluster-admin through EKS access entries.
    viewer_role_arns: IAM roles that may read every Kubernetes object, Secrets included, and change nothing
      (``AmazonEKSAdminViewPolicy``): the GitOps plan role, whose plans refresh the Helm releases (Helm keeps a
      release's state in Secrets). Not also an admin: a role has one access entry per cluster.
    deployer_admin_access: give the principal that runs ``cdktf deploy`` cluster-admin through an access entry
      Terraform manages (needed to install the in-cluster components in the same run); turn off if that
      principal's role is already listed in ``admin_role_arns``.
    in_cluster_components: manage what lives inside the cluster (the Kubernetes and Helm providers, the default
      StorageClass, the IRSA service accounts and the Helm releases). Those resources are created through the
      cluster's API endpoint, which is private: only a machine that reaches it can apply them. False
      synthesizes only the AWS side (control plane, access entries, OIDC provider, node groups, EKS add-ons,
      every IRSA role), which applies from anywhere: the first deploy of an environment, before its VPC exists
      (docs/eks.md, "First deploy and teardown"). Never switch it off while the state still holds in-cluster
      resources: Terraform would plan their deletion without the cluster's provider configuration.
    support_type: ``"STANDARD"`` (EKS upgrades the control plane when standard support ends; no
      extended-support fee) or ``"EXTENDED"`` (stay on the version, at six times the hourly price).
    storage_reclaim_policy: what happens to an EBS volume when its claim is deleted (``Retain`` or ``Delete``).
    cpu_node_group: the On-Demand/Spot CPU group for system and serving pods (at least one node).
    gpu_node_group: the GPU group, or None where the environment has no GPUs.
    """

    kubernetes_version: Annotated[str, choice(KUBERNETES_RELEASES)] = DEFAULT_KUBERNETES_VERSION
    public_access_cidrs: tuple[PublicAccessCidr, ...] = ()
    private_access_cidrs: tuple[PrivateAccessCidr, ...] = ()
    log_types: tuple[LogType, ...] = REQUIRED_LOG_TYPES
    log_retention_days: LogRetentionDays = 90
    admin_role_arns: tuple[IamRoleArn, ...] = ()
    viewer_role_arns: tuple[IamRoleArn, ...] = ()
    deployer_admin_access: bool = True
    in_cluster_components: bool = True
    support_type: Literal["STANDARD", "EXTENDED"] = "STANDARD"
    storage_reclaim_policy: Literal["Retain", "Delete"] = "Retain"
    cpu_node_group: EksNodeGroupSettings = Field(default_factory=EksNodeGroupSettings)
    gpu_node_group: EksGpuNodeGroupSettings | None = None

    @model_validator(mode="after")
    def _access_and_logs(self) -> Self:
        missing = [t for t in REQUIRED_LOG_TYPES if t not in self.log_types]
        require_field(not missing, "log_types", self.log_types, f"a list that includes {REQUIRED_LOG_TYPES}")
        require_field(
            self.deployer_admin_access or bool(self.admin_role_arns),
            "deployer_admin_access",
            self.deployer_admin_access,
            "True, or False with admin_role_arns listing the deploying role (it installs in-cluster components)",
        )
        both = [arn for arn in self.viewer_role_arns if arn in self.admin_role_arns]
        require_field(
            not both,
            "viewer_role_arns",
            self.viewer_role_arns,
            "roles that are not in admin_role_arns (a role has one access entry per cluster; admins already read all)",
        )
        return self

    @model_validator(mode="after")
    def _cpu_group_runs_the_system(self) -> Self:
        group = self.cpu_node_group
        if isinstance(group, EksGpuNodeGroupSettings):
            raise FieldError("cpu_node_group", group, "an EksNodeGroupSettings (GPU nodes belong in gpu_node_group)")
        # CoreDNS, the autoscaler and the load balancer controller run there: it never scales to zero.
        require_field(group.min_size >= 1, "cpu_node_group.min_size", group.min_size, "a whole number from 1 to 100")
        for instance_type in group.instance_types:
            require_field(
                not is_accelerated(instance_type),
                "cpu_node_group.instance_types",
                instance_type,
                "non-GPU instance types (GPU nodes belong in gpu_node_group, behind its taint)",
            )
        return self

    @property
    def endpoint_public_access(self) -> bool:
        """Whether the API endpoint is also public (only for ``public_access_cidrs``)."""
        return bool(self.public_access_cidrs)

    @property
    def release(self) -> KubernetesRelease:
        """The add-on and autoscaler versions pinned for ``kubernetes_version``."""
        return KUBERNETES_RELEASES[self.kubernetes_version]

    def require_supported_on(self, day: date, where: str) -> None:
        """Reject a ``kubernetes_version`` EKS no longer runs on ``day`` under ``support_type``.

        When standard support ends EKS upgrades a ``STANDARD`` cluster by itself (and any cluster when extended
        support ends); from then on every plan would try to take it back a minor version, which EKS refuses.
        Failing synthesis first says which versions are still possible.
        """
        allowed = supported_versions(day, self.support_type)
        if allowed:
            expected = f"a version EKS supports with support_type {self.support_type!r} on {day}: {allowed}"
            if self.support_type == "STANDARD":
                expected += " (or support_type 'EXTENDED', at the extended-support price)"
        else:
            expected = (
                f"a version in EKS {self.support_type.lower()} support on {day}; none in KUBERNETES_RELEASES is,"
                " so add the next Kubernetes minor (docs/eks.md, Upgrades)"
            )
        require(self.kubernetes_version in allowed, where, "kubernetes_version", self.kubernetes_version, expected)
