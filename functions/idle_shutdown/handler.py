"""Idle auto-shutdown for the GPU training cluster (AWS Lambda, Python 3.12, boto3 only).

A CloudWatch metric alarm on the cluster's GPU utilization ("below threshold for N periods") invokes this
function directly as its alarm action. The event carries ``alarmData`` with the alarm name, its new state
and the metric definition. Before scaling the Auto Scaling group to zero the function re-reads that metric
for the last evaluation window, because an asynchronous invocation can arrive late and jobs may have
started since the alarm fired.

Environment:
    ASG_NAME: the training cluster's Auto Scaling group (required).
    SNS_TOPIC_ARN: topic notified when the cluster is scaled down (required).
    ALARM_NAME: if set, events from any other alarm are rejected.
    IDLE_THRESHOLD: utilization below which the cluster counts as idle; defaults to the threshold that
        CloudWatch reports in the alarm's ``state.reasonData``.
    EVALUATION_PERIODS: periods in the re-check window; defaults to the number of datapoints the alarm
        evaluated (from ``reasonData``), else 1.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")

# Created on first use so that tests (moto) and Lambda's environment decide region and endpoints.
_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


@dataclass(frozen=True)
class AlarmMetric:
    """The single metric a metric alarm watches, as given in the event's configuration."""

    namespace: str
    name: str
    dimensions: dict[str, str]
    period: int
    stat: str


@dataclass(frozen=True)
class AlarmEvent:
    """The parts of a CloudWatch alarm action event this function uses."""

    alarm_name: str
    state: str
    metric: AlarmMetric
    reason_data: dict[str, Any]


_KIND_NAMES = {str: "a non-empty string", dict: "an object", list: "a list", int: "an integer"}


def _require(mapping: Any, key: str, kind: type, path: str) -> Any:
    """Return ``mapping[key]`` if it is a ``kind``, else raise ValueError naming ``path.key``."""
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"invalid alarm event: {path}.{key} is missing")
    value = mapping[key]
    if not isinstance(value, kind) or isinstance(value, bool) or (isinstance(value, str) and not value):
        raise ValueError(f"invalid alarm event: {path}.{key} must be {_KIND_NAMES[kind]}, got {value!r}")
    return value


def parse_event(event: Any) -> AlarmEvent:
    """Validate a CloudWatch alarm action event; raise ValueError naming the first problem."""
    if not isinstance(event, dict):
        raise ValueError(f"invalid alarm event: expected a JSON object, got {type(event).__name__}")
    if "alarmData" not in event:
        raise ValueError(
            "invalid alarm event: alarmData is missing (this function must be invoked as a CloudWatch alarm action)"
        )
    data = _require(event, "alarmData", dict, "event")
    alarm_name = _require(data, "alarmName", str, "alarmData")
    state = _require(_require(data, "state", dict, "alarmData"), "value", str, "alarmData.state")
    if state not in ALARM_STATES:
        raise ValueError(f"invalid alarm event: alarmData.state.value must be one of {ALARM_STATES}, got {state!r}")

    metrics = _require(_require(data, "configuration", dict, "alarmData"), "metrics", list, "alarmData.configuration")
    if len(metrics) != 1 or not isinstance(metrics[0], dict) or "metricStat" not in metrics[0]:
        raise ValueError(
            "invalid alarm event: alarmData.configuration.metrics must hold exactly one metricStat "
            "(metric math alarms are not supported)"
        )
    path = "alarmData.configuration.metrics[0].metricStat"
    metric_stat = _require(metrics[0], "metricStat", dict, "alarmData.configuration.metrics[0]")
    metric = _require(metric_stat, "metric", dict, path)
    dimensions = metric.get("dimensions", {})
    if not isinstance(dimensions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in dimensions.items()
    ):
        raise ValueError(f"invalid alarm event: {path}.metric.dimensions must map names to string values")
    period = _require(metric_stat, "period", int, path)
    if period <= 0:
        raise ValueError(f"invalid alarm event: {path}.period must be positive, got {period}")

    reason_data: dict[str, Any] = {}
    raw_reason = data["state"].get("reasonData")
    if isinstance(raw_reason, str):
        try:
            parsed = json.loads(raw_reason)
        except json.JSONDecodeError:
            parsed = None
        reason_data = parsed if isinstance(parsed, dict) else {}

    return AlarmEvent(
        alarm_name=alarm_name,
        state=state,
        metric=AlarmMetric(
            namespace=_require(metric, "namespace", str, f"{path}.metric"),
            name=_require(metric, "name", str, f"{path}.metric"),
            dimensions=dict(dimensions),
            period=period,
            stat=_require(metric_stat, "stat", str, path),
        ),
        reason_data=reason_data,
    )


