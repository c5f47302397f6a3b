"""The account's cost allocation: the owner tags activated for Cost Explorer and Budgets, and the team category."""

from __future__ import annotations

from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.cost.settings import COST_ALLOCATION_TAG_KEYS, TEAM_COST_CATEGORY, TEAM_COST_CATEGORY_DEFAULT


class CostAllocation(Construct):
    """Activates the owner tags as cost allocation tags and defines the team cost category.

    Account-wide (one per payer account), so it belongs to the bootstrap stack, never to an environment: two
    environments in one account would fight over it. A tag key can only be activated once AWS Billing has seen it on
    a resource, up to 24 hours after the first tagged resource exists (docs/state-bootstrap.md). The category takes
    each resource's ``team`` tag as its value, so a new team needs no change here; the environments' team budgets
    filter on it (``constructs/cost/budget.py``).
    """

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.tags: dict[str, Any] = {
            key: aws.ce_cost_allocation_tag.CeCostAllocationTag(self, f"tag-{key}", tag_key=key, status="Active")
            for key in COST_ALLOCATION_TAG_KEYS
        }
        category = aws.ce_cost_category
        self.team_category = category.CeCostCategory(
            self,
            "team-category",
            name=TEAM_COST_CATEGORY,
            rule_version="CostCategoryExpression.v1",
            rule=[
                category.CeCostCategoryRule(
                    type="INHERITED_VALUE",
                    inherited_value=category.CeCostCategoryRuleInheritedValue(
                        dimension_name="TAG", dimension_key="team"
                    ),
                )
            ],
            default_value=TEAM_COST_CATEGORY_DEFAULT,
            # A cost category can only inherit an active cost allocation tag.
            depends_on=[self.tags["team"]],
        )
