"""Tests of the serving package, and what its construct tests share: a tiny stack to serve models in.

:class:`TinyServing` puts an EKS cluster, a GPU node group, the model-artifacts bucket (SSE-KMS), an access-log
bucket (SSE-S3, open to load balancer logs) and a stand-in for the AWS Load Balancer Controller's release in a
:class:`~tests.support.stacks.TinyStack` (whose KMS key also encrypts the web ACLs' log groups), then one
:class:`~constructs.serving.model.ModelServing` per :meth:`TinyServing.serve`, so each test reads the Terraform
JSON the construct produces. The CPU node selector, the client networks and the log retention are deliberately
not the platform's own: a value that reaches the JSON unchanged proves it came from the props, not a constant.

The settings tests import this package too, so nothing here imports the provider bindings at module level.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from constructs.serving.settings import ModelServingSpec

if TYPE_CHECKING:
    from constructs.eks.cluster import EksCluster
    from constructs.eks.node_group import EksGpuNodeGroup
    from constructs.serving.model import ModelServing
    from constructs.storage.bucket import SecureBucket

ZONE = "ml.example.com"
CPU_SELECTOR: Mapping[str, str] = {"ml-platform/node-type": "cpu", "example.com/pool": "serving"}
# What the platform passes for an internal load balancer: the VPC and the networks routed into it.
CLIENT_CIDRS = ("10.0.0.0/16", "192.168.0.0/24")
LOG_PREFIX = "load-balancers"
# A retention CloudWatch Logs accepts, and not the platform's: the web ACL's log group must take it from the props.
LOG_RETENTION_DAYS = 545
CONTROLLER = "aws-load-balancer-controller"
# How the EKS API spells a taint's effect, and how a Kubernetes toleration spells it; written out rather than
# imported, so a wrong mapping in the product cannot pass by being shared.
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def model_spec(name: str = "chat", **changes: Any) -> ModelServingSpec:
    """A valid CPU model ``name`` on ``<name>.ml.example.com`` (internal), with ``changes``; ``ingress`` changes
    are merged into the default ingress."""
    ingress = {"hostname": f"{name}.{ZONE}", "hosted_zone_name": ZONE, **changes.pop("ingress", {})}
    values: dict[str, Any] = {
        "name": name,
        "image": "ghcr.io/example/server:1.4.2",
        "model_prefix": f"models/{name}/v1/",
        "ingress": ingress,
        **changes,
    }
    return ModelServingSpec(**values)


class TinyServing:
    """A tiny stack with a cluster ``tiny``, optionally its GPU node group, the buckets and a controller release."""

    def __init__(self, *, gpu_nodes: bool = True) -> None:
        # Imported here, not at the top: the settings tests import this package and need no bindings.
        from constructs.core.bindings import helm
        from constructs.eks.ingress import AccessLogs
        from constructs.storage.bucket import SecureBucket, SecureBucketProps

        from tests.eks.clusters import eks_cluster, gpu_node_group
        from tests.support.stacks import TinyStack

        self.tiny = TinyStack()
        self.cluster: EksCluster = eks_cluster(self.tiny)
        self.gpu_nodes: EksGpuNodeGroup | None = gpu_node_group(self.tiny, self.cluster) if gpu_nodes else None
        self.model_artifacts: SecureBucket = SecureBucket(
            self.tiny.stack, "model-artifacts", SecureBucketProps(bucket_name="tiny-models", kms_key=self.tiny.key)
        )
        self.access_log_bucket: SecureBucket = SecureBucket(
            self.tiny.stack,
            "access-logs",
            SecureBucketProps(bucket_name="tiny-logs", kms_key=None, log_delivery_source_account="123456789012"),
        )
        self.access_log_bucket.allow_load_balancer_logs(LOG_PREFIX)
        self.access_logs = AccessLogs(
            bucket=self.access_log_bucket.name, prefix=LOG_PREFIX, ready=[self.access_log_bucket.policy]
        )
        # Stands for the AWS Load Balancer Controller's release (what the platform's depends_on holds).
        self.controller = helm.release.Release(
            self.tiny.stack,
            "controller",
            name=CONTROLLER,
            chart="aws-load-balancer-controller",
            namespace="kube-system",
        )

    def serve(self, model: ModelServingSpec, **overrides: Any) -> ModelServing:
        """ModelServing ``model-<name>`` of ``model`` on this stack, with ``overrides`` to its props (by default
        the GPU node group, the access logs, the stack's key for the web ACL's logs, and the controller as its
        dependency)."""
        from constructs.serving.model import ModelServing, ModelServingProps

        props: dict[str, Any] = {
            "context": self.tiny.context,
            "spec": model,
            "cluster": self.cluster,
            "model_artifacts": self.model_artifacts,
            "cpu_node_selector": CPU_SELECTOR,
            "gpu_nodes": self.gpu_nodes,
            "client_cidrs": CLIENT_CIDRS,
            "logs_key": self.tiny.key,
            "log_retention_days": LOG_RETENTION_DAYS,
            "access_logs": self.access_logs,
            "depends_on": [self.controller],
            **overrides,
        }
        return ModelServing(self.tiny.stack, f"model-{model.name}", ModelServingProps(**props))

    def synth(self) -> dict[str, Any]:
        """The stack's JSON with construct paths (for the path queries of tests.support.synth_json)."""
        return self.tiny.synth_with_paths()
