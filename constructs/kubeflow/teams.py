"""An ML team's namespace: quotas and defaults, its identity for its data, its queue and its MLflow address."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import kubernetes
from constructs.core.context import PlatformContext
from constructs.eks.cluster import EksCluster
from constructs.eks.irsa import IrsaRole
from constructs.eks.manifests import ManifestsRelease, ManifestsReleaseProps
from constructs.eks.node_group import GPU_RESOURCE
from constructs.kubeflow.kueue import BATCH_USER_ROLE, TEAM_NAMESPACE_LABEL, TeamCeiling, local_queue
from constructs.kubeflow.settings import TeamSettings
from constructs.storage.bucket import SecureBucket

TRAINING_SERVICE_ACCOUNT = "training"
MLFLOW_CONFIG_MAP = "mlflow"
TEAM_LABEL = TEAM_NAMESPACE_LABEL


def members_group(team: str) -> str:
    """The Kubernetes group the team's member roles are mapped into by their EKS access entries."""
    return f"ml-team-{team}"


# What a container that names no requests asks for: Kueue and the ResourceQuota count requests, and a pod without
# them would count as nothing. No default limit: one below a container's own request would make the pod invalid.
DEFAULT_CONTAINER_REQUESTS = {"cpu": "250m", "memory": "512Mi"}
RBAC_API_GROUP = "rbac.authorization.k8s.io"


@dataclass(frozen=True)
class TeamStorage:
    """The buckets a team's jobs use, each under the team's prefix only."""

    training_data: SecureBucket
    checkpoints: SecureBucket
    model_artifacts: SecureBucket


@dataclass(frozen=True)
class MlTeamProps:
    """Props for :class:`MlTeam`.

    context: the environment.
    settings: the team.
    ceiling: the most Kueue can admit for the team at once (its quota, plus what its cohort may lend it); the
      namespace's ResourceQuota.
    cluster: the EKS cluster.
    storage: the buckets the team's role reads (training data) and writes (checkpoints, model artifacts).
    mlflow_tracking_uri: the MLflow tracking server's in-cluster address, or None without MLflow.
    queues: what the namespace waits for: the releases of the team's ClusterQueue and of the training runtimes
      (after Kueue and the Trainer), which on destroy must outlive the namespace's TrainJobs.
    in_cluster_resources: create what lives in the cluster; False creates only the IAM role.
    """

    context: PlatformContext
    settings: TeamSettings
    ceiling: TeamCeiling
    cluster: EksCluster
    storage: TeamStorage
    mlflow_tracking_uri: str | None = None
    queues: Sequence[ITerraformDependable | None] = ()
    in_cluster_resources: bool = True


