"""Application Auto Scaling: tags of scalable targets.

moto 5.2.5 does not implement ``ListTagsForResource``, ``TagResource`` and ``UntagResource``, and
``RegisterScalableTarget`` ignores ``Tags``; the provider reads a target's tags back after creating it, so an
``aws_appautoscaling_target`` could not be created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock, wrap


def apply() -> None:
    """Add Application Auto Scaling tagging, and keep tags given to RegisterScalableTarget."""
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse
    from moto.core.exceptions import JsonRESTError

    def tags_of(response: Any) -> dict[str, dict[str, str]]:
        return backend_store(response.applicationautoscaling_backend, "_emulator_target_tags")

    def target_arn(response: Any, arn: str) -> str:
        backend = response.applicationautoscaling_backend
        if not any(t.arn == arn for targets in backend.targets.values() for t in targets.values()):
            raise JsonRESTError("ResourceNotFoundException", f"No scalable target found for {arn}")
        return arn

    def list_tags_for_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        return json.dumps({"Tags": dict(tags_of(self).get(arn, {}))})

    def tag_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        with store_lock:
            tags_of(self).setdefault(arn, {}).update(self._get_param("Tags") or {})
        return json.dumps({})

    def untag_resource(self: Any) -> str:
        arn = target_arn(self, self._get_param("ResourceARN"))
        with store_lock:
            for key in self._get_param("TagKeys") or []:
                tags_of(self).get(arn, {}).pop(key, None)
        return json.dumps({})

    def keep_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def register_scalable_target(self: Any) -> Any:
            result = original(self)
            tags = self._get_param("Tags") or {}
            if tags:
                arn = json.loads(result)["ScalableTargetARN"]
                with store_lock:
                    tags_of(self).setdefault(arn, {}).update(tags)
            return result

        return register_scalable_target

    def drop_tags(original: Callable[..., Any]) -> Callable[..., Any]:
        def deregister_scalable_target(self: Any) -> Any:
            backend = self.applicationautoscaling_backend
            dimension = self._get_param("ScalableDimension")
            target = backend.targets.get(dimension, {}).get(self._get_param("ResourceId"))
            result = original(self)
            if target is not None:
                with store_lock:
                    tags_of(self).pop(target.arn, None)
            return result

        return deregister_scalable_target

    add_action(ApplicationAutoScalingResponse, "list_tags_for_resource", list_tags_for_resource)
    add_action(ApplicationAutoScalingResponse, "tag_resource", tag_resource)
    add_action(ApplicationAutoScalingResponse, "untag_resource", untag_resource)
    wrap(ApplicationAutoScalingResponse, "register_scalable_target", keep_tags)
    wrap(ApplicationAutoScalingResponse, "deregister_scalable_target", drop_tags)
