"""A monthly AWS Budget for one environment, alerting before and when the limit is reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.cost.settings import BudgetSettings


@dataclass(frozen=True)
class CostBudgetProps:
    """Props for :class:`CostBudget`.

    context: the environment: the budget is ``<name prefix>-monthly``, paid by its account and filtered by its
      ``environment`` cost allocation tag.
    settings: the limit and who is alerted.
    """

    context: PlatformContext
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
            name=f"{props.context.name_prefix}-monthly",
            account_id=props.context.account_id,
            budget_type="COST",
            limit_amount=f"{props.settings.monthly_limit_usd}.0",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filter=[
                budgets.BudgetsBudgetCostFilter(
                    name="TagKeyValue", values=[f"user:environment${props.context.environment}"]
                )
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
