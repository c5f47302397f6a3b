"""The whole ML platform of one environment, composed from the feature constructs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktf import TerraformOutput
from constructs import Construct
from constructs.cost_budget import BudgetSettings, CostBudget, CostBudgetProps
from constructs.ml_storage import MlStorage, MlStorageProps, StorageSettings
from constructs.platform_keys import PlatformKeys, PlatformKeysProps, PlatformKeysSettings
from constructs.platform_network import NetworkSettings, PlatformNetwork, PlatformNetworkProps
from constructs.provider_bindings import aws
from constructs.validation import ConfigurationError


@dataclass(frozen=True)
class MlPlatformProps:
    """Props for :class:`MlPlatform`: the environment's name and one settings object per feature.

    environment: environment name, used in names and the budget's tag filter.
    name_prefix: prefix of every resource name (``<project>-<environment>``).
    tags: the owner tags; the provider's default_tags apply them to ordinary resources, and
      constructs copy them where default_tags cannot reach (instances launched from a launch
      template, Auto Scaling group instances).
    network, keys, storage, budget: see each settings class.
    """

    environment: str
    name_prefix: str
    tags: Mapping[str, str]
    network: NetworkSettings
    keys: PlatformKeysSettings
    storage: StorageSettings
    budget: BudgetSettings


class MlPlatform(Construct):
    """One environment's ML platform: network, keys, data storage, compute and cost controls.

    The platform's endpoints and names are exposed as Terraform outputs, so ``cdktf output`` (or a
    CI job) can hand them to users and tools.
    """

    def __init__(self, scope: Construct, id: str, props: MlPlatformProps) -> None:
        super().__init__(scope, id)
        if not props.name_prefix or not props.environment:
            raise ConfigurationError(
                self.node.path, "name_prefix", props.name_prefix, "a non-empty name prefix and environment"
            )
        self.props = props
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "account")
        region = aws.data_aws_region.DataAwsRegion(self, "region")
        partition = aws.data_aws_partition.DataAwsPartition(self, "partition")
        self.account_id: str = identity.account_id

        self.keys = PlatformKeys(
            self,
            "keys",
            PlatformKeysProps(
                name_prefix=props.name_prefix,
                account_id=self.account_id,
                region=region.name,
                partition=partition.partition,
                settings=props.keys,
            ),
        )
        self.network = PlatformNetwork(
            self,
            "network",
            PlatformNetworkProps(
                name=props.name_prefix,
                settings=props.network,
                logs_key=self.keys.logs,
                eks_cluster_name=props.name_prefix,
            ),
        )
        self.storage = MlStorage(
            self,
            "storage",
            MlStorageProps(
                name_prefix=props.name_prefix,
                account_id=self.account_id,
                data_key=self.keys.data,
                settings=props.storage,
            ),
        )
        self.budget = CostBudget(
            self,
            "budget",
            CostBudgetProps(
                name=f"{props.name_prefix}-monthly",
                account_id=self.account_id,
                environment=props.environment,
                settings=props.budget,
            ),
        )
        self._outputs()

    def _outputs(self) -> None:
        outputs = {
            "vpc_id": (self.network.vpc.id, "VPC of the platform"),
            "private_subnet_ids": (self.network.private_subnet_ids, "Private subnets, one per AZ"),
            "training_data_bucket": (self.storage.training_data.name, "S3 bucket for training datasets"),
            "model_artifacts_bucket": (self.storage.model_artifacts.name, "S3 bucket for trained model artifacts"),
            "checkpoints_bucket": (self.storage.checkpoints.name, "S3 bucket for training checkpoints"),
            "mlflow_artifacts_bucket": (self.storage.mlflow_artifacts.name, "S3 bucket for MLflow artifacts"),
            "data_kms_key_arn": (self.keys.data.arn, "KMS key encrypting the platform's data"),
        }
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)
