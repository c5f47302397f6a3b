"""The whole ML platform of one environment, composed from the feature constructs.

The environment's configuration arrives unchanged (anything shaped like :class:`PlatformConfig`, which the
environment model of ``stacks/`` is); this module decides only which feature gets which section and which
resources of one feature another one uses.
"""

from __future__ import annotations

from cdktf import TerraformOutput, TerraformProvider
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.cost.budget import CostBudget, CostBudgetProps
from constructs.eks.ingress import AccessLogs
from constructs.eks.platform import EksPlatform, EksPlatformProps
from constructs.kubeflow.platform import KubeflowTraining, KubeflowTrainingProps
from constructs.kubeflow.teams import TeamStorage
from constructs.mlflow.database import MlflowDatabase, MlflowDatabaseProps
from constructs.mlflow.server import MlflowTrackingServer, MlflowTrackingServerProps
from constructs.monitoring.monitoring import Monitoring, MonitoringProps
from constructs.network.network import PlatformNetwork, PlatformNetworkProps
from constructs.platform_config import PlatformConfig
from constructs.resilience.front import ServingFront, ServingFrontProps
from constructs.resilience.region import SecondaryRegion, SecondaryRegionProps
from constructs.resilience.regional_api import FrontRegion
from constructs.resilience.replication import ArtifactReplication
from constructs.resilience.standby import serving_standby
from constructs.sagemaker.endpoint import SageMakerEndpoint, SageMakerEndpointProps
from constructs.sagemaker.training import SageMakerTraining, SageMakerTrainingProps
from constructs.serving.model import ModelServing, ModelServingProps
from constructs.storage.keys import PlatformKeys, PlatformKeysProps
from constructs.storage.ml_storage import MlStorage, MlStorageProps
from constructs.training.cluster import GpuTrainingCluster, GpuTrainingClusterProps

# Key prefix of the load balancers' access logs in the access-log bucket (one folder per load balancer below it).
LOAD_BALANCER_LOG_PREFIX = "load-balancers"


def internal_clients(config: PlatformConfig) -> tuple[str, ...]:
    """The networks an internal load balancer of the cluster accepts: the VPC and those routed to the cluster."""
    private = config.eks.private_access_cidrs if config.eks is not None else ()
    return (config.network.vpc_cidr, *private)


