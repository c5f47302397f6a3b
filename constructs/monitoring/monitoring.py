"""Monitoring of one environment: the alert topic, the alarms, the dashboard and Container Insights on EKS."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from constructs.core.context import PlatformContext
from constructs.core.instance_types import is_accelerated
from constructs.core.refs import KmsKeyRef
from constructs.eks.platform import EksPlatform
from constructs.mlflow.database import MlflowDatabase
from constructs.monitoring.alarms import EndpointTarget, PlatformAlarms, PlatformAlarmsProps
from constructs.monitoring.dashboard import DashboardSources, PlatformDashboard, VariantView
from constructs.monitoring.observability import ContainerInsights, ContainerInsightsProps
from constructs.monitoring.settings import MonitoringSettings
from constructs.sagemaker.endpoint import SageMakerEndpoint
from constructs.sagemaker.settings import InstanceVariantSettings
from constructs.storage.keys import KeyAdministrators
from constructs.storage.settings import PlatformKeysSettings
from constructs.storage.topic import EncryptedTopic, EncryptedTopicProps
from constructs.training.cluster import GpuTrainingCluster
from constructs.training.idle_shutdown import GPU_UTILIZATION_METRIC, METRICS_NAMESPACE


@dataclass(frozen=True)
class MonitoringProps:
    """Props for :class:`Monitoring`.

    context: the environment: names (``<name prefix>-alerts``, the dashboard ``<name prefix>``), region, account.
    settings: the environment's monitoring settings.
    key_administrators: who administers the alert topic's key (the platform's key administrators).
    keys: the environment's key settings, which the alert topic's key follows.
    logs_key: KMS key of the Container Insights performance log group (the platform's logs key).
    sagemaker: the SageMaker endpoint construct, or None; watched once its endpoint exists (a model is published).
    database: the MLflow database, or None.
    eks: the EKS cluster with its node groups, or None; Container Insights goes on it when the settings ask.
    training: the GPU training cluster, or None.
    """

    context: PlatformContext
    settings: MonitoringSettings
    key_administrators: KeyAdministrators
    keys: PlatformKeysSettings
    logs_key: KmsKeyRef
    sagemaker: SageMakerEndpoint | None = None
    database: MlflowDatabase | None = None
    eks: EksPlatform | None = None
    training: GpuTrainingCluster | None = None


class Monitoring(Construct):
    """What watches one environment and whom it tells.

    - Container Insights (:class:`ContainerInsights`) on the EKS cluster, with NVIDIA GPU metrics from its DCGM
      exporter, unless ``settings.container_insights`` is off.
    - With ``settings.alarms``: the alert topic ``<name prefix>-alerts`` (an
      :class:`~constructs.storage.topic.EncryptedTopic` that only the account's alarms in its region may publish to)
      and its subscribers, and the alarms (:class:`PlatformAlarms`) of every component present, each notifying it.
    - A dashboard (:class:`PlatformDashboard`) with the alarms' state and one row per component present.

    :attr:`topic` and :attr:`alarms` are None without alarms; :attr:`container_insights` is None without a
    cluster or with Container Insights off.
    """

    def __init__(self, scope: Construct, id: str, props: MonitoringProps) -> None:
        super().__init__(scope, id)
        self.props = props
        s = props.settings
        c = props.context
        self.container_insights: ContainerInsights | None = None
        if props.eks is not None and s.container_insights:
            self.container_insights = ContainerInsights(
                self,
                "container-insights",
                ContainerInsightsProps(
                    cluster=props.eks.cluster,
                    logs_key=props.logs_key,
                    log_retention_days=s.performance_log_retention_days,
                    depends_on=[*props.eks.node_groups, *props.eks.addons.addons.values()],
                ),
            )
        cluster_name = props.eks.cluster.cluster.name if self.container_insights is not None and props.eks else None
        endpoint = self._endpoint()
        database = props.database.instance.identifier if props.database is not None else None
        asg_name = props.training.asg.name if props.training is not None else None

        self.topic: EncryptedTopic | None = None
        self.alarms: PlatformAlarms | None = None
        if s.alarms:
            # Only the alarms of this account and region may publish (CloudWatch sets both source keys).
            self.topic = EncryptedTopic(
                self,
                "alerts",
                EncryptedTopicProps(
                    context=c,
                    name=f"{c.name_prefix}-alerts",
                    description=f"{c.name_prefix}: monitoring alert notifications",
                    publisher="cloudwatch.amazonaws.com",
                    publisher_sid="CloudWatchAlarms",
                    source_arn=c.arn("cloudwatch", "alarm:*"),
                    key_administrators=props.key_administrators,
                    keys=props.keys,
                    emails=s.alert_emails,
                    https_endpoints=s.alert_https_endpoints,
                ),
            )
            self.alarms = PlatformAlarms(
                self,
                "alarms",
                PlatformAlarmsProps(
                    context=c,
                    thresholds=s.thresholds,
                    topic=self.topic,
                    endpoint=EndpointTarget(endpoint[0], tuple(v.name for v in endpoint[1])) if endpoint else None,
                    database_identifier=database,
                    cluster_name=cluster_name,
                    training_asg_name=asg_name,
                ),
            )
        gpu_nodes = props.eks is not None and props.eks.gpu_nodes is not None
        self.dashboard = PlatformDashboard(
            self,
            "dashboard",
            DashboardSources(
                name=c.name_prefix,
                region=c.region,
                endpoint_name=endpoint[0] if endpoint else None,
                variants=endpoint[1] if endpoint else (),
                training_asg_name=asg_name,
                training_gpu_namespace=METRICS_NAMESPACE,
                training_gpu_metric=GPU_UTILIZATION_METRIC,
                cluster_name=cluster_name,
                cluster_gpus=gpu_nodes,
                database_identifier=database,
                alarm_arns=tuple(self.alarms.arns) if self.alarms is not None else (),
            ),
        )

    def _endpoint(self) -> tuple[str, tuple[VariantView, ...]] | None:
        """The deployed endpoint's name (a reference to it) and its variants, or None before a model is published."""
        sagemaker = self.props.sagemaker
        if sagemaker is None or sagemaker.endpoint is None:
            return None
        variants = tuple(
            VariantView(
                name=v.name,
                instances=isinstance(v, InstanceVariantSettings),
                gpus=isinstance(v, InstanceVariantSettings) and is_accelerated(v.instance_type),
            )
            for v in sagemaker.props.settings.variants
        )
        return sagemaker.endpoint.name, variants
