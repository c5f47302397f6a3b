"""The External Secrets Operator: copies secrets from AWS Secrets Manager into Kubernetes Secrets, in the cluster.

Terraform never reads a secret's value: it creates the secret (or RDS does), a role allowed to read it, and the
custom resources that tell the operator what to copy where. The operator fetches the value at run time and
refreshes it, so a rotated password reaches the cluster without a deploy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.errors import require
from constructs.eks.cluster import EksCluster
from constructs.eks.components import HelmChart, install_chart

# 2.x serves the external-secrets.io/v1 API (SecretStore, ExternalSecret), generators.external-secrets.io/v1alpha1
# (Password) and external-secrets.io/v1alpha1 PushSecret; it is tested against Kubernetes 1.36.
EXTERNAL_SECRETS_CHART = HelmChart("https://charts.external-secrets.io", "external-secrets", "2.9.0")
EXTERNAL_SECRETS_NAMESPACE = "external-secrets"
EXTERNAL_SECRETS_API = "external-secrets.io/v1"
PUSH_SECRET_API = "external-secrets.io/v1alpha1"
GENERATORS_API = "generators.external-secrets.io/v1alpha1"


@dataclass(frozen=True)
class ExternalSecretsOperatorProps:
    """Props for :class:`ExternalSecretsOperator`.

    cluster: the cluster to install into.
    node_selector: labels of the nodes the operator's pods run on (the CPU node group).
    replicas: controller replicas; more than one elects a leader, so a node drain never stops secret refreshes.
    depends_on: what must exist first (node groups, add-ons).
    """

    cluster: EksCluster
    node_selector: Mapping[str, str]
    replicas: int = 1
    depends_on: Sequence[ITerraformDependable] = ()


def operator_values(props: ExternalSecretsOperatorProps) -> dict[str, Any]:
    """The chart's values: namespaced stores only, no AWS identity of its own, pods on the CPU nodes."""
    small = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    placement = {"nodeSelector": dict(props.node_selector), "resources": small}
    # With more than one replica every component keeps one up through a node drain.
    highly_available = {
        "replicaCount": props.replicas,
        "podDisruptionBudget": {"enabled": props.replicas > 1, "minAvailable": 1},
    }
    return {
        "installCRDs": True,
        **highly_available,
        "leaderElect": props.replicas > 1,
        # Every store is a namespaced SecretStore that authenticates as a service account of its own namespace
        # (IRSA). Cluster-wide stores, secrets and generators would let one namespace's objects use another's
        # identity, so the controller ignores them.
        "processClusterStore": False,
        "processClusterExternalSecret": False,
        "processClusterPushSecret": False,
        "processClusterGenerator": False,
        # The controller's own account has no IAM role: with no AWS identity, a store without `auth` reads nothing.
        "serviceAccount": {"create": True, "automount": True, "annotations": {}},
        **placement,
        "webhook": {"create": True, **placement, **highly_available},
        # The certificate controller only renews the webhook's certificate: one replica is enough.
        "certController": {"create": True, **placement},
    }


class ExternalSecretsOperator(Construct):
    """The External Secrets Operator (chart ``external-secrets``, pinned) in its own namespace.

    Secure by default: the controller has no AWS identity. A feature that needs secrets creates, in its own
    namespace, a service account with an IRSA role that may read exactly its secrets (and decrypt with exactly
    their key), and a ``SecretStore`` that authenticates as that account (``auth.jwt.serviceAccountRef``): no
    other namespace can use that role, and no store can borrow the controller's identity. ``release`` is what
    the custom resources' release depends on (the CRDs come with it).
    """

    def __init__(self, scope: Construct, id: str, props: ExternalSecretsOperatorProps) -> None:
        super().__init__(scope, id)
        require(1 <= props.replicas <= 5, self.node.path, "replicas", props.replicas, "1 to 5 controller replicas")
        self.props = props
        self.namespace = EXTERNAL_SECRETS_NAMESPACE
        self.release = install_chart(
            self,
            "external-secrets",
            EXTERNAL_SECRETS_CHART,
            namespace=self.namespace,
            values=operator_values(props),
            depends_on=[*props.depends_on, *props.cluster.admin_access],
            create_namespace=True,
        )
