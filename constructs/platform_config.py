"""What the platform construct needs to know about one environment: :class:`PlatformConfig`.

A protocol, so that constructs/ does not depend on the environment model of stacks/, which satisfies it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from constructs.cost.settings import BudgetSettings
from constructs.eks.settings import EksClusterSettings
from constructs.kubeflow.settings import KubeflowSettings
from constructs.mlflow.settings import MlflowSettings
from constructs.monitoring.settings import MonitoringSettings
from constructs.network.settings import NetworkSettings
from constructs.resilience.settings import ServingFailoverSettings
from constructs.sagemaker.settings import SageMakerEndpointSettings, SageMakerTrainingSettings
from constructs.serving.settings import ModelServingSpec
from constructs.storage.settings import PlatformKeysSettings, StorageSettings
from constructs.training.settings import GpuTrainingClusterSettings


class PlatformConfig(Protocol):
    """What the platform needs to know about one environment: its names, its tags and one section per feature.

    A section that is None builds nothing of that feature. ``protected`` environments keep their stateful
    resources out of Terraform's reach (``prevent_destroy``, rule PROT-1).
    """

    @property
    def name(self) -> str: ...

    @property
    def name_prefix(self) -> str: ...

    @property
    def resource_tags(self) -> Mapping[str, str]: ...

    @property
    def protected(self) -> bool: ...

    @property
    def deployer_role(self) -> str | None: ...

    @property
    def secondary_region(self) -> str | None: ...

    @property
    def failover(self) -> ServingFailoverSettings | None: ...

    @property
    def network(self) -> NetworkSettings: ...

    @property
    def keys(self) -> PlatformKeysSettings: ...

    @property
    def storage(self) -> StorageSettings: ...

    @property
    def budget(self) -> BudgetSettings: ...

    @property
    def eks(self) -> EksClusterSettings | None: ...

    @property
    def training(self) -> GpuTrainingClusterSettings | None: ...

    @property
    def sagemaker(self) -> SageMakerEndpointSettings | None: ...

    @property
    def sagemaker_training(self) -> SageMakerTrainingSettings | None: ...

    @property
    def mlflow(self) -> MlflowSettings | None: ...

    @property
    def kubeflow(self) -> KubeflowSettings | None: ...

    @property
    def serving(self) -> tuple[ModelServingSpec, ...]: ...

    @property
    def monitoring(self) -> MonitoringSettings: ...