class MlPlatform(Construct):
    """One environment's ML platform: network, keys, data storage, compute and cost controls.

    With ``failover`` (and a secondary region), :attr:`sagemaker_standby` is the same SageMaker endpoint built a
    second time, in the secondary region (:class:`SecondaryRegion`: its network, logs key and recovery key), serving
    the artifacts :attr:`artifact_replication` copies there and the images the bootstrap stack's ECR replication
    copies there (docs/disaster-recovery.md); otherwise both are None.

    The platform's endpoints and names are exposed as Terraform outputs, so ``cdktf output`` (or a
    CI job) can hand them to users and tools.
    """

    def __init__(
        self, scope: Construct, id: str, config: PlatformConfig, *, secondary_provider: TerraformProvider | None = None
    ) -> None:
        """secondary_provider: the AWS provider of ``config.secondary_region`` (required when it is set)."""
        super().__init__(scope, id)
        self.config = config
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "account")
        region = aws.data_aws_region.DataAwsRegion(self, "region")
        partition = aws.data_aws_partition.DataAwsPartition(self, "partition")
        # The deployer administers every key and the cluster; a policy names its role, never a session.
        if config.deployer_role is None:
            # Whoever runs Terraform; a plan by any other role (a read-only plan role) shows those grants moving.
            session = aws.data_aws_iam_session_context.DataAwsIamSessionContext(self, "deployer", arn=identity.arn)
            deployer_arn = session.issuer_arn
        else:
            deployer_arn = f"arn:{partition.partition}:iam::{identity.account_id}:role/{config.deployer_role}"
        self.context = PlatformContext(
            environment=config.name,
            name_prefix=config.name_prefix,
            account_id=identity.account_id,
            region=region.name,
            partition=partition.partition,
            owner_tags=config.resource_tags,
            deployer_arn=deployer_arn,
            protected=config.protected,
        )
        c = self.context

        self.keys = PlatformKeys(self, "keys", PlatformKeysProps(context=c, settings=config.keys))
        self.secondary: SecondaryRegion | None = None
        if config.secondary_region is not None:
            require(
                secondary_provider is not None,
                self.node.path,
                "secondary_provider",
                None,
                f"the AWS provider of secondary_region {config.secondary_region}",
            )
            assert secondary_provider is not None
            self.secondary = SecondaryRegion(
                self,
                "secondary",
                SecondaryRegionProps(
                    context=c,
                    provider=secondary_provider,
                    region_name=config.secondary_region,
                    key_administrators=self.keys.administrators,
                    keys=config.keys,
                    failover=config.failover if config.sagemaker is not None else None,
                    storage=config.storage,
                ),
            )
        self.network = PlatformNetwork(
            self,
            "network",
            PlatformNetworkProps(
                context=c,
                settings=config.network,
                logs_key=self.keys.logs,
                # The EKS cluster is named after the name prefix; its subnets carry its discovery tag.
                eks_cluster_name=c.name_prefix,
            ),
        )
        self.storage = MlStorage(
            self, "storage", MlStorageProps(context=c, data_key=self.keys.data, settings=config.storage)
        )
        self.budget = CostBudget(
            self,
            "budget",
            CostBudgetProps(
                context=c, settings=config.budget, key_administrators=self.keys.administrators, keys=config.keys
            ),
        )
        self.training: GpuTrainingCluster | None = None
        if config.training is not None:
            # A cluster placement group lives in one AZ, so the cluster uses the first private subnet only.
            self.training = GpuTrainingCluster(
                self,
                "training",
                GpuTrainingClusterProps(
                    name=f"{c.name_prefix}-training",
                    settings=config.training,
                    context=c,
                    vpc_id=self.network.vpc.id,
                    subnet_id=self.network.private_subnet_ids[0],
                    data_key=self.keys.data,
                    logs_key=self.keys.logs,
                    training_data=self.storage.training_data,
                    checkpoints=self.storage.checkpoints,
                    artifacts=self.storage.model_artifacts,
                    keys=config.keys,
                    key_administrators=self.keys.administrators,
                ),
            )
        self.eks: EksPlatform | None = None
        if config.eks is not None:
            self.eks = EksPlatform(
                self,
                "eks",
                EksPlatformProps(
                    context=c,
                    settings=config.eks,
                    vpc_id=self.network.vpc.id,
                    vpc_cidr=config.network.vpc_cidr,
                    subnet_ids=self.network.private_subnet_ids,
                    data_key=self.keys.data,
                    secrets_key=self.keys.eks_secrets,
                    logs_key=self.keys.logs,
                ),
            )
        self.load_balancer_logs = self._load_balancer_logs()
        self._sagemaker(config)
        self._failover(config)
        self._mlflow(config)
        self._kubeflow(config)
        self._serving(config)
        self._monitoring(config)
        self._outputs()

    def _load_balancer_logs(self) -> AccessLogs | None:
        """Where the cluster's load balancers log: the access-log bucket, where the environment keeps one."""
        bucket = self.storage.access_logs
        if self.eks is None or bucket is None:
            return None
        bucket.allow_load_balancer_logs(LOAD_BALANCER_LOG_PREFIX)
        return AccessLogs(bucket=bucket.name, prefix=LOAD_BALANCER_LOG_PREFIX, ready=[bucket.policy])

    def _sagemaker(self, config: PlatformConfig) -> None:
        c = self.context
        self.sagemaker: SageMakerEndpoint | None = None
        if config.sagemaker is not None:
            self.sagemaker = SageMakerEndpoint(
                self,
                "sagemaker",
                SageMakerEndpointProps(
                    context=c,
                    settings=config.sagemaker,
                    model_artifacts=self.storage.model_artifacts,
                    data_key=self.keys.data,
                    logs_key=self.keys.logs,
                    vpc=self.network.vpc,
                    private_subnets=tuple(self.network.private_subnets),
                ),
            )
        self.sagemaker_standby: SageMakerEndpoint | None = None
        self.artifact_replication: ArtifactReplication | None = None
        if config.failover is not None and self.sagemaker is not None and self.secondary is not None:
            standby = serving_standby(self, self.secondary, self.sagemaker)
            self.sagemaker_standby, self.artifact_replication = standby.endpoint, standby.replication
        self.sagemaker_training: SageMakerTraining | None = None
        if config.sagemaker_training is not None:
            self.sagemaker_training = SageMakerTraining(
                self,
                "sagemaker-training",
                SageMakerTrainingProps(
                    context=c,
                    settings=config.sagemaker_training,
                    training_data=self.storage.training_data,
                    checkpoints=self.storage.checkpoints,
                    model_artifacts=self.storage.model_artifacts,
                    data_key=self.keys.data,
                    vpc=self.network.vpc,
                    private_subnets=tuple(self.network.private_subnets),
                ),
            )

    def _failover(self, config: PlatformConfig) -> None:
        # Only a published model has an endpoint to fail over, in either region.
        self.failover: ServingFront | None = None
        s = config.sagemaker
        if config.failover is None or s is None or self.sagemaker is None or self.sagemaker.endpoint is None:
            return
        secondary = self.secondary
        require(
            secondary is not None and secondary.logs_key is not None,
            self.node.path,
            "secondary_region",
            config.secondary_region,
            "a secondary region with the failover standby (its logs key) when failover is set",
        )
        assert secondary is not None and secondary.logs_key is not None
        self.failover = ServingFront(
            self,
            "failover",
            ServingFrontProps(
                settings=config.failover,
                endpoint_name=self.sagemaker.endpoint_name,
                primary=FrontRegion("primary", self.context, self.keys.logs),
                secondary=FrontRegion("secondary", secondary.context, secondary.logs_key, secondary.provider),
                log_retention_days=s.log_retention_days,
                error_5xx_threshold=s.error_5xx_threshold,
            ),
        )

    def _mlflow(self, config: PlatformConfig) -> None:
        c = self.context
        self.mlflow_database: MlflowDatabase | None = None
        self.mlflow: MlflowTrackingServer | None = None
        if config.mlflow is None or self.eks is None or config.eks is None:
            return
        self.mlflow_database = MlflowDatabase(
            self,
            "mlflow-database",
            MlflowDatabaseProps(
                context=c,
                settings=config.mlflow.database,
                vpc_id=self.network.vpc.id,
                subnet_ids=self.network.private_subnet_ids,
                client_security_group_id=self.eks.cluster.node_security_group_id,
                data_key=self.keys.data,
                logs_key=self.keys.logs,
                key_administrators=self.keys.administrators,
                keys=config.keys,
                recovery_region=self.secondary,
            ),
        )
        self.mlflow = MlflowTrackingServer(
            self,
            "mlflow",
            MlflowTrackingServerProps(
                context=c,
                settings=config.mlflow,
                cluster=self.eks.cluster,
                database=self.mlflow_database,
                artifacts=self.storage.mlflow_artifacts,
                node_selector=self.eks.cpu_node_selector,
                client_cidrs=internal_clients(config),
                access_logs=self.load_balancer_logs,
                depends_on=self.eks.workload_dependencies,
                in_cluster_resources=config.eks.in_cluster_components,
            ),
        )

    def _kubeflow(self, config: PlatformConfig) -> None:
        self.kubeflow: KubeflowTraining | None = None
        if config.kubeflow is None or self.eks is None or config.eks is None:
            return
        self.kubeflow = KubeflowTraining(
            self,
            "kubeflow",
            KubeflowTrainingProps(
                context=self.context,
                settings=config.kubeflow,
                cluster=self.eks.cluster,
                cpu_node_selector=self.eks.cpu_node_selector,
                gpu_nodes=self.eks.gpu_nodes,
                storage=TeamStorage(
                    training_data=self.storage.training_data,
                    checkpoints=self.storage.checkpoints,
                    model_artifacts=self.storage.model_artifacts,
                ),
                mlflow_tracking_uri=self.mlflow.cluster_tracking_uri if self.mlflow is not None else None,
                depends_on=self.eks.workload_dependencies,
                in_cluster_resources=config.eks.in_cluster_components,
            ),
        )

    def _serving(self, config: PlatformConfig) -> None:
        self.models: dict[str, ModelServing] = {}
        if self.eks is None or config.eks is None:
            return
        for spec in config.serving:
            self.models[spec.name] = ModelServing(
                self,
                f"model-{spec.name}",
                ModelServingProps(
                    context=self.context,
                    spec=spec,
                    cluster=self.eks.cluster,
                    model_artifacts=self.storage.model_artifacts,
                    cpu_node_selector=self.eks.cpu_node_selector,
                    gpu_nodes=self.eks.gpu_nodes,
                    client_cidrs=internal_clients(config),
                    logs_key=self.keys.logs,
                    # Web ACL logs are kept as long as the cluster's own.
                    log_retention_days=config.eks.log_retention_days,
                    access_logs=self.load_balancer_logs,
                    depends_on=self.eks.workload_dependencies,
                    in_cluster_resources=config.eks.in_cluster_components,
                ),
            )

    def _monitoring(self, config: PlatformConfig) -> None:
        # Last: it watches whatever the other features built.
        self.monitoring = Monitoring(
            self,
            "monitoring",
            MonitoringProps(
                context=self.context,
                settings=config.monitoring,
                key_administrators=self.keys.administrators,
                keys=config.keys,
                logs_key=self.keys.logs,
                sagemaker=self.sagemaker,
                database=self.mlflow_database,
                eks=self.eks,
                training=self.training,
            ),
        )

    def _outputs(self) -> None:
        outputs: dict[str, tuple[object, str]] = {
            "vpc_id": (self.network.vpc.id, "VPC of the platform"),
            "private_subnet_ids": (self.network.private_subnet_ids, "Private subnets, one per AZ"),
            "training_data_bucket": (self.storage.training_data.name, "S3 bucket for training datasets"),
            "model_artifacts_bucket": (self.storage.model_artifacts.name, "S3 bucket for trained model artifacts"),
            "checkpoints_bucket": (self.storage.checkpoints.name, "S3 bucket for training checkpoints"),
            "mlflow_artifacts_bucket": (self.storage.mlflow_artifacts.name, "S3 bucket for MLflow artifacts"),
            "data_kms_key_arn": (self.keys.data.arn, "KMS key encrypting the platform's data"),
            "cost_alerts_topic_arn": (
                self.budget.topic.arn,
                "SNS topic the environment's budgets alert (subscribe chat or paging integrations to it)",
            ),
        }
        if self.monitoring.topic is not None:
            outputs["alerts_topic_arn"] = (
                self.monitoring.topic.arn,
                "SNS topic the environment's alarms notify (subscribe chat or paging integrations to it)",
            )
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
        if self.mlflow is not None and self.mlflow_database is not None:
            outputs["mlflow_tracking_uri"] = (self.mlflow.tracking_uri, "MLFLOW_TRACKING_URI of the tracking server")
            outputs["mlflow_database_endpoint"] = (self.mlflow_database.address, "MLflow's PostgreSQL host (TLS only)")
            outputs["mlflow_database_secret_arn"] = (
                self.mlflow_database.secret_arn,
                "Secrets Manager secret RDS keeps the database master user in (rotated every 7 days)",
            )
            if self.mlflow.admin_secret is not None:
                outputs["mlflow_admin_secret_arn"] = (
                    self.mlflow.admin_secret.arn,
                    "Secrets Manager secret with the MLflow admin's user name and password",
                )
        if self.kubeflow is not None:
            outputs["kubeflow_team_role_arns"] = (
                {name: team.role.arn for name, team in self.kubeflow.teams.items()},
                "IRSA role of each team's 'training' service account (its data prefix only)",
            )
        if self.models:
            outputs["model_urls"] = (
                {name: model.url for name, model in self.models.items()},
                "HTTPS address of each model served on EKS",
            )
        if self.sagemaker is not None:
            outputs["sagemaker_endpoint_name"] = (
                self.sagemaker.endpoint_name,
                "SageMaker endpoint (InService once sagemaker.model_version names a published model)",
            )
            outputs["sagemaker_image_repository_url"] = (
                self.sagemaker.image_repository.repository_url,
                "ECR repository for the platform's serving images",
            )
        if self.sagemaker_standby is not None and self.secondary is not None:
            assert self.secondary.model_artifacts is not None
            outputs["sagemaker_standby_endpoint_name"] = (
                self.sagemaker_standby.endpoint_name,
                "The SageMaker endpoint's standby in the secondary region (same name, that region)",
            )
            outputs["model_artifacts_replica_bucket"] = (
                self.secondary.model_artifacts.name,
                "Replica of the model artifacts in the secondary region (models/<model_name>/ replicated there)",
            )
        if self.failover is not None:
            outputs["serving_failover_url"] = (
                self.failover.url,
                "SigV4-signed (service execute-api) inference requests: the primary region's endpoint, or the "
                "secondary's while the primary is unhealthy",
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
