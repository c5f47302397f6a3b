"""Kubeflow Trainer v2 (with JobSet) from its OCI chart, and the training runtimes the platform ships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.eks.cluster import EksCluster
from constructs.eks.components import HelmChart, install_chart
from constructs.eks.manifests import Manifest, ManifestsRelease, ManifestsReleaseProps
from constructs.eks.node_group import NodeTaint

# 2.3.0 (August 2026) serves trainer.kubeflow.org/v1alpha1 and needs Kubernetes 1.31 or later; its JobSet
# subchart is 0.12.0. The Trainer's CRDs are templates, upgraded and deleted with the release; JobSet's sits in the
# subchart's crds/ folder, which Helm installs once and never upgrades or deletes (docs/kubeflow.md, Operations).
TRAINER_CHART = HelmChart("oci://ghcr.io/kubeflow/charts", "kubeflow-trainer", "2.3.0")
TRAINER_NAMESPACE = "kubeflow-system"
TRAINER_API = "trainer.kubeflow.org/v1alpha1"
TRAINER_API_GROUP = "trainer.kubeflow.org"
# The image upstream's torch-distributed runtime of 2.3.0 names; a TrainJob sets its own with spec.trainer.image.
PYTORCH_IMAGE = "pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime"
TORCH_RUNTIME = "torch-distributed"
TORCH_GPU_RUNTIME = "torch-distributed-gpu"
# JobSet's replicated job and container names the Trainer fills in (nodes, torchrun's environment).
TRAINER_NODE = "node"
# A lost node (a reclaimed Spot instance, a failed GPU) or a crashed process fails its pod. In a synchronous job the
# other pods cannot go on without it, so the pod is not retried alone (restartPolicy Never, backoffLimit 0): its Job
# fails, and JobSet recreates every pod of the job, up to this many times; the script resumes from its last checkpoint.
RUNTIME_MAX_RESTARTS = 3


def torch_distributed_runtime(gpu_taint: NodeTaint | None = None) -> Manifest:
    """A ClusterTrainingRuntime for PyTorch DDP/FSDP under torchrun, one pod per node.

    Without ``gpu_taint``: ``torch-distributed``, for CPU jobs. With it: ``torch-distributed-gpu``, whose pods
    tolerate the GPU nodes' taint, which is what lets Kueue admit them onto the GPU flavor (it never hands a
    toleration out: see :meth:`~constructs.kubeflow.kueue.NodeFlavor.manifest`).

    Upstream's runtime of 2.3.0, plus a restart policy: the Trainer sets torchrun's rendezvous environment from the
    TrainJob (``numNodes``, ``numProcPerNode``, which defaults to one process per GPU, or per requested core on
    CPU), and a failed pod restarts the whole job (:data:`RUNTIME_MAX_RESTARTS` times at most) instead of failing
    it or being retried alone. It names no node: Kueue's ResourceFlavors select the CPU or the GPU nodes when it
    admits the job.
    """
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [{"name": TRAINER_NODE, "image": PYTORCH_IMAGE}]}
    if gpu_taint is not None:
        pod["tolerations"] = [gpu_taint.toleration()]
    return {
        "apiVersion": TRAINER_API,
        "kind": "ClusterTrainingRuntime",
        "metadata": {
            "name": TORCH_GPU_RUNTIME if gpu_taint is not None else TORCH_RUNTIME,
            "labels": {f"{TRAINER_API_GROUP}/framework": "torch"},
        },
        "spec": {
            "mlPolicy": {"numNodes": 1, "torch": {}},
            "template": {
                "spec": {
                    "failurePolicy": {"maxRestarts": RUNTIME_MAX_RESTARTS, "restartStrategy": "Recreate"},
                    "replicatedJobs": [
                        {
                            "name": TRAINER_NODE,
                            "template": {
                                "metadata": {"labels": {f"{TRAINER_API_GROUP}/trainjob-ancestor-step": "trainer"}},
                                "spec": {"backoffLimit": 0, "template": {"spec": pod}},
                            },
                        }
                    ],
                }
            },
        },
    }


def trainer_values(node_selector: Mapping[str, str]) -> dict[str, Any]:
    """The chart's values: controllers on the CPU nodes, JobSet bundled, no runtime installer, no data cache.

    The chart's own runtimes come through a post-install Job that downloads kubectl from the internet at run time
    (an Alpine image running ``apk add``), which a cluster in private subnets should not depend on; they stay off
    (``runtimes.defaultEnabled`` and every ``runtimes.*.enabled`` default to false) and the platform applies its
    runtimes as a release of its own. Both controllers generate and rotate their webhook certificates themselves,
    so no cert-manager is needed.
    """
    placement = {"nodeSelector": dict(node_selector)}
    return {
        "manager": {
            "replicas": 1,
            **placement,
            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        },
        # The subchart asks for half a core by default, more than an idle controller uses on a small node.
        "jobset": {
            "install": True,
            "controller": {"replicas": 1, **placement, "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        },
        "runtimes": {"defaultEnabled": False},
        "dataCache": {"enabled": False},
    }


@dataclass(frozen=True)
class KubeflowTrainerProps:
    """Props for :class:`KubeflowTrainer`.

    cluster: the EKS cluster to install into.
    node_selector: labels of the CPU nodes, where the Trainer and JobSet controllers run.
    gpu_taint: the GPU nodes' taint, or None where the cluster has no GPU nodes (no GPU runtime then).
    depends_on: the node groups, add-ons and system components.
    """

    cluster: EksCluster
    node_selector: Mapping[str, str]
    gpu_taint: NodeTaint | None = None
    depends_on: Sequence[ITerraformDependable] = ()


class KubeflowTrainer(Construct):
    """Kubeflow Trainer and JobSet in ``kubeflow-system``, then the platform's training runtimes.

    Two releases, in this order: ``kubeflow-trainer`` (the pinned OCI chart: the Trainer's CRDs, controller and
    webhooks, and JobSet, which runs each TrainJob's pods) and ``kubeflow-runtimes`` (the ClusterTrainingRuntimes
    of :func:`torch_distributed_runtime`, for CPU and, where the cluster has GPU nodes, for GPU jobs, rendered by
    the repository's manifests chart once the CRDs and the validating webhook are up). Destroying goes the other
    way: the runtimes first, then the controller.
    """

    def __init__(self, scope: Construct, id: str, props: KubeflowTrainerProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.namespace = TRAINER_NAMESPACE
        self.release = install_chart(
            self,
            "kubeflow-trainer",
            TRAINER_CHART,
            namespace=TRAINER_NAMESPACE,
            values=trainer_values(props.node_selector),
            depends_on=[*props.depends_on, *props.cluster.admin_access],
            create_namespace=True,
        )
        self.runtimes = ManifestsRelease(
            self,
            "runtimes",
            ManifestsReleaseProps(
                name="kubeflow-runtimes",
                namespace=TRAINER_NAMESPACE,
                manifests=(
                    torch_distributed_runtime(),
                    *([torch_distributed_runtime(props.gpu_taint)] if props.gpu_taint is not None else []),
                ),
                depends_on=[self.release],
                cluster_scoped=True,
            ),
        )
