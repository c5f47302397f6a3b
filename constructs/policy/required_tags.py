"""The required-tags rule: every taggable AWS resource, and what it launches, carries the owner tags."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from constructs.core.checks import SynthResource


class RequiredTags:
    """Rule ``TAG-1``: required tags reach every taggable resource and everything launched from it.

    ``default_tags`` on the AWS provider covers ordinary resources. It does not reach instances and
    volumes launched from a launch template (they need ``tag_specifications``) nor instances of an
    Auto Scaling group (they need ``tag`` blocks with ``propagate_at_launch``), so those are checked
    explicitly.
    """

    id = "TAG-1"
    description = "Taggable resources and launched instances/volumes carry environment, team, cost_center, project"

    def __init__(self, required: Sequence[str]) -> None:
        self.required = tuple(required)

    def _missing(self, tags: Mapping[str, Any] | None) -> list[str]:
        tags = tags or {}
        return [key for key in self.required if not tags.get(key)]

    def _default_tags(self, resource: SynthResource) -> dict[str, Any]:
        # A resource uses the provider named in its "provider" argument, else the unaliased one.
        alias = str(resource.config.get("provider", "aws")).split(".", 1)[-1]
        merged: dict[str, Any] = {}
        for provider in resource.stack.get("provider", {}).get("aws", []):
            if provider.get("alias", "aws") == alias or (alias == "aws" and "alias" not in provider):
                for block in provider.get("default_tags", []) or []:
                    merged.update(block.get("tags", {}) or {})
        return merged

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each missing tag."""
        if not resource.type.startswith("aws_"):
            return []
        problems: list[str] = []
        if resource.taggable:
            effective = {**self._default_tags(resource), **(resource.config.get("tags") or {})}
            missing = self._missing(effective)
            if missing:
                problems.append(f"{resource.address} lacks tags {missing} (set default_tags on its provider)")
        if resource.type == "aws_launch_template":
            specs = {
                spec.get("resource_type"): spec.get("tags") for spec in resource.config.get("tag_specifications") or []
            }
            for launched in ("instance", "volume"):
                missing = self._missing(specs.get(launched))
                if missing:
                    problems.append(f"{resource.address} tag_specifications for {launched} lack {missing}")
        if resource.type == "aws_autoscaling_group":
            propagated = {
                t.get("key"): t.get("value")
                for t in resource.config.get("tag") or []
                if t.get("propagate_at_launch") in (True, "true")
            }
            missing = self._missing(propagated)
            if missing:
                problems.append(f"{resource.address} lacks tag blocks with propagate_at_launch=true for {missing}")
        return problems
