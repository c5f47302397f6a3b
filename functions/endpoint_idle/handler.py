"""Idle policy of a SageMaker real-time endpoint (AWS Lambda, Python 3.12, boto3 only).

Two callers invoke this function:

* the endpoint's idle alarms (one per variant: zero ``Invocations`` for the idle period) as their alarm action.
  The event carries ``alarmData`` with the alarm's name and new state. Before acting, the function re-reads
  every variant's invocations over the idle window, because an asynchronous invocation can arrive late and
  requests may have come in since the alarm fired;
* the parking schedule (EventBridge Scheduler) with ``{"action": "park", "source": "schedule"}``: it parks the
  endpoint whatever the traffic, which is the point of a nightly schedule.

Either way nothing changes unless the endpoint exists and is ``InService`` (``Creating`` or ``Updating`` means a
deploy is under way), and only instance variants are touched: a model-based real-time endpoint cannot run fewer
than one instance per variant, so the policy is either

* ``scale_to_minimum``: every instance variant above ``MIN_INSTANCE_COUNT`` is set to it
  (UpdateEndpointWeightsAndCapacities), or
* ``delete_endpoint``: the endpoint is deleted (its configuration and model stay, so the next deploy recreates
  it), and only if it carries the tag ``ml-platform:idle-policy = delete_endpoint``, the mark by which the drift
  check tells a parked endpoint from one deleted by hand.

Every outcome is idempotent: a second call finds the endpoint gone or already at its minimum and does nothing.

Environment:
    ENDPOINT_NAME: the endpoint (required).
    IDLE_ACTION: ``scale_to_minimum`` or ``delete_endpoint`` (required).
    IDLE_MINUTES: the idle window the alarm evaluated, in minutes (required).
    MIN_INSTANCE_COUNT: the variants' autoscaling minimum (required for ``scale_to_minimum``).
    ALARM_NAMES: comma-separated names of the idle alarms; events from any other alarm are rejected.
    SNS_TOPIC_ARN: topic notified of every change; unset, the function only logs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOGGER = logging.getLogger(__name__)
LOGGER.setLevel(os.environ.get("LOG_LEVEL", "INFO"))

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
ACTIONS = ("scale_to_minimum", "delete_endpoint")
PARK_EVENT = {"action": "park", "source": "schedule"}
IDLE_TAG = "ml-platform:idle-policy"
NAMESPACE = "AWS/SageMaker"
METRIC = "Invocations"
# SageMaker publishes invocation metrics once a minute.
METRIC_PERIOD_SECONDS = 60

# Created on first use so that tests (moto, the emulator) and Lambda's environment decide region and endpoints.
_clients: dict[str, Any] = {}


def _client(service: str) -> Any:
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


@dataclass(frozen=True)
class Trigger:
    """Who invoked the function: an idle alarm (its name and new state) or the parking schedule."""

    source: str
    alarm_name: str | None = None
    state: str | None = None

    @property
    def label(self) -> str:
        """``alarm <name>`` or ``parking schedule``, for logs and notices."""
        return f"alarm {self.alarm_name}" if self.alarm_name else "parking schedule"


@dataclass(frozen=True)
class Config:
    """The function's configuration, read from its environment variables."""

    endpoint_name: str
    action: str
    idle_minutes: int
    min_instance_count: int | None
    alarm_names: tuple[str, ...]
    topic_arn: str | None


def _alarm(event: Mapping[str, Any]) -> Trigger:
    data = event["alarmData"]
    if not isinstance(data, dict):
        raise ValueError(f"invalid event: alarmData must be an object, got {data!r}")
    name = data.get("alarmName")
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid event: alarmData.alarmName must be a non-empty string, got {name!r}")
    state = data.get("state")
    if not isinstance(state, dict):
        raise ValueError(f"invalid event: alarmData.state must be an object, got {state!r}")
    value = state.get("value")
    if value not in ALARM_STATES:
        raise ValueError(f"invalid event: alarmData.state.value must be one of {ALARM_STATES}, got {value!r}")
    return Trigger("alarm", name, value)


