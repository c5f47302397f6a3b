"""The environment's CloudWatch dashboard: one row per component the environment has.

The body is built as JSON in Python (:func:`dashboard_body`) from what exists, so a component without its
resources (no endpoint before a model is published, no training cluster in dev) has no empty widgets.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.monitoring.alarms import (
    AUTOSCALING_NAMESPACE,
    CONTAINER_INSIGHTS_NAMESPACE,
    MINUTE_SECONDS,
    RDS_NAMESPACE,
    SAGEMAKER_NAMESPACE,
    WINDOW_SECONDS,
)

# Instance metrics of SageMaker endpoints (CPU, memory, GPU of each variant's instances).
SAGEMAKER_INSTANCE_NAMESPACE = "/aws/sagemaker/Endpoints"
DASHBOARD_WIDTH = 24
ROW_HEIGHT = 6
ALARM_ROW_HEIGHT = 4


@dataclass(frozen=True)
class VariantView:
    """A SageMaker variant on the dashboard: its name, and whether it runs on instances (not serverless) and GPUs."""

    name: str
    instances: bool
    gpus: bool


@dataclass(frozen=True)
class DashboardSources:
    """What the dashboard shows, by reference to the environment's resources; None leaves a row out.

    name: the dashboard's name (``<name prefix>``); region: the region of every metric.
    endpoint_name, variants: the deployed SageMaker endpoint and its variants.
    training_asg_name, training_gpu_namespace, training_gpu_metric: the GPU training cluster's Auto Scaling group
      and where its nodes' CloudWatch agent publishes GPU utilization.
    cluster_name, cluster_gpus: the EKS cluster when Container Insights publishes its metrics, and whether it has
      GPU nodes (whose utilization the add-on's DCGM exporter reports).
    database_identifier: the MLflow database.
    alarm_arns: the environment's alarms, shown with their state at the top.
    """

    name: str
    region: str
    endpoint_name: str | None = None
    variants: tuple[VariantView, ...] = ()
    training_asg_name: str | None = None
    training_gpu_namespace: str = ""
    training_gpu_metric: str = ""
    cluster_name: str | None = None
    cluster_gpus: bool = False
    database_identifier: str | None = None
    alarm_arns: tuple[str, ...] = ()


def metric(namespace: str, name: str, dimensions: dict[str, str], **options: Any) -> list[Any]:
    """One metric line of a widget: ``[namespace, name, dimension, value, ..., {options}]``."""
    line: list[Any] = [namespace, name]
    for key, value in dimensions.items():
        line.extend((key, value))
    if options:
        line.append(options)
    return line


def expression(expr: str, label: str, id: str) -> list[dict[str, str]]:
    """A metric math line of a widget."""
    return [{"expression": expr, "label": label, "id": id}]


def graph(
    title: str, region: str, lines: Sequence[list[Any]], period: int = WINDOW_SECONDS, **extra: Any
) -> dict[str, Any]:
    """A time-series metric widget (placed by :func:`layout`)."""
    return {
        "type": "metric",
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "period": period,
            "metrics": list(lines),
            **extra,
        },
    }


def _sagemaker_row(s: DashboardSources, endpoint: str) -> list[dict[str, Any]]:
    def dims(variant: VariantView) -> dict[str, str]:
        return {"EndpointName": endpoint, "VariantName": variant.name}

    invocations = [metric(SAGEMAKER_NAMESPACE, "Invocations", dims(v), stat="Sum") for v in s.variants]
    latency: list[list[Any]] = []
    errors: list[list[Any]] = []
    for index, v in enumerate(s.variants):
        for stat in ("p50", "p99"):
            latency.append(
                metric(SAGEMAKER_NAMESPACE, "ModelLatency", dims(v), stat=stat, id=f"{stat}_{index}", visible=False)
            )
            # ModelLatency is reported in microseconds.
            latency.append(expression(f"{stat}_{index} / 1000", f"{v.name} {stat} (ms)", f"{stat}_ms_{index}"))
        errors.extend(
            metric(SAGEMAKER_NAMESPACE, name, dims(v), stat="Sum", label=f"{v.name} {code}")
            for name, code in (("Invocation4XXErrors", "4xx"), ("Invocation5XXErrors", "5xx"))
        )
    row = [
        graph("SageMaker invocations", s.region, invocations),
        graph("SageMaker model latency (ms)", s.region, latency),
        graph("SageMaker 4xx / 5xx errors", s.region, errors),
    ]
    # No metric counts an endpoint's instances. InvocationsPerInstance adds 1/<instances> per request, so
    # Invocations / InvocationsPerInstance is the count while requests flow; CPU shows the fleet when they don't.
    fleet: list[list[Any]] = []
    for index, v in enumerate(s.variants):
        if not v.instances:
            continue
        fleet.append(
            metric(SAGEMAKER_NAMESPACE, "Invocations", dims(v), stat="Sum", id=f"calls_{index}", visible=False)
        )
        fleet.append(
            metric(SAGEMAKER_NAMESPACE, "InvocationsPerInstance", dims(v), stat="Sum", id=f"per_{index}", visible=False)
        )
        fleet.append(expression(f"calls_{index} / per_{index}", f"{v.name} instances serving", f"instances_{index}"))
        usage = ("CPUUtilization", "GPUUtilization") if v.gpus else ("CPUUtilization",)
        fleet.extend(
            metric(
                SAGEMAKER_INSTANCE_NAMESPACE, name, dims(v), stat="Average", yAxis="right", label=f"{v.name} {name} (%)"
            )
            for name in usage
        )
    if fleet:
        row.append(graph("SageMaker instances and their utilization", s.region, fleet))
    return row


def _training_row(s: DashboardSources, asg: str) -> list[dict[str, Any]]:
    dims = {"AutoScalingGroupName": asg}
    return [
        graph(
            "GPU training cluster instances",
            s.region,
            [
                metric(AUTOSCALING_NAMESPACE, "GroupInServiceInstances", dims, stat="Maximum", label="in service"),
                metric(AUTOSCALING_NAMESPACE, "GroupDesiredCapacity", dims, stat="Maximum", label="desired"),
            ],
            period=MINUTE_SECONDS,
        ),
        graph(
            "GPU training cluster GPU utilization (%)",
            s.region,
            [
                metric(s.training_gpu_namespace, s.training_gpu_metric, dims, stat="Average", label="average GPU"),
                metric(s.training_gpu_namespace, s.training_gpu_metric, dims, stat="Maximum", label="busiest GPU"),
            ],
            period=MINUTE_SECONDS,
        ),
    ]


def _cluster_row(s: DashboardSources, cluster: str) -> list[dict[str, Any]]:
    dims = {"ClusterName": cluster}
    row = [
        graph(
            "EKS nodes",
            s.region,
            [
                metric(CONTAINER_INSIGHTS_NAMESPACE, "cluster_node_count", dims, stat="Maximum", label="nodes"),
                metric(CONTAINER_INSIGHTS_NAMESPACE, "cluster_failed_node_count", dims, stat="Maximum", label="failed"),
            ],
            period=MINUTE_SECONDS,
        ),
        graph(
            "EKS pending pods",
            s.region,
            [metric(CONTAINER_INSIGHTS_NAMESPACE, "pod_status_pending", dims, stat="Sum", label="pending pods")],
            period=MINUTE_SECONDS,
        ),
    ]
    if s.cluster_gpus:
        row.append(
            graph(
                "EKS GPU utilization (%, DCGM)",
                s.region,
                [
                    metric(CONTAINER_INSIGHTS_NAMESPACE, "node_gpu_utilization", dims, stat="Average", label="GPU"),
                    metric(
                        CONTAINER_INSIGHTS_NAMESPACE,
                        "node_gpu_memory_utilization",
                        dims,
                        stat="Average",
                        label="GPU memory",
                    ),
                ],
                period=MINUTE_SECONDS,
            )
        )
    return row


def _database_row(s: DashboardSources, identifier: str) -> list[dict[str, Any]]:
    dims = {"DBInstanceIdentifier": identifier}
    return [
        graph("MLflow database CPU (%)", s.region, [metric(RDS_NAMESPACE, "CPUUtilization", dims, stat="Average")]),
        graph(
            "MLflow database free storage (GiB)",
            s.region,
            [
                metric(RDS_NAMESPACE, "FreeStorageSpace", dims, stat="Minimum", id="free", visible=False),
                expression("free / 1073741824", "free storage (GiB)", "free_gib"),
            ],
        ),
        graph(
            "MLflow database connections",
            s.region,
            [metric(RDS_NAMESPACE, "DatabaseConnections", dims, stat="Maximum", label="connections")],
        ),
        graph(
            "MLflow database read / write latency (ms)",
            s.region,
            [
                metric(RDS_NAMESPACE, "ReadLatency", dims, stat="Average", id="read", visible=False),
                metric(RDS_NAMESPACE, "WriteLatency", dims, stat="Average", id="write", visible=False),
                # RDS reports latency in seconds.
                expression("read * 1000", "read (ms)", "read_ms"),
                expression("write * 1000", "write (ms)", "write_ms"),
            ],
        ),
    ]


def layout(rows: Sequence[Sequence[dict[str, Any]]], heights: Sequence[int]) -> list[dict[str, Any]]:
    """Place each row's widgets side by side across the dashboard's width, rows one below the other."""
    placed: list[dict[str, Any]] = []
    y = 0
    for row, height in zip(rows, heights, strict=True):
        width = DASHBOARD_WIDTH // len(row)
        for index, widget in enumerate(row):
            placed.append({**widget, "x": index * width, "y": y, "width": width, "height": height})
        y += height
    return placed


def dashboard_body(s: DashboardSources) -> dict[str, Any]:
    """The dashboard's body: the alarms' state, then one row per component present."""
    rows: list[list[dict[str, Any]]] = []
    heights: list[int] = []
    if s.alarm_arns:
        rows.append([{"type": "alarm", "properties": {"title": "Alarms", "alarms": list(s.alarm_arns)}}])
        heights.append(ALARM_ROW_HEIGHT)
    for present, build in (
        (s.endpoint_name, _sagemaker_row),
        (s.training_asg_name, _training_row),
        (s.cluster_name, _cluster_row),
        (s.database_identifier, _database_row),
    ):
        if present is not None:
            rows.append(build(s, present))
            heights.append(ROW_HEIGHT)
    return {"widgets": layout(rows, heights)}


class PlatformDashboard(Construct):
    """The environment's dashboard, ``<name prefix>``, built from :class:`DashboardSources`."""

    def __init__(self, scope: Construct, id: str, sources: DashboardSources) -> None:
        super().__init__(scope, id)
        self.sources = sources
        self.body = dashboard_body(sources)
        self.dashboard = aws.cloudwatch_dashboard.CloudwatchDashboard(
            self, "dashboard", dashboard_name=sources.name, dashboard_body=json.dumps(self.body)
        )
