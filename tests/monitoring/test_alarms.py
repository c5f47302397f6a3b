"""The alarms: what each one watches, when it fires, and that it tells the alert topic (and only where it exists)."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.matrix import MATRIX
from tests.support.synth_json import names_of, ref, resources

TOPIC = "platform/monitoring/alerts/topic"
GIB, MIB = 1024**3, 1024**2


def _monitoring_alarms(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        a["alarm_name"]: a
        for a in resources(stack, "aws_cloudwatch_metric_alarm").values()
        if "/monitoring/alarms/" in a["//"]["metadata"]["path"]
    }


def _metric(alarm: dict[str, Any]) -> dict[str, Any]:
    keys = ("namespace", "metric_name", "dimensions", "statistic", "extended_statistic", "period")
    return {key: alarm[key] for key in keys if key in alarm}


def _rule(alarm: dict[str, Any]) -> tuple[Any, ...]:
    return (alarm["comparison_operator"], alarm["threshold"], alarm["evaluation_periods"], alarm["datapoints_to_alarm"])


def _queries(alarm: dict[str, Any]) -> dict[str, Any]:
    return {q["id"]: q for q in alarm["metric_query"]}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_each_alarm_notifies_the_alert_topic_on_alarm_and_back_to_ok(stacks, env) -> None:
    stack = stacks[env]
    alarms = _monitoring_alarms(stack)
    assert set(alarms) == {
        f"mlp-{env}-{name}"
        for name in (
            "mlflow-db-cpu",
            "mlflow-db-free-storage",
            "mlflow-db-free-memory",
            "eks-failed-nodes",
            "eks-pending-pods",
            "training-capacity-unmet",
        )
    }
    topic = ref(stack, "aws_sns_topic", TOPIC, "arn")
    ready = {
        ref(stack, "aws_sns_topic_policy", "platform/monitoring/alerts/policy", "")[2:-2],
        ref(stack, "aws_kms_key", "platform/monitoring/alerts/key", "")[2:-2],
    }
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == [topic] and alarm["ok_actions"] == [topic], name
        assert alarm["treat_missing_data"] == "notBreaching", name
        assert "docs/monitoring.md" in alarm["alarm_description"], name
        assert set(alarm["depends_on"]) == ready, name


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_database_alarms_watch_the_mlflow_instance_with_the_matrix_thresholds(stacks, env) -> None:
    stack = stacks[env]
    alarms = _monitoring_alarms(stack)
    t = MATRIX[env].monitoring.thresholds
    identifier = {
        "DBInstanceIdentifier": ref(stack, "aws_db_instance", "platform/mlflow-database/instance", "identifier")
    }
    cpu, storage, memory = (alarms[f"mlp-{env}-mlflow-db-{what}"] for what in ("cpu", "free-storage", "free-memory"))
    assert _metric(cpu) == {
        "namespace": "AWS/RDS",
        "metric_name": "CPUUtilization",
        "dimensions": identifier,
        "statistic": "Average",
        "period": 300,
    }
    assert _rule(cpu) == ("GreaterThanThreshold", t.rds_cpu_percent, 3, 3)
    assert _metric(storage)["metric_name"] == "FreeStorageSpace" and _metric(storage)["statistic"] == "Minimum"
    assert _rule(storage) == ("LessThanThreshold", t.rds_free_storage_gib * GIB, 1, 1)
    assert _metric(memory)["metric_name"] == "FreeableMemory" and memory["dimensions"] == identifier
    assert _rule(memory) == ("LessThanThreshold", t.rds_free_memory_mib * MIB, 3, 3)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_cluster_alarms_read_container_insights_of_this_cluster(stacks, env) -> None:
    stack = stacks[env]
    alarms = _monitoring_alarms(stack)
    t = MATRIX[env].monitoring.thresholds
    cluster = {"ClusterName": ref(stack, "aws_eks_cluster", "platform/eks/cluster/cluster", "name")}
    failed, pending = alarms[f"mlp-{env}-eks-failed-nodes"], alarms[f"mlp-{env}-eks-pending-pods"]
    assert _metric(failed) == {
        "namespace": "ContainerInsights",
        "metric_name": "cluster_failed_node_count",
        "dimensions": cluster,
        "statistic": "Maximum",
        "period": 60,
    }
    assert _rule(failed) == ("GreaterThanOrEqualToThreshold", t.eks_failed_nodes, 5, 5)
    assert _metric(pending) == {
        "namespace": "ContainerInsights",
        "metric_name": "pod_status_pending",
        "dimensions": cluster,
        "statistic": "Sum",
        "period": 60,
    }
    minutes = t.eks_pending_minutes
    assert _rule(pending) == ("GreaterThanOrEqualToThreshold", t.eks_pending_pods, minutes, minutes)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_training_alarm_compares_desired_and_in_service_capacity_of_the_gpu_group(stacks, env) -> None:
    stack = stacks[env]
    alarm = _monitoring_alarms(stack)[f"mlp-{env}-training-capacity-unmet"]
    windows = MATRIX[env].monitoring.thresholds.training_capacity_unmet_minutes // 5
    assert _rule(alarm) == ("GreaterThanOrEqualToThreshold", 1, windows, windows)
    assert "metric_name" not in alarm
    queries = _queries(alarm)
    assert queries["result"] == {
        "id": "result",
        "expression": "desired - in_service",
        "label": "instances asked for but not in service",
        "return_data": True,
    }
    asg = {"AutoScalingGroupName": ref(stack, "aws_autoscaling_group", "platform/training/asg", "name")}
    for query_id, name, stat in (
        ("desired", "GroupDesiredCapacity", "Minimum"),
        ("in_service", "GroupInServiceInstances", "Maximum"),
    ):
        assert queries[query_id]["return_data"] is False
        assert queries[query_id]["metric"] == {
            "namespace": "AWS/AutoScaling",
            "metric_name": name,
            "dimensions": asg,
            "stat": stat,
            "period": 300,
        }
    # GPU utilization is no alarm: the idle shutdown acts on it.
    assert not any("GPUTraining" in str(a) for a in _monitoring_alarms(stack).values())


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_with_a_published_model_each_variant_has_an_error_rate_and_a_latency_alarm(published, env) -> None:
    stack = published[env]
    alarms = _monitoring_alarms(stack)
    t = MATRIX[env].monitoring.thresholds
    endpoint = ref(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint", "name")
    variants = [v.name for v in MATRIX[env].sagemaker.variants]  # type: ignore[union-attr]
    assert len(alarms) == 6 + 2 * len(variants)
    for variant in variants:
        dimensions = {"EndpointName": endpoint, "VariantName": variant}
        rate = alarms[f"mlp-{env}-sagemaker-{variant}-5xx-rate"]
        assert _rule(rate) == ("GreaterThanThreshold", t.sagemaker_5xx_percent, 3, 2)
        queries = _queries(rate)
        assert queries["result"]["expression"] == "IF(invocations > 0, 100 * errors / invocations, 0)"
        for query_id, name in (("errors", "Invocation5XXErrors"), ("invocations", "Invocations")):
            assert queries[query_id]["metric"] == {
                "namespace": "AWS/SageMaker",
                "metric_name": name,
                "dimensions": dimensions,
                "stat": "Sum",
                "period": 300,
            }
        latency = alarms[f"mlp-{env}-sagemaker-{variant}-latency-p99"]
        assert _metric(latency) == {
            "namespace": "AWS/SageMaker",
            "metric_name": "ModelLatency",
            "dimensions": dimensions,
            "extended_statistic": "p99",
            "period": 300,
        }
        # ModelLatency is in microseconds; the matrix says milliseconds.
        assert _rule(latency) == ("GreaterThanThreshold", t.sagemaker_latency_p99_ms * 1000, 3, 2)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_the_rollback_alarms_stay_as_they_were_and_notify_no_one(published, env) -> None:
    rollback = [
        a
        for a in resources(published[env], "aws_cloudwatch_metric_alarm").values()
        if a["//"]["metadata"]["path"].startswith(f"{env}/platform/sagemaker/alarm-")
    ]
    assert rollback and all("alarm_actions" not in a and "ok_actions" not in a for a in rollback)
    assert {a["metric_name"] for a in rollback} == {"Invocation5XXErrors", "ModelLatency"}


def test_without_a_published_model_there_is_no_sagemaker_alarm(stacks) -> None:
    for env in ("staging", "prod"):
        assert not [name for name in _monitoring_alarms(stacks[env]) if "sagemaker" in name]


def test_dev_has_no_alarm_of_its_own_even_with_a_model(stacks, published) -> None:
    assert _monitoring_alarms(stacks["dev"]) == {}
    assert _monitoring_alarms(published["dev"]) == {}
    assert names_of(published["dev"], "aws_sns_topic", "monitoring/alerts/topic") == []


def test_dev_with_alarms_switched_on_watches_its_database_and_cluster(altered) -> None:
    assert set(_monitoring_alarms(altered["dev"])) == {
        f"mlp-dev-{name}"
        for name in (
            "mlflow-db-cpu",
            "mlflow-db-free-storage",
            "mlflow-db-free-memory",
            "eks-failed-nodes",
            "eks-pending-pods",
        )
    }


def test_without_container_insights_the_cluster_has_no_alarm(altered) -> None:
    names = set(_monitoring_alarms(altered["staging"]))
    assert "mlp-staging-training-capacity-unmet" in names and "mlp-staging-mlflow-db-cpu" in names
    assert not [name for name in names if "-eks-" in name]
