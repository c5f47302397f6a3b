"""Kueue: admission of training jobs against per-team quotas on the CPU and GPU nodes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.errors import require
from constructs.eks.cluster import EksCluster
from constructs.eks.components import HelmChart, install_chart
from constructs.eks.manifests import Manifest, ManifestsRelease, ManifestsReleaseProps
from constructs.eks.node_group import GPU_RESOURCE, NodeTaint
from constructs.kubeflow.settings import KubeflowSettings, NodeQuota, TeamSettings

# 0.19.2 (August 2026) serves kueue.x-k8s.io/v1beta2 (the storage version; v1beta1 is deprecated), admits
# Kubeflow Trainer TrainJobs (the trainer.kubeflow.org/trainjob integration, written against Trainer 2.2) and
# needs Kubernetes 1.29 or later. Its CRDs are templates of the chart, upgraded with it.
KUEUE_CHART = HelmChart("oci://registry.k8s.io/kueue/charts", "kueue", "0.19.2")
KUEUE_NAMESPACE = "kueue-system"
KUEUE_RELEASE = "kueue"
KUEUE_API = "kueue.x-k8s.io/v1beta2"
CPU_FLAVOR = "cpu-nodes"
GPU_FLAVOR = "gpu-nodes"
# Jobs Kueue admits: TrainJobs, the JobSets that run them (and JobSets submitted directly), and plain Jobs. Bare
# pods, Deployments and StatefulSets are not queued: serving and platform workloads are not batch jobs.
INTEGRATIONS = ("batch/job", "jobset.x-k8s.io/jobset", "trainer.kubeflow.org/trainjob")
# The namespaces Kueue manages and its webhooks look at: the teams'. By default it would be every namespace but
# kube-system and its own, and its Job and JobSet webhooks fail closed: with Kueue down, no Job could be created
# anywhere (the platform's own namespaces included).
TEAM_NAMESPACE_LABEL = "ml-platform/team"
# A LocalQueue named "default" also receives the namespace's jobs that name no queue (Kueue's LocalQueue
# defaulting), so no TrainJob of a team escapes its quota by leaving the label out.
LOCAL_QUEUE = "default"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# The chart's aggregated role for submitting jobs (TrainJobs, JobSets, Jobs) and reading queues and workloads,
# named after the release ("kueue"): Kubernetes' edit role lets people view TrainJobs, not create them.
BATCH_USER_ROLE = f"{KUEUE_RELEASE}-batch-user-role"


@dataclass(frozen=True)
class NodeFlavor:
    """One kind of node jobs are admitted onto: the labels selecting it and the taints it carries."""

    name: str
    node_labels: Mapping[str, str]
    taints: tuple[NodeTaint, ...] = ()

    def manifest(self) -> Manifest:
        """The ResourceFlavor: Kueue adds its labels to admitted pods' node selectors.

        The taints are declared as the nodes' (``nodeTaints``), not handed out as tolerations: Kueue then assigns
        the flavor only to pods that already tolerate them. A flavor that injected the toleration would also take
        CPU-only jobs once the CPU quota is used up (its cores and memory fit them), and put them on GPU nodes.
        """
        spec: dict[str, Any] = {"nodeLabels": dict(self.node_labels)}
        if self.taints:
            spec["nodeTaints"] = [{"key": t.key, "value": t.value, "effect": t.kubernetes_effect} for t in self.taints]
        return {"apiVersion": KUEUE_API, "kind": "ResourceFlavor", "metadata": {"name": self.name}, "spec": spec}


def _quota(quota: NodeQuota, gpus: int | None) -> list[dict[str, str]]:
    """A flavor's quotas in the order of the covered resources (Kueue requires it); GPUs only where covered."""
    resources = [
        {"name": "cpu", "nominalQuota": str(quota.cpu)},
        {"name": "memory", "nominalQuota": f"{quota.memory_gib}Gi"},
    ]
    if gpus is not None:
        resources.append({"name": GPU_RESOURCE, "nominalQuota": str(gpus)})
    return resources


