"""The endpoint idle handler run for real against moto's SageMaker, CloudWatch, SNS, SQS and Application Auto Scaling.

Assertions read state back from moto (whether the endpoint exists, its variants' instance counts, the notice
that reached the SQS subscriber), never values the test wrote itself. One moto mock serves the module; before
each test every backend is reset and the endpoint is built again from nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import MockAWS

from tests.sagemaker.idle_endpoint import (
    ALARM,
    ENDPOINT,
    REGION,
    SERVICES,
    Clients,
    FakeEndpoint,
    alarm_event,
    function_environment,
    load_handler,
    park_event,
)

handler_module = load_handler()


@pytest.fixture(scope="module")
def mocked() -> Iterator[tuple[MockAWS, Clients]]:
    """One moto mock for the module, with test credentials and without catalogues these tests never read."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "false",
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        handler_module._clients.clear()
        with mock_aws() as mock:
            yield mock, Clients(*(boto3.client(service, region_name=REGION) for service in SERVICES))
        handler_module._clients.clear()


@pytest.fixture
def build(mocked: tuple[MockAWS, Clients], monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeEndpoint]:
    """Builds a fresh endpoint in emptied backends and points the function's environment at it."""
    mock, clients = mocked
    mock.reset()

    def make(action: str = "delete_endpoint", **options: Any) -> FakeEndpoint:
        endpoint = FakeEndpoint(clients, **options)
        for name in ("MIN_INSTANCE_COUNT", "SNS_TOPIC_ARN"):
            monkeypatch.delenv(name, raising=False)
        for name, value in function_environment(endpoint, action).items():
            monkeypatch.setenv(name, value)
        assert endpoint.describe() is not None
        assert endpoint.notifications() == []
        return endpoint

    return make


def assert_untouched(endpoint: FakeEndpoint) -> None:
    assert endpoint.counts() == endpoint.variants
    assert endpoint.notifications() == []


# --- delete_endpoint ---------------------------------------------------------------------------------------


def test_an_idle_endpoint_is_deleted_and_its_configuration_and_model_kept(build) -> None:
    endpoint = build()

    outcome = handler_module.handler(alarm_event())

    assert endpoint.describe() is None
    assert endpoint.kept() == (endpoint.config, endpoint.model)
    assert (outcome["action"], outcome["endpoint"], outcome["trigger"]) == ("deleted", ENDPOINT, f"alarm {ALARM}")
    (notice,) = endpoint.notifications()
    assert notice["TopicArn"] == endpoint.topic_arn
    assert notice["Subject"] == f"SageMaker endpoint {ENDPOINT} parked (deleted while idle)"
    assert endpoint.config in notice["Message"] and "the next deploy" in notice["Message"]


def test_a_second_invocation_finds_the_endpoint_gone_and_does_nothing(build) -> None:
    endpoint = build()
    handler_module.handler(alarm_event())
    endpoint.notifications()

    outcome = handler_module.handler(alarm_event())

    assert outcome["action"] == "none"
    assert outcome["reason"] == "the endpoint does not exist"
    assert endpoint.kept() == (endpoint.config, endpoint.model)
    assert endpoint.notifications() == []


def test_an_endpoint_without_the_idle_tag_is_never_deleted(build) -> None:
    endpoint = build(tag="scale_to_minimum")

    outcome = handler_module.handler(alarm_event())

    assert outcome["action"] == "none"
    assert (
        outcome["reason"] == "the endpoint's ml-platform:idle-policy tag is 'scale_to_minimum', not 'delete_endpoint'"
    )
    assert_untouched(endpoint)


# --- scale_to_minimum --------------------------------------------------------------------------------------


def test_scale_to_minimum_sets_every_instance_variant_to_the_minimum(build) -> None:
    endpoint = build("scale_to_minimum")

    outcome = handler_module.handler(alarm_event())

    assert endpoint.counts() == {"primary": 1, "candidate": 1}
    assert outcome["action"] == "scaled_to_minimum"
    assert outcome["previous_instance_counts"] == {"candidate": 2, "primary": 3}
    (notice,) = endpoint.notifications()
    assert notice["Subject"] == f"SageMaker endpoint {ENDPOINT} scaled to its minimum (idle)"
    assert "before: candidate: 2, primary: 3" in notice["Message"]


def test_only_variants_above_the_minimum_are_changed(build) -> None:
    endpoint = build("scale_to_minimum", variants={"primary": 1, "candidate": 4})

    outcome = handler_module.handler(park_event())

    assert endpoint.counts() == {"primary": 1, "candidate": 1}
    assert outcome["previous_instance_counts"] == {"candidate": 4}


def test_an_endpoint_at_its_minimum_is_left_alone(build) -> None:
    endpoint = build("scale_to_minimum", variants={"primary": 1})

    outcome = handler_module.handler(alarm_event())

    assert outcome == {
        "endpoint": ENDPOINT,
        "trigger": f"alarm {ALARM}",
        "action": "none",
        "reason": "every instance variant is at its minimum (1)",
    }
    assert_untouched(endpoint)


