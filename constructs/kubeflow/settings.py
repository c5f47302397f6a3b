"""Per-environment settings of Kubeflow Trainer, Kueue and the ML teams that train on the cluster."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from constructs.core.formats import IamRoleArn
from constructs.core.settings import Settings, matches, predicate, unique
from pydantic import Field, model_validator

# Namespaces the platform or Kubernetes owns: a team namespace of the same name would take over (and, on
# destroy, delete) what the platform put there.
RESERVED_NAMESPACES = (
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "kubeflow-system",
    "kueue-system",
    "external-secrets",
    "mlflow",
)
# A team's namespace, ClusterQueue and IAM role ('<name prefix>-team-<team>', at most 64 characters with the
# longest name prefix of 28) are named after it.
TEAM_NAME_MAX = 20
_TEAM_NAME_TEXT = (
    f"a Kubernetes namespace name of 1-{TEAM_NAME_MAX} characters (lowercase letters, digits and '-', starting with "
    f"a letter, ending with a letter or digit), not starting with 'kube-' (Kubernetes keeps that prefix for "
    f"itself) and not one of {RESERVED_NAMESPACES}"
)
TeamName = Annotated[
    str,
    matches(rf"[a-z](?:[a-z0-9-]{{0,{TEAM_NAME_MAX - 2}}}[a-z0-9])?", _TEAM_NAME_TEXT),
    predicate(lambda name: name not in RESERVED_NAMESPACES and not name.startswith("kube-"), _TEAM_NAME_TEXT),
]
CohortName = Annotated[
    str,
    matches(r"[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?", "a DNS-1123 label such as 'research' (1-63 characters)"),
]


class NodeQuota(Settings):
    """A team's guaranteed share of one kind of node (one Kueue ResourceFlavor), counted on pods' requests.

    cpu: cores (1-4096).
    memory_gib: memory in GiB (1-65536).
    """

    cpu: Annotated[int, Field(ge=1, le=4096)]
    memory_gib: Annotated[int, Field(ge=1, le=65536)]


class GpuNodeQuota(NodeQuota):
    """A team's guaranteed share of the GPU nodes: GPUs, and the cores and memory its GPU pods request with them.

    gpus: NVIDIA GPUs (``nvidia.com/gpu``), 1-1024; at most what the GPU node group holds at its maximum size.
    cpu, memory_gib: as for :class:`NodeQuota`. A GPU node's cores and memory are shared by its GPUs (a g5.xlarge
      has 4 cores and 16 GiB for its one A10G), so size them as GPUs times that share, less the node's own
      reservation.
    """

    gpus: Annotated[int, Field(ge=1, le=1024)]


class TeamSettings(Settings):
    """One ML team: a namespace of its own, a Kueue ClusterQueue with its quotas, and an identity for its data.

    name: the team's namespace, ClusterQueue and role name (see :data:`TeamName`).
    cpu_nodes: the team's quota on the CPU nodes (jobs that request no GPU run there).
    gpu_nodes: the team's quota on the GPU nodes, or None for a team without GPUs (and in an environment
      without a GPU node group).
    cohort: teams naming the same cohort lend each other quota they are not using (Kueue borrowing); None keeps
      the team to its own quota.
    storage_gib: persistent volume claims the namespace may request in total (EBS gp3, paid while they exist).
    member_role_arns: IAM roles of the team's people (an SSO permission set's role, a CI role): through EKS access
      entries they get Kubernetes' ``edit`` role in the team's namespace and may submit TrainJobs there, and nothing
      in any other namespace. A role may belong to several teams; a cluster admin role needs no membership.
    """

    name: TeamName
    cpu_nodes: NodeQuota
    gpu_nodes: GpuNodeQuota | None = None
    cohort: CohortName | None = None
    storage_gib: Annotated[int, Field(ge=0, le=65536)] = 200
    member_role_arns: tuple[IamRoleArn, ...] = ()

    @property
    def data_prefix(self) -> str:
        """The key prefix of the team's objects in the training data, checkpoints and model artifacts buckets."""
        return f"teams/{self.name}/"


class KubeflowSettings(Settings):
    """Kubeflow Trainer and Kueue on the environment's EKS cluster, and the teams allowed to train there.

    teams: at least one team; each gets a namespace, a LocalQueue and a ClusterQueue.
    wait_for_pods_ready_minutes: how long an admitted job's pods have to all start, a GPU node scaling up from
      zero and a large image being pulled included, before Kueue evicts the job, gives its quota back and
      queues it again (5-120); this is what stops a half-started job from holding GPUs.
    queueing_strategy: ``"BestEffortFIFO"`` (a job that does not fit lets smaller ones behind it start) or
      ``"StrictFIFO"`` (jobs start in order, even if GPUs stay idle meanwhile).
    """

    teams: Annotated[tuple[TeamSettings, ...], Field(min_length=1, max_length=50)]
    wait_for_pods_ready_minutes: Annotated[int, Field(ge=5, le=120)] = 15
    queueing_strategy: Literal["BestEffortFIFO", "StrictFIFO"] = "BestEffortFIFO"

    @model_validator(mode="after")
    def _teams_are_distinct(self) -> Self:
        unique([team.name for team in self.teams], "teams", "team name")
        return self

    @property
    def members(self) -> dict[str, tuple[str, ...]]:
        """Each member role's teams (a role has one EKS access entry, naming all of its namespaces)."""
        teams: dict[str, list[str]] = {}
        for team in self.teams:
            for arn in team.member_role_arns:
                teams.setdefault(arn, []).append(team.name)
        return {arn: tuple(names) for arn, names in sorted(teams.items())}

    @property
    def gpu_teams(self) -> tuple[TeamSettings, ...]:
        """The teams with a GPU quota."""
        return tuple(team for team in self.teams if team.gpu_nodes is not None)