def _env(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def _idle_threshold(event: AlarmEvent) -> float:
    raw = os.environ.get("IDLE_THRESHOLD", "").strip()
    if raw:
        try:
            return float(raw)
        except ValueError:
            raise RuntimeError(f"environment variable IDLE_THRESHOLD must be a number, got {raw!r}") from None
    threshold = event.reason_data.get("threshold")
    if isinstance(threshold, (int, float)) and not isinstance(threshold, bool):
        return float(threshold)
    raise ValueError("invalid alarm event: alarmData.state.reasonData has no numeric threshold; set IDLE_THRESHOLD")


def _evaluation_periods(event: AlarmEvent) -> int:
    raw = os.environ.get("EVALUATION_PERIODS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise RuntimeError(f"environment variable EVALUATION_PERIODS must be a positive integer, got {raw!r}")
        return int(raw)
    evaluated = event.reason_data.get("evaluatedDatapoints")
    return len(evaluated) if isinstance(evaluated, list) and evaluated else 1


def recent_values(metric: AlarmMetric, periods: int, now: datetime | None = None) -> list[float]:
    """Return the metric's values over the last ``periods`` periods, newest first."""
    end = now or datetime.now(UTC)
    start = end - timedelta(seconds=metric.period * periods)
    query = {
        "Id": "idle_check",
        "MetricStat": {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
            },
            "Period": metric.period,
            "Stat": metric.stat,
        },
        "ReturnData": True,
    }
    values: list[float] = []
    paginator = _client("cloudwatch").get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=[query], StartTime=start, EndTime=end, ScanBy="TimestampDescending"
    ):
        for result in page["MetricDataResults"]:
            values.extend(float(v) for v in result.get("Values", []))
    return values


def _scale_to_zero(asg_name: str, alarm: AlarmEvent, peak: float, threshold: float) -> dict[str, Any]:
    groups = _client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])
    if not groups["AutoScalingGroups"]:
        raise RuntimeError(f"Auto Scaling group {asg_name!r} (ASG_NAME) does not exist")
    group = groups["AutoScalingGroups"][0]
    previous = int(group["DesiredCapacity"])
    outcome = {"asg": asg_name, "alarm": alarm.alarm_name, "previous_desired_capacity": previous}
    if previous == 0:
        LOGGER.info("%s is already at desired capacity 0", asg_name)
        return {**outcome, "action": "none", "reason": "already at desired capacity 0"}
    if int(group["MinSize"]) > 0:
        # A non-zero minimum is an operator's explicit choice to keep nodes; lowering it would fight them.
        LOGGER.warning("%s has MinSize %s; leaving it alone", asg_name, group["MinSize"])
        return {**outcome, "action": "none", "reason": f"MinSize is {group['MinSize']}, not 0"}

    # Termination goes through the nodes' lifecycle hook, which saves checkpoints before they stop.
    _client("autoscaling").set_desired_capacity(AutoScalingGroupName=asg_name, DesiredCapacity=0, HonorCooldown=False)
    LOGGER.info("scaled %s from %d to 0 (alarm %s)", asg_name, previous, alarm.alarm_name)
    message = (
        f"The GPU training cluster {asg_name} was idle, "
        f"so its desired capacity was set from {previous} to 0.\n"
        f"Alarm: {alarm.alarm_name}\n"
        f"Metric: {alarm.metric.namespace} {alarm.metric.name} {alarm.metric.dimensions} "
        f"({alarm.metric.stat}, {alarm.metric.period}s periods)\n"
        f"Peak over the re-checked window: {peak:g} (idle threshold {threshold:g}).\n"
        "Running nodes save checkpoints to S3 before they terminate. Raise the desired capacity to resume."
    )
    _client("sns").publish(
        TopicArn=_env("SNS_TOPIC_ARN"),
        Subject=f"GPU cluster {asg_name} scaled to 0 (idle)"[:100],
        Message=message,
    )
    return {**outcome, "action": "scaled_to_zero", "desired_capacity": 0}


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Scale the training cluster to zero when its idle alarm fires and it is still idle.

    Returns a dict with ``action`` ("none" or "scaled_to_zero"), ``reason`` when nothing was done, and the
    alarm, ASG and previous desired capacity where known. Raises ValueError for a malformed or foreign
    event and RuntimeError for missing configuration, in both cases before changing anything.
    """
    alarm = parse_event(event)
    expected = os.environ.get("ALARM_NAME", "").strip()
    if expected and alarm.alarm_name != expected:
        raise ValueError(
            f"invalid alarm event: alarm {alarm.alarm_name!r} is not the expected {expected!r} (ALARM_NAME)"
        )
    asg_name = _env("ASG_NAME")
    _env("SNS_TOPIC_ARN")

    if alarm.state != "ALARM":
        LOGGER.info("alarm %s is %s, not ALARM: nothing to do", alarm.alarm_name, alarm.state)
        return {
            "action": "none",
            "reason": f"alarm state is {alarm.state}",
            "alarm": alarm.alarm_name,
            "asg": asg_name,
        }

    threshold = _idle_threshold(alarm)
    periods = _evaluation_periods(alarm)
    values = recent_values(alarm.metric, periods)
    base = {"alarm": alarm.alarm_name, "asg": asg_name, "threshold": threshold, "datapoints": len(values)}
    if not values:
        # No data usually means the GPU metrics agent is not reporting; shutting down blind is not safe.
        LOGGER.warning(
            "no %s datapoints in the last %d periods: leaving %s alone", alarm.metric.name, periods, asg_name
        )
        return {**base, "action": "none", "reason": "no metric data in the evaluation window"}
    peak = max(values)
    if peak >= threshold:
        LOGGER.info("%s is busy (peak %s >= threshold %s): leaving it alone", asg_name, peak, threshold)
        return {**base, "action": "none", "reason": "cluster is busy", "peak": peak}
    return {**base, "peak": peak, **_scale_to_zero(asg_name, alarm, peak, threshold)}
