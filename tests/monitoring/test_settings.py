"""MonitoringSettings and the environment rule: who may be alerted, within which limits, and that production is."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.monitoring.settings import AlarmThresholds, MonitoringSettings, is_https_endpoint

from stacks.matrix import MATRIX
from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, load_environments
from tests.monitoring.conftest import CHAT, PAGER


@pytest.mark.parametrize(
    "url",
    [
        PAGER,
        CHAT,
        "https://Events.PagerDuty.com/integration/abc/enqueue",
        "https://alerts.example.org:8443/hook",
    ],
)
def test_https_integration_endpoints_are_accepted(url: str) -> None:
    assert is_https_endpoint(url)
    assert MonitoringSettings(alert_https_endpoints=(url,)).alert_https_endpoints == (url,)


@pytest.mark.parametrize(
    "url",
    [
        "http://events.pagerduty.com/integration/abc/enqueue",
        "ftp://alerts.example.com/hook",
        "events.pagerduty.com/integration/abc/enqueue",
        "https://user:secret@alerts.example.com/hook",
        "https://alerts.example.com/hook?token=abc123",
        "https://alerts.example.com/hook?channel=ops&API_KEY=abc123",
        "https://alerts.example.com/hook?sig=abc&se=2030",
        "https://alerts.example.com/hook#fragment",
        "https://10.0.0.12/hook",
        "https://[2001:db8::1]/hook",
        "https://localhost/hook",
        "https://alerts.example.com/ho ok",
        "https://alerts.example.com:99999/hook",
        "https://alerts.exämple.com/hook",
        "https://alerts.example.com/" + "a" * 2048,
    ],
)
def test_other_urls_are_refused_naming_the_field(url: str) -> None:
    assert not is_https_endpoint(url)
    with pytest.raises(ConfigurationError) as caught:
        MonitoringSettings(alert_https_endpoints=(url,))
    assert caught.value.field == "alert_https_endpoints[0]"
    assert "https://" in caught.value.allowed


@pytest.mark.parametrize("address", ["ops", "ops@localhost", "a@b@example.com", "ops@example.com\n"])
def test_a_bad_email_address_is_refused(address: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MonitoringSettings(alert_emails=("ok@example.com", address))
    assert (caught.value.field, caught.value.value) == ("alert_emails[1]", address)


def _limits(field: str) -> tuple[int, int]:
    metadata = AlarmThresholds.model_fields[field].metadata
    low = next(m.ge for m in metadata if hasattr(m, "ge"))
    high = next(m.le for m in metadata if hasattr(m, "le"))
    return low, high


@pytest.mark.parametrize("field", sorted(AlarmThresholds.model_fields))
def test_every_threshold_has_limits_and_values_outside_them_are_refused(field: str) -> None:
    low, high = _limits(field)
    step = 5 if field == "training_capacity_unmet_minutes" else 1
    assert AlarmThresholds(**{field: low}) != AlarmThresholds(**{field: high})
    for bad in (low - step, high + step):
        with pytest.raises(ConfigurationError) as caught:
            AlarmThresholds(**{field: bad})
        assert (caught.value.field, caught.value.value) == (field, bad)
        assert str(low) in caught.value.allowed and str(high) in caught.value.allowed
    with pytest.raises(ConfigurationError):
        AlarmThresholds(**{field: True})


def test_training_minutes_are_whole_alarm_windows() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AlarmThresholds(training_capacity_unmet_minutes=42)
    assert caught.value.field == "training_capacity_unmet_minutes"
    assert "multiple of 5" in caught.value.allowed


@pytest.mark.parametrize(
    "changes",
    [{"alert_emails": ("ops@example.com",)}, {"alert_https_endpoints": (PAGER,)}],
)
def test_subscribers_without_alarms_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        MonitoringSettings(alarms=False, **changes)
    assert caught.value.field == next(iter(changes))
    assert "alarms" in caught.value.allowed
    assert MonitoringSettings(alarms=True, **changes).subscriber_count == 1


def _load(overrides: dict[str, Any]) -> dict[str, Any]:
    return load_environments(environ={OVERRIDES_ENV: json.dumps(overrides)})


def test_the_matrix_alerts_someone_in_staging_and_prod_and_keeps_dev_to_its_dashboard() -> None:
    assert MATRIX["prod"].protected and MATRIX["prod"].monitoring.subscriber_count >= 1
    assert MATRIX["staging"].monitoring.alarms and MATRIX["staging"].monitoring.subscriber_count >= 1
    assert not MATRIX["dev"].monitoring.alarms and MATRIX["dev"].monitoring.subscriber_count == 0
    prod, staging = MATRIX["prod"].monitoring.thresholds, MATRIX["staging"].monitoring.thresholds
    # Production is held to stricter thresholds than staging.
    assert prod.sagemaker_5xx_percent < staging.sagemaker_5xx_percent
    assert prod.sagemaker_latency_p99_ms < staging.sagemaker_latency_p99_ms
    assert prod.rds_cpu_percent < staging.rds_cpu_percent
    assert prod.training_capacity_unmet_minutes < staging.training_capacity_unmet_minutes


def test_prod_without_a_subscriber_fails_naming_the_environment_and_the_field() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load({"prod": {"monitoring.alert_emails": []}})
    error = caught.value
    assert (error.where, error.field, error.value) == ("environment 'prod'", "monitoring.alert_emails", ())
    assert "at least one subscriber" in error.allowed and "alert_https_endpoints" in error.allowed
    assert "environment 'prod'" in str(error) and "monitoring.alert_emails" in str(error)


def test_prod_without_alarms_fails() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load({"prod": {"monitoring.alert_emails": [], "monitoring.alarms": False}})
    assert (caught.value.where, caught.value.field) == ("environment 'prod'", "monitoring.alarms")


def test_an_unprotected_environment_may_have_alarms_without_subscribers() -> None:
    configs = _load({"staging": {"monitoring.alert_emails": []}})
    assert configs["staging"].monitoring.alarms and configs["staging"].monitoring.subscriber_count == 0


def test_prod_alerting_only_its_on_call_integration_is_enough() -> None:
    configs = _load({"prod": {"monitoring.alert_emails": [], "monitoring.alert_https_endpoints": [PAGER]}})
    assert configs["prod"].monitoring.alert_https_endpoints == (PAGER,)


def test_an_integration_url_comes_from_an_override_file_kept_out_of_git(tmp_path) -> None:
    secret = tmp_path / "alerting.local.json"
    secret.write_text(json.dumps({"prod": {"monitoring.alert_https_endpoints": [PAGER]}}))
    configs = load_environments(environ={OVERRIDES_FILE_ENV: str(secret)})
    assert configs["prod"].monitoring.alert_https_endpoints == (PAGER,)
    assert configs["prod"].monitoring.alert_emails == MATRIX["prod"].monitoring.alert_emails


def test_an_override_with_a_credential_in_the_query_fails_naming_the_item() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load({"staging": {"monitoring.alert_https_endpoints": [PAGER, "https://hooks.example.com/x?token=s3cr3t"]}})
    assert (caught.value.where, caught.value.field) == ("environment 'staging'", "monitoring.alert_https_endpoints[1]")


def test_the_free_storage_alarm_starts_below_the_databases_storage() -> None:
    allocated = MATRIX["staging"].mlflow.database.allocated_storage_gib  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError) as caught:
        _load({"staging": {"monitoring.thresholds.rds_free_storage_gib": allocated}})
    assert (caught.value.field, caught.value.value) == ("monitoring.thresholds.rds_free_storage_gib", allocated)
    assert str(allocated) in caught.value.allowed
    below = _load({"staging": {"monitoring.thresholds.rds_free_storage_gib": allocated - 1}})
    assert below["staging"].monitoring.thresholds.rds_free_storage_gib == allocated - 1
    # Without alarms there is no such alarm to check.
    assert _load({"dev": {"monitoring.thresholds.rds_free_storage_gib": 500}})["dev"].monitoring.alarms is False
