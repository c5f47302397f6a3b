"""Budgets: notification subscribers and tags.

moto 5.2.5 does not implement ``DescribeSubscribersForNotification``, ``ListTagsForResource``,
``TagResource`` and ``UntagResource``, and ``CreateBudget`` ignores ``ResourceTags``; the provider calls all
of them to read an ``aws_budgets_budget`` back, so without them a budget could not be created at all.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock, tag_dict, tag_list, wrap


def _notification_key(notification: dict[str, Any]) -> tuple[str, str, float, str]:
    """Identify a budget notification the way AWS does, tolerant of ``80`` vs ``80.0``.

    moto stores the notification exactly as the client sent it; clients differ in whether they send
    ``ThresholdType`` (default PERCENTAGE) and in how they encode the threshold number.
    """
    return (
        str(notification.get("NotificationType")),
        str(notification.get("ComparisonOperator")),
        float(notification.get("Threshold", 0)),
        str(notification.get("ThresholdType") or "PERCENTAGE"),
    )


def _budget_arn(partition: str, account_id: str, budget_name: str) -> str:
    """Return a budget's ARN (budgets is a global service: the ARN has no region)."""
    return f"arn:{partition}:budgets::{account_id}:budget/{budget_name}"


def apply() -> None:
    """Add the Budgets subscriber and tagging actions moto lacks, and keep tags given at creation."""
    from moto.budgets.exceptions import NotFoundException
    from moto.budgets.responses import BudgetsResponse

    def tags_of(response: Any) -> dict[str, dict[str, str]]:
        return backend_store(response.backend, "_emulator_budget_tags")

    def budget_for_arn(response: Any, arn: str) -> str:
        # arn:aws:budgets::123456789012:budget/NAME
        try:
            account_id = arn.split(":")[4]
            name = arn.split(":", 5)[5].split("/", 1)[1]
        except IndexError as error:
            raise NotFoundException(f"Invalid ARN: {arn}") from error
        if name not in response.backend.budgets.get(account_id, {}):
            raise NotFoundException(f"Unable to find budget for resource {arn}")
        return arn

    def describe_subscribers_for_notification(self: Any) -> str:
        account_id = self._get_param("AccountId")
        budget_name = self._get_param("BudgetName")
        wanted = _notification_key(self._get_param("Notification") or {})
        budget = self.backend.budgets.get(account_id, {}).get(budget_name)
        if budget is None:
            raise NotFoundException(f"Unable to get subscribers - the budget {budget_name} doesn't exist.")
        for notification in budget.notifications:
            if _notification_key(notification.details) == wanted:
                return json.dumps({"Subscribers": list(notification.subscribers)})
        raise NotFoundException("Unable to get subscribers - the notification doesn't exist.")

    def list_tags_for_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        return json.dumps({"ResourceTags": tag_list(tags_of(self).get(arn, {}))})

    def tag_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        with store_lock:
            tags_of(self).setdefault(arn, {}).update(tag_dict(self._get_param("ResourceTags")))
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        arn = budget_for_arn(self, self._get_param("ResourceARN"))
        with store_lock:
            for key in self._get_param("ResourceTagKeys") or []:
                tags_of(self).get(arn, {}).pop(key, None)
        return json.dumps({})

    def keep_resource_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def create_budget(self: Any) -> Any:
            result = original(self)
            tags = tag_dict(self._get_param("ResourceTags"))
            if tags:
                name = (self._get_param("Budget") or {})["BudgetName"]
                arn = _budget_arn(self.partition, self._get_param("AccountId"), name)
                with store_lock:
                    tags_of(self)[arn] = tags
            return result

        return create_budget

    def drop_resource_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_budget(self: Any) -> Any:
            result = original(self)
            arn = _budget_arn(self.partition, self._get_param("AccountId"), self._get_param("BudgetName"))
            with store_lock:
                tags_of(self).pop(arn, None)
            return result

        return delete_budget

    actions = (describe_subscribers_for_notification, list_tags_for_resource, tag_resource, untag_resource)
    for action in actions:
        add_action(BudgetsResponse, action.__name__, action)
    wrap(BudgetsResponse, "create_budget", keep_resource_tags)
    wrap(BudgetsResponse, "delete_budget", drop_resource_tags)