def parse_event(event: Any) -> Trigger:
    """Validate an alarm action event or the parking schedule's payload; raise ValueError naming the problem."""
    if not isinstance(event, dict):
        raise ValueError(f"invalid event: expected a JSON object, got {type(event).__name__}")
    if "alarmData" in event:
        return _alarm(event)
    if event.get("source") == PARK_EVENT["source"]:
        if event != PARK_EVENT:
            raise ValueError(f"invalid event: the parking schedule sends exactly {PARK_EVENT}, got {event!r}")
        return Trigger("schedule")
    raise ValueError(
        "invalid event: neither a CloudWatch alarm action (alarmData) nor the parking schedule's "
        f"{PARK_EVENT}; got keys {sorted(event)}"
    )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def _positive(environ: Mapping[str, str], name: str) -> int:
    raw = _required(environ, name)
    if not raw.isdigit() or int(raw) < 1:
        raise RuntimeError(f"environment variable {name} must be a positive integer, got {raw!r}")
    return int(raw)


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the environment variables; raise RuntimeError naming the first one that is wrong."""
    env = os.environ if environ is None else environ
    action = _required(env, "IDLE_ACTION")
    if action not in ACTIONS:
        raise RuntimeError(f"environment variable IDLE_ACTION must be one of {ACTIONS}, got {action!r}")
    minimum = _positive(env, "MIN_INSTANCE_COUNT") if action == "scale_to_minimum" else None
    alarms = tuple(name.strip() for name in env.get("ALARM_NAMES", "").split(",") if name.strip())
    return Config(
        endpoint_name=_required(env, "ENDPOINT_NAME"),
        action=action,
        idle_minutes=_positive(env, "IDLE_MINUTES"),
        min_instance_count=minimum,
        alarm_names=alarms,
        topic_arn=env.get("SNS_TOPIC_ARN", "").strip() or None,
    )


def describe_endpoint(name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when the endpoint does not exist (parked, or never deployed)."""
    try:
        endpoint: dict[str, Any] = _client("sagemaker").describe_endpoint(EndpointName=name)
    except ClientError as error:
        details = error.response.get("Error", {})
        if details.get("Code") == "ValidationException" and "Could not find" in details.get("Message", ""):
            return None
        raise
    return endpoint


def instance_variants(endpoint: Mapping[str, Any]) -> list[str]:
    """Names of the endpoint's variants served by instances (serverless ones cost nothing while idle)."""
    config = _client("sagemaker").describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return [v["VariantName"] for v in config["ProductionVariants"] if "InstanceType" in v]


def recent_invocations(endpoint: str, variants: list[str], minutes: int, now: datetime | None = None) -> float:
    """Requests every variant of ``endpoint`` served in the last ``minutes`` (Sum of ``Invocations``)."""
    end = now or datetime.now(UTC)
    queries = [
        {
            "Id": f"variant{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": NAMESPACE,
                    "MetricName": METRIC,
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint},
                        {"Name": "VariantName", "Value": variant},
                    ],
                },
                "Period": METRIC_PERIOD_SECONDS,
                "Stat": "Sum",
            },
            "ReturnData": True,
        }
        for index, variant in enumerate(variants)
    ]
    total = 0.0
    paginator = _client("cloudwatch").get_paginator("get_metric_data")
    for page in paginator.paginate(MetricDataQueries=queries, StartTime=end - timedelta(minutes=minutes), EndTime=end):
        for result in page["MetricDataResults"]:
            total += sum(float(value) for value in result.get("Values", []))
    return total


