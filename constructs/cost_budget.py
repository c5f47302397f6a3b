"""A monthly AWS Budget for one environment, alerting before and when the limit is reached."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.provider_bindings import aws
from constructs.validation import require, require_field_types

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class BudgetSettings:
    """Per-environment spending limit.

    monthly_limit_usd: the environment's monthly cost budget in US dollars.
    alert_emails: who is told at 80 % forecast and 100 % actual spend (at least one address).
    """

    monthly_limit_usd: int
    alert_emails: tuple[str, ...]

    def __post_init__(self) -> None:
        where = "BudgetSettings"
        require_field_types(self, where)
        ok = isinstance(self.monthly_limit_usd, int) and not isinstance(self.monthly_limit_usd, bool)
        require(
            ok and self.monthly_limit_usd > 0,
            where,
            "monthly_limit_usd",
            self.monthly_limit_usd,
            "a positive whole number of US dollars",
        )
        require(
            isinstance(self.alert_emails, tuple) and len(self.alert_emails) > 0,
            where,
            "alert_emails",
            self.alert_emails,
            "a non-empty tuple of e-mail addresses",
        )
        for email in self.alert_emails:
            require(
                isinstance(email, str) and bool(_EMAIL.match(email)),
                where,
                "alert_emails",
                email,
                "e-mail addresses such as 'ml-platform@example.com'",
            )


@dataclass(frozen=True)
class CostBudgetProps:
    """Props for :class:`CostBudget`.

    name: budget name.
    account_id: the account that pays (explicit so the budget does not depend on an account lookup).
    environment: value of the ``environment`` cost allocation tag the budget is filtered by.
    settings: the limit and who is alerted.
    """

    name: str
    account_id: str
    environment: str
    settings: BudgetSettings


class CostBudget(Construct):
    """A monthly cost budget filtered to one environment's ``environment`` tag.

    Alerts go out when the forecast passes 80 % and when actual spend passes 100 %. The tag
    filter counts only once ``environment`` is activated as a cost allocation tag in Billing.
    """

    def __init__(self, scope: Construct, id: str, props: CostBudgetProps) -> None:
        super().__init__(scope, id)
        emails = list(props.settings.alert_emails)
        budgets = aws.budgets_budget
        self.budget: Any = budgets.BudgetsBudget(
            self,
            "budget",
            name=props.name,
            account_id=props.account_id,
            budget_type="COST",
            limit_amount=f"{props.settings.monthly_limit_usd}.0",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filter=[
                budgets.BudgetsBudgetCostFilter(name="TagKeyValue", values=[f"user:environment${props.environment}"])
            ],
            notification=[
                budgets.BudgetsBudgetNotification(
                    comparison_operator="GREATER_THAN",
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    notification_type=kind,
                    subscriber_email_addresses=emails,
                )
                for threshold, kind in ((80, "FORECASTED"), (100, "ACTUAL"))
            ],
        )
