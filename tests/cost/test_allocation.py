"""Cost allocation: the owner tags activated and the team cost category, account-wide in the bootstrap stack only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from constructs.cost.settings import CostAllocationSettings

from stacks.matrix import BOOTSTRAP
from tests.gitops.bootstrap import load_bootstrap, synth_bootstrap
from tests.support.synth_json import ENVIRONMENTS, default_provider, resources

# The owner tags every resource carries (tests/stacks checks the tags themselves); Cost Explorer groups by them.
OWNER_TAG_KEYS = {"environment", "team", "cost_center", "project"}


@pytest.fixture(scope="module")
def bootstrap(synth_dir: Path) -> dict[str, Any]:
    return load_bootstrap(synth_dir)


def test_the_bootstrap_stack_activates_every_owner_tag_for_cost_allocation(bootstrap, stacks) -> None:
    tags = resources(bootstrap, "aws_ce_cost_allocation_tag").values()
    assert {tag["tag_key"]: tag["status"] for tag in tags} == dict.fromkeys(OWNER_TAG_KEYS, "Active")
    # Exactly the keys the environments tag with: the provider's default tags of each environment stack.
    for env in ENVIRONMENTS:
        assert set(default_provider(stacks[env])["default_tags"][0]["tags"]) == OWNER_TAG_KEYS


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_environment_activates_tags_or_defines_categories(stacks, env) -> None:
    # Account-wide settings in two environments of one account would undo each other at every apply.
    assert not resources(stacks[env], "aws_ce_cost_allocation_tag")
    assert not resources(stacks[env], "aws_ce_cost_category")


def test_the_team_category_inherits_the_team_tag_once_it_is_active(bootstrap, stacks) -> None:
    (category,) = resources(bootstrap, "aws_ce_cost_category").values()
    assert category["rule_version"] == "CostCategoryExpression.v1"
    assert category["rule"] == [
        {"type": "INHERITED_VALUE", "inherited_value": {"dimension_name": "TAG", "dimension_key": "team"}}
    ]
    assert category["default_value"] == "no-team"
    (team_tag,) = [
        f"aws_ce_cost_allocation_tag.{name}"
        for name, tag in resources(bootstrap, "aws_ce_cost_allocation_tag").items()
        if tag["tag_key"] == "team"
    ]
    assert category["depends_on"] == [team_tag]
    # The name the environments' team budgets filter on (tests/cost/test_budget.py builds one).
    assert category["name"] == "ml-platform-team"


def test_a_member_account_of_an_organization_leaves_cost_allocation_to_its_management_account() -> None:
    stack = synth_bootstrap(BOOTSTRAP.model_copy(update={"cost": CostAllocationSettings(activate_tags=False)}))
    assert not resources(stack, "aws_ce_cost_allocation_tag")
    assert not resources(stack, "aws_ce_cost_category")
    assert resources(stack, "aws_s3_bucket"), "the rest of the bootstrap stack is unchanged"
