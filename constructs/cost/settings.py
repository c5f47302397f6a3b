"""Cost controls: the environment's and its teams' spending limits, and the account's cost allocation."""

from __future__ import annotations

from typing import Annotated, Self

from constructs.core.errors import require_field
from constructs.core.formats import Email, TagValue
from constructs.core.settings import Settings
from pydantic import Field, model_validator

COST_ALLOCATION_TAG_KEYS = ("environment", "team", "cost_center", "project")
"""The owner tags every resource carries, activated as cost allocation tags so Cost Explorer can group by them."""
TEAM_COST_CATEGORY = "ml-platform-team"
"""The account's Cost Explorer cost category whose value is a resource's ``team`` tag (bootstrap stack).

Budgets filter on one dimension's values with OR, so "environment dev AND team vision" needs a second dimension: a
team budget filters the ``environment`` tag and this category, which AWS Budgets combine with AND.
"""
TEAM_COST_CATEGORY_DEFAULT = "no-team"
"""The category's value for costs without a ``team`` tag (taxes, support, untaggable usage)."""
MonthlyLimitUsd = Annotated[int, Field(ge=1, le=1_000_000)]


class TeamBudgetSettings(Settings):
    """One team's monthly budget within an environment.

    team: the ``team`` tag value whose costs count (in this environment only): the environment's owner team
      (``tags.team``) or any team that tags its own resources in the environment's account, such as training jobs
      started with ``--tags Key=team,Value=<team>``.
    monthly_limit_usd: the team's monthly limit in US dollars (1 to 1,000,000).
    alert_emails: the team's own recipients, told directly besides the environment's cost-alert topic (at most 10:
      AWS Budgets allows 10 e-mail subscribers per notification).
    """

    team: TagValue
    monthly_limit_usd: MonthlyLimitUsd
    alert_emails: Annotated[tuple[Email, ...], Field(max_length=10)] = ()


class BudgetSettings(Settings):
    """Per-environment spending limits.

    monthly_limit_usd: the environment's monthly cost budget in US dollars (1 to 1,000,000: a larger figure
      is a typo, and a budget that never fires is no budget).
    alert_emails: the e-mail subscribers of the environment's cost-alert SNS topic, which every budget of the
      environment notifies at 80 % of forecast and 100 % of actual spend (at least one address).
    teams: team budgets beside the environment's (each team once; at most 20).
    """

    monthly_limit_usd: MonthlyLimitUsd
    alert_emails: Annotated[tuple[Email, ...], Field(min_length=1)]
    teams: Annotated[tuple[TeamBudgetSettings, ...], Field(max_length=20)] = ()

    @model_validator(mode="after")
    def _teams_once(self) -> Self:
        names = [team.team for team in self.teams]
        for index, name in enumerate(names):
            require_field(name not in names[:index], f"teams[{index}].team", name, "a team without another budget")
        return self


class CostAllocationSettings(Settings):
    """The account's cost allocation (bootstrap stack).

    activate_tags: activate the owner tags (``COST_ALLOCATION_TAG_KEYS``) as cost allocation tags, and define the
      team cost category (``TEAM_COST_CATEGORY``) the team budgets filter on. Only an account that pays its own bill
      can: in an AWS Organization's member account set it to False and activate them in the management account.
    """

    activate_tags: bool = True
