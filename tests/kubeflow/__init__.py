"""Tests of the kubeflow package, and what its construct tests share: one tiny platform to build them in.

The builders below put an EKS cluster, an optional GPU node group and the three team buckets in a
:class:`~tests.support.stacks.TinyStack`, then :class:`~constructs.kubeflow.platform.KubeflowTraining` (or one
of its parts) on them, so that each test reads the Terraform JSON the construct alone produces. The CPU node
selector is deliberately not the platform's own (``ml-platform/node-type: cpu`` only): a value that reaches the
JSON unchanged proves it came from the props, not from a constant.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from constructs.kubeflow.settings import GpuNodeQuota, KubeflowSettings, NodeQuota, TeamSettings

if TYPE_CHECKING:
    from constructs.eks.cluster import EksCluster
    from constructs.eks.node_group import EksGpuNodeGroup
    from constructs.kubeflow.platform import KubeflowTraining

CPU_SELECTOR: Mapping[str, str] = {"ml-platform/node-type": "cpu", "example.com/pool": "general"}
BUCKET_PURPOSES = ("training-data", "checkpoints", "model-artifacts")
MLFLOW_URI = "http://mlflow.mlflow.svc.cluster.local"
# How the EKS API spells a taint's effect, and how Kubernetes (a flavor's nodeTaints, a toleration) spells it;
# written out rather than imported, so a wrong mapping in the product cannot pass by being shared.
K8S_EFFECT = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


def team(
    name: str,
    cpu: int,
    memory_gib: int,
    gpu: tuple[int, int, int] | None = None,
    cohort: str | None = None,
    storage_gib: int = 200,
    members: tuple[str, ...] = (),
) -> TeamSettings:
    """A team with ``cpu`` cores and ``memory_gib`` on the CPU nodes and ``gpu`` = (GPUs, cores, GiB) on the GPU
    nodes, and the IAM roles ``members`` of its people."""
    return TeamSettings(
        name=name,
        cpu_nodes=NodeQuota(cpu=cpu, memory_gib=memory_gib),
        gpu_nodes=GpuNodeQuota(gpus=gpu[0], cpu=gpu[1], memory_gib=gpu[2]) if gpu else None,
        cohort=cohort,
        storage_gib=storage_gib,
        member_role_arns=members,
    )


# Two GPU teams lending each other quota in the cohort "research", and a CPU-only team on its own.
VISION = team("vision", 4, 16, gpu=(2, 7, 28), cohort="research", storage_gib=500)
NLP = team("nlp", 2, 8, gpu=(1, 3, 12), cohort="research")
TABULAR = team("tabular", 3, 10)
GPU_SETTINGS = KubeflowSettings(teams=(VISION, NLP, TABULAR), wait_for_pods_ready_minutes=25)
# What an environment without GPU nodes (dev) may hold: CPU quotas only.
CPU_SETTINGS = KubeflowSettings(teams=(team("vision", 2, 6, cohort="research"), team("nlp", 2, 6, cohort="research")))
# People's IAM roles: ALICE works in vision and nlp (one access entry naming both), BOB (a role with a path) in
# vision only; tabular has no members. Listed BOB first in vision, so an entry in the order written would differ
# from one in the order of the ARNs.
ALICE = "arn:aws:iam::123456789012:role/ml-alice"
BOB = "arn:aws:iam::123456789012:role/people/ml-bob"
MEMBER_SETTINGS = KubeflowSettings(
    teams=(
        team("vision", 4, 16, gpu=(2, 7, 28), cohort="research", members=(BOB, ALICE)),
        team("nlp", 2, 8, gpu=(1, 3, 12), cohort="research", members=(ALICE,)),
        TABULAR,
    )
)


class TinyPlatform:
    """A tiny stack holding a cluster ``tiny``, optionally a GPU node group, and the three team buckets."""

    def __init__(self, *, gpu_nodes: bool = True) -> None:
        # Imported here, not at the top: the settings tests of this package import it too, and need no bindings.
        from constructs.kubeflow.teams import TeamStorage
        from constructs.storage.bucket import SecureBucket, SecureBucketProps

        from tests.eks.clusters import eks_cluster, gpu_node_group
        from tests.support.stacks import TinyStack

        self.tiny = TinyStack()
        self.cluster: EksCluster = eks_cluster(self.tiny)
        self.gpu_nodes: EksGpuNodeGroup | None = gpu_node_group(self.tiny, self.cluster) if gpu_nodes else None
        self.buckets = {
            purpose: SecureBucket(
                self.tiny.stack, purpose, SecureBucketProps(bucket_name=f"tiny-{purpose}", kms_key=self.tiny.key)
            )
            for purpose in BUCKET_PURPOSES
        }
        self.storage = TeamStorage(
            training_data=self.buckets["training-data"],
            checkpoints=self.buckets["checkpoints"],
            model_artifacts=self.buckets["model-artifacts"],
        )

    def training(self, settings: KubeflowSettings, **overrides: Any) -> KubeflowTraining:
        """KubeflowTraining ``kubeflow`` on this platform, with ``overrides`` to its props."""
        from constructs.kubeflow.platform import KubeflowTraining, KubeflowTrainingProps

        props: dict[str, Any] = {
            "context": self.tiny.context,
            "settings": settings,
            "cluster": self.cluster,
            "cpu_node_selector": CPU_SELECTOR,
            "gpu_nodes": self.gpu_nodes,
            "storage": self.storage,
            **overrides,
        }
        return KubeflowTraining(self.tiny.stack, "kubeflow", KubeflowTrainingProps(**props))

    def synth(self) -> dict[str, Any]:
        """The stack's JSON with construct paths (for the path queries of tests.support.synth_json)."""
        return self.tiny.synth_with_paths()


