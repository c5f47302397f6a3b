"""The Budgets patch through boto3: notification subscribers and tags."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, Emulator

pytestmark = pytest.mark.emulator

NOTIFICATION = {
    "NotificationType": "ACTUAL",
    "ComparisonOperator": "GREATER_THAN",
    "Threshold": 80.0,
    "ThresholdType": "PERCENTAGE",
}


def test_budget_subscribers_and_tags(aws: Emulator) -> None:
    budgets = aws.client("budgets")
    budgets.create_budget(
        AccountId=ACCOUNT_ID,
        Budget={
            "BudgetName": "ml-monthly",
            "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
        NotificationsWithSubscribers=[
            {
                "Notification": {**NOTIFICATION, "Threshold": 80},
                "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "ml-team@example.com"}],
            }
        ],
        ResourceTags=[{"Key": "team", "Value": "ml"}],
    )
    subscribers = budgets.describe_subscribers_for_notification(
        AccountId=ACCOUNT_ID, BudgetName="ml-monthly", Notification=NOTIFICATION
    )["Subscribers"]
    assert subscribers == [{"SubscriptionType": "EMAIL", "Address": "ml-team@example.com"}]
    with pytest.raises(ClientError) as unknown:
        budgets.describe_subscribers_for_notification(
            AccountId=ACCOUNT_ID, BudgetName="ml-monthly", Notification={**NOTIFICATION, "Threshold": 99.0}
        )
    assert unknown.value.response["Error"]["Code"] == "NotFoundException"

    arn = f"arn:aws:budgets::{ACCOUNT_ID}:budget/ml-monthly"
    assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == [{"Key": "team", "Value": "ml"}]
    budgets.tag_resource(ResourceARN=arn, ResourceTags=[{"Key": "env", "Value": "dev"}])
    budgets.untag_resource(ResourceARN=arn, ResourceTagKeys=["team"])
    assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == [{"Key": "env", "Value": "dev"}]

    budgets.delete_budget(AccountId=ACCOUNT_ID, BudgetName="ml-monthly")
    with pytest.raises(ClientError) as deleted:
        budgets.list_tags_for_resource(ResourceARN=arn)
    assert deleted.value.response["Error"]["Code"] == "NotFoundException"
