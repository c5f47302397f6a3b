"""In-cluster system components installed with Helm: autoscaling, load balancing, metrics and GPU support."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import helm
from constructs.core.context import PlatformContext
from constructs.core.errors import ConfigurationError
from constructs.core.iam import PolicyStatement
from constructs.eks.cluster import EksCluster
from constructs.eks.node_group import GPU_PRESENT_LABEL, GPU_RESOURCE

SYSTEM_NAMESPACE = "kube-system"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"
LOAD_BALANCER_CONTROLLER_POLICY = (
    Path(__file__).resolve().parent.parent.parent / "assets" / "aws_load_balancer_controller_iam_policy.json"
)
_POLICY_MARKERS = ("partition", "region", "account_id", "cluster_name", "vpc_arn")


@dataclass(frozen=True)
class HelmChart:
    """A Helm chart pinned to one version of one repository."""

    repository: str
    chart: str
    version: str


# Charts that support every minor of KUBERNETES_RELEASES (1.35, 1.36): metrics-server 0.8 supports
# Kubernetes 1.31+, the load balancer controller 2.5+ supports 1.22+, the device plugin chart
# declares >= 1.10. The autoscaler chart's ClusterRole must cover what its image watches: 9.59.0
# grants everything the 1.36 image's reference manifest does (and 9.46, the 1.32 chart, does not);
# the image tag itself comes from the release table, so the chart is not tied to one minor.
METRICS_SERVER_CHART = HelmChart("https://kubernetes-sigs.github.io/metrics-server/", "metrics-server", "3.13.0")
CLUSTER_AUTOSCALER_CHART = HelmChart("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.59.0")
LOAD_BALANCER_CONTROLLER_CHART = HelmChart("https://aws.github.io/eks-charts", "aws-load-balancer-controller", "1.14.1")
NVIDIA_DEVICE_PLUGIN_CHART = HelmChart("https://nvidia.github.io/k8s-device-plugin", "nvidia-device-plugin", "0.17.4")


def load_balancer_controller_statements(
    context: PlatformContext, *, cluster_name: str, vpc_arn: str
) -> tuple[PolicyStatement, ...]:
    """AWS's published controller policy (v2.14), tightened to this account, region, VPC and cluster.

    Read from ``assets/`` at synthesis, so it can be diffed against the upstream ``iam_policy.json``.
    Differences from upstream: resources are this account and region's ARNs instead of ``*``;
    the ``elbv2.k8s.aws/cluster`` tag conditions require this cluster's name instead of any value,
    so the controller cannot touch another cluster's load balancers; security group changes are
    limited to this VPC; WAF Classic (retired) and Shield Advanced actions are left out, and the
    chart is told not to use them. Only actions without resource-level permissions keep ``*``.
    """
    text = LOAD_BALANCER_CONTROLLER_POLICY.read_text(encoding="utf-8")
    values = {
        "partition": context.partition,
        "region": context.region,
        "account_id": context.account_id,
        "cluster_name": cluster_name,
        "vpc_arn": vpc_arn,
    }
    for marker in _POLICY_MARKERS:
        text = text.replace("{{" + marker + "}}", values[marker])
    if "{{" in text:
        allowed = f"only the markers {_POLICY_MARKERS}"
        raise ConfigurationError(str(LOAD_BALANCER_CONTROLLER_POLICY), "policy", text, allowed)
    document = json.loads(text)
    statements = []
    for raw in document["Statement"]:
        actions = raw["Action"] if isinstance(raw["Action"], list) else [raw["Action"]]
        resources = raw["Resource"] if isinstance(raw["Resource"], list) else [raw["Resource"]]
        statements.append(
            PolicyStatement(
                sid=raw["Sid"],
                actions=tuple(actions),
                resources=tuple(resources),
                effect=raw["Effect"],
                conditions=raw.get("Condition", {}),
            )
        )
    return tuple(statements)


def cluster_autoscaler_statements(context: PlatformContext, *, cluster_name: str) -> tuple[PolicyStatement, ...]:
    """What cluster-autoscaler needs with auto-discovery, limited to this cluster's node groups."""
    return (
        PolicyStatement(
            # These describe and list calls have no resource-level permissions in IAM.
            sid="DescribeScalingInputs",
            actions=(
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ),
            resources=("*",),
        ),
        PolicyStatement(
            # Labels, taints and node-template tags of an empty managed node group (scale from zero).
            sid="DescribeThisClustersNodegroups",
            actions=("eks:DescribeNodegroup",),
            resources=(context.arn("eks", f"nodegroup/{cluster_name}/*/*"),),
        ),
        PolicyStatement(
            sid="ScaleThisClustersNodegroups",
            actions=("autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"),
            resources=(context.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"),),
            # EKS tags each managed node group's Auto Scaling group with this key and value.
            conditions={"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        ),
    )


@dataclass(frozen=True)
class EksClusterComponentsProps:
    """Props for :class:`EksClusterComponents`.

    cluster: the cluster to install into (its context says where it lives).
    vpc_id: the cluster's VPC (the load balancer controller is told it instead of asking IMDS).
    gpu_nodes: whether the cluster has GPU nodes; the NVIDIA device plugin is installed only then.
    depends_on: resources to wait for (node groups and add-ons, so pods have somewhere to run).
    in_cluster_resources: install the Helm releases and create the controllers' service accounts,
      which needs the cluster's API endpoint at apply time. False creates only the IRSA roles (IAM,
      reachable from anywhere), so a later run from inside the network only adds the in-cluster part.
    """

    cluster: EksCluster
    vpc_id: str
    gpu_nodes: bool
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class EksClusterComponents(Construct):
    """The cluster's system components as pinned Helm releases in ``kube-system``.

    - metrics-server: resource metrics for ``kubectl top`` and HorizontalPodAutoscalers.
    - cluster-autoscaler (auto-discovery of this cluster's node groups, least-waste expander,
      balanced AZs): chosen over Karpenter because the node groups are EKS managed node groups,
      which it scales directly, including from zero; Karpenter would replace them with its own
      provisioning (NodePools, an interruption queue, CRDs that need the API at plan time).
    - AWS Load Balancer Controller: ALBs for Ingresses and NLBs for Services, on the tightened
      policy of :func:`load_balancer_controller_statements`.
    - NVIDIA device plugin (GPU clusters only): advertises ``nvidia.com/gpu`` on GPU nodes; it runs
      only there (nodeSelector on ``nvidia.com/gpu.present``) and tolerates their taint.

    The autoscaler and the controller call AWS through their own IRSA roles and service accounts;
    the charts are told to use those accounts instead of creating their own. Without
    ``in_cluster_resources`` only the two roles are created: no release, no service account.
    """

    def __init__(self, scope: Construct, id: str, props: EksClusterComponentsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        cluster = props.cluster
        name = cluster.name
        context = cluster.context
        waits_for = [*props.depends_on, *cluster.admin_access]

        self.autoscaler_role = cluster.add_service_account(
            self,
            "cluster-autoscaler-irsa",
            role_name=f"{name}-cluster-autoscaler",
            description=f"cluster-autoscaler of EKS cluster {name}",
            namespace=SYSTEM_NAMESPACE,
            service_account_name=CLUSTER_AUTOSCALER_SERVICE_ACCOUNT,
            statements=cluster_autoscaler_statements(context, cluster_name=name),
            create_service_account=props.in_cluster_resources,
        )
        vpc_arn = context.arn("ec2", f"vpc/{props.vpc_id}")
        self.load_balancer_controller_role = cluster.add_service_account(
            self,
            "load-balancer-controller-irsa",
            role_name=f"{name}-aws-load-balancer-controller",
            description=f"AWS Load Balancer Controller of EKS cluster {name}",
            namespace=SYSTEM_NAMESPACE,
            service_account_name=LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT,
            statements=load_balancer_controller_statements(context, cluster_name=name, vpc_arn=vpc_arn),
            create_service_account=props.in_cluster_resources,
        )

        self.releases: dict[str, Any] = {}
        if props.in_cluster_resources:
            self._install(waits_for)

    def _install(self, waits_for: Sequence[ITerraformDependable]) -> None:
        props = self.props
        name = props.cluster.name
        self.releases["metrics-server"] = self._release(
            "metrics-server",
            METRICS_SERVER_CHART,
            {"replicas": 2, "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1}},
            waits_for,
        )
        self.releases["cluster-autoscaler"] = self._release(
            "cluster-autoscaler",
            CLUSTER_AUTOSCALER_CHART,
            {
                "cloudProvider": "aws",
                "awsRegion": props.cluster.context.region,
                "autoDiscovery": {"clusterName": name},
                "image": {"tag": props.cluster.release.cluster_autoscaler_image},
                "rbac": {"serviceAccount": {"create": False, "name": CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
                "extraArgs": {
                    "balance-similar-node-groups": True,
                    "skip-nodes-with-system-pods": False,
                    "expander": "least-waste",
                },
            },
            [*waits_for, self.autoscaler_role.service_account],
        )
        self.releases["aws-load-balancer-controller"] = self._release(
            "aws-load-balancer-controller",
            LOAD_BALANCER_CONTROLLER_CHART,
            {
                "clusterName": name,
                "region": props.cluster.context.region,
                "vpcId": props.vpc_id,
                "serviceAccount": {"create": False, "name": LOAD_BALANCER_CONTROLLER_SERVICE_ACCOUNT},
                "enableWaf": False,
                "enableShield": False,
                "enableWafv2": True,
            },
            [*waits_for, self.load_balancer_controller_role.service_account],
        )
        if props.gpu_nodes:
            self.releases["nvidia-device-plugin"] = self._release(
                "nvidia-device-plugin",
                NVIDIA_DEVICE_PLUGIN_CHART,
                {
                    "nodeSelector": {GPU_PRESENT_LABEL: "true"},
                    "tolerations": [
                        {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                    ],
                },
                waits_for,
            )

    def _release(
        self, name: str, chart: HelmChart, values: Mapping[str, Any], depends_on: Sequence[ITerraformDependable | None]
    ) -> Any:
        return install_chart(self, name, chart, namespace=SYSTEM_NAMESPACE, values=values, depends_on=depends_on)


def install_chart(
    scope: Construct,
    name: str,
    chart: HelmChart | str,
    *,
    namespace: str,
    values: Mapping[str, Any],
    depends_on: Sequence[ITerraformDependable | None] = (),
    create_namespace: bool = False,
    timeout: int = 600,
    id: str | None = None,
) -> Any:
    """A Helm release ``name`` of ``chart`` in ``namespace``: values as sorted JSON, rolled back when it fails.

    ``chart`` is a pinned chart of a repository, or the path of a local chart (a Terraform asset's). Values are
    typed Python structures serialized with sorted keys (never YAML assembled from strings), so the same values
    always give the same plan. ``id`` is the construct id (``name`` by default).
    """
    pinned = chart if isinstance(chart, HelmChart) else None
    return helm.release.Release(
        scope,
        id or name,
        name=name,
        namespace=namespace,
        create_namespace=create_namespace or None,
        repository=pinned.repository if pinned else None,
        chart=pinned.chart if pinned else chart,
        version=pinned.version if pinned else None,
        values=[json.dumps(values, sort_keys=True)],
        # A failed install or upgrade is rolled back instead of left half-applied.
        atomic=True,
        cleanup_on_fail=True,
        wait=True,
        timeout=timeout,
        max_history=10,
        depends_on=[d for d in depends_on if d is not None] or None,
    )
