"""The environment model: what one environment of the platform is, and the rules between its sections and
between environments.

Each section is a feature's own settings model (``constructs/<feature>/settings.py``), which holds that
section's field limits. The rules here are the ones no single section can check: an environment without
GPUs has no GPU instance type anywhere, a multi-AZ environment has a NAT gateway per zone, a protected
environment keeps its data, and environments' VPC blocks do not overlap.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Self

from constructs.core.context import OWNER_TAG_KEYS
from constructs.core.errors import ConfigurationError, require, require_field
from constructs.core.formats import IamRoleName, TagValue
from constructs.core.instance_types import is_accelerated
from constructs.core.settings import IDENTITY, REVIEWED, Settings, choice, matches, walk_fields
from constructs.cost.settings import BudgetSettings
from constructs.eks.settings import EksClusterSettings
from constructs.kubeflow.settings import KubeflowSettings
from constructs.mlflow.settings import MlflowSettings
from constructs.monitoring.settings import MonitoringSettings
from constructs.network.settings import EKS_UNSUPPORTED_ZONE_IDS, NetworkSettings
from constructs.resilience.settings import ServingFailoverSettings
from constructs.sagemaker.idle_settings import check_idle_policy
from constructs.sagemaker.settings import SageMakerEndpointSettings, SageMakerTrainingSettings
from constructs.serving.settings import ModelServingSpec
from constructs.storage.settings import PlatformKeysSettings, StorageSettings
from constructs.training.settings import GpuTrainingClusterSettings
from pydantic import BaseModel, Field, model_validator

from stacks import production
from stacks.regions import SUPPORTED_REGIONS, ZONE_ID_PREFIXES

# Environments holding production data: an override cannot switch their protection off.
PROTECTED_ENVIRONMENTS = ("prod",)
# Set while overrides are applied one at a time: the rules across sections run once all of them are in.
_deferring_cross_section_rules: ContextVar[bool] = ContextVar("deferring_cross_section_rules", default=False)


@contextmanager
def cross_section_rules_deferred() -> Iterator[None]:
    """Within this block, building an :class:`EnvironmentConfig` checks each section but not the rules between them."""
    token = _deferring_cross_section_rules.set(True)
    try:
        yield
    finally:
        _deferring_cross_section_rules.reset(token)


class OwnerTags(Settings):
    """Cost-attribution tags put on every resource (with ``environment``).

    team: owning team; cost_center: finance cost center; project: project or product name. Tags only: changing
    one updates tags in place and replaces nothing (resource names start with ``resource_prefix``).
    """

    team: TagValue
    cost_center: TagValue
    project: TagValue


EnvironmentName = Annotated[str, matches(r"[a-z][a-z0-9]{0,15}", "1-16 lowercase letters and digits")]
ResourcePrefix = Annotated[
    str,
    matches(
        r"[a-z](?:-?[a-z0-9]){0,11}",
        "1-12 lowercase letters, digits and single hyphens, starting with a letter, such as 'mlp'",
    ),
]
# The tightest name built from it: a bucket '<name prefix>-mlflow-artifacts-<12-digit account>' (63 at most),
# the training cluster's '<name prefix>-training-spot-interruptions' rule and the EKS node groups' names.
MAX_NAME_PREFIX_LENGTH = 28


def where(environment: str) -> str:
    """How errors name an environment."""
    return f"environment '{environment}'"


class EnvironmentConfig(Settings):
    """One environment of the platform.

    name: the stack name (dev, staging, prod).
    resource_prefix: starts every resource name (``<resource_prefix>-<name>``: buckets, roles, the cluster, the
      endpoint); renaming it replaces those resources, so it is not a tag (see ``tags``).
    region: AWS region of every resource of the environment.
    secondary_region: the region the environment recovers in when ``region`` fails (another supported region): the
      MLflow database's backups are replicated there; None for none (a protected environment must have one).
    gpu_enabled: whether GPU (and other accelerated) instance types may appear anywhere in it.
    multi_az: production-grade availability: a NAT gateway per AZ and workloads spread over >= 3 AZs.
    protected: the environment holds data that must survive ``terraform destroy``: the security pack (rule
      PROT-1) requires deletion protection on every stateful resource, and the storage and key settings must
      protect data (prevent_destroy, a 30-day key deletion window).
    tags: owner tags for cost attribution.
    deployer_role: the IAM role, by name, that runs Terraform for this environment: it administers every KMS key
      and (with ``eks.deployer_admin_access``) the cluster. Once GitHub Actions deploys the environment, its
      deploy role (``<prefix>-github-deploy-<env>``, docs/state-bootstrap.md); then any other role's plan (the
      read-only plan role's) is identical to the deploy role's. None: whoever runs Terraform, read from the
      caller's session (a plan by another role then shows those grants changing hands).
    network, keys, storage, budget: the feature sections (see each settings class).
    eks: the EKS cluster for ML workloads (named after ``name_prefix``), or None for none.
    training: the GPU training cluster, or None for an environment without one.
    sagemaker: SageMaker serving (endpoint, image repository, alarms), or None for none.
    sagemaker_training: SageMaker training jobs' role and job specification, or None for none.
    mlflow: the MLflow tracking server on ``eks`` with its PostgreSQL database, or None for none.
    kubeflow: Kubeflow Trainer, Kueue and the ML teams' namespaces on ``eks``, or None for none.
    serving: models served on ``eks``, each by its own Deployment behind an HTTPS load balancer (none by default:
      ``examples/model-serving.json`` adds some).
    failover: the SageMaker endpoint served from ``secondary_region`` too, behind one host name that fails over
      between the regions, or None (required in a protected environment that serves with SageMaker).
    monitoring: alarms, their thresholds and subscribers, the dashboard and Container Insights (a protected
      environment has alarms and at least one subscriber).
    """

    name: Annotated[EnvironmentName, REVIEWED]
    resource_prefix: Annotated[ResourcePrefix, IDENTITY]
    region: Annotated[str, choice(SUPPORTED_REGIONS), IDENTITY]
    secondary_region: Annotated[str, choice(SUPPORTED_REGIONS), IDENTITY] | None = None
    gpu_enabled: Annotated[bool, REVIEWED]
    multi_az: bool
    protected: Annotated[bool, REVIEWED]
    tags: OwnerTags
    deployer_role: IamRoleName | None = None
    network: NetworkSettings
    keys: PlatformKeysSettings
    storage: StorageSettings
    budget: BudgetSettings
    eks: EksClusterSettings | None
    training: GpuTrainingClusterSettings | None
    sagemaker: SageMakerEndpointSettings | None
    sagemaker_training: SageMakerTrainingSettings | None
    mlflow: MlflowSettings | None
    kubeflow: KubeflowSettings | None
    serving: Annotated[tuple[ModelServingSpec, ...], Field(max_length=20)]
    failover: ServingFailoverSettings | None = None
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)

    @classmethod
    def _where(cls, data: dict[str, Any]) -> str:
        return where(str(data.get("name")))

    @property
    def name_prefix(self) -> str:
        """Prefix of resource names: ``<resource_prefix>-<environment>``."""
        return f"{self.resource_prefix}-{self.name}"

    @property
    def resource_tags(self) -> dict[str, str]:
        """The tag map every taggable resource carries."""
        tags = {"environment": self.name, **self.tags.model_dump()}
        return {key: tags[key] for key in OWNER_TAG_KEYS}

    @model_validator(mode="after")
    def _names_fit(self) -> Self:
        require_field(
            len(self.name_prefix) <= MAX_NAME_PREFIX_LENGTH,
            "resource_prefix",
            self.resource_prefix,
            f"a prefix short enough that '<resource_prefix>-{self.name}' has at most {MAX_NAME_PREFIX_LENGTH} "
            "characters (it starts bucket, role and cluster names, which AWS limits)",
        )
        return self

    @model_validator(mode="after")
    def _sections_agree(self) -> Self:
        if _deferring_cross_section_rules.get():
            return self
        if not self.gpu_enabled:
            for path, value in leaves(self):
                if "instance_type" in path.rsplit(".", 1)[-1]:
                    types = value if isinstance(value, tuple) else (value,)
                    require_field(
                        not any(isinstance(t, str) and is_accelerated(t) for t in types),
                        path,
                        value,
                        f"non-GPU instance types only (gpu_enabled is False for {self.name})",
                    )
        if self.multi_az:
            require_field(
                self.network.nat_gateways == "per_az",
                "network.nat_gateways",
                self.network.nat_gateways,
                "'per_az' when multi_az is True (a single NAT gateway is a single point of failure)",
            )
            require_field(
                self.network.az_count >= 3,
                "network.zone_ids",
                self.network.zone_ids,
                "3 or more zone IDs when multi_az is True",
            )
        self._zones_fit()
        production.regions_fit(self)
        self._deployer_fits()
        self._mlflow_fits()
        self._kubeflow_fits()
        self._serving_fits()
        self._gpus_fit()
        if self.sagemaker is not None:
            check_idle_policy(self.sagemaker, protected=self.protected)
        production.protected_fits(self)
        return self

    def _zones_fit(self) -> None:
        # Zone IDs carry their region in their prefix, so a zone of another region is caught here, before a plan.
        prefix = ZONE_ID_PREFIXES[self.region]
        for index, zone_id in enumerate(self.network.zone_ids):
            require_field(
                zone_id.startswith(f"{prefix}-az"),
                f"network.zone_ids[{index}]",
                zone_id,
                f"a zone ID of {self.region} ('{prefix}-az<n>', such as '{prefix}-az1')",
            )
            if self.eks is not None:
                require_field(
                    zone_id not in EKS_UNSUPPORTED_ZONE_IDS,
                    f"network.zone_ids[{index}]",
                    zone_id,
                    "a zone where EKS can place its control plane when eks is enabled (not "
                    + ", ".join(EKS_UNSUPPORTED_ZONE_IDS)
                    + ")",
                )

    def _mlflow_fits(self) -> None:
        if self.mlflow is None:
            return
        require_field(
            self.eks is not None,
            "eks",
            self.eks,
            "an EKS cluster while mlflow is set (the tracking server runs on it); set mlflow to None as well",
        )
        if self.multi_az:
            require_field(
                self.mlflow.database.multi_az,
                "mlflow.database.multi_az",
                self.mlflow.database.multi_az,
                "True when multi_az is True (a single-AZ database is a single point of failure)",
            )
            require_field(
                self.mlflow.replicas >= 2,
                "mlflow.replicas",
                self.mlflow.replicas,
                "2 or more when multi_az is True (pods are spread over the zones)",
            )

    def _deployer_fits(self) -> None:
        if self.deployer_role is None or self.eks is None or not self.eks.deployer_admin_access:
            return
        # The deployer gets its own cluster-admin access entry; EKS keeps one entry per role.
        listed = [arn for arn in self.eks.admin_role_arns if arn.endswith(f":role/{self.deployer_role}")]
        require_field(
            not listed,
            "eks.admin_role_arns",
            listed,
            f"roles other than the deployer_role '{self.deployer_role}', or eks.deployer_admin_access False",
        )

    def _kubeflow_fits(self) -> None:
        if self.kubeflow is None:
            return
        require_field(
            self.eks is not None,
            "eks",
            self.eks,
            "an EKS cluster while kubeflow is set (Trainer and Kueue run on it); set kubeflow to None as well",
        )
        admins = set(self.eks.admin_role_arns) if self.eks is not None else set()
        for index, team in enumerate(self.kubeflow.teams):
            for position, arn in enumerate(team.member_role_arns):
                # EKS keeps one access entry per role: a cluster admin's entry already covers every namespace.
                require_field(
                    arn not in admins,
                    f"kubeflow.teams[{index}].member_role_arns[{position}]",
                    arn,
                    "a role that is not in eks.admin_role_arns (cluster admins already work in every namespace)",
                )
        gpu_group = self.eks.gpu_node_group if self.eks is not None else None
        for index, team in enumerate(self.kubeflow.teams):
            if team.gpu_nodes is None:
                continue
            field = f"kubeflow.teams[{index}].gpu_nodes"
            require_field(
                gpu_group is not None,
                field,
                team.gpu_nodes.model_dump(),
                f"None for team {team.name!r}: {self.name} has no GPU node group (eks.gpu_node_group), so its teams "
                "get CPU quotas only",
            )
            if gpu_group is not None:
                require_field(
                    team.gpu_nodes.gpus <= gpu_group.max_gpus,
                    f"{field}.gpus",
                    team.gpu_nodes.gpus,
                    f"at most {gpu_group.max_gpus} for team {team.name!r}: the GPU node group's GPUs at its maximum "
                    f"size ({gpu_group.max_size} nodes of {gpu_group.gpus_per_instance}); raise "
                    "eks.gpu_node_group.max_size first",
                )

    def _serving_fits(self) -> None:
        if not self.serving:
            return
        require_field(
            self.eks is not None,
            "eks",
            self.eks,
            "an EKS cluster while serving lists models (they run on it); set serving to [] as well",
        )
        teams = {team.name for team in self.kubeflow.teams} if self.kubeflow is not None else set()
        gpu_group = self.eks.gpu_node_group if self.eks is not None else None
        names = [model.name for model in self.serving]
        # MLflow's load balancer holds its host name too: two alias records cannot share one name.
        taken = [self.mlflow.ingress.hostname] if self.mlflow is not None and self.mlflow.ingress is not None else []
        hosts = [*taken, *(model.ingress.hostname for model in self.serving)]
        for index, model in enumerate(self.serving):
            field = f"serving[{index}]"
            require_field(model.name not in names[:index], f"{field}.name", model.name, "a name no other model has")
            require_field(
                model.ingress.hostname not in hosts[: len(taken) + index],
                f"{field}.ingress.hostname",
                model.ingress.hostname,
                "a host name no other model, nor MLflow, has",
            )
            require_field(
                model.namespace not in teams,
                f"{field}.name",
                model.name,
                f"a name whose namespace {model.namespace!r} is not a Kubeflow team's",
            )
            if self.protected:
                require_field(
                    model.image_tag != "latest",
                    f"{field}.image",
                    model.image,
                    f"a fixed tag or a digest in {self.name} (protected): 'latest' changes under a running model",
                )
            if model.gpus:
                require_field(
                    gpu_group is not None,
                    f"{field}.gpus",
                    model.gpus,
                    f"0: {self.name} has no GPU node group (eks.gpu_node_group)",
                )
                if gpu_group is not None:
                    require_field(
                        model.gpus <= gpu_group.gpus_per_instance,
                        f"{field}.gpus",
                        model.gpus,
                        f"at most {gpu_group.gpus_per_instance} (the GPUs of one node of the GPU node group)",
                    )
                    # A served model keeps its GPU nodes up; a clock that takes them away stops the model.
                    require_field(
                        gpu_group.off_hours is None,
                        "eks.gpu_node_group.off_hours",
                        gpu_group.off_hours.model_dump() if gpu_group.off_hours is not None else None,
                        f"None while model {model.name!r} is served on GPUs (the off hours would stop it every night)",
                    )

    def _gpus_fit(self) -> None:
        """Training quotas and served models' GPUs are promises on the same GPU node group: they must fit in it."""
        gpu_group = self.eks.gpu_node_group if self.eks is not None else None
        if gpu_group is None:
            return
        demand = {
            f"team {team.name}": team.gpu_nodes.gpus
            for team in (self.kubeflow.teams if self.kubeflow is not None else ())
            if team.gpu_nodes is not None
        }
        demand.update({f"model {model.name}": model.max_gpus for model in self.serving if model.gpus})
        # Nominal quotas are guarantees, and a served model's pods are not queued at all: together they must fit
        # what the autoscaler can bring up, or a team within its quota would wait for GPUs that never come.
        require_field(
            sum(demand.values()) <= gpu_group.max_gpus,
            "kubeflow.teams" if not any(key.startswith("model") for key in demand) else "serving",
            demand,
            f"GPU quotas and models' GPUs (at max_replicas) adding up to at most {gpu_group.max_gpus} (the GPU node "
            "group's GPUs at its maximum size): raise eks.gpu_node_group.max_size, or share idle GPUs between teams "
            "through a cohort instead of overcommitting",
        )


