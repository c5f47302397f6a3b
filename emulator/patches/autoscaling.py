"""EC2 Auto Scaling: lifecycle hooks.

moto 5.2.5 hard-codes made-up notification target and role ARNs on every lifecycle hook, so a hook
configured without them was planned for an update forever (found by deploying the platform's own stacks,
``tests/test_emulator_deploy.py``). Hooks now report what they were given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap


def apply() -> None:
    """Store a lifecycle hook's notification target and role as requested.

    moto hard-codes ``arn:aws:sqs:...:my-queue`` and ``arn:aws:iam::1234567890:role/my-auto-scaling-role``
    on every hook, so a hook configured without them (its events go to EventBridge) is planned for
    an update forever.
    """
    from moto.autoscaling.responses import AutoScalingResponse

    def keep_requested_targets(original: Callable[..., Any]) -> Callable[..., Any]:
        def put_lifecycle_hook(self: Any) -> Any:
            result = original(self)
            key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
            hook = self.autoscaling_backend.lifecycle_hooks[key]
            hook.notification_target_arn = self._get_param("NotificationTargetARN")
            hook.role_arn = self._get_param("RoleARN")
            hook.notification_metadata = self._get_param("NotificationMetadata")
            return result

        return put_lifecycle_hook

    wrap(AutoScalingResponse, "put_lifecycle_hook", keep_requested_targets)