def cluster_queue(team: TeamSettings, strategy: str) -> Manifest:
    """The team's ClusterQueue: its quota per flavor, for the jobs of its namespace only.

    A team with GPUs covers cpu, memory and GPUs, CPU nodes first (where its GPU quota is zero, so a pod asking
    for a GPU goes on to the GPU flavor, which only pods tolerating the GPU taint get: the GPU runtime's); a team
    without GPUs covers cpu and memory, so a job asking for a GPU is never admitted. In a cohort the team may
    borrow what the other teams leave unused, and reclaims its own quota from borrowers by preemption.
    """
    gpu = team.gpu_nodes
    flavors = [{"name": CPU_FLAVOR, "resources": _quota(team.cpu_nodes, 0 if gpu is not None else None)}]
    covered = ["cpu", "memory"]
    if gpu is not None:
        covered.append(GPU_RESOURCE)
        flavors.append({"name": GPU_FLAVOR, "resources": _quota(gpu, gpu.gpus)})
    spec: dict[str, Any] = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": team.name}},
        "queueingStrategy": strategy,
        "resourceGroups": [{"coveredResources": covered, "flavors": flavors}],
        "preemption": {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Never"},
    }
    if team.cohort is not None:
        spec["cohortName"] = team.cohort
        spec["preemption"]["reclaimWithinCohort"] = "Any"
    return {"apiVersion": KUEUE_API, "kind": "ClusterQueue", "metadata": {"name": team.name}, "spec": spec}


def local_queue(team: TeamSettings) -> Manifest:
    """The LocalQueue of the team's namespace, pointing at the team's ClusterQueue."""
    return {
        "apiVersion": KUEUE_API,
        "kind": "LocalQueue",
        "metadata": {"name": LOCAL_QUEUE, "namespace": team.name},
        "spec": {"clusterQueue": team.name},
    }


@dataclass(frozen=True)
class TeamCeiling:
    """The most a team's namespace can hold at once: its quota, plus what its cohort can lend it."""

    cpu: int
    memory_gib: int
    gpus: int


def team_ceiling(team: TeamSettings, teams: Sequence[TeamSettings]) -> TeamCeiling:
    """What Kueue can admit for ``team`` at most: the quotas of every team of its cohort, or its own without one.

    Only the flavors the team's own queue covers count: a team without GPUs borrows no GPU node's cores either.
    """
    members = [t for t in teams if t.cohort is not None and t.cohort == team.cohort] or [team]
    quotas: list[NodeQuota] = [t.cpu_nodes for t in members]
    gpus = 0
    if team.gpu_nodes is not None:
        gpu_quotas = [t.gpu_nodes for t in members if t.gpu_nodes is not None]
        quotas += gpu_quotas
        gpus = sum(q.gpus for q in gpu_quotas)
    return TeamCeiling(cpu=sum(q.cpu for q in quotas), memory_gib=sum(q.memory_gib for q in quotas), gpus=gpus)