class MlTeam(Construct):
    """A team's namespace, named after the team, and what a training job there needs.

    - Namespace, labelled with the team; Pod Security ``baseline`` enforced (training images run as root more
      often than not), ``restricted`` reported as warnings.
    - ResourceQuota at :attr:`MlTeamProps.ceiling` (requests of CPU, memory and ``nvidia.com/gpu``; persistent
      volume storage), no load balancers and no node ports: Kueue's quota is the real limit, this one stops pods
      that bypass Kueue (a bare pod, a Deployment) from taking more than it could admit.
    - LimitRange giving containers that name no requests :data:`DEFAULT_CONTAINER_REQUESTS`.
    - Service account ``training`` with an IRSA role reading ``teams/<team>/`` of the training data and reading
      and writing the same prefix of the checkpoints and model artifacts buckets (the buckets' own grants, their
      key through S3 only); nothing else of any bucket.
    - LocalQueue ``default`` on the team's ClusterQueue, and ConfigMap ``mlflow`` with ``MLFLOW_TRACKING_URI``
      when the environment runs MLflow.
    - For the team's member roles (their EKS access entries come from
      :class:`~constructs.kubeflow.platform.KubeflowTraining`): a RoleBinding of their group to Kueue's batch user
      role, so they can submit TrainJobs in this namespace.
    """

    def __init__(self, scope: Construct, id: str, props: MlTeamProps) -> None:
        super().__init__(scope, id)
        self.props = props
        team = props.settings
        self.namespace = team.name
        self.namespace_resource: Any | None = None
        ready: list[ITerraformDependable] = []
        if props.in_cluster_resources:
            # Training images run as root more often than not: baseline is enforced, restricted only reported.
            self.namespace_resource = props.cluster.add_namespace(
                self,
                "namespace",
                name=team.name,
                labels={TEAM_LABEL: team.name},
                pod_security="baseline",
                # Created after the queues and the controllers, so destroyed before them: the controllers finish
                # the namespace's TrainJobs and workloads (and their finalizers) while it terminates.
                depends_on=[d for d in props.queues if d is not None],
            )
            ready.append(self.namespace_resource)

        storage = props.storage
        prefix = team.data_prefix
        self.role: IrsaRole = props.cluster.add_service_account(
            self,
            "training-irsa",
            role_name=f"{props.context.name_prefix}-team-{team.name}",
            description=f"Training jobs of team {team.name} in {props.context.name_prefix}: its data prefix only",
            namespace=team.name,
            service_account_name=TRAINING_SERVICE_ACCOUNT,
            statements=(
                *storage.training_data.read_grant(prefix),
                *storage.checkpoints.read_write_grant(prefix),
                *storage.model_artifacts.read_write_grant(prefix),
            ),
            create_service_account=props.in_cluster_resources,
            kubernetes_depends_on=ready,
        )
        self.resource_quota: Any | None = None
        self.limit_range: Any | None = None
        self.local_queue: ManifestsRelease | None = None
        self.mlflow_config: Any | None = None
        self.members_binding: Any | None = None
        if self.namespace_resource is not None:
            self._in_namespace(self.namespace_resource)

    def _in_namespace(self, namespace: ITerraformDependable) -> None:
        props = self.props
        team = props.settings
        ceiling = props.ceiling
        metadata = {"namespace": team.name}
        quota = kubernetes.resource_quota_v1
        self.resource_quota = quota.ResourceQuotaV1(
            self,
            "resource-quota",
            metadata=quota.ResourceQuotaV1Metadata(name="team-ceiling", **metadata),
            spec=quota.ResourceQuotaV1Spec(
                hard={
                    "requests.cpu": str(ceiling.cpu),
                    "requests.memory": f"{ceiling.memory_gib}Gi",
                    f"requests.{GPU_RESOURCE}": str(ceiling.gpus),
                    "requests.storage": f"{team.storage_gib}Gi",
                    "services.loadbalancers": "0",
                    "services.nodeports": "0",
                    # An Ingress would have the load balancer controller open an ALB for the team.
                    "count/ingresses.networking.k8s.io": "0",
                }
            ),
            depends_on=[namespace],
        )
        limits = kubernetes.limit_range_v1
        self.limit_range = limits.LimitRangeV1(
            self,
            "limit-range",
            metadata=limits.LimitRangeV1Metadata(name="container-defaults", **metadata),
            spec=limits.LimitRangeV1Spec(
                limit=[limits.LimitRangeV1SpecLimit(type="Container", default_request=DEFAULT_CONTAINER_REQUESTS)]
            ),
            depends_on=[namespace],
        )
        self.local_queue = ManifestsRelease(
            self,
            "queue",
            ManifestsReleaseProps(
                name=f"{team.name}-queue",
                namespace=team.name,
                manifests=(local_queue(team),),
                depends_on=[namespace],
            ),
        )
        if team.member_role_arns:
            binding = kubernetes.role_binding_v1
            self.members_binding = binding.RoleBindingV1(
                self,
                "members",
                metadata=binding.RoleBindingV1Metadata(name="team-members-submit-jobs", **metadata),
                role_ref=binding.RoleBindingV1RoleRef(
                    api_group=RBAC_API_GROUP, kind="ClusterRole", name=BATCH_USER_ROLE
                ),
                subject=[
                    binding.RoleBindingV1Subject(kind="Group", name=members_group(team.name), api_group=RBAC_API_GROUP)
                ],
                depends_on=[namespace],
            )
        if props.mlflow_tracking_uri is not None:
            config_map = kubernetes.config_map_v1
            self.mlflow_config = config_map.ConfigMapV1(
                self,
                "mlflow",
                metadata=config_map.ConfigMapV1Metadata(name=MLFLOW_CONFIG_MAP, **metadata),
                data={"MLFLOW_TRACKING_URI": props.mlflow_tracking_uri},
                depends_on=[namespace],
            )
