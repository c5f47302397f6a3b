"""EKS for ML workloads: cluster, CPU and GPU node groups, add-ons, components, and the in-cluster providers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, ITerraformDependable, TerraformStack
from constructs import Construct
from constructs.core.bindings import helm, kubernetes
from constructs.core.context import PlatformContext
from constructs.core.refs import KmsKeyRef
from constructs.eks.addons import EksAddons, EksAddonsProps
from constructs.eks.cluster import EksCluster, EksClusterProps
from constructs.eks.components import EksClusterComponents, EksClusterComponentsProps
from constructs.eks.node_group import (
    NODE_TYPE_LABEL,
    EksGpuNodeGroup,
    EksGpuNodeGroupProps,
    EksNodeGroup,
    EksNodeGroupProps,
)
from constructs.eks.settings import EksClusterSettings

EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


@dataclass(frozen=True)
class EksPlatformProps:
    """Props for :class:`EksPlatform`.

    context: the environment; the cluster is named after its name prefix (which the network's subnet tags
      use), and its owner tags go on launched instances, their volumes and dynamically provisioned volumes.
    settings: the environment's EKS settings.
    vpc_id, vpc_cidr: the platform VPC.
    subnet_ids: private subnets, one per AZ, for the control plane and the nodes.
    data_key, secrets_key, logs_key: the platform's KMS keys (volumes, Kubernetes secrets, logs).
    """

    context: PlatformContext
    settings: EksClusterSettings
    vpc_id: str
    vpc_cidr: str
    subnet_ids: Sequence[str]
    data_key: KmsKeyRef
    secrets_key: KmsKeyRef
    logs_key: KmsKeyRef


class EksPlatform(Construct):
    """One environment's EKS cluster, ready for ML workloads.

    Order of creation: control plane and access -> node groups -> add-ons -> Helm components. The
    Kubernetes and Helm providers are configured in the stack from the cluster's endpoint and CA,
    authenticating with ``aws eks get-token`` (the AWS CLI must be on the deploying machine's PATH,
    and that machine must reach the API endpoint, which is private).

    With ``settings.in_cluster_components`` False the stack gets neither provider nor any Kubernetes
    or Helm resource: only the AWS side (every IRSA role included), which deploys from a machine
    outside the network. A later deploy with the default, from inside, adds the in-cluster part.
    """

    def __init__(self, scope: Construct, id: str, props: EksPlatformProps) -> None:
        super().__init__(scope, id)
        self.props = props
        s = props.settings
        name = props.context.name_prefix
        self.cluster = EksCluster(
            self,
            "cluster",
            EksClusterProps(
                name=name,
                settings=s,
                vpc_id=props.vpc_id,
                vpc_cidr=props.vpc_cidr,
                subnet_ids=props.subnet_ids,
                secrets_key=props.secrets_key,
                logs_key=props.logs_key,
                context=props.context,
            ),
        )
        self.kubernetes_provider: Any | None = None
        self.helm_provider: Any | None = None
        if s.in_cluster_components:
            self._configure_providers()

        self.cpu_nodes = EksNodeGroup(
            self,
            "cpu-nodes",
            EksNodeGroupProps(
                name=f"{name}-cpu",
                cluster=self.cluster,
                subnet_ids=props.subnet_ids,
                settings=s.cpu_node_group,
                ami_type="AL2023_x86_64_STANDARD",
                volume_key=props.data_key,
                labels=self.cpu_node_selector,
                depends_on=self.cluster.admin_access,
            ),
        )
        node_groups: list[ITerraformDependable] = [self.cpu_nodes.node_group]
        self.node_groups = node_groups
        self.gpu_nodes: EksGpuNodeGroup | None = None
        if s.gpu_node_group is not None:
            self.gpu_nodes = EksGpuNodeGroup(
                self,
                "gpu-nodes",
                EksGpuNodeGroupProps(
                    name=f"{name}-gpu",
                    cluster=self.cluster,
                    subnet_ids=props.subnet_ids,
                    settings=s.gpu_node_group,
                    volume_key=props.data_key,
                    depends_on=self.cluster.admin_access,
                ),
            )
            node_groups.append(self.gpu_nodes.node_group)

        self.addons = EksAddons(
            self,
            "addons",
            EksAddonsProps(
                cluster=self.cluster,
                volume_key=props.data_key,
                storage_reclaim_policy=s.storage_reclaim_policy,
                depends_on=node_groups,
                in_cluster_resources=s.in_cluster_components,
            ),
        )
        self.components = EksClusterComponents(
            self,
            "components",
            EksClusterComponentsProps(
                cluster=self.cluster,
                vpc_id=props.vpc_id,
                gpu_nodes=self.gpu_nodes is not None,
                depends_on=[*node_groups, *self.addons.addons.values()],
                in_cluster_resources=s.in_cluster_components,
            ),
        )

    @property
    def workload_dependencies(self) -> list[ITerraformDependable]:
        """What an in-cluster feature waits for: node groups, add-ons and the system components' releases."""
        return [*self.node_groups, *self.addons.addons.values(), *self.components.releases.values()]

    @property
    def cpu_node_selector(self) -> dict[str, str]:
        """The label selecting the CPU nodes, where system and platform pods run."""
        return {NODE_TYPE_LABEL: "cpu"}

    def _configure_providers(self) -> None:
        """Kubernetes and Helm providers of the stack, pointed at this cluster.

        They live in the stack scope under the ids ``kubernetes`` and ``helm`` (one default provider
        of each type per stack); other features installing charts into this cluster use them too, and
        add nothing in-cluster where they are None (``in_cluster_components`` off): Terraform would
        otherwise fall back to an empty provider configuration that does not point at this cluster.
        """
        stack = TerraformStack.of(self)
        host = self.cluster.endpoint
        ca_certificate = Fn.base64decode(self.cluster.certificate_authority_data)
        args = ["eks", "get-token", "--cluster-name", self.cluster.cluster.name, "--region", self.props.context.region]
        self.kubernetes_provider = kubernetes.provider.KubernetesProvider(
            stack,
            "kubernetes",
            host=host,
            cluster_ca_certificate=ca_certificate,
            exec=[kubernetes.provider.KubernetesProviderExec(api_version=EXEC_API_VERSION, command="aws", args=args)],
        )
        self.helm_provider = helm.provider.HelmProvider(
            stack,
            "helm",
            kubernetes=helm.provider.HelmProviderKubernetes(
                host=host,
                cluster_ca_certificate=ca_certificate,
                exec=helm.provider.HelmProviderKubernetesExec(api_version=EXEC_API_VERSION, command="aws", args=args),
            ),
        )
