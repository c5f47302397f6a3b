"""The idle section of the serving settings: its limits and defaults, the cron EventBridge Scheduler receives,
the rules it shares with the rest of the endpoint's settings, the rule across sections for protected
environments, and bad input through the matrix's overrides, each error naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError, FieldError
from constructs.sagemaker.idle_settings import EndpointIdleSettings, check_idle_policy, schedule_expression
from constructs.sagemaker.settings import InstanceVariantSettings, SageMakerEndpointSettings, ServerlessVariantSettings

from stacks.matrix import MATRIX
from stacks.overrides import load_environments


def test_defaults_scale_to_the_minimum_after_an_idle_hour_without_a_schedule() -> None:
    idle = EndpointIdleSettings()
    assert (idle.idle_minutes, idle.action, idle.parking_cron, idle.log_retention_days) == (
        60,
        "scale_to_minimum",
        None,
        30,
    )
    assert (idle.periods, idle.schedule_expression) == (12, None)


@pytest.mark.parametrize("minutes", [15, 20, 60, 1440])
def test_idle_minutes_within_the_limits(minutes: int) -> None:
    assert EndpointIdleSettings(idle_minutes=minutes).periods == minutes // 5


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("idle_minutes", 10, "a multiple of 5 from 15 to 1440"),
        ("idle_minutes", 1445, "a multiple of 5 from 15 to 1440"),
        ("idle_minutes", 62, "a multiple of 5 from 15 to 1440"),
        ("idle_minutes", "60", "a multiple of 5 from 15 to 1440"),
        ("action", "scale_to_zero", "one of 'scale_to_minimum', 'delete_endpoint'"),
        ("parking_cron", "at 8pm", "a 5-field cron expression"),
        ("parking_cron", "0 20 1 * 1-5", "a day of month or a day of week but not both"),
        ("parking_cron", "0 20 * * */2", "no step in the day of week"),
        ("schedule_time_zone", "Eastern", "an IANA time zone name"),
        ("log_retention_days", 2, "a CloudWatch Logs retention"),
        ("action", "${aws_sagemaker_endpoint.x.name}", "without '${'"),
    ],
)
def test_bad_values_name_the_field_and_what_is_allowed(field: str, value: Any, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        EndpointIdleSettings(**{field: value})
    assert (raised.value.where, raised.value.field) == ("EndpointIdleSettings", field)
    assert fragment in raised.value.allowed


@pytest.mark.parametrize(
    ("cron", "expression"),
    [
        # Scheduler counts days from Sunday = 1; names avoid the off-by-one, and the unused day field is '?'.
        ("0 20 * * 1-5", "cron(0 20 ? * MON-FRI *)"),
        ("0 20 * * 0,6", "cron(0 20 ? * SUN,SAT *)"),
        ("30 19 * * fri", "cron(30 19 ? * FRI *)"),
        ("0 20 * * *", "cron(0 20 * * ? *)"),
        ("0 2 1 * *", "cron(0 2 1 * ? *)"),
        ("*/30 18-23 * jan-mar 1", "cron(*/30 18-23 ? JAN-MAR MON *)"),
    ],
)
def test_the_parking_cron_as_eventbridge_scheduler_reads_it(cron: str, expression: str) -> None:
    assert schedule_expression(cron) == expression
    assert EndpointIdleSettings(parking_cron=cron).schedule_expression == expression


def _endpoint(**changes: Any) -> SageMakerEndpointSettings:
    values: dict[str, Any] = {"variants": (InstanceVariantSettings(instance_type="ml.m5.xlarge"),)}
    values.update(changes)
    return SageMakerEndpointSettings(**values)


def test_an_instance_endpoint_takes_either_policy() -> None:
    for action in ("scale_to_minimum", "delete_endpoint"):
        assert _endpoint(idle=EndpointIdleSettings(action=action)).idle == EndpointIdleSettings(action=action)


def test_a_serverless_endpoint_takes_no_idle_section() -> None:
    with pytest.raises(ConfigurationError) as raised:
        SageMakerEndpointSettings(
            variants=(ServerlessVariantSettings(),),
            vpc=False,
            network_isolation=False,
            data_capture_percentage=None,
            idle=EndpointIdleSettings(action="delete_endpoint"),
        )
    assert raised.value.field == "idle"
    assert "serverless variant costs nothing while idle" in raised.value.allowed


def test_scaling_to_the_minimum_needs_room_above_it() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _endpoint(min_instance_count=1, max_instance_count=1, idle=EndpointIdleSettings())
    assert (raised.value.field, raised.value.value) == ("idle.action", "scale_to_minimum")
    assert "'delete_endpoint' when min_instance_count equals max_instance_count (1)" in raised.value.allowed
    # Deleting still saves the one instance it would keep.
    fixed = _endpoint(min_instance_count=1, max_instance_count=1, idle=EndpointIdleSettings(action="delete_endpoint"))
    assert fixed.idle is not None


@pytest.mark.parametrize(
    ("idle", "field", "value"),
    [
        (EndpointIdleSettings(action="delete_endpoint"), "sagemaker.idle.action", "delete_endpoint"),
        (EndpointIdleSettings(parking_cron="0 20 * * 1-5"), "sagemaker.idle.parking_cron", "0 20 * * 1-5"),
    ],
)
def test_a_protected_environment_is_never_parked(idle: EndpointIdleSettings, field: str, value: str) -> None:
    sagemaker = _endpoint(idle=idle)
    with pytest.raises(FieldError) as raised:
        check_idle_policy(sagemaker, protected=True)
    assert (raised.value.field, raised.value.value) == (field, value)
    assert "when protected is True" in raised.value.allowed
    check_idle_policy(sagemaker, protected=False)


def test_a_protected_environment_may_scale_to_its_minimum_when_idle() -> None:
    check_idle_policy(_endpoint(idle=EndpointIdleSettings()), protected=True)
    check_idle_policy(_endpoint(), protected=True)
    check_idle_policy(None, protected=True)


@pytest.mark.parametrize("env", sorted(MATRIX))
def test_the_matrix_keeps_the_rule_across_sections(env: str) -> None:
    config = MATRIX[env]
    check_idle_policy(config.sagemaker, protected=config.protected)


def test_staging_parks_its_endpoint_and_dev_and_prod_have_no_idle_section() -> None:
    staging = MATRIX["staging"].sagemaker
    assert staging is not None and staging.idle == EndpointIdleSettings(
        idle_minutes=60, action="delete_endpoint", parking_cron="0 20 * * 1-5", schedule_time_zone="America/New_York"
    )
    assert all(MATRIX[env].sagemaker.idle is None for env in ("dev", "prod"))  # type: ignore[union-attr]


def _overridden(overrides: dict[str, Any]) -> dict[str, Any]:
    return load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"staging": {"sagemaker.idle.idle_minutes": 7}}, "sagemaker.idle.idle_minutes"),
        ({"staging": {"sagemaker.idle.action": "stop"}}, "sagemaker.idle.action"),
        ({"staging": {"sagemaker.idle.parking_cron": "0 25 * * *"}}, "sagemaker.idle.parking_cron"),
        ({"staging": {"sagemaker.idle": {"idle_minutes": 60, "unknown": 1}}}, "sagemaker.idle.unknown"),
        ({"dev": {"sagemaker.idle": {"action": "delete_endpoint"}}}, "sagemaker.idle"),
    ],
)
def test_overrides_fail_with_the_field_path(overrides: dict[str, Any], field: str) -> None:
    env = next(iter(overrides))
    with pytest.raises(ConfigurationError) as raised:
        _overridden(overrides)
    assert (raised.value.where, raised.value.field) == (f"environment '{env}'", field)


def test_an_override_tunes_the_idle_policy() -> None:
    configs = _overridden({"staging": {"sagemaker.idle.idle_minutes": 30, "sagemaker.idle.parking_cron": None}})
    idle = configs["staging"].sagemaker.idle
    assert (idle.idle_minutes, idle.parking_cron, idle.action) == (30, None, "delete_endpoint")
