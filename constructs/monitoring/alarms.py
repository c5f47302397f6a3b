"""The environment's alarms: one small set per component that exists, each notifying the alert topic.

Fewer good alarms beat many noisy ones: each alarm here means someone should look now, and says what it saw.
Thresholds come from the matrix (:class:`~constructs.monitoring.settings.AlarmThresholds`); how each is
evaluated is fixed here and described in docs/monitoring.md. Every alarm treats missing data as not breaching:
a component scaled to zero, a parked endpoint or a cluster without pending pods publishes nothing, which is
not an incident.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.monitoring.settings import AlarmThresholds
from constructs.storage.topic import EncryptedTopic

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
RDS_NAMESPACE = "AWS/RDS"
CONTAINER_INSIGHTS_NAMESPACE = "ContainerInsights"
AUTOSCALING_NAMESPACE = "AWS/AutoScaling"
WINDOW_SECONDS = 300
MINUTE_SECONDS = 60
GIB = 1024**3
MIB = 1024**2
DOCS = "docs/monitoring.md"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric with its statistic and period, as an alarm or a dashboard reads it.

    namespace, name, dimensions: which metric; statistic: ``Sum``, ``Average``, ``Maximum``, ``Minimum`` or a
    percentile such as ``p99``; period: seconds per datapoint.
    """

    namespace: str
    name: str
    dimensions: Mapping[str, str]
    statistic: str
    period: int = WINDOW_SECONDS


@dataclass(frozen=True)
class EndpointTarget:
    """A SageMaker endpoint to watch: its name (a reference to the endpoint) and its variants' names."""

    name: str
    variants: tuple[str, ...]


@dataclass(frozen=True)
class PlatformAlarmsProps:
    """Props for :class:`PlatformAlarms`.

    context: the environment: alarms are named ``<name prefix>-<component>-<what>``.
    thresholds: when each alarm fires.
    topic: the alert topic every alarm notifies, on alarm and back to OK.
    endpoint: the deployed SageMaker endpoint, or None (no endpoint until a model is published).
    database_identifier: the MLflow database's identifier (a reference to the instance), or None.
    cluster_name: the EKS cluster's name (a reference to the cluster) when Container Insights publishes its
      metrics, or None.
    training_asg_name: the GPU training cluster's Auto Scaling group name (a reference to the group), or None.
    """

    context: PlatformContext
    thresholds: AlarmThresholds
    topic: EncryptedTopic
    endpoint: EndpointTarget | None = None
    database_identifier: str | None = None
    cluster_name: str | None = None
    training_asg_name: str | None = None


