"""The EKS control plane: encrypted secrets, audited API, private endpoint, access entries and IRSA's OIDC provider."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from cdktf import Fn, TerraformLocal
from constructs import Construct
from constructs.eks_gpu_node_group import EksGpuNodeGroupSettings
from constructs.eks_node_group import EksNodeGroupSettings
from constructs.iam_policy import PolicyStatement, grant, service_role
from constructs.platform_network import LOG_RETENTION_DAYS
from constructs.provider_bindings import aws
from constructs.validation import (
    ConfigurationError,
    is_gpu_instance_type,
    require,
    require_field_types,
    require_int_range,
    require_one_of,
)


@dataclass(frozen=True)
class KubernetesRelease:
    """Versions pinned together for one Kubernetes minor version, and that minor's EKS support window.

    EKS add-on versions are builds EKS offers for that minor (``aws eks describe-addon-versions
    --kubernetes-version <v> --addon-name <name>`` lists them; the EKS user guide tables show the
    latest per minor). cluster-autoscaler's minor must equal the cluster's. The dates are the EKS
    release calendar's (``aws eks describe-cluster-versions``): standard support ends 14 months after
    EKS releases a minor, extended support 12 months later.
    """

    vpc_cni: str
    coredns: str
    kube_proxy: str
    ebs_csi_driver: str
    cluster_autoscaler_image: str
    end_of_standard_support: date
    end_of_extended_support: date


# The minors in EKS standard support when the table was last reviewed (2026-11-28): 1.35 is the
# one-step upgrade source and the fallback for a workload that breaks on 1.36; older minors could only
# run at the extended-support price. Adding a minor: docs/eks.md ("Upgrades") says where each value
# comes from.
KUBERNETES_RELEASES: dict[str, KubernetesRelease] = {
    "1.35": KubernetesRelease(
        vpc_cni="v1.21.1-eksbuild.7",
        coredns="v1.13.2-eksbuild.4",
        kube_proxy="v1.35.3-eksbuild.2",
        ebs_csi_driver="v1.66.0-eksbuild.1",
        cluster_autoscaler_image="v1.35.2",
        end_of_standard_support=date(2027, 3, 27),
        end_of_extended_support=date(2028, 3, 27),
    ),
    "1.36": KubernetesRelease(
        vpc_cni="v1.22.4-eksbuild.3",
        coredns="v1.14.3-eksbuild.23",
        kube_proxy="v1.36.0-eksbuild.25",
        ebs_csi_driver="v1.66.0-eksbuild.1",
        cluster_autoscaler_image="v1.36.1",
        end_of_standard_support=date(2027, 8, 2),
        end_of_extended_support=date(2028, 8, 2),
    ),
}
DEFAULT_KUBERNETES_VERSION = "1.36"

CONTROL_PLANE_LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
REQUIRED_LOG_TYPES = ("api", "audit", "authenticator")
SUPPORT_TYPES = ("STANDARD", "EXTENDED")
RECLAIM_POLICIES = ("Retain", "Delete")
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
_ROLE_ARN = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$")


def _require_cidrs(where: str, field: str, cidrs: Any, *, allow_empty: bool) -> None:
    require(isinstance(cidrs, tuple), where, field, cidrs, "a tuple of IPv4 CIDR blocks")
    if not allow_empty:
        require(len(cidrs) > 0, where, field, cidrs, "at least one IPv4 CIDR block")
    for cidr in cidrs:
        allowed = "specific IPv4 CIDR blocks such as '203.0.113.0/24' (never 0.0.0.0/0; prefix /8 or longer)"
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except (ValueError, TypeError):
            raise ConfigurationError(where, field, cidr, allowed) from None
        require(network.prefixlen >= 8, where, field, cidr, allowed)


def synthesis_date() -> date:
    """Today in UTC: the day the EKS support windows are checked against when a cluster is synthesized."""
    return datetime.now(UTC).date()


def supported_versions(day: date, support_type: str) -> tuple[str, ...]:
    """The minors of :data:`KUBERNETES_RELEASES` EKS still runs on ``day`` under ``support_type``.

    ``STANDARD``: before the end of standard support; ``EXTENDED``: before the end of extended support.
    """
    return tuple(
        version
        for version, release in KUBERNETES_RELEASES.items()
        if day < (release.end_of_standard_support if support_type == "STANDARD" else release.end_of_extended_support)
    )


@dataclass(frozen=True)
class EksClusterSettings:
    """Per-environment settings of the EKS cluster and its node groups.

    kubernetes_version: a key of :data:`KUBERNETES_RELEASES`, which pins the matching add-on versions.
      The cluster checks it against the EKS calendar when it is synthesized (see
      :meth:`require_supported_on`), not here: settings are built when the matrix is imported, and a
      value that expires on a date must still be correctable with an override on that date.
    public_access_cidrs: source ranges allowed to reach a public API endpoint. Empty (the default)
      means no public endpoint at all; the private endpoint is always on. Listing CIDRs (never
      0.0.0.0/0) turns the public endpoint on for exactly those, where the matrix allows it.
    private_access_cidrs: networks outside the VPC (VPN, peered CI) that may reach the private
      endpoint on 443, in addition to the VPC itself.
    log_types: control-plane logs sent to CloudWatch; at least api, audit and authenticator.
    log_retention_days: retention of the control-plane log group (a CloudWatch Logs retention value).
    admin_role_arns: IAM roles given cluster-admin through EKS access entries.
    deployer_admin_access: give the principal that runs ``cdktf deploy`` cluster-admin through an
      access entry Terraform manages (needed to install the in-cluster components in the same run);
      turn off if that principal's role is already listed in ``admin_role_arns``.
    in_cluster_components: manage what lives inside the cluster (the Kubernetes and Helm providers,
      the default StorageClass, the IRSA service accounts and the Helm releases). Those resources are
      created through the cluster's API endpoint, which is private: only a machine that reaches it
      can apply them. False synthesizes only the AWS side (control plane, access entries, OIDC
      provider, node groups, EKS add-ons, every IRSA role), which applies from anywhere: the first
      deploy of an environment, before its VPC exists (docs/eks.md, "First deploy and teardown").
      Never switch it off while the state still holds in-cluster resources: Terraform would plan
      their deletion without the cluster's provider configuration.
    support_type: ``"STANDARD"`` (EKS upgrades the control plane when standard support ends; no
      extended-support fee) or ``"EXTENDED"`` (stay on the version, at six times the hourly price).
    storage_reclaim_policy: what happens to an EBS volume when its claim is deleted (``Retain`` or ``Delete``).
    cpu_node_group: the On-Demand/Spot CPU group for system and serving pods (at least one node).
    gpu_node_group: the GPU group, or None where the environment has no GPUs.
    """

    kubernetes_version: str = DEFAULT_KUBERNETES_VERSION
    public_access_cidrs: tuple[str, ...] = ()
    private_access_cidrs: tuple[str, ...] = ()
    log_types: tuple[str, ...] = REQUIRED_LOG_TYPES
    log_retention_days: int = 90
    admin_role_arns: tuple[str, ...] = ()
    deployer_admin_access: bool = True
    in_cluster_components: bool = True
    support_type: str = "STANDARD"
    storage_reclaim_policy: str = "Retain"
    cpu_node_group: EksNodeGroupSettings = field(default_factory=EksNodeGroupSettings)
    gpu_node_group: EksGpuNodeGroupSettings | None = None

    def __post_init__(self) -> None:
        where = "EksClusterSettings"
        require_field_types(self, where)
        require_one_of(where, "kubernetes_version", self.kubernetes_version, tuple(KUBERNETES_RELEASES))
        _require_cidrs(where, "public_access_cidrs", self.public_access_cidrs, allow_empty=True)
        _require_cidrs(where, "private_access_cidrs", self.private_access_cidrs, allow_empty=True)
        require(isinstance(self.log_types, tuple), where, "log_types", self.log_types, "a tuple")
        for log_type in self.log_types:
            require_one_of(where, "log_types", log_type, CONTROL_PLANE_LOG_TYPES)
        missing = [t for t in REQUIRED_LOG_TYPES if t not in self.log_types]
        require(not missing, where, "log_types", self.log_types, f"a tuple that includes {REQUIRED_LOG_TYPES}")
        require_one_of(where, "log_retention_days", self.log_retention_days, LOG_RETENTION_DAYS)
        require(isinstance(self.admin_role_arns, tuple), where, "admin_role_arns", self.admin_role_arns, "a tuple")
        for arn in self.admin_role_arns:
            require(
                isinstance(arn, str) and bool(_ROLE_ARN.match(arn)),
                where,
                "admin_role_arns",
                arn,
                "IAM role ARNs such as 'arn:aws:iam::123456789012:role/PlatformAdmins'",
            )
        require(
            len(set(self.admin_role_arns)) == len(self.admin_role_arns),
            where,
            "admin_role_arns",
            self.admin_role_arns,
            "distinct ARNs (one access entry per principal)",
        )
        require(
            isinstance(self.deployer_admin_access, bool) and (self.deployer_admin_access or bool(self.admin_role_arns)),
            where,
            "deployer_admin_access",
            self.deployer_admin_access,
            "True, or False with admin_role_arns listing the deploying role (it installs in-cluster components)",
        )
        require_one_of(where, "support_type", self.support_type, SUPPORT_TYPES)
        require_one_of(where, "storage_reclaim_policy", self.storage_reclaim_policy, RECLAIM_POLICIES)
        require(
            isinstance(self.cpu_node_group, EksNodeGroupSettings)
            and not isinstance(self.cpu_node_group, EksGpuNodeGroupSettings),
            where,
            "cpu_node_group",
            self.cpu_node_group,
            "an EksNodeGroupSettings",
        )
        # CoreDNS, the autoscaler and the load balancer controller run there: it never scales to zero.
        require_int_range(where, "cpu_node_group.min_size", self.cpu_node_group.min_size, 1, 100)
        for instance_type in self.cpu_node_group.instance_types:
            require(
                not is_gpu_instance_type(instance_type),
                where,
                "cpu_node_group.instance_types",
                instance_type,
                "non-GPU instance types (GPU nodes belong in gpu_node_group, behind its taint)",
            )
        require(
            self.gpu_node_group is None or isinstance(self.gpu_node_group, EksGpuNodeGroupSettings),
            where,
            "gpu_node_group",
            self.gpu_node_group,
            "None or an EksGpuNodeGroupSettings",
        )

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

        When standard support ends EKS upgrades a ``STANDARD`` cluster by itself (and any cluster
        when extended support ends); from then on every plan would try to take it back a minor
        version, which EKS refuses. Failing synthesis first says which versions are still possible.
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


@dataclass(frozen=True)
class EksClusterProps:
    """Props for :class:`EksCluster`.

    name: cluster name; the network tags its subnets ``kubernetes.io/cluster/<name>``, so they must match.
    settings: the environment's cluster settings.
    vpc_id, vpc_cidr: the platform VPC and its CIDR (the private endpoint is reachable from it).
    subnet_ids: private subnets for the control plane's network interfaces (two AZs or more).
    secrets_key: KMS key for envelope encryption of Kubernetes secrets.
    logs_key: KMS key for the control-plane log group.
    partition: AWS partition, usually a data-source token.
    """

    name: str
    settings: EksClusterSettings
    vpc_id: str
    vpc_cidr: str
    subnet_ids: Sequence[str]
    secrets_key: Any
    logs_key: Any
    partition: str = "aws"


class EksCluster(Construct):
    """An EKS control plane with the security baseline of terraform-aws-modules' eks module.

    - Kubernetes secrets envelope-encrypted with the platform's ``eks_secrets`` key.
    - Control-plane logs (at least api, audit, authenticator) in ``/aws/eks/<name>/cluster``, created
      here so its KMS key and retention are ours (EKS would otherwise create it unencrypted, kept forever).
    - Private endpoint always; a public one only with explicit source CIDRs.
    - An extra security group admits HTTPS to the API from the VPC and listed private networks only;
      EKS's own cluster security group (nodes and control plane) is left as EKS manages it.
    - Access entries (``API`` authentication mode, no aws-auth ConfigMap): cluster-admin for the
      listed roles and, through a Terraform-managed entry, for the deploying principal. The
      creator's implicit bootstrap entry is off, so every admin is visible in code and state.
    - An IAM OIDC provider for IRSA; :attr:`oidc_issuer_host` is the issuer without ``https://``,
      the form IAM uses in trust policy condition keys.
    - The Kubernetes version must still be in EKS support on the day of synthesis (standard support
      for ``support_type`` ``STANDARD``), so a cluster EKS would upgrade by itself is never planned.
    """

    def __init__(self, scope: Construct, id: str, props: EksClusterProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            isinstance(props.name, str) and bool(_CLUSTER_NAME.match(props.name)),
            where,
            "name",
            props.name,
            "1-100 letters, digits, '-' and '_', starting with a letter or digit",
        )
        require(len(props.subnet_ids) >= 2, where, "subnet_ids", props.subnet_ids, "subnets in at least two AZs")
        props.settings.require_supported_on(synthesis_date(), where)
        self.props = props
        self.name = props.name
        s = props.settings

        self.role = service_role(
            self,
            "cluster-role",
            name=f"{props.name}-eks-cluster",
            services=("eks.amazonaws.com",),
            description=f"Control plane of the EKS cluster {props.name}",
        )
        cluster_policy = aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self,
            "cluster-policy",
            role=self.role.name,
            policy_arn=f"arn:{props.partition}:iam::aws:policy/AmazonEKSClusterPolicy",
        )
        secrets_grant = grant(
            self,
            "encrypt-secrets",
            self.role,
            PolicyStatement(
                sid="EnvelopeEncryptSecrets",
                actions=("kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"),
                resources=(props.secrets_key.arn,),
            ),
        )
        self.log_group = aws.cloudwatch_log_group.CloudwatchLogGroup(
            self,
            "log-group",
            name=f"/aws/eks/{props.name}/cluster",
            retention_in_days=s.log_retention_days,
            kms_key_id=props.logs_key.arn,
        )

        self.api_security_group = aws.security_group.SecurityGroup(
            self,
            "api-sg",
            name=f"{props.name}-eks-api",
            description=f"HTTPS to the private API endpoint of EKS cluster {props.name}",
            vpc_id=props.vpc_id,
            tags={"Name": f"{props.name}-eks-api"},
        )
        for index, cidr in enumerate((props.vpc_cidr, *s.private_access_cidrs)):
            aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
                self,
                f"api-https-{index}",
                security_group_id=self.api_security_group.id,
                description="Kubernetes API over HTTPS" + (" from the VPC" if index == 0 else ""),
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=cidr,
            )

        self.cluster = aws.eks_cluster.EksCluster(
            self,
            "cluster",
            name=props.name,
            version=s.kubernetes_version,
            role_arn=self.role.arn,
            vpc_config=aws.eks_cluster.EksClusterVpcConfig(
                subnet_ids=list(props.subnet_ids),
                security_group_ids=[self.api_security_group.id],
                endpoint_private_access=True,
                endpoint_public_access=s.endpoint_public_access,
                public_access_cidrs=list(s.public_access_cidrs) if s.endpoint_public_access else None,
            ),
            access_config=aws.eks_cluster.EksClusterAccessConfig(
                authentication_mode="API",
                bootstrap_cluster_creator_admin_permissions=False,
            ),
            # EKS installs its default vpc-cni, kube-proxy and CoreDNS so the first nodes become
            # Ready; the EKS add-on resources then take them over (resolve_conflicts_on_create).
            bootstrap_self_managed_addons=True,
            encryption_config=aws.eks_cluster.EksClusterEncryptionConfig(
                resources=["secrets"],
                provider=aws.eks_cluster.EksClusterEncryptionConfigProvider(key_arn=props.secrets_key.arn),
            ),
            enabled_cluster_log_types=list(s.log_types),
            upgrade_policy=aws.eks_cluster.EksClusterUpgradePolicy(support_type=s.support_type),
            depends_on=[self.log_group, cluster_policy, secrets_grant],
        )
        self.oidc_issuer_url: str = self.cluster.identity.get(0).oidc.get(0).issuer
        # A local keeps the expression (with its quoted arguments) out of the trust policies' JSON:
        # they reference ${local.<name>} and stay parseable by the synthesis checks.
        self.oidc_issuer_host: str = TerraformLocal(
            self, "oidc-issuer-host", Fn.replace(self.oidc_issuer_url, "https://", "")
        ).as_string
        # IAM verifies EKS issuers against its own trusted CA store; provider 5.x computes the
        # thumbprint when none is given, so no TLS lookup is needed at synth or plan time.
        self.oidc_provider = aws.iam_openid_connect_provider.IamOpenidConnectProvider(
            self,
            "oidc-provider",
            url=self.oidc_issuer_url,
            client_id_list=["sts.amazonaws.com"],
            tags={"Name": f"{props.name}-irsa"},
        )
        self.admin_access: list[Any] = []
        admins: list[tuple[str, str]] = [(f"admin-{i}", arn) for i, arn in enumerate(s.admin_role_arns)]
        if s.deployer_admin_access:
            caller = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "deployer")
            # An assumed-role session ARN is not a valid access entry principal; its role's ARN is.
            session = aws.data_aws_iam_session_context.DataAwsIamSessionContext(self, "deployer-role", arn=caller.arn)
            admins.append(("deployer", session.issuer_arn))
        for key, principal in admins:
            entry = aws.eks_access_entry.EksAccessEntry(
                self, f"{key}-access", cluster_name=self.cluster.name, principal_arn=principal, type="STANDARD"
            )
            self.admin_access.append(
                aws.eks_access_policy_association.EksAccessPolicyAssociation(
                    self,
                    f"{key}-cluster-admin",
                    cluster_name=self.cluster.name,
                    principal_arn=entry.principal_arn,
                    policy_arn=f"arn:{props.partition}:eks::aws:cluster-access-policy/{CLUSTER_ADMIN_POLICY}",
                    access_scope=aws.eks_access_policy_association.EksAccessPolicyAssociationAccessScope(
                        type="cluster"
                    ),
                )
            )

    @property
    def endpoint(self) -> str:
        """HTTPS URL of the Kubernetes API."""
        return self.cluster.endpoint

    @property
    def certificate_authority_data(self) -> str:
        """Base64-encoded CA certificate of the API server."""
        return self.cluster.certificate_authority.get(0).data
