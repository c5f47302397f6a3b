"""CostBudget: the environment's monthly budget, team budgets beside it, and the encrypted topic they alert."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from constructs.cost.budget import CostBudget, CostBudgetProps
from constructs.cost.settings import BudgetSettings, TeamBudgetSettings
from constructs.storage.keys import KeyAdministrators
from constructs.storage.settings import PlatformKeysSettings

from tests.support.stacks import DEPLOYER_ARN, TinyStack
from tests.support.synth_json import ENVIRONMENTS, arn_parts, only, policy, ref, resources

TOPIC = "platform/budget/alerts/topic"


def _alerts(topic_arn: str, emails: list[str] | None = None) -> list[dict]:
    """The two notifications every budget sends: forecast past 80 %, actual spend past 100 %."""
    extra = {"subscriber_email_addresses": emails} if emails else {}
    return [
        {
            "comparison_operator": "GREATER_THAN",
            "notification_type": kind,
            "subscriber_sns_topic_arns": [topic_arn],
            "threshold": threshold,
            "threshold_type": "PERCENTAGE",
            **extra,
        }
        for threshold, kind in ((80, "FORECASTED"), (100, "ACTUAL"))
    ]


def _tiny(settings: BudgetSettings) -> dict:
    tiny = TinyStack()
    CostBudget(
        tiny.stack,
        "budget",
        CostBudgetProps(
            context=tiny.context,
            settings=settings,
            key_administrators=KeyAdministrators(DEPLOYER_ARN),
            keys=PlatformKeysSettings(deletion_window_days=7),
        ),
    )
    return tiny.synth_with_paths()


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
def test_the_budget_counts_only_its_environment_and_alerts_the_topic(stacks, env) -> None:
    stack = stacks[env]
    budget = only(stack, "aws_budgets_budget")
    assert budget["cost_filter"] == [{"name": "TagKeyValue", "values": [f"user:environment${env}"]}]
    assert budget["notification"] == _alerts(ref(stack, "aws_sns_topic", TOPIC, "arn"))
    # Created after the permissions that let Budgets publish, so the first alert is never lost.
    assert ref(stack, "aws_sns_topic_policy", "platform/budget/alerts/policy", "")[2:-2] in " ".join(
        budget["depends_on"]
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_alert_topic_is_encrypted_with_its_own_key_that_only_budgets_of_the_account_may_use(stacks, env) -> None:
    stack = stacks[env]
    partition, _, account = arn_parts(stack)
    topic = only(stack, "aws_sns_topic", TOPIC)
    assert topic["name"] == f"mlp-{env}-cost-alerts"
    assert topic["kms_master_key_id"] == ref(stack, "aws_kms_key", "platform/budget/alerts/key", "arn")
    key = only(stack, "aws_kms_key", "platform/budget/alerts/key")
    assert key["enable_key_rotation"] is True
    own_budgets = {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:budgets::{account}:*"},
    }
    (budgets_use,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "BudgetsPublishToTopic"]
    assert budgets_use == {
        "Sid": "BudgetsPublishToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "budgets.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": own_budgets,
    }
    topic_policy = only(stack, "aws_sns_topic_policy", "platform/budget/alerts/policy")
    assert policy(topic_policy["policy"])["Statement"] == [
        {
            "Sid": "BudgetsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "budgets.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": ref(stack, "aws_sns_topic", TOPIC, "arn"),
            "Condition": own_budgets,
        }
    ]
    topic_arn = ref(stack, "aws_sns_topic", TOPIC, "arn")
    (subscription,) = [
        s for s in resources(stack, "aws_sns_topic_subscription").values() if s["topic_arn"] == topic_arn
    ]
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ml-platform-alerts@example.com")


def test_the_default_matrix_names_no_team_budget(stacks) -> None:
    for env in ENVIRONMENTS:
        assert [b["name"] for b in resources(stacks[env], "aws_budgets_budget").values()] == [f"mlp-{env}-monthly"]


def test_a_team_budget_counts_its_team_in_its_environment_only_and_emails_the_team() -> None:
    settings = BudgetSettings(
        monthly_limit_usd=1000,
        alert_emails=("ops@example.com", "finance@example.org"),
        teams=(
            TeamBudgetSettings(team="vision", monthly_limit_usd=300, alert_emails=("vision-lead@example.com",)),
            TeamBudgetSettings(team="nlp", monthly_limit_usd=200),
        ),
    )
    stack = _tiny(settings)
    topic_arn = ref(stack, "aws_sns_topic", "budget/alerts/topic", "arn")
    budgets = {b["name"]: b for b in resources(stack, "aws_budgets_budget").values()}
    assert set(budgets) == {"p-test-monthly", "p-test-team-vision-monthly", "p-test-team-nlp-monthly"}
    vision = budgets["p-test-team-vision-monthly"]
    assert vision["limit_amount"] == "300.0"
    # Filters on two dimensions: Budgets combine them with AND (values of one dimension are combined with OR).
    assert vision["cost_filter"] == [
        {"name": "TagKeyValue", "values": ["user:environment$test"]},
        {"name": "CostCategory", "values": ["ml-platform-team$vision"]},
    ]
    assert vision["notification"] == _alerts(topic_arn, ["vision-lead@example.com"])
    assert budgets["p-test-team-nlp-monthly"]["notification"] == _alerts(topic_arn)
    assert budgets["p-test-monthly"]["cost_filter"] == [{"name": "TagKeyValue", "values": ["user:environment$test"]}]
    subscribers = sorted(s["endpoint"] for s in resources(stack, "aws_sns_topic_subscription").values())
    assert subscribers == ["finance@example.org", "ops@example.com"]


def test_the_alert_key_follows_the_environments_deletion_window_and_administrators() -> None:
    stack = _tiny(BudgetSettings(monthly_limit_usd=42, alert_emails=("a@example.com",)))
    key = only(stack, "aws_kms_key", "budget/alerts/key")
    assert key["deletion_window_in_days"] == 7
    (admins,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AdministratorsManageKey"]
    assert admins["Principal"] == {"AWS": [DEPLOYER_ARN]}
    assert only(stack, "aws_kms_alias", "budget/alerts/key-alias")["name"] == "alias/p-test-cost-alerts"
    budget = only(stack, "aws_budgets_budget", "budget/budget")
    assert (budget["name"], budget["account_id"], budget["limit_amount"]) == ("p-test-monthly", "123456789012", "42.0")


def test_the_team_budgets_example_adds_a_budget_per_team_next_to_the_environments(clean_env, tmp_path) -> None:
    from main import build_app

    clean_env.setenv("ML_PLATFORM_OVERRIDES_FILE", "examples/team-budgets.json")
    example = json.loads(Path("examples/team-budgets.json").read_text())
    app = build_app(str(tmp_path))
    for env in ENVIRONMENTS:
        stack = json.loads(json.dumps(app.node.find_child(env).to_terraform()))
        names = sorted(b["name"] for b in resources(stack, "aws_budgets_budget").values())
        teams = [team["team"] for team in example.get(env, {}).get("budget.teams", [])]
        assert names == sorted([f"mlp-{env}-monthly", *(f"mlp-{env}-team-{team}-monthly" for team in teams)])
