"""The whole ML platform of one environment, composed from the feature constructs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktf import TerraformOutput
from constructs import Construct
from constructs.cost_budget import BudgetSettings, CostBudget, CostBudgetProps
from constructs.eks_cluster import EksClusterSettings
from constructs.eks_platform import EksPlatform, EksPlatformProps
from constructs.gpu_training_cluster import GpuTrainingCluster, GpuTrainingClusterProps, GpuTrainingClusterSettings
from constructs.ml_storage import MlStorage, MlStorageProps, StorageSettings
from constructs.platform_keys import PlatformKeys, PlatformKeysProps, PlatformKeysSettings
from constructs.platform_network import NetworkSettings, PlatformNetwork, PlatformNetworkProps
from constructs.provider_bindings import aws
from constructs.sagemaker_endpoint import SageMakerEndpoint, SageMakerEndpointProps, SageMakerEndpointSettings
from constructs.sagemaker_training import SageMakerTraining, SageMakerTrainingProps, SageMakerTrainingSettings
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
    training: the GPU training cluster's settings; None builds no cluster.
    eks: the EKS cluster's settings (named ``name_prefix``, matching the subnets' cluster tag); None builds none.
    sagemaker: SageMaker serving settings; None builds no endpoint, image repository or alarms.
    sagemaker_training: SageMaker training job settings; None builds no training role or job spec.
    """

    environment: str
    name_prefix: str
    tags: Mapping[str, str]
    network: NetworkSettings
    keys: PlatformKeysSettings
    storage: StorageSettings
    budget: BudgetSettings
    training: GpuTrainingClusterSettings | None = None
    eks: EksClusterSettings | None = None
    sagemaker: SageMakerEndpointSettings | None = None
    sagemaker_training: SageMakerTrainingSettings | None = None


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
                account_id=self.account_id,
                partition=partition.partition,
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
        self.training: GpuTrainingCluster | None = None
        if props.training is not None:
            # A cluster placement group lives in one AZ, so the cluster uses the first private subnet only.
            self.training = GpuTrainingCluster(
                self,
                "training",
                GpuTrainingClusterProps(
                    name=f"{props.name_prefix}-training",
                    settings=props.training,
                    vpc_id=self.network.vpc.id,
                    subnet_id=self.network.private_subnet_ids[0],
                    data_key=self.keys.data,
                    logs_key=self.keys.logs,
                    training_data=self.storage.training_data,
                    checkpoints=self.storage.checkpoints,
                    artifacts=self.storage.model_artifacts,
                    account_id=self.account_id,
                    region=region.name,
                    partition=partition.partition,
                    tags=props.tags,
                    key_deletion_window_days=props.keys.deletion_window_days,
                ),
            )
        self.eks: EksPlatform | None = None
        if props.eks is not None:
            self.eks = EksPlatform(
                self,
                "eks",
                EksPlatformProps(
                    name=props.name_prefix,
                    settings=props.eks,
                    region=region.name,
                    account_id=self.account_id,
                    partition=partition.partition,
                    vpc_id=self.network.vpc.id,
                    vpc_cidr=props.network.vpc_cidr,
                    subnet_ids=self.network.private_subnet_ids,
                    data_key=self.keys.data,
                    secrets_key=self.keys.eks_secrets,
                    logs_key=self.keys.logs,
                    owner_tags=props.tags,
                ),
            )
        self._sagemaker(props, region.name, partition.partition)
        self._outputs()

    def _sagemaker(self, props: MlPlatformProps, region: str, partition: str) -> None:
        self.sagemaker: SageMakerEndpoint | None = None
        if props.sagemaker is not None:
            self.sagemaker = SageMakerEndpoint(
                self,
                "sagemaker",
                SageMakerEndpointProps(
                    name_prefix=props.name_prefix,
                    settings=props.sagemaker,
                    account_id=self.account_id,
                    region=region,
                    partition=partition,
                    model_artifacts=self.storage.model_artifacts,
                    data_key=self.keys.data,
                    logs_key=self.keys.logs,
                    vpc=self.network.vpc,
                    private_subnets=tuple(self.network.private_subnets),
                ),
            )
        self.sagemaker_training: SageMakerTraining | None = None
        if props.sagemaker_training is not None:
            self.sagemaker_training = SageMakerTraining(
                self,
                "sagemaker-training",
                SageMakerTrainingProps(
                    name_prefix=props.name_prefix,
                    settings=props.sagemaker_training,
                    account_id=self.account_id,
                    region=region,
                    partition=partition,
                    training_data=self.storage.training_data,
                    checkpoints=self.storage.checkpoints,
                    model_artifacts=self.storage.model_artifacts,
                    data_key=self.keys.data,
                    tags=props.tags,
                    vpc=self.network.vpc,
                    private_subnets=tuple(self.network.private_subnets),
                ),
            )

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
        if self.training is not None:
            outputs["gpu_training_asg_name"] = (self.training.asg.name, "GPU training cluster: scale it to run jobs")
            outputs["gpu_training_launch_template_id"] = (
                self.training.launch_template.id,
                "Launch template of the GPU training nodes",
            )
            outputs["gpu_training_events_topic_arn"] = (
                self.training.topic.arn,
                "SNS topic for spot interruptions and idle shutdowns of the GPU training cluster",
            )
        if self.eks is not None:
            outputs["eks_cluster_name"] = (self.eks.cluster.cluster.name, "EKS cluster (aws eks update-kubeconfig)")
            outputs["eks_cluster_endpoint"] = (self.eks.cluster.endpoint, "Kubernetes API endpoint of the EKS cluster")
            outputs["eks_oidc_provider_arn"] = (self.eks.cluster.oidc_provider.arn, "IAM OIDC provider for IRSA roles")
        if self.sagemaker is not None:
            outputs["sagemaker_endpoint_name"] = (
                self.sagemaker.endpoint_name,
                "SageMaker endpoint (InService once sagemaker.model_version names a published model)",
            )
            outputs["sagemaker_image_repository_url"] = (
                self.sagemaker.image_repository.repository_url,
                "ECR repository for the platform's serving images",
            )
        if self.sagemaker_training is not None:
            outputs["sagemaker_training_job_spec"] = (
                self.sagemaker_training.job_spec,
                "CreateTrainingJob request: aws sagemaker create-training-job --cli-input-json <this> "
                "--training-job-name <name>",
            )
        for name, (value, description) in outputs.items():
            output = TerraformOutput(self, name, value=value, description=description)
            # Plain names, so `terraform output -raw training_data_bucket` works without a hash suffix.
            output.override_logical_id(name)
