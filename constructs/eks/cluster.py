"""The EKS control plane: encrypted secrets, audited API, private endpoint, access entries and IRSA's OIDC provider."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, ITerraformDependable, TerraformLocal
from constructs import Construct
from constructs.core.bindings import aws, kubernetes
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef
from constructs.eks.irsa import IrsaRole, IrsaRoleProps
from constructs.eks.releases import KubernetesRelease, synthesis_date
from constructs.eks.settings import EksClusterSettings

CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"
# Kubernetes' `edit` role, limited by the access scope to the namespaces named: pods, logs, exec, config maps,
# secrets, jobs; no roles, no quotas, nothing cluster-wide.
NAMESPACE_EDIT_POLICY = "AmazonEKSEditPolicy"
# Read access to every object, Secrets included (Kubernetes' view role leaves Secrets out).
ADMIN_VIEW_POLICY = "AmazonEKSAdminViewPolicy"
_CLUSTER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}")


@dataclass(frozen=True)
class EksClusterProps:
    """Props for :class:`EksCluster`.

    name: cluster name; the network tags its subnets ``kubernetes.io/cluster/<name>``, so they must match.
    settings: the environment's cluster settings.
    vpc_id, vpc_cidr: the platform VPC and its CIDR (the private endpoint is reachable from it).
    subnet_ids: private subnets for the control plane's network interfaces (two AZs or more).
    secrets_key: KMS key for envelope encryption of Kubernetes secrets.
    logs_key: KMS key for the control-plane log group.
    context: the environment (partition, region and account of the cluster's ARNs).
    """

    name: str
    settings: EksClusterSettings
    vpc_id: str
    vpc_cidr: str
    subnet_ids: Sequence[str]
    secrets_key: KmsKeyRef
    logs_key: KmsKeyRef
    context: PlatformContext


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
            bool(_CLUSTER_NAME.fullmatch(props.name)),
            where,
            "name",
            props.name,
            "1-100 letters, digits, '-' and '_', starting with a letter or digit",
        )
        require(len(props.subnet_ids) >= 2, where, "subnet_ids", props.subnet_ids, "subnets in at least two AZs")
        props.settings.require_supported_on(synthesis_date(), where)
        self.props = props
        self.name = props.name
        self.context = props.context
        self.settings = props.settings
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
            policy_arn=self.context.managed_policy_arn("AmazonEKSClusterPolicy"),
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
        self.log_group = encrypted_log_group(
            self,
            "log-group",
            name=f"/aws/eks/{props.name}/cluster",
            retention_days=s.log_retention_days,
            key=props.logs_key,
            protected=self.context.protected,
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
            # Replacing the cluster loses every workload, secret and volume claim in it.
            lifecycle=prevent_destroy(self.context.protected),
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
            admins.append(("deployer", self.context.deployer_arn))
        for key, principal in admins:
            self.admin_access.append(
                self._access(self, f"{key}-access", f"{key}-cluster-admin", principal, CLUSTER_ADMIN_POLICY)
            )
        for index, principal in enumerate(s.viewer_role_arns):
            self._access(self, f"viewer-{index}-access", f"viewer-{index}-view", principal, ADMIN_VIEW_POLICY)

    def add_namespace(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        labels: Mapping[str, str] | None = None,
        pod_security: str = "restricted",
        depends_on: Sequence[ITerraformDependable] = (),
    ) -> Any:
        """A namespace of this cluster, created in ``scope`` after the deploying principal's access and ``depends_on``.

        Its pods must meet the ``pod_security`` Pod Security Standard (``restricted`` or ``baseline``); anything
        short of ``restricted`` is still reported as a warning. ``labels`` come first, then the standard's.
        """
        require(
            pod_security in ("restricted", "baseline"),
            f"{self.node.path}/{id}",
            "pod_security",
            pod_security,
            "'restricted' or 'baseline'",
        )
        return kubernetes.namespace_v1.NamespaceV1(
            scope,
            id,
            metadata=kubernetes.namespace_v1.NamespaceV1Metadata(
                name=name,
                labels={
                    **(labels or {}),
                    "pod-security.kubernetes.io/enforce": pod_security,
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            ),
            depends_on=[*self.admin_access, *depends_on],
        )

    def grant_namespace_access(
        self, scope: Construct, id: str, *, principal_arn: str, namespaces: Sequence[str], groups: Sequence[str]
    ) -> Any:
        """Let the IAM role ``principal_arn`` work in ``namespaces`` only: Kubernetes' ``edit`` there, through EKS.

        An access entry maps the role into the cluster as a member of the Kubernetes ``groups`` (for RoleBindings
        that add what ``edit`` lacks, such as creating custom resources), and the ``AmazonEKSEditPolicy`` access
        policy applies to exactly ``namespaces``. Returns the policy association. A role has one access entry per
        cluster: name all of its namespaces and groups in one call, and never a role that is also an admin here.
        """
        where = f"{self.node.path}/{id}"
        require(bool(namespaces), where, "namespaces", namespaces, "at least one namespace")
        return self._access(
            scope,
            f"{id}-entry",
            f"{id}-edit",
            principal_arn,
            NAMESPACE_EDIT_POLICY,
            namespaces=namespaces,
            groups=groups,
        )

    def _access(
        self,
        scope: Construct,
        entry_id: str,
        association_id: str,
        principal_arn: str,
        policy: str,
        *,
        namespaces: Sequence[str] = (),
        groups: Sequence[str] = (),
    ) -> Any:
        """An access entry for ``principal_arn`` and its association with the EKS access ``policy``.

        Scoped to ``namespaces``, or to the whole cluster without any; ``groups`` are the Kubernetes groups the
        principal is mapped into.
        """
        entry = aws.eks_access_entry.EksAccessEntry(
            scope,
            entry_id,
            cluster_name=self.cluster.name,
            principal_arn=principal_arn,
            type="STANDARD",
            kubernetes_groups=list(groups) or None,
        )
        association = aws.eks_access_policy_association
        return association.EksAccessPolicyAssociation(
            scope,
            association_id,
            cluster_name=self.cluster.name,
            principal_arn=entry.principal_arn,
            policy_arn=f"arn:{self.context.partition}:eks::aws:cluster-access-policy/{policy}",
            access_scope=association.EksAccessPolicyAssociationAccessScope(
                type="namespace" if namespaces else "cluster", namespaces=list(namespaces) or None
            ),
        )

    @property
    def endpoint(self) -> str:
        """HTTPS URL of the Kubernetes API."""
        return self.cluster.endpoint

    @property
    def certificate_authority_data(self) -> str:
        """Base64-encoded CA certificate of the API server."""
        return self.cluster.certificate_authority.get(0).data

    @property
    def node_security_group_id(self) -> str:
        """The cluster security group EKS creates and attaches to managed nodes, so to every pod on their network.

        A database or endpoint that only this cluster's workloads may reach allows this group as its source.
        """
        return self.cluster.vpc_config.cluster_security_group_id

    @property
    def release(self) -> KubernetesRelease:
        """The add-on and cluster-autoscaler versions pinned for the cluster's Kubernetes minor."""
        return self.settings.release

    def add_service_account(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        description: str,
        namespace: str,
        service_account_name: str,
        statements: tuple[PolicyStatement, ...] = (),
        managed_policy_arns: tuple[str, ...] = (),
        create_service_account: bool = True,
        kubernetes_depends_on: Sequence[ITerraformDependable] = (),
    ) -> IrsaRole:
        """An IAM role for one Kubernetes service account of this cluster (IRSA), created in ``scope``.

        The role trusts this cluster's OIDC provider for exactly ``namespace/service_account_name``; with
        ``create_service_account`` the annotated service account is created too, after the deploying principal's
        cluster access and ``kubernetes_depends_on`` (its namespace) exist.
        """
        return IrsaRole(
            scope,
            id,
            IrsaRoleProps(
                role_name=role_name,
                description=description,
                namespace=namespace,
                service_account_name=service_account_name,
                oidc_provider_arn=self.oidc_provider.arn,
                oidc_issuer_host=self.oidc_issuer_host,
                statements=statements,
                managed_policy_arns=managed_policy_arns,
                create_service_account=create_service_account,
                kubernetes_depends_on=[*self.admin_access, *kubernetes_depends_on],
            ),
        )
