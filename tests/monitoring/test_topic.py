"""The alert topic: its own rotating key that CloudWatch alarms of the account may use, and its subscribers."""

from __future__ import annotations

from typing import Any

import pytest

from stacks.matrix import MATRIX
from tests.monitoring.conftest import CHAT, PAGER
from tests.support.synth_json import arn_parts, names_of, only, output, policy, ref, resources

TOPIC = "platform/monitoring/alerts/topic"
KEY = "platform/monitoring/alerts/key"


def _own_alarms(stack: dict[str, Any]) -> dict[str, Any]:
    partition, region, account = arn_parts(stack)
    return {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:*"},
    }


def _subscriptions(stack: dict[str, Any]) -> list[dict[str, Any]]:
    topic = ref(stack, "aws_sns_topic", TOPIC, "arn")
    return [s for s in resources(stack, "aws_sns_topic_subscription").values() if s["topic_arn"] == topic]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_alert_topic_is_encrypted_with_its_own_rotating_key(stacks, env) -> None:
    stack = stacks[env]
    topic = only(stack, "aws_sns_topic", TOPIC)
    assert topic["name"] == f"mlp-{env}-alerts"
    assert topic["kms_master_key_id"] == ref(stack, "aws_kms_key", KEY, "arn")
    key = only(stack, "aws_kms_key", KEY)
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == MATRIX[env].keys.deletion_window_days
    # Prod's key carries prevent_destroy (PROT-1): its deletion would make queued alerts unreadable.
    assert key.get("lifecycle") == ({"prevent_destroy": True} if env == "prod" else None)
    alias = only(stack, "aws_kms_alias", "platform/monitoring/alerts/key-alias")
    assert (alias["name"], alias["target_key_id"]) == (
        f"alias/mlp-{env}-alerts",
        ref(stack, "aws_kms_key", KEY, "key_id"),
    )


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_only_cloudwatch_alarms_of_the_account_and_region_may_use_the_key_and_publish(stacks, env) -> None:
    stack = stacks[env]
    statements = {s["Sid"]: s for s in policy(only(stack, "aws_kms_key", KEY)["policy"])["Statement"]}
    assert set(statements) == {"AccountReadsKey", "AdministratorsManageKey", "CloudWatchAlarmsPublishToTopic"}
    assert statements["CloudWatchAlarmsPublishToTopic"] == {
        "Sid": "CloudWatchAlarmsPublishToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": _own_alarms(stack),
    }
    topic_policy = only(stack, "aws_sns_topic_policy", "platform/monitoring/alerts/policy")
    assert topic_policy["arn"] == ref(stack, "aws_sns_topic", TOPIC, "arn")
    assert policy(topic_policy["policy"])["Statement"] == [
        {
            "Sid": "CloudWatchAlarmsPublish",
            "Effect": "Allow",
            "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": ref(stack, "aws_sns_topic", TOPIC, "arn"),
            "Condition": _own_alarms(stack),
        }
    ]


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_matrix_subscribers_get_the_alerts_by_email(stacks, env) -> None:
    subscriptions = _subscriptions(stacks[env])
    assert [(s["protocol"], s["endpoint"]) for s in subscriptions] == [
        ("email", address) for address in MATRIX[env].monitoring.alert_emails
    ]
    assert output(stacks[env], "alerts_topic_arn")["value"] == ref(stacks[env], "aws_sns_topic", TOPIC, "arn")


def test_https_endpoints_are_subscribed_and_must_confirm(altered) -> None:
    stack = altered["staging"]
    by_protocol = {
        protocol: [s for s in _subscriptions(stack) if s["protocol"] == protocol] for protocol in ("email", "https")
    }
    assert [s["endpoint"] for s in by_protocol["email"]] == ["oncall@example.com", "ml-platform-alerts@example.com"]
    assert [s["endpoint"] for s in by_protocol["https"]] == [PAGER, CHAT]
    for subscription in by_protocol["https"]:
        # Terraform waits for the confirmation: an endpoint that cannot confirm fails the deploy.
        assert subscription["endpoint_auto_confirms"] is True
        assert subscription["confirmation_timeout_in_minutes"] == 5
    for subscription in by_protocol["email"]:
        assert "endpoint_auto_confirms" not in subscription


def test_dev_has_no_alert_topic_until_its_alarms_are_switched_on(stacks, altered) -> None:
    assert names_of(stacks["dev"], "aws_sns_topic", "monitoring/alerts/topic") == []
    assert names_of(stacks["dev"], "aws_kms_key", "monitoring/alerts/key") == []
    assert "alerts_topic_arn" not in stacks["dev"]["output"]
    # The cost alerts keep their own topic either way.
    assert names_of(stacks["dev"], "aws_sns_topic", "budget/alerts/topic") != []
    dev = altered["dev"]
    assert [(s["protocol"], s["endpoint"]) for s in _subscriptions(dev)] == [("email", "dev-alerts@example.com")]
    assert output(dev, "alerts_topic_arn")["value"] == ref(dev, "aws_sns_topic", TOPIC, "arn")
