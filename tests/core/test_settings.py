"""The settings base: strict, frozen, closed models whose errors name the field, the value and what is allowed."""

from __future__ import annotations

from typing import Annotated, Literal, Self

import pytest
from constructs.core.errors import ConfigurationError, FieldError
from constructs.core.formats import LOG_RETENTION_DAYS, Email, LogRetentionDays
from constructs.core.settings import Settings, cidr_block, describe, matches, settings_error
from pydantic import Field, ValidationError, model_validator


class Inner(Settings):
    """A section with a rule between its fields."""

    low: Annotated[int, Field(ge=0, le=10)] = 1
    high: Annotated[int, Field(ge=0, le=10)] = 5

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise FieldError("low", self.low, f"a value <= high ({self.high})")
        return self


class Outer(Settings):
    """A model with every kind of field the platform's settings use."""

    flag: bool = False
    ratio: Annotated[float, Field(gt=0)] = 1.0
    mode: Literal["a", "b"] = "a"
    emails: Annotated[tuple[Email, ...], Field(min_length=1)] = ("ops@example.com",)
    retention: LogRetentionDays = 14
    cidr: Annotated[str, cidr_block(16, 20)] = "10.0.0.0/16"
    code: Annotated[str, matches(r"[a-z]{3}", "three lowercase letters")] = "abc"
    inner: Inner = Field(default_factory=Inner)
    maybe: Inner | None = None


@pytest.mark.parametrize(
    ("kwargs", "field", "value", "allowed"),
    [
        ({"flag": 1}, "flag", 1, "a boolean (true/false)"),
        ({"flag": "yes"}, "flag", "yes", "a boolean (true/false)"),
        ({"ratio": 0}, "ratio", 0, "a number greater than 0"),
        ({"ratio": True}, "ratio", True, "a number greater than 0"),
        ({"mode": "c"}, "mode", "c", "one of 'a', 'b'"),
        (
            {"emails": ()},
            "emails",
            (),
            "a list of e-mail addresses such as 'ml-platform@example.com' (ASCII; at most 64 characters before the "
            "'@' and 254 in all; a domain of dot-separated labels ending in a letters-only top-level domain) "
            "(at least 1 item)",
        ),
        ({"emails": ["ops@example.com"]}, "emails", ["ops@example.com"], "a list of e-mail addresses"),
        ({"emails": ("ops@example.com", "nope")}, "emails[1]", "nope", "e-mail addresses such as"),
        ({"emails": ("ops@example.com\n",)}, "emails[0]", "ops@example.com\n", "e-mail addresses such as"),
        ({"retention": 2}, "retention", 2, "a CloudWatch Logs retention, one of 1, 3, 5"),
        ({"retention": True}, "retention", True, "a CloudWatch Logs retention"),
        ({"cidr": "10.0.0.1/16"}, "cidr", "10.0.0.1/16", "prefix from /16 to /20"),
        ({"cidr": "10.0.0.0/8"}, "cidr", "10.0.0.0/8", "prefix from /16 to /20"),
        ({"code": "abcd"}, "code", "abcd", "three lowercase letters"),
        ({"code": 123}, "code", 123, "three lowercase letters"),
        ({"inner": {"low": 11}}, "inner.low", 11, "a whole number from 0 to 10"),
        ({"inner": {"low": 6}}, "inner.low", 6, "a value <= high (5)"),
        ({"inner": "x"}, "inner", "x", "Inner settings (override their fields by dotted path)"),
        ({"maybe": {"high": -1}}, "maybe.high", -1, "a whole number from 0 to 10"),
        ({"unknown": 1}, "unknown", "unknown", "one of 'flag', 'ratio'"),
    ],
)
def test_errors_name_the_field_the_value_and_what_is_allowed(kwargs, field, value, allowed) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Outer(**kwargs)
    error = caught.value
    assert (error.where, error.field, error.value) == ("Outer", field, value)
    assert allowed in error.allowed, error.allowed
    assert str(error) == f"Outer: field '{field}' = {value!r} is not allowed; allowed: {error.allowed}"


def test_models_are_frozen_strict_and_hashable() -> None:
    outer = Outer()
    with pytest.raises(ValidationError, match="frozen"):
        outer.flag = True  # type: ignore[misc]
    assert hash(Outer()) == hash(outer) and Outer() == outer
    # A float field accepts a whole number (JSON has one number type); nothing else is coerced.
    assert Outer(ratio=3).ratio == 3.0


def test_settings_error_prefixes_the_section_path() -> None:
    with pytest.raises(ValidationError) as caught:
        Inner.model_validate({"low": 7, "high": 2})
    error = settings_error(caught.value, "environment 'dev'", Inner, "training.sizes")
    assert (error.where, error.field, error.value) == ("environment 'dev'", "training.sizes.low", 7)


def test_describe_reads_constraints_from_the_type() -> None:
    assert describe(Annotated[int, Field(ge=7, le=30)]) == "a whole number from 7 to 30"
    assert describe(Annotated[int, Field(ge=1)]) == "a whole number of at least 1"
    assert describe(Annotated[str, Field(max_length=4)]) == "a string (at most 4 characters)"
    assert describe(tuple[int, ...]) == "a list of whole numbers"
    assert describe(bool | None) == "a boolean (true/false) or null"
    assert describe(LogRetentionDays).endswith(", ".join(str(d) for d in LOG_RETENTION_DAYS))
