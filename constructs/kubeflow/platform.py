"""Distributed training on EKS: Kubeflow Trainer, Kueue quotas and the teams' namespaces, in their order."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.context import PlatformContext
from constructs.eks.cluster import EksCluster
from constructs.eks.node_group import EksGpuNodeGroup
from constructs.kubeflow.kueue import CPU_FLAVOR, GPU_FLAVOR, Kueue, KueueProps, NodeFlavor, team_ceiling
from constructs.kubeflow.settings import KubeflowSettings
from constructs.kubeflow.teams import MlTeam, MlTeamProps, TeamStorage, members_group
from constructs.kubeflow.trainer import KubeflowTrainer, KubeflowTrainerProps


@dataclass(frozen=True)
class KubeflowTrainingProps:
    """Props for :class:`KubeflowTraining`.

    context: the environment.
    settings: the environment's Kubeflow settings.
    cluster: the EKS cluster.
    cpu_node_selector: labels of the CPU nodes (controllers run there; the CPU flavor selects them).
    gpu_nodes: the GPU node group (the GPU flavor copies its labels and declares its taint), or None.
    storage: the buckets the teams' roles use, each under the team's prefix.
    mlflow_tracking_uri: the MLflow tracking server's in-cluster address, or None without MLflow.
    depends_on: the node groups, add-ons and system components.
    in_cluster_resources: create what lives in the cluster; False creates only the teams' IAM roles.
    """

    context: PlatformContext
    settings: KubeflowSettings
    cluster: EksCluster
    cpu_node_selector: Mapping[str, str]
    gpu_nodes: EksGpuNodeGroup | None
    storage: TeamStorage
    mlflow_tracking_uri: str | None = None
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class KubeflowTraining(Construct):
    """Kubeflow Trainer for distributed jobs, Kueue for per-team GPU quotas, and one namespace per team.

    Order of installation: Trainer (and JobSet) -> training runtimes, and Trainer -> Kueue (so its TrainJob
    integration finds the CRDs) -> flavors and ClusterQueues -> each team's LocalQueue. Destroy runs it backwards.

    Where the cluster has no GPU node group (dev) the same pieces install with the CPU flavor only, so a team
    rehearses a job on CPU nodes; a GPU quota there is a configuration error.

    People reach their teams' namespaces through EKS access entries of their IAM roles (``member_role_arns``):
    Kubernetes' ``edit`` role scoped to those namespaces, plus Kueue's batch user role there (see
    :class:`~constructs.kubeflow.teams.MlTeam`). Roles and access entries are AWS resources: they exist even
    without the in-cluster part.
    """

    def __init__(self, scope: Construct, id: str, props: KubeflowTrainingProps) -> None:
        super().__init__(scope, id)
        self.props = props
        s = props.settings
        self.cpu_flavor = NodeFlavor(CPU_FLAVOR, dict(props.cpu_node_selector))
        self.gpu_flavor: NodeFlavor | None = None
        if props.gpu_nodes is not None:
            self.gpu_flavor = NodeFlavor(GPU_FLAVOR, dict(props.gpu_nodes.labels), (props.gpu_nodes.taint,))
        self.trainer: KubeflowTrainer | None = None
        self.kueue: Kueue | None = None
        if props.in_cluster_resources:
            self.trainer = KubeflowTrainer(
                self,
                "trainer",
                KubeflowTrainerProps(
                    cluster=props.cluster,
                    node_selector=props.cpu_node_selector,
                    gpu_taint=props.gpu_nodes.taint if props.gpu_nodes is not None else None,
                    depends_on=props.depends_on,
                ),
            )
            self.kueue = Kueue(
                self,
                "kueue",
                KueueProps(
                    cluster=props.cluster,
                    settings=s,
                    cpu_flavor=self.cpu_flavor,
                    gpu_flavor=self.gpu_flavor,
                    node_selector=props.cpu_node_selector,
                    depends_on=[*props.depends_on, self.trainer.release],
                ),
            )
        # One access entry per member role, naming every namespace (and group) of its teams.
        self.member_access = {
            arn: props.cluster.grant_namespace_access(
                self,
                f"member-{hashlib.sha256(arn.encode()).hexdigest()[:12]}",
                principal_arn=arn,
                namespaces=teams,
                groups=[members_group(team) for team in teams],
            )
            for arn, teams in s.members.items()
        }
        # A runtime in use keeps a finalizer until its TrainJobs are gone, so the runtimes go after the namespaces.
        queues = (
            [self.kueue.queues.release, self.trainer.runtimes.release]
            if self.kueue is not None and self.trainer is not None
            else []
        )
        self.teams = {
            team.name: MlTeam(
                self,
                f"team-{team.name}",
                MlTeamProps(
                    context=props.context,
                    settings=team,
                    ceiling=team_ceiling(team, s.teams),
                    cluster=props.cluster,
                    storage=props.storage,
                    mlflow_tracking_uri=props.mlflow_tracking_uri,
                    queues=queues,
                    in_cluster_resources=props.in_cluster_resources,
                ),
            )
            for team in s.teams
        }
