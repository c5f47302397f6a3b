"""The environment's monthly budgets: one for the environment, one per team the matrix names, and the SNS topic
they alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, policy_document
from constructs.core.protection import prevent_destroy
from constructs.cost.settings import TEAM_COST_CATEGORY, BudgetSettings
from constructs.storage.keys import KeyAdministrators, key_policy
from constructs.storage.settings import PlatformKeysSettings

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
        name = f"{c.name_prefix}-cost-alerts"
        # Budgets publish from the account's budgets only: AWS Budgets sets both source keys on its requests.
        from_own_budgets = {
            "StringEquals": {"aws:SourceAccount": c.account_id},
            "ArnLike": {"aws:SourceArn": c.arn("budgets", "*", region=False)},
        }
        # A key of its own: AWS Budgets can only publish to an encrypted topic whose key policy lets it use the key
        # (the AWS managed aws/sns key's policy cannot be changed), and the data key should not serve Budgets.
        self.key = aws.kms_key.KmsKey(
            self,
            "alerts-key",
            description=f"{c.name_prefix}: cost alert notifications",
            enable_key_rotation=True,
            deletion_window_in_days=self.props.keys.deletion_window_days,
            lifecycle=prevent_destroy(c.protected),
            policy=key_policy(
                c,
                self.props.key_administrators,
                PolicyStatement(
                    sid="BudgetsPublishToTopic",
                    principals={"Service": BUDGETS_SERVICE},
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    resources=("*",),
                    conditions=from_own_budgets,
                ),
            ),
        )
        aws.kms_alias.KmsAlias(self, "alerts-key-alias", name=f"alias/{name}", target_key_id=self.key.key_id)
        self.topic = aws.sns_topic.SnsTopic(self, "alerts-topic", name=name, kms_master_key_id=self.key.arn)
        self.topic_policy = aws.sns_topic_policy.SnsTopicPolicy(
            self,
            "alerts-topic-policy",
            arn=self.topic.arn,
            policy=policy_document(
                PolicyStatement(
                    sid="BudgetsPublish",
                    principals={"Service": BUDGETS_SERVICE},
                    actions=("sns:Publish",),
                    resources=(self.topic.arn,),
                    conditions=from_own_budgets,
                )
            ),
        )
        for index, email in enumerate(self.props.settings.alert_emails):
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"alerts-email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=email
            )

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
            depends_on=[self.topic_policy, self.key],
        )