def _tags(arn: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for page in _client("sagemaker").get_paginator("list_tags").paginate(ResourceArn=arn):
        tags.update({tag["Key"]: tag["Value"] for tag in page["Tags"]})
    return tags


def scale_to_minimum(endpoint: Mapping[str, Any], variants: list[str], minimum: int) -> dict[str, Any]:
    """Set every instance variant above ``minimum`` to it; the outcome (``none`` when all are at it)."""
    counts = {
        v["VariantName"]: int(v.get("DesiredInstanceCount", v.get("CurrentInstanceCount", 0)))
        for v in endpoint.get("ProductionVariants", [])
        if v["VariantName"] in variants
    }
    above = {name: count for name, count in sorted(counts.items()) if count > minimum}
    if not above:
        return {"action": "none", "reason": f"every instance variant is at its minimum ({minimum})"}
    _client("sagemaker").update_endpoint_weights_and_capacities(
        EndpointName=endpoint["EndpointName"],
        DesiredWeightsAndCapacities=[{"VariantName": name, "DesiredInstanceCount": minimum} for name in above],
    )
    return {"action": "scaled_to_minimum", "previous_instance_counts": above, "instance_count": minimum}


def delete_endpoint(endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """Delete the endpoint if it carries the idle tag; its configuration and model stay for the next deploy."""
    tag = _tags(endpoint["EndpointArn"]).get(IDLE_TAG)
    if tag != "delete_endpoint":
        # Untagged, the deletion would read as drift, and the endpoint is not one this policy was set up for.
        LOGGER.warning("%s lacks the tag %s=delete_endpoint; leaving it", endpoint["EndpointName"], IDLE_TAG)
        return {"action": "none", "reason": f"the endpoint's {IDLE_TAG} tag is {tag!r}, not 'delete_endpoint'"}
    _client("sagemaker").delete_endpoint(EndpointName=endpoint["EndpointName"])
    return {"action": "deleted", "endpoint_config": endpoint["EndpointConfigName"]}


def notify(config: Config, trigger: Trigger, outcome: Mapping[str, Any]) -> None:
    """Publish a short notice of a change to the topic, or only log it when none is configured."""
    name = config.endpoint_name
    if outcome["action"] == "deleted":
        subject = f"SageMaker endpoint {name} parked (deleted while idle)"
        body = (
            f"The endpoint {name} was deleted by its idle policy ({trigger.label}). Its configuration "
            f"{outcome['endpoint_config']} and model are kept: the next deploy (cdktf deploy or the GitOps apply) "
            "recreates it, which takes several minutes."
        )
    else:
        subject = f"SageMaker endpoint {name} scaled to its minimum (idle)"
        counts = ", ".join(f"{v}: {n}" for v, n in outcome["previous_instance_counts"].items())
        body = (
            f"The instance variants of {name} were set to {outcome['instance_count']} instance(s) by the idle "
            f"policy ({trigger.label}); before: {counts}. Autoscaling adds instances again when traffic returns."
        )
    LOGGER.info("%s", body)
    if config.topic_arn is None:
        return
    _client("sns").publish(TopicArn=config.topic_arn, Subject=subject[:100], Message=body)


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Apply the endpoint's idle policy when an idle alarm fires or the parking schedule runs.

    Returns a dict with ``action`` (``none``, ``scaled_to_minimum`` or ``deleted``), ``reason`` when nothing was
    done, the endpoint and the trigger. Raises ValueError for a malformed or foreign event and RuntimeError for
    missing configuration, in both cases before reading or changing anything.
    """
    trigger = parse_event(event)
    config = load_config()
    if trigger.alarm_name and config.alarm_names and trigger.alarm_name not in config.alarm_names:
        raise ValueError(
            f"invalid event: alarm {trigger.alarm_name!r} is not one of {list(config.alarm_names)} (ALARM_NAMES)"
        )
    base = {"endpoint": config.endpoint_name, "trigger": trigger.label}
    if trigger.state not in (None, "ALARM"):
        LOGGER.info("%s is %s, not ALARM: nothing to do", trigger.label, trigger.state)
        return {**base, "action": "none", "reason": f"alarm state is {trigger.state}"}

    endpoint = describe_endpoint(config.endpoint_name)
    if endpoint is None:
        LOGGER.info("%s does not exist (parked or not deployed): nothing to do", config.endpoint_name)
        return {**base, "action": "none", "reason": "the endpoint does not exist"}
    status = endpoint.get("EndpointStatus")
    if status != "InService":
        # A deploy or an earlier scaling is under way; touching the endpoint now would fight it.
        LOGGER.info("%s is %s, not InService: nothing to do", config.endpoint_name, status)
        return {**base, "action": "none", "reason": f"the endpoint is {status}, not InService"}
    variants = instance_variants(endpoint)
    if not variants:
        return {**base, "action": "none", "reason": "the endpoint has no instance variant"}

    if trigger.source == "alarm":
        served = recent_invocations(
            config.endpoint_name, [v["VariantName"] for v in endpoint["ProductionVariants"]], config.idle_minutes
        )
        if served > 0:
            LOGGER.info(
                "%s served %g requests in the last %d minutes: not idle",
                config.endpoint_name,
                served,
                config.idle_minutes,
            )
            return {
                **base,
                "action": "none",
                "reason": f"{served:g} invocations in the last {config.idle_minutes} minutes",
            }

    if config.action == "delete_endpoint":
        outcome = delete_endpoint(endpoint)
    else:
        assert config.min_instance_count is not None
        outcome = scale_to_minimum(endpoint, variants, config.min_instance_count)
    if outcome["action"] != "none":
        notify(config, trigger, outcome)
    return {**base, **outcome}
