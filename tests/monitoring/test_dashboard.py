"""The dashboard: valid JSON, a row per component the environment has, every metric on the right resource."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.monitoring.dashboard import DashboardSources, dashboard_body

from stacks.matrix import MATRIX
from tests.support.synth_json import ENVIRONMENTS, data_ref, only, ref, resources

TRAINING = ["GPU training cluster instances", "GPU training cluster GPU utilization (%)"]
CLUSTER = ["EKS nodes", "EKS pending pods"]
CLUSTER_GPUS = ["EKS GPU utilization (%, DCGM)"]
DATABASE = [
    "MLflow database CPU (%)",
    "MLflow database free storage (GiB)",
    "MLflow database connections",
    "MLflow database read / write latency (ms)",
]
SAGEMAKER = ["SageMaker invocations", "SageMaker model latency (ms)", "SageMaker 4xx / 5xx errors"]
SAGEMAKER_INSTANCES = ["SageMaker instances and their utilization"]


def _dashboard(stack: dict[str, Any]) -> dict[str, Any]:
    return only(stack, "aws_cloudwatch_dashboard", "platform/monitoring/dashboard/dashboard")


def _widgets(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return json.loads(_dashboard(stack)["dashboard_body"])["widgets"]


def _titles(stack: dict[str, Any]) -> list[str]:
    return [w["properties"]["title"] for w in _widgets(stack)]


def _lines(widget: dict[str, Any]) -> list[list[Any]]:
    return [line for line in widget["properties"]["metrics"] if isinstance(line[0], str)]


def _widget(stack: dict[str, Any], title: str) -> dict[str, Any]:
    (widget,) = [w for w in _widgets(stack) if w["properties"]["title"] == title]
    return widget


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ("dev", [*CLUSTER, *DATABASE]),
        ("staging", ["Alarms", *TRAINING, *CLUSTER, *CLUSTER_GPUS, *DATABASE]),
        ("prod", ["Alarms", *TRAINING, *CLUSTER, *CLUSTER_GPUS, *DATABASE]),
    ],
)
def test_each_environment_has_its_dashboard_with_a_row_per_component(stacks, env, expected) -> None:
    dashboard = _dashboard(stacks[env])
    assert dashboard["dashboard_name"] == f"mlp-{env}"
    assert _titles(stacks[env]) == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_widgets_fill_the_grid_row_by_row_without_overlapping(stacks, published, env) -> None:
    for stack in (stacks[env], published[env]):
        cells: set[tuple[int, int]] = set()
        for widget in _widgets(stack):
            assert widget["x"] + widget["width"] <= 24 and widget["width"] >= 6
            area = {
                (x, y)
                for x in range(widget["x"], widget["x"] + widget["width"])
                for y in range(widget["y"], widget["y"] + widget["height"])
            }
            assert not area & cells
            cells |= area
        rows = {w["y"] for w in _widgets(stack)}
        for y in rows:
            assert sum(w["width"] for w in _widgets(stack) if w["y"] == y) == 24


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_metric_widget_names_its_region_and_a_resource_of_this_stack(stacks, env) -> None:
    stack = stacks[env]
    database = ref(stack, "aws_db_instance", "platform/mlflow-database/instance", "identifier")
    cluster = ref(stack, "aws_eks_cluster", "platform/eks/cluster/cluster", "name")
    for widget in _widgets(stack):
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == data_ref(stack, "aws_region", "platform/region", "name")
        for line in _lines(widget):
            names = line[:-1] if isinstance(line[-1], dict) else line
            dimensions = dict(zip(names[2::2], names[3::2], strict=True))
            expected = {"AWS/RDS": {"DBInstanceIdentifier": database}, "ContainerInsights": {"ClusterName": cluster}}
            assert dimensions == expected.get(line[0], dimensions)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_alarm_row_shows_every_alarm_of_the_environment(stacks, env) -> None:
    stack = stacks[env]
    alarms = [
        f"${{aws_cloudwatch_metric_alarm.{name}.arn}}"
        for name, a in resources(stack, "aws_cloudwatch_metric_alarm").items()
        if "/monitoring/alarms/" in a["//"]["metadata"]["path"]
    ]
    alarm_widget = _widgets(stack)[0]
    assert alarm_widget["type"] == "alarm" and sorted(alarm_widget["properties"]["alarms"]) == sorted(alarms)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_training_row_shows_in_service_instances_and_the_nodes_gpu_utilization(stacks, env) -> None:
    stack = stacks[env]
    asg = ref(stack, "aws_autoscaling_group", "platform/training/asg", "name")
    instances = _lines(_widget(stack, TRAINING[0]))
    assert [line[:4] for line in instances] == [
        ["AWS/AutoScaling", "GroupInServiceInstances", "AutoScalingGroupName", asg],
        ["AWS/AutoScaling", "GroupDesiredCapacity", "AutoScalingGroupName", asg],
    ]
    gpus = _lines(_widget(stack, TRAINING[1]))
    # Where the nodes' CloudWatch agent publishes, aggregated per Auto Scaling group (the idle alarm's metric).
    idle = only(stack, "aws_cloudwatch_metric_alarm", "platform/training/idle-alarm")
    assert {tuple(line[:4]) for line in gpus} == {(idle["namespace"], idle["metric_name"], "AutoScalingGroupName", asg)}
    assert sorted(line[4]["stat"] for line in gpus) == ["Average", "Maximum"]


def test_gpu_utilization_of_eks_comes_from_dcgm_only_where_there_are_gpu_nodes(stacks) -> None:
    for env in ENVIRONMENTS:
        has_gpus = MATRIX[env].eks is not None and MATRIX[env].eks.gpu_node_group is not None  # type: ignore[union-attr]
        assert (CLUSTER_GPUS[0] in _titles(stacks[env])) == has_gpus
    lines = _lines(_widget(stacks["prod"], CLUSTER_GPUS[0]))
    assert [line[1] for line in lines] == ["node_gpu_utilization", "node_gpu_memory_utilization"]


def test_a_published_model_adds_the_sagemaker_row(published) -> None:
    # Dev serves serverless: no instances to count. Staging and prod serve on GPU instances.
    assert _titles(published["dev"]) == [*SAGEMAKER, *CLUSTER, *DATABASE]
    for env in ("staging", "prod"):
        titles = _titles(published[env])
        assert titles[1:5] == [*SAGEMAKER, *SAGEMAKER_INSTANCES]
        stack = published[env]
        endpoint = ref(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint", "name")
        fleet = _widget(stack, SAGEMAKER_INSTANCES[0])["properties"]["metrics"]
        (variant,) = MATRIX[env].sagemaker.variants  # type: ignore[union-attr]
        dims = ["EndpointName", endpoint, "VariantName", variant.name]
        assert [line[:6] for line in fleet if isinstance(line[0], str)] == [
            ["AWS/SageMaker", "Invocations", *dims],
            ["AWS/SageMaker", "InvocationsPerInstance", *dims],
            ["/aws/sagemaker/Endpoints", "CPUUtilization", *dims],
            ["/aws/sagemaker/Endpoints", "GPUUtilization", *dims],
        ]
        # No metric counts an endpoint's instances: Invocations / InvocationsPerInstance does while requests flow.
        (count,) = [line[0] for line in fleet if isinstance(line[0], dict)]
        assert count["expression"] == "calls_0 / per_0"
        errors = _lines(_widget(stack, SAGEMAKER[2]))
        assert [line[1] for line in errors] == ["Invocation4XXErrors", "Invocation5XXErrors"]


def test_without_container_insights_the_cluster_row_is_left_out(altered) -> None:
    assert _titles(altered["staging"]) == ["Alarms", *TRAINING, *DATABASE]


def test_an_environment_with_nothing_to_watch_has_an_empty_dashboard_and_alarms_alone_fill_a_row() -> None:
    assert dashboard_body(DashboardSources(name="mlp-x", region="us-east-1")) == {"widgets": []}
    body = dashboard_body(DashboardSources(name="mlp-x", region="us-east-1", alarm_arns=("arn:a", "arn:b")))
    assert body == {
        "widgets": [
            {
                "type": "alarm",
                "properties": {"title": "Alarms", "alarms": ["arn:a", "arn:b"]},
                "x": 0,
                "y": 0,
                "width": 24,
                "height": 4,
            }
        ]
    }
