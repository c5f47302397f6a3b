"""The Cost Explorer patch through boto3: cost allocation tags activated, listed and filtered."""

from __future__ import annotations

import pytest

from emulator import Emulator

pytestmark = pytest.mark.emulator


def test_cost_allocation_tags_are_listed_once_their_status_is_set(aws: Emulator) -> None:
    ce = aws.client("ce")
    assert ce.list_cost_allocation_tags(TagKeys=["team"])["CostAllocationTags"] == []
    result = ce.update_cost_allocation_tags_status(
        CostAllocationTagsStatus=[{"TagKey": "team", "Status": "Active"}, {"TagKey": "project", "Status": "Active"}]
    )
    assert result["Errors"] == []
    (team,) = ce.list_cost_allocation_tags(TagKeys=["team"])["CostAllocationTags"]
    assert (team["TagKey"], team["Status"], team["Type"]) == ("team", "Active", "UserDefined")
    # Deleting the resource sets the tag Inactive; the status filter then tells the two apart.
    ce.update_cost_allocation_tags_status(CostAllocationTagsStatus=[{"TagKey": "project", "Status": "Inactive"}])
    active = ce.list_cost_allocation_tags(Status="Active")["CostAllocationTags"]
    assert [tag["TagKey"] for tag in active] == ["team"]
    every = ce.list_cost_allocation_tags()["CostAllocationTags"]
    assert {tag["TagKey"]: tag["Status"] for tag in every} == {"project": "Inactive", "team": "Active"}
    assert ce.list_cost_allocation_tags(Type="AWSGenerated")["CostAllocationTags"] == []