class PlatformAlarms(Construct):
    """The alarms of one environment, by component; :attr:`alarms` maps each alarm's name to it.

    - SageMaker, per variant: the 5xx share of invocations and p99 model latency (not the endpoint's rollback
      alarms, which stay as they are: those are sized for a deployment's bake time and notify no one).
    - MLflow database: CPU, free storage, freeable memory.
    - EKS (Container Insights): nodes with a failed condition, pods stuck in Pending.
    - GPU training cluster: capacity asked for but not in service.
    """

    def __init__(self, scope: Construct, id: str, props: PlatformAlarmsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.alarms: dict[str, Any] = {}
        if props.endpoint is not None:
            for variant in props.endpoint.variants:
                self._sagemaker(props.endpoint.name, variant)
        if props.database_identifier is not None:
            self._database(props.database_identifier)
        if props.cluster_name is not None:
            self._cluster(props.cluster_name)
        if props.training_asg_name is not None:
            self._training(props.training_asg_name)

    @property
    def arns(self) -> list[str]:
        """ARNs of every alarm, in creation order (the dashboard's alarm status widget)."""
        return [alarm.arn for alarm in self.alarms.values()]

    def _sagemaker(self, endpoint: str, variant: str) -> None:
        t = self.props.thresholds
        dimensions = {"EndpointName": endpoint, "VariantName": variant}
        errors = Metric(SAGEMAKER_NAMESPACE, "Invocation5XXErrors", dimensions, "Sum")
        invocations = Metric(SAGEMAKER_NAMESPACE, "Invocations", dimensions, "Sum")
        self._math_alarm(
            f"sagemaker-{variant}-5xx-rate",
            f"More than {t.sagemaker_5xx_percent}% of the requests to variant {variant} failed with a 5xx in 2 of "
            "the last 3 five-minute windows",
            expression="IF(invocations > 0, 100 * errors / invocations, 0)",
            label="5xx share of invocations (%)",
            metrics={"errors": errors, "invocations": invocations},
            threshold=t.sagemaker_5xx_percent,
            evaluation_periods=3,
            datapoints=2,
        )
        self._alarm(
            f"sagemaker-{variant}-latency-p99",
            f"p99 model latency of variant {variant} above {t.sagemaker_latency_p99_ms} ms in 2 of the last 3 "
            "five-minute windows",
            # ModelLatency is reported in microseconds.
            Metric(SAGEMAKER_NAMESPACE, "ModelLatency", dimensions, "p99"),
            threshold=t.sagemaker_latency_p99_ms * 1000,
            comparison="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints=2,
        )

    def _database(self, identifier: str) -> None:
        t = self.props.thresholds
        dimensions = {"DBInstanceIdentifier": identifier}
        self._alarm(
            "mlflow-db-cpu",
            f"MLflow database CPU above {t.rds_cpu_percent}% on average for 15 minutes",
            Metric(RDS_NAMESPACE, "CPUUtilization", dimensions, "Average"),
            threshold=t.rds_cpu_percent,
            comparison="GreaterThanThreshold",
            evaluation_periods=3,
            datapoints=3,
        )
        self._alarm(
            "mlflow-db-free-storage",
            f"MLflow database has less than {t.rds_free_storage_gib} GiB of free storage",
            Metric(RDS_NAMESPACE, "FreeStorageSpace", dimensions, "Minimum"),
            threshold=t.rds_free_storage_gib * GIB,
            comparison="LessThanThreshold",
            evaluation_periods=1,
            datapoints=1,
        )
        self._alarm(
            "mlflow-db-free-memory",
            f"MLflow database has had less than {t.rds_free_memory_mib} MiB of freeable memory for 15 minutes",
            Metric(RDS_NAMESPACE, "FreeableMemory", dimensions, "Minimum"),
            threshold=t.rds_free_memory_mib * MIB,
            comparison="LessThanThreshold",
            evaluation_periods=3,
            datapoints=3,
        )

    def _cluster(self, cluster: str) -> None:
        t = self.props.thresholds
        dimensions = {"ClusterName": cluster}
        self._alarm(
            "eks-failed-nodes",
            f"{t.eks_failed_nodes} or more EKS nodes with a failed condition (not Ready, memory, disk or PID "
            "pressure) for 5 minutes",
            Metric(CONTAINER_INSIGHTS_NAMESPACE, "cluster_failed_node_count", dimensions, "Maximum", MINUTE_SECONDS),
            threshold=t.eks_failed_nodes,
            comparison="GreaterThanOrEqualToThreshold",
            evaluation_periods=5,
            datapoints=5,
        )
        # Each pending pod reports once a minute under the cluster's dimension: the sum is the pending count.
        self._alarm(
            "eks-pending-pods",
            f"{t.eks_pending_pods} or more pods Pending for {t.eks_pending_minutes} minutes: no node can take "
            "them (capacity, quotas, taints, volumes in another zone)",
            Metric(CONTAINER_INSIGHTS_NAMESPACE, "pod_status_pending", dimensions, "Sum", MINUTE_SECONDS),
            threshold=t.eks_pending_pods,
            comparison="GreaterThanOrEqualToThreshold",
            evaluation_periods=t.eks_pending_minutes,
            datapoints=t.eks_pending_minutes,
        )

    def _training(self, asg_name: str) -> None:
        t = self.props.thresholds
        dimensions = {"AutoScalingGroupName": asg_name}
        windows = t.training_capacity_unmet_minutes * MINUTE_SECONDS // WINDOW_SECONDS
        self._math_alarm(
            "training-capacity-unmet",
            f"The GPU training cluster has had fewer instances in service than it asks for during "
            f"{t.training_capacity_unmet_minutes} minutes: no capacity for its instance types, failed launches, "
            "or nodes that never become healthy",
            expression="desired - in_service",
            label="instances asked for but not in service",
            metrics={
                "desired": Metric(AUTOSCALING_NAMESPACE, "GroupDesiredCapacity", dimensions, "Minimum"),
                "in_service": Metric(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", dimensions, "Maximum"),
            },
            threshold=1,
            evaluation_periods=windows,
            datapoints=windows,
            comparison="GreaterThanOrEqualToThreshold",
        )

    def _name(self, key: str) -> str:
        return f"{self.props.context.name_prefix}-{key}"

    def _common(self, key: str, description: str) -> dict[str, Any]:
        topic = self.props.topic
        return {
            "alarm_name": self._name(key),
            "alarm_description": f"{description}. What to check: {DOCS}.",
            "alarm_actions": [topic.arn],
            "ok_actions": [topic.arn],
            "treat_missing_data": "notBreaching",
            # The first notification needs CloudWatch's permissions on the topic and its key.
            "depends_on": topic.ready,
        }

    def _alarm(
        self,
        key: str,
        description: str,
        metric: Metric,
        *,
        threshold: float,
        comparison: str,
        evaluation_periods: int,
        datapoints: int,
    ) -> None:
        statistic = {"statistic": metric.statistic}
        if metric.statistic.startswith("p"):
            statistic = {"extended_statistic": metric.statistic}
        self.alarms[self._name(key)] = aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            key,
            **self._common(key, description),
            namespace=metric.namespace,
            metric_name=metric.name,
            dimensions=dict(metric.dimensions),
            period=metric.period,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            threshold=threshold,
            comparison_operator=comparison,
            **statistic,
        )

    def _math_alarm(
        self,
        key: str,
        description: str,
        *,
        expression: str,
        label: str,
        metrics: Mapping[str, Metric],
        threshold: float,
        evaluation_periods: int,
        datapoints: int,
        comparison: str = "GreaterThanThreshold",
    ) -> None:
        query = aws.cloudwatch_metric_alarm
        queries: Sequence[Any] = [
            query.CloudwatchMetricAlarmMetricQuery(id="result", expression=expression, label=label, return_data=True),
            *(
                query.CloudwatchMetricAlarmMetricQuery(
                    id=name,
                    return_data=False,
                    metric=query.CloudwatchMetricAlarmMetricQueryMetric(
                        namespace=metric.namespace,
                        metric_name=metric.name,
                        dimensions=dict(metric.dimensions),
                        period=metric.period,
                        stat=metric.statistic,
                    ),
                )
                for name, metric in metrics.items()
            ),
        ]
        self.alarms[self._name(key)] = query.CloudwatchMetricAlarm(
            self,
            key,
            **self._common(key, description),
            metric_query=list(queries),
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints,
            threshold=threshold,
            comparison_operator=comparison,
        )