# --- the re-check and the guards ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["primary", "candidate"])
def test_a_request_within_the_idle_window_keeps_the_endpoint(build, variant: str) -> None:
    endpoint = build()
    endpoint.put_invocations(3, minutes_ago=50, variant=variant)

    outcome = handler_module.handler(alarm_event())

    assert outcome["action"] == "none"
    assert outcome["reason"] == "3 invocations in the last 60 minutes"
    assert_untouched(endpoint)


def test_requests_before_the_window_or_to_another_endpoint_do_not_count(build) -> None:
    endpoint = build("scale_to_minimum")
    endpoint.put_invocations(500, minutes_ago=75)
    endpoint.put_invocations(40, minutes_ago=5, endpoint="mlp-test-other")

    assert handler_module.handler(alarm_event())["action"] == "scaled_to_minimum"
    assert endpoint.counts() == {"primary": 1, "candidate": 1}


def test_the_parking_schedule_parks_whatever_the_traffic(build) -> None:
    endpoint = build()
    endpoint.put_invocations(12, minutes_ago=2)

    outcome = handler_module.handler(park_event())

    assert (outcome["action"], outcome["trigger"]) == ("deleted", "parking schedule")
    assert endpoint.describe() is None


@pytest.mark.parametrize("status", ["Updating", "Creating", "SystemUpdating", "RollingBack", "Failed"])
@pytest.mark.parametrize("action", ["delete_endpoint", "scale_to_minimum"])
def test_an_endpoint_not_in_service_is_left_alone(build, status: str, action: str) -> None:
    endpoint = build(action)
    endpoint.set_status(status)

    outcome = handler_module.handler(park_event())

    assert outcome["reason"] == f"the endpoint is {status}, not InService"
    assert_untouched(endpoint)


def test_a_serverless_endpoint_is_left_alone(build) -> None:
    endpoint = build(serverless=True)

    outcome = handler_module.handler(park_event())

    assert outcome["reason"] == "the endpoint has no instance variant"
    assert endpoint.describe() is not None


@pytest.mark.parametrize("state", ["OK", "INSUFFICIENT_DATA"])
def test_an_alarm_leaving_alarm_state_does_nothing(build, state: str) -> None:
    endpoint = build()

    outcome = handler_module.handler(alarm_event(state=state))

    assert outcome["reason"] == f"alarm state is {state}"
    assert_untouched(endpoint)


def test_without_a_topic_the_change_is_only_logged(build, monkeypatch, caplog) -> None:
    endpoint = build("scale_to_minimum")
    monkeypatch.delenv("SNS_TOPIC_ARN")

    with caplog.at_level(logging.INFO, logger=handler_module.LOGGER.name):
        outcome = handler_module.handler(alarm_event())

    assert outcome["action"] == "scaled_to_minimum"
    assert endpoint.counts() == {"primary": 1, "candidate": 1}
    assert endpoint.notifications() == []
    assert any(f"instance variants of {ENDPOINT} were set to 1" in r.getMessage() for r in caplog.records)


# --- bad input ---------------------------------------------------------------------------------------------


def _drop_state(event: dict) -> dict:
    del event["alarmData"]["state"]
    return event


def _numeric_state(event: dict) -> dict:
    event["alarmData"]["state"]["value"] = 1
    return event


def _unnamed(event: dict) -> dict:
    event["alarmData"]["alarmName"] = ""
    return event


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "expected a JSON object, got list"),
        ({"detail-type": "Scheduled Event"}, "neither a CloudWatch alarm action (alarmData) nor the parking schedule"),
        ({"source": "schedule", "action": "delete"}, "the parking schedule sends exactly"),
        ({**park_event(), "endpoint": "someone-else"}, "the parking schedule sends exactly"),
        ({"alarmData": "ALARM"}, "alarmData must be an object, got 'ALARM'"),
        (_drop_state(alarm_event()), "alarmData.state must be an object, got None"),
        (_numeric_state(alarm_event()), "alarmData.state.value must be one of ('OK', 'ALARM', 'INSUFFICIENT_DATA')"),
        (_unnamed(alarm_event()), "alarmData.alarmName must be a non-empty string"),
        (alarm_event("someone-elses-alarm"), "alarm 'someone-elses-alarm' is not one of"),
    ],
)
def test_bad_events_raise_and_change_nothing(build, event: Any, message: str) -> None:
    endpoint = build()

    with pytest.raises(ValueError) as raised:
        handler_module.handler(event)

    assert str(raised.value).startswith("invalid event: ")
    assert message in str(raised.value)
    assert_untouched(endpoint)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ENDPOINT_NAME", "", "environment variable ENDPOINT_NAME is not set"),
        ("IDLE_ACTION", "stop_endpoint", "IDLE_ACTION must be one of ('scale_to_minimum', 'delete_endpoint')"),
        ("IDLE_MINUTES", "0", "IDLE_MINUTES must be a positive integer, got '0'"),
        ("MIN_INSTANCE_COUNT", "", "environment variable MIN_INSTANCE_COUNT is not set"),
        ("MIN_INSTANCE_COUNT", "one", "MIN_INSTANCE_COUNT must be a positive integer, got 'one'"),
    ],
)
def test_bad_configuration_is_reported_before_any_change(build, monkeypatch, variable, value, message) -> None:
    endpoint = build("scale_to_minimum")
    monkeypatch.setenv(variable, value)

    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        handler_module.handler(park_event())

    assert_untouched(endpoint)
