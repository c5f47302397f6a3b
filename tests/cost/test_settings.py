"""BudgetSettings: a positive whole-dollar limit and at least one valid alert address."""

from __future__ import annotations

import re

import pytest
from constructs.core.errors import ConfigurationError
from constructs.cost.settings import BudgetSettings, TeamBudgetSettings

EMAILS_ALLOWED = (
    "a list of e-mail addresses such as 'ml-platform@example.com' (ASCII; at most 64 characters before the '@' and "
    "254 in all; a domain of dot-separated labels ending in a letters-only top-level domain) (at least 1 item)"
)
LIMIT_ALLOWED = "a whole number from 1 to 1000000"


def test_a_budget_with_a_limit_and_addresses() -> None:
    settings = BudgetSettings(monthly_limit_usd=1, alert_emails=("ops@example.com",))
    assert (settings.monthly_limit_usd, settings.alert_emails) == (1, ("ops@example.com",))


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        ({"monthly_limit_usd": 0}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"monthly_limit_usd": -5}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"monthly_limit_usd": True}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"monthly_limit_usd": 1.5}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"monthly_limit_usd": "100"}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"alert_emails": ()}, "alert_emails", EMAILS_ALLOWED),
        ({"alert_emails": ["ops@example.com"]}, "alert_emails", EMAILS_ALLOWED),
        ({"alert_emails": ("ops@example.com", "not-an-email")}, "alert_emails[1]", "e-mail addresses such as"),
        ({"alert_emails": ("ops@example",)}, "alert_emails[0]", "e-mail addresses such as"),
        ({"currency": "EUR"}, "currency", "one of 'monthly_limit_usd', 'alert_emails', 'teams'"),
    ],
)
def test_bad_budget_settings_are_rejected(values, field, allowed) -> None:
    complete = {"monthly_limit_usd": 100, "alert_emails": ("ops@example.com",), **values}
    pattern = rf"^BudgetSettings: field '{re.escape(field)}' = .* allowed: {re.escape(allowed)}"
    with pytest.raises(ConfigurationError, match=pattern):
        BudgetSettings(**complete)


@pytest.mark.parametrize("missing", ["monthly_limit_usd", "alert_emails"])
def test_limit_and_addresses_are_required(missing) -> None:
    values = {"monthly_limit_usd": 100, "alert_emails": ("ops@example.com",)}
    del values[missing]
    with pytest.raises(ConfigurationError, match=rf"^BudgetSettings: field '{missing}'.*\(the field is required\)$"):
        BudgetSettings(**values)


def test_team_budgets_are_optional_and_each_team_has_one() -> None:
    assert BudgetSettings(monthly_limit_usd=1, alert_emails=("ops@example.com",)).teams == ()
    team = {"team": "vision", "monthly_limit_usd": 10}
    with pytest.raises(
        ConfigurationError,
        match=r"^BudgetSettings: field 'teams\[1\]\.team' = 'vision' .*allowed: a team without another budget",
    ):
        BudgetSettings(monthly_limit_usd=100, alert_emails=("ops@example.com",), teams=(team, {**team}))


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        ({"team": ""}, "team", "a tag value of 1-256 ASCII letters"),
        ({"team": "vision "}, "team", "not starting or ending with a space"),
        ({"team": "vi\tsion"}, "team", "a tag value of 1-256 ASCII letters"),
        ({"monthly_limit_usd": 0}, "monthly_limit_usd", LIMIT_ALLOWED),
        ({"alert_emails": ("lead@example",)}, "alert_emails[0]", "e-mail addresses such as"),
        ({"alert_emails": tuple(f"a{i}@example.com" for i in range(11))}, "alert_emails", "at most 10 items"),
    ],
)
def test_bad_team_budgets_are_rejected(values, field, allowed) -> None:
    team = {"team": "vision", "monthly_limit_usd": 10, **values}
    pattern = rf"^TeamBudgetSettings: field '{re.escape(field)}' = .* allowed: .*{re.escape(allowed)}"
    with pytest.raises(ConfigurationError, match=pattern):
        TeamBudgetSettings(**team)
