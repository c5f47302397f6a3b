"""The environment's monthly budgets: one for the environment, one per team the matrix names, and the SNS topic
they alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.cost.settings import TEAM_COST_CATEGORY, BudgetSettings
from constructs.storage.keys import KeyAdministrators
from constructs.storage.settings import PlatformKeysSettings
from constructs.storage.topic import EncryptedTopic, EncryptedTopicProps

BUDGETS_SERVICE = "budgets.amazonaws.com"
# Alerts at 80 % of the forecast (time to act) and at 100 % of actual spend (the limit is reached).
ALERTS = ((80, "FORECASTED"), (100, "ACTUAL"))


@dataclass(frozen=True)
class CostBudgetProps:
    """Props for :class:`CostBudget`.

    context: the environment: the budgets are ``<name prefix>-monthly`` and ``<name prefix>-team-<team>-monthly``,
      paid by its account and filtered by its ``environment`` cost allocation tag.
    settings: the limits and who is alerted.
    key_administrators: who administers the alert topic's key (the platform's key administrators).
    keys: the environment's key settings, which the topic's key follows (deletion window).
    """

    context: PlatformContext
    settings: BudgetSettings
    key_administrators: KeyAdministrators
    keys: PlatformKeysSettings


class CostBudget(Construct):
    """Monthly cost budgets of one environment, alerting an encrypted SNS topic.

    The environment's budget counts everything tagged ``environment=<env>``; a team budget counts what is also in
    the team's value of the account's team cost category (``TEAM_COST_CATEGORY``, the ``team`` tag; bootstrap
    stack). Both alert the topic ``<name prefix>-cost-alerts`` (e-mail subscribers from the matrix) when the
    forecast passes 80 % and when actual spend passes 100 %; a team budget also e-mails the team's own addresses.
    The filters count only once the tags are activated as cost allocation tags (the bootstrap stack does).
    """

    def __init__(self, scope: Construct, id: str, props: CostBudgetProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self._topic()
        self.budget: Any = self._budget(
            "budget", f"{props.context.name_prefix}-monthly", props.settings.monthly_limit_usd, category=None, emails=()
        )
        self.team_budgets: dict[str, Any] = {
            team.team: self._budget(
                f"team-budget-{team.team}",
                f"{props.context.name_prefix}-team-{team.team}-monthly",
                team.monthly_limit_usd,
                category=f"{TEAM_COST_CATEGORY}${team.team}",
                emails=team.alert_emails,
            )
            for team in props.settings.teams
        }

    def _topic(self) -> None:
        c = self.props.context
        # Budgets publish from the account's budgets only: AWS Budgets sets both source keys on its requests.
        self.alerts = EncryptedTopic(
            self,
            "alerts",
            EncryptedTopicProps(
                context=c,
                name=f"{c.name_prefix}-cost-alerts",
                description=f"{c.name_prefix}: cost alert notifications",
                publisher=BUDGETS_SERVICE,
                publisher_sid="Budgets",
                source_arn=c.arn("budgets", "*", region=False),
                key_administrators=self.props.key_administrators,
                keys=self.props.keys,
                emails=self.props.settings.alert_emails,
            ),
        )
        self.topic = self.alerts.topic

    def _budget(self, id: str, name: str, limit: int, *, category: str | None, emails: tuple[str, ...]) -> Any:
        c = self.props.context
        budgets = aws.budgets_budget
        filters = [budgets.BudgetsBudgetCostFilter(name="TagKeyValue", values=[f"user:environment${c.environment}"])]
        if category is not None:
            filters.append(budgets.BudgetsBudgetCostFilter(name="CostCategory", values=[category]))
        return budgets.BudgetsBudget(
            self,
            id,
            name=name,
            account_id=c.account_id,
            budget_type="COST",
            limit_amount=f"{limit}.0",
            limit_unit="USD",
            time_unit="MONTHLY",
            cost_filter=filters,
            notification=[
                budgets.BudgetsBudgetNotification(
                    comparison_operator="GREATER_THAN",
                    threshold=threshold,
                    threshold_type="PERCENTAGE",
                    notification_type=kind,
                    subscriber_sns_topic_arns=[self.topic.arn],
                    subscriber_email_addresses=list(emails) or None,
                )
                for threshold, kind in ALERTS
            ],
            # Budgets publishes only once the topic and its key let it.
            depends_on=self.alerts.ready,
        )