def leaves(model: BaseModel) -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of every field of ``model`` that is not itself settings, recursively.

    A tuple of settings (SageMaker variants) is walked item by item (``sagemaker.variants[0].name``).
    """
    for path, _, value in walk_fields(model):
        holds_settings = isinstance(value, tuple) and bool(value) and all(isinstance(i, BaseModel) for i in value)
        if not isinstance(value, BaseModel) and not holds_settings:
            yield path, value


def validate_matrix(configs: Mapping[str, EnvironmentConfig], changed: Collection[str] = ()) -> None:
    """Rules across environments: names match keys, production stays protected, VPC blocks do not overlap.

    VPC blocks must not overlap so that environments can be peered (or share a transit gateway) later.
    ``changed``: environments the user overrode; a conflict between two environments is reported on the one
    the user changed.
    """
    for key, config in configs.items():
        require(config.name == key, where(key), "name", config.name, f"the matrix key {key!r}")
    for key in PROTECTED_ENVIRONMENTS:
        if key in configs:
            require(configs[key].protected, where(key), "protected", configs[key].protected, "True (production data)")
    # Every VPC of every environment: its own, and its failover network in the secondary region.
    blocks = {
        (key, field): ipaddress.IPv4Network(network.vpc_cidr)
        for key, config in configs.items()
        for field, network in (
            ("network.vpc_cidr", config.network),
            ("failover.network.vpc_cidr", config.failover.network if config.failover else None),
        )
        if network is not None
    }
    places = list(blocks)
    for index, place in enumerate(places):
        for other in places[:index]:
            if place[0] != other[0] and blocks[place].overlaps(blocks[other]):
                blamed, kept = (other, place) if other[0] in changed and place[0] not in changed else (place, other)
                owner = f"{kept[0]}'s" if kept[1] == "network.vpc_cidr" else f"{kept[0]}'s failover network's"
                raise ConfigurationError(
                    where(blamed[0]),
                    blamed[1],
                    str(blocks[blamed]),
                    f"a block that does not overlap {owner} {blocks[kept]}",
                )