def releases(stack: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every Helm release of the stack, by release name."""
    found = stack.get("resource", {}).get("helm_release", {}).values()
    by_name = {release["name"]: release for release in found}
    assert len(by_name) == len(found), "two releases share a name"
    return by_name


def values_of(release: Mapping[str, Any]) -> dict[str, Any]:
    """A release's one values document, parsed."""
    (values,) = release["values"]
    return json.loads(values)


def manifests_of(release: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Kubernetes objects a release of the repository's manifests chart applies."""
    return values_of(release)["manifests"]


def address_of(stack: Mapping[str, Any], resource_type: str, release_name: str | None = None) -> str:
    """``helm_release.<name>`` of the release called ``release_name`` (or ``<type>.<name>`` of the one resource)."""
    found = stack["resource"][resource_type]
    if release_name is not None:
        (logical,) = [key for key, body in found.items() if body["name"] == release_name]
    else:
        (logical,) = found
    return f"{resource_type}.{logical}"


def tolerates(tolerations: Sequence[Mapping[str, str]], taint: Mapping[str, str]) -> bool:
    """Whether a pod with ``tolerations`` may run on a node with ``taint`` (``{key, value, effect}``, Kubernetes
    spelling), by Kubernetes' own rule: a toleration matches when its effect is empty or the taint's, and either
    its operator is ``Exists`` (with no key, or the taint's) or it is ``Equal`` (the default) with the taint's key
    and value. Written out here, not taken from the product, so the runtime and flavor tests cannot agree with the
    product by sharing its mistake."""
    for toleration in tolerations:
        if toleration.get("effect") and toleration["effect"] != taint["effect"]:
            continue
        if toleration.get("operator", "Equal") == "Exists":
            if not toleration.get("key") or toleration["key"] == taint["key"]:
                return True
        elif toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def runtime_pod(runtime: Mapping[str, Any]) -> dict[str, Any]:
    """The pod spec of a ClusterTrainingRuntime's one replicated job (what every node of its TrainJobs runs)."""
    (job,) = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    return job["template"]["spec"]["template"]["spec"]
