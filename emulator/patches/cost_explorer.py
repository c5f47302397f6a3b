"""Cost Explorer: cost allocation tags.

moto 5.2.5 implements cost categories but not ``UpdateCostAllocationTagsStatus`` and ``ListCostAllocationTags``,
which an ``aws_ce_cost_allocation_tag`` is created (and deleted: set Inactive) and read back with. AWS lists only
tag keys its billing data has seen; the emulator has no billing data, so it lists the keys whose status was set,
as user-defined tags, and accepts any key (AWS refuses a key it has not seen yet).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock


def apply() -> None:
    """Add the two cost allocation tag actions moto lacks."""
    from moto.ce.responses import CostExplorerResponse

    def tags_of(response: Any) -> dict[str, dict[str, Any]]:
        return backend_store(response.ce_backend, "_emulator_cost_allocation_tags")

    def update_cost_allocation_tags_status(self: Any) -> str:
        params = json.loads(self.body or "{}")
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        with store_lock:
            for entry in params.get("CostAllocationTagsStatus") or []:
                tags_of(self)[entry["TagKey"]] = {
                    "TagKey": entry["TagKey"],
                    "Type": "UserDefined",
                    "Status": entry["Status"],
                    "LastUpdatedDate": today,
                    "LastUsedDate": today,
                }
        return json.dumps({"Errors": []})

    def list_cost_allocation_tags(self: Any) -> str:
        params = json.loads(self.body or "{}")
        keys, status, kind = params.get("TagKeys"), params.get("Status"), params.get("Type")
        with store_lock:
            tags = [
                dict(tag)
                for key, tag in sorted(tags_of(self).items())
                if (not keys or key in keys) and status in (None, tag["Status"]) and kind in (None, tag["Type"])
            ]
        return json.dumps({"CostAllocationTags": tags})

    for action in (update_cost_allocation_tags_status, list_cost_allocation_tags):
        add_action(CostExplorerResponse, action.__name__, action)
