"""CostBudget: one monthly budget per environment, filtered to its environment tag, alerting at 80 % and 100 %."""

from __future__ import annotations

import pytest
from constructs.cost.budget import CostBudget, CostBudgetProps
from constructs.cost.settings import BudgetSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, arn_parts, only, resources


def _alerts(emails: list[str]) -> list[dict]:
    """The two notifications every budget sends: forecast past 80 %, actual spend past 100 %."""
    return [
        {
            "comparison_operator": "GREATER_THAN",
            "notification_type": kind,
            "subscriber_email_addresses": emails,
            "threshold": threshold,
            "threshold_type": "PERCENTAGE",
        }
        for threshold, kind in ((80, "FORECASTED"), (100, "ACTUAL"))
    ]


@pytest.mark.parametrize(("env", "limit"), [("dev", "500.0"), ("staging", "3000.0"), ("prod", "20000.0")])
def test_each_environment_has_one_monthly_budget_with_its_limit(stacks, env, limit) -> None:
    stack = stacks[env]
    assert len(resources(stack, "aws_budgets_budget")) == 1
    budget = only(stack, "aws_budgets_budget", "platform/budget/budget")
    _, _, account = arn_parts(stack)
    assert budget["name"] == f"mlp-{env}-monthly"
    assert budget["account_id"] == account
    assert (budget["budget_type"], budget["time_unit"]) == ("COST", "MONTHLY")
    assert (budget["limit_amount"], budget["limit_unit"]) == (limit, "USD")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_budget_counts_only_its_environment_and_alerts_the_team(stacks, env) -> None:
    budget = only(stacks[env], "aws_budgets_budget")
    assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:environment${env}"]}]
    assert budget["notification"] == _alerts(["ml-platform-alerts@example.com"])


def test_the_budget_takes_its_name_account_and_filter_from_the_context() -> None:
    tiny = TinyStack()
    settings = BudgetSettings(monthly_limit_usd=42, alert_emails=("a@example.com", "b@example.org"))
    CostBudget(tiny.stack, "budget", CostBudgetProps(context=tiny.context, settings=settings))
    (config,) = resources(tiny.synth(), "aws_budgets_budget").values()
    assert config["name"] == "p-test-monthly"
    assert config["account_id"] == "123456789012"
    assert config["limit_amount"] == "42.0"
    assert config["cost_filter"] == [{"name": "TagKeyValue", "values": ["user:environment$test"]}]
    assert config["notification"] == _alerts(["a@example.com", "b@example.org"])