def kueue_values(settings: KubeflowSettings, node_selector: Mapping[str, str]) -> dict[str, Any]:
    """The chart's values: the controller on the CPU nodes, and Kueue's whole configuration.

    The chart takes the configuration as one YAML document (``managerConfig.controllerManagerConfigYaml``) and
    fills in only the internal certificate management, so every field the platform relies on is written here;
    JSON is YAML, so it is serialized from a typed structure rather than templated. Relative to the chart's
    default: only the integrations of :data:`INTEGRATIONS`, only the team namespaces managed, and
    ``waitForPodsReady`` with the matrix's timeout.
    """
    timeout = f"{settings.wait_for_pods_ready_minutes}m"
    configuration = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "health": {"healthProbeBindAddress": ":8081"},
        "metrics": {"bindAddress": ":8443"},
        "webhook": {"port": 9443},
        "leaderElection": {"leaderElect": True, "resourceName": "c1f6bfd2.kueue.x-k8s.io"},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchExpressions": [{"key": TEAM_NAMESPACE_LABEL, "operator": "Exists"}]},
        # The chart's default workers per kind (without this block each controller would have one).
        "controller": {
            "groupKindConcurrency": {
                "Job.batch": 5,
                "Pod": 5,
                "Workload.kueue.x-k8s.io": 10,
                "LocalQueue.kueue.x-k8s.io": 5,
                "ClusterQueue.kueue.x-k8s.io": 5,
                "ResourceFlavor.kueue.x-k8s.io": 1,
            }
        },
        "clientConnection": {"qps": 300, "burst": 500},
        # All of a job's pods start within the timeout or the job is evicted and queued again, so a job that got
        # two of its four GPU nodes does not hold that quota while it waits for the rest.
        "waitForPodsReady": {
            "timeout": timeout,
            "recoveryTimeout": timeout,
            "blockAdmission": False,
            "requeuingStrategy": {"timestamp": "Eviction", "backoffBaseSeconds": 60, "backoffMaxSeconds": 3600},
        },
        "integrations": {"frameworks": list(INTEGRATIONS)},
    }
    return {
        "controllerManager": {
            "replicas": 1,
            "nodeSelector": dict(node_selector),
            "manager": {"resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "512Mi"}}},
        },
        "managerConfig": {"controllerManagerConfigYaml": json.dumps(configuration, sort_keys=True)},
        "enablePrometheus": False,
        "enableKueueViz": False,
    }


@dataclass(frozen=True)
class KueueProps:
    """Props for :class:`Kueue`.

    cluster: the EKS cluster to install into.
    settings: the environment's Kubeflow settings (teams, timeout, queueing strategy).
    cpu_flavor: the CPU nodes.
    gpu_flavor: the GPU nodes, or None where the cluster has none.
    node_selector: labels of the CPU nodes, where the controller runs.
    depends_on: what must exist first: the Trainer's release (its CRDs, so the TrainJob integration starts at
      once), the node groups and system components.
    """

    cluster: EksCluster
    settings: KubeflowSettings
    cpu_flavor: NodeFlavor
    gpu_flavor: NodeFlavor | None
    node_selector: Mapping[str, str]
    depends_on: Sequence[ITerraformDependable | None] = ()


class Kueue(Construct):
    """Kueue in ``kueue-system``, then the platform's flavors and one ClusterQueue per team.

    Two releases: ``kueue`` (the pinned OCI chart: CRDs, controller, webhooks) and ``kueue-queues`` (the
    ResourceFlavors and ClusterQueues, cluster-scoped, applied once the CRDs and webhooks are up). Each team's
    LocalQueue lives with the team (:class:`~constructs.kubeflow.teams.MlTeam`).
    """

    def __init__(self, scope: Construct, id: str, props: KueueProps) -> None:
        super().__init__(scope, id)
        gpu_teams = [t.name for t in props.settings.gpu_teams]
        require(
            props.gpu_flavor is not None or not gpu_teams,
            self.node.path,
            "gpu_flavor",
            None,
            f"the GPU node group's flavor: teams {gpu_teams} have GPU quotas",
        )
        self.props = props
        self.namespace = KUEUE_NAMESPACE
        self.release = install_chart(
            self,
            KUEUE_RELEASE,
            KUEUE_CHART,
            namespace=KUEUE_NAMESPACE,
            values=kueue_values(props.settings, props.node_selector),
            depends_on=[*props.depends_on, *props.cluster.admin_access],
            create_namespace=True,
        )
        flavors = [props.cpu_flavor, *([props.gpu_flavor] if props.gpu_flavor is not None else [])]
        self.manifests: tuple[Manifest, ...] = (
            *(flavor.manifest() for flavor in flavors),
            *(cluster_queue(team, props.settings.queueing_strategy) for team in props.settings.teams),
        )
        self.queues = ManifestsRelease(
            self,
            "queues",
            ManifestsReleaseProps(
                name="kueue-queues",
                namespace=KUEUE_NAMESPACE,
                manifests=self.manifests,
                depends_on=[self.release],
                cluster_scoped=True,
            ),
        )
