"""Container Insights on EKS: the CloudWatch observability add-on, its IRSA role and its performance log group.

The ``amazon-cloudwatch-observability`` EKS add-on runs the CloudWatch agent on every node (Container Insights
with enhanced observability: node, pod and cluster metrics in the ``ContainerInsights`` namespace) and, on GPU
nodes, its own NVIDIA DCGM exporter, whose readings the agent publishes as ``node_gpu_utilization`` and the
other GPU metrics: that makes GPU utilization on EKS a real metric, for the dashboard, the idle rules and the
cost work.

It lives here rather than beside the node add-ons of ``constructs/eks/addons.py``: every choice it makes (what is
collected, what it costs, how long it is kept) is a monitoring setting, and the cluster works without it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require
from constructs.core.logs import encrypted_log_group
from constructs.core.refs import KmsKeyRef
from constructs.eks.cluster import EksCluster

ADDON_NAME = "amazon-cloudwatch-observability"
NAMESPACE = "amazon-cloudwatch"
SERVICE_ACCOUNT = "cloudwatch-agent"
AGENT_POLICY = "CloudWatchAgentServerPolicy"
# The add-on build pinned per Kubernetes minor of KUBERNETES_RELEASES, as the node add-ons are (`aws eks
# describe-addon-versions --addon-name amazon-cloudwatch-observability --kubernetes-version <minor>`; reviewed
# 2026-09: v6.6.0-eksbuild.1 is the default build for 1.36 and offered for 1.35). Adding a minor to
# KUBERNETES_RELEASES (constructs/eks/releases.py) without a build here fails synthesis and tests/monitoring.
ADDON_VERSIONS: Mapping[str, str] = {
    "1.35": "v6.6.0-eksbuild.1",
    "1.36": "v6.6.0-eksbuild.1",
}
# Every taint, the chart's own default, stated so that the agent (which must run on GPU nodes to publish their
# metrics), its DCGM exporter and the node-level collectors keep tolerating the GPU nodes' nvidia.com/gpu taint
# whatever a later build's default.
TOLERATE_EVERY_TAINT: tuple[dict[str, str], ...] = ({"operator": "Exists"},)


def addon_version(kubernetes_version: str, where: str) -> str:
    """The add-on build pinned for ``kubernetes_version``; a minor without one is a configuration error."""
    require(
        kubernetes_version in ADDON_VERSIONS,
        where,
        "kubernetes_version",
        kubernetes_version,
        f"a minor with a pinned {ADDON_NAME} build ({sorted(ADDON_VERSIONS)}): add one to ADDON_VERSIONS "
        "(constructs/monitoring/observability.py) when adding a Kubernetes minor",
    )
    return ADDON_VERSIONS[kubernetes_version]


def configuration_values() -> dict[str, Any]:
    """The add-on's configuration: enhanced Container Insights with GPU metrics, nothing else.

    The agent's own configuration replaces the add-on's default one, which also turns on Application Signals
    (application traces and auto-instrumentation of workloads, billed per request, needing X-Ray permissions):
    with a configuration that names no ``application_signals`` the add-on instruments nothing. Container logs
    (Fluent Bit shipping every container's stdout to CloudWatch Logs at $0.50/GB ingested) are off: the
    platform's workloads log to their own destinations, and turning them on is a cost decision per
    environment, not a default.
    """
    return {
        "agent": {
            "config": {
                "logs": {
                    "metrics_collected": {
                        "kubernetes": {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
                    }
                }
            }
        },
        "containerLogs": {"enabled": False},
        "dcgmExporter": {"enabled": True},
        "tolerations": list(TOLERATE_EVERY_TAINT),
    }


@dataclass(frozen=True)
class ContainerInsightsProps:
    """Props for :class:`ContainerInsights`.

    cluster: the EKS cluster; its Kubernetes minor pins the add-on build, its OIDC provider trusts the agent's role.
    logs_key: KMS key of the performance log group (the platform's logs key).
    log_retention_days: retention of the performance log group.
    depends_on: what the add-on waits for: node groups and the node add-ons (its pods need nodes, DNS and
      networking to become healthy, and EKS reports it degraded until they do).
    """

    cluster: EksCluster
    logs_key: KmsKeyRef
    log_retention_days: int
    depends_on: Sequence[ITerraformDependable] = ()


class ContainerInsights(Construct):
    """The CloudWatch observability add-on on one cluster, with its agent's role and its log group.

    - IRSA role for ``amazon-cloudwatch/cloudwatch-agent`` with the AWS managed ``CloudWatchAgentServerPolicy``
      only (no X-Ray: traces are off). The add-on creates and annotates its service account.
    - ``/aws/containerinsights/<cluster>/performance``, created here with the logs key and a retention, before the
      agent would create it unencrypted and kept forever.
    - The add-on at the build pinned for the cluster's minor, with :func:`configuration_values`; conflicts are
      overwritten as for the other add-ons, so Terraform's configuration is the only one.
    """

    def __init__(self, scope: Construct, id: str, props: ContainerInsightsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        cluster = props.cluster
        c = cluster.context
        self.version = addon_version(cluster.settings.kubernetes_version, self.node.path)
        self.role = cluster.add_service_account(
            self,
            "agent-irsa",
            role_name=f"{cluster.name}-cloudwatch-agent",
            description=f"CloudWatch agent of Container Insights on EKS cluster {cluster.name}",
            namespace=NAMESPACE,
            service_account_name=SERVICE_ACCOUNT,
            managed_policy_arns=(c.managed_policy_arn(AGENT_POLICY),),
            create_service_account=False,
        )
        self.log_group = encrypted_log_group(
            self,
            "performance-log-group",
            name=f"/aws/containerinsights/{cluster.name}/performance",
            retention_days=props.log_retention_days,
            key=props.logs_key,
            protected=c.protected,
        )
        self.configuration = configuration_values()
        self.addon = aws.eks_addon.EksAddon(
            self,
            "addon",
            cluster_name=cluster.cluster.name,
            addon_name=ADDON_NAME,
            addon_version=self.version,
            service_account_role_arn=self.role.arn,
            configuration_values=json.dumps(self.configuration, sort_keys=True),
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            depends_on=[*props.depends_on, *self.role.policy_attachments, self.log_group],
        )
