"""The shared string formats of the settings: cron, time zones, e-mail, regions, role ARNs, literal text, lists."""

from __future__ import annotations

from typing import Annotated

import pytest
from constructs.core.errors import ConfigurationError
from constructs.core.formats import AWS_REGIONS, AwsRegion, Cron, Email, IamRoleArn, TimeZone, is_cron, time_zones
from constructs.core.settings import LITERAL_TEXT, Settings, is_literal
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError


def _accepts(kind: object, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
    except ValidationError:
        return False
    return True


# --- cron --------------------------------------------------------------------------------------------------

_LIMITS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 6))


@st.composite
def _cron(draw: st.DrawFn) -> str:
    fields = []
    for low, high in _LIMITS:
        start = draw(st.integers(low, high))
        end = draw(st.integers(start, high))
        fields.append(
            draw(st.sampled_from(["*", f"*/{draw(st.integers(1, high - low + 1))}", str(start), f"{start}-{end}"]))
        )
    return " ".join(fields)


@given(_cron())
def test_every_in_range_cron_expression_is_accepted(expression: str) -> None:
    assert is_cron(expression)


@given(field=st.integers(0, 4), value=st.integers(-5, 100))
def test_a_value_outside_its_field_is_refused(field: int, value: int) -> None:
    low, high = _LIMITS[field]
    parts = ["*"] * 5
    parts[field] = str(value)
    assert is_cron(" ".join(parts)) == (low <= value <= high)


@pytest.mark.parametrize(
    "expression",
    [
        "99 99 * * *",
        "0 20 * * *\n",
        "0 20 * *",
        "0 0 20 * * *",
        "0  20 * * *",
        "5-1 * * * *",
        "*/0 * * * *",
        "0 0 L * ?",
    ],
)
def test_malformed_cron_expressions_are_refused(expression: str) -> None:
    assert not _accepts(Cron, expression)


def test_names_of_months_and_days_are_accepted() -> None:
    assert _accepts(Cron, "0 20 * JAN-MAR MON-FRI") and _accepts(Cron, "30 6 1,15 * sun")


# --- time zones, regions, e-mail, role ARNs ------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Europe/Berlin", "Asia/Kolkata"])
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert _accepts(TimeZone, zone)


@pytest.mark.parametrize("zone", ["America/New_Yrok", "america/new_york", "UTC\n", "Mars/Olympus", "../etc/passwd"])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    assert not _accepts(TimeZone, zone)


def test_the_time_zone_list_is_the_tz_database() -> None:
    assert len(time_zones()) > 500 and "Etc/UTC" in time_zones()


@pytest.mark.parametrize("region", ["us-east-1\n", "moon-east-1", "US-EAST-1", "us-east-99"])
def test_unknown_regions_are_refused(region: str) -> None:
    assert not _accepts(AwsRegion, region)
    assert all(_accepts(AwsRegion, known) for known in AWS_REGIONS)


@pytest.mark.parametrize(
    "address", ["ml-platform@example.com", "first.last+ml@sub.example.co.uk", "a@b.io", "o'neil@example.org"]
)
def test_ordinary_addresses_are_accepted(address: str) -> None:
    assert _accepts(Email, address)


@pytest.mark.parametrize(
    "address",
    [
        "ops@localhost",
        "a@b@example.com",
        "a" * 65 + "@example.com",
        "ops@" + "a" * 64 + ".com",
        "ops@" + ("a" * 60 + ".") * 5 + "com",
        ".ops@example.com",
        "o..ps@example.com",
        "ops@-example.com",
        "ops @example.com",
        "ops@example.com\n",
        "ops@example.c0m",
        "ops@exämple.com",
    ],
)
def test_malformed_addresses_are_refused(address: str) -> None:
    assert not _accepts(Email, address)


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/*",
        "arn:aws:iam::123456789012:user/bob",
        "arn:aws:iam::12345678901:role/admins",
        "arn:aws:iam::123456789012:role/admins\n",
        "arn:aws-moon:iam::123456789012:role/admins",
        "arn:aws:iam::123456789012:role/" + "a" * 65,
        "arn:aws:iam::123456789012:role//admins",
    ],
)
def test_role_arns_name_one_role(arn: str) -> None:
    assert not _accepts(IamRoleArn, arn)
    assert _accepts(IamRoleArn, "arn:aws-us-gov:iam::123456789012:role/platform/admins")


# --- one rule for every settings model ---------------------------------------------------------------------


class _Sample(Settings):
    """A settings model with a plain string, a list of strings and a list of pairs."""

    text: str = "plain"
    items: tuple[str, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    numbers: tuple[Annotated[int, "unit"], ...] = ()


@given(st.text(max_size=20), st.sampled_from(["${", "%{"]), st.text(max_size=20))
def test_no_settings_model_keeps_a_template_sequence(before: str, sequence: str, after: str) -> None:
    value = before + sequence + after
    for data in ({"text": value}, {"items": ("ok", value)}, {"pairs": (("NAME", value),)}):
        with pytest.raises(ConfigurationError) as caught:
            _Sample(**data)
        assert caught.value.allowed == LITERAL_TEXT


@given(st.text(max_size=30))
def test_accepted_text_is_literal(text: str) -> None:
    try:
        _Sample(text=text)
    except ConfigurationError:
        return
    assert is_literal(text)


@pytest.mark.parametrize("field", ["items", "pairs", "numbers"])
def test_no_list_holds_one_entry_twice(field: str) -> None:
    entry = {"items": "x", "pairs": ("A", "1"), "numbers": 3}[field]
    with pytest.raises(ConfigurationError) as caught:
        _Sample(**{field: (entry, entry)})
    assert caught.value.field == field and "at most once" in caught.value.allowed
