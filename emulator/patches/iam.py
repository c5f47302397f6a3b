"""IAM: AWS managed policies, and the evaluation of policy conditions (bucket policies).

* moto 5.2.5 knows no ``arn:aws:iam::aws:policy/...`` ARN unless ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``,
  so a managed policy could not be attached. It is set when this module is imported, before any IAM
  backend is built.
* Policy conditions (found by deploying the platform's own stacks, ``tests/test_emulator_deploy.py``):
  moto ignores ``Bool`` conditions (reads them as met) and treats a statement whose condition fails as a
  deny, so a TLS-only bucket policy denied every object request. ``Bool`` is evaluated, requests count as
  made over TLS, and unmet statements do not apply.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap

# moto reads this when it builds an IAM backend (lazily, per account, and again after every reset),
# so it must be in the environment before the first IAM request, not merely before `import moto`.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"


def apply() -> None:
    """Evaluate policy conditions on ``aws:SecureTransport`` as AWS does for an HTTPS request.

    moto skips condition operators it does not implement (everything but StringEquals), so it reads
    ``Bool`` conditions as met, and it evaluates a statement whose condition is not met as an explicit
    deny, whatever its effect. Together these made the platform's TLS-only bucket policy (Deny ``s3:*``
    when ``aws:SecureTransport`` is ``false``) deny every object request, so a bucket could not even
    be emptied. Here ``Bool`` is evaluated, requests count as made over TLS (the emulator stands in
    for AWS's HTTPS endpoints; its own transport is plain HTTP on loopback), and a statement whose
    condition does not hold does not apply (neither allow nor deny).
    """
    from moto.iam import policy_conditions
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    def bool_equals(expected: list[str] | str, actual: str) -> bool:
        values = expected if isinstance(expected, list) else [expected]
        return str(actual).lower() in {str(value).lower() for value in values}

    policy_conditions.CONDITION_OPERATIONS.setdefault("Bool", bool_equals)

    def skip_unmet_conditions(original: Callable[..., Any]) -> Callable[..., Any]:
        def is_action_permitted(
            self: Any,
            action: str,
            resource: str = "*",
            principal: str | None = None,
            incoming_condition_values: dict[str, str] | None = None,
        ) -> Any:
            incoming = {"aws:SecureTransport": "true", **(incoming_condition_values or {})}
            result = original(self, action, resource, principal, incoming)
            if result is not PermissionResult.DENIED or not self._statement.get("Condition"):
                return result
            wrong_principal = (
                principal is not None
                and not self.is_unknown_principal(self._statement.get("Principal"))
                and not self._check_principal(principal)
            )
            if not wrong_principal and not self._check_conditions(incoming):
                return PermissionResult.NEUTRAL
            return result

        return is_action_permitted

    wrap(IAMPolicyStatement, "is_action_permitted", skip_unmet_conditions)
