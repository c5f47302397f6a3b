"""IAM: AWS managed policies, and the evaluation of policy conditions (bucket policies).

* moto 5.2.5 knows no ``arn:aws:iam::aws:policy/...`` ARN unless ``MOTO_IAM_LOAD_MANAGED_POLICIES=true``,
  so a managed policy could not be attached. It is set when this module is imported, before any IAM
  backend is built.
* Policy conditions (found by deploying the platform's own stacks, ``tests/test_emulator_deploy.py``):
  moto ignores ``Bool`` conditions (reads them as met) and treats a statement whose condition fails as a
  deny, so a TLS-only bucket policy denied every object request. ``Bool`` is evaluated, requests count as
  made over TLS, and unmet statements do not apply.
* Conditions on keys absent from a request (found with the state bucket's policy, which denies uploads that
  ask for another encryption, guarded by ``Null``): moto read an unknown operator (``StringNotEquals``,
  ``Null``) as met and lined expected values up with the present keys only, so that policy denied every
  upload. Conditions are evaluated as IAM does for absent keys.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Mapping
from typing import Any

from emulator.moto_helpers import wrap

# moto reads this when it builds an IAM backend (lazily, per account, and again after every reset),
# so it must be in the environment before the first IAM request, not merely before `import moto`.
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"


def _matches(operator: str, expected: str, actual: str) -> bool:
    if operator.startswith("Bool"):
        return actual.lower() == expected.lower()
    if operator.endswith("Like"):
        return fnmatch.fnmatchcase(actual, expected)
    if operator.endswith("IgnoreCase"):
        return actual.lower() == expected.lower()
    return actual == expected


def condition_holds(operator: str, expected: Any, actual: str | None) -> bool:
    """Whether one condition (``operator``, its ``expected`` value or values, the request's value) holds.

    IAM's rules for a key absent from the request (``actual`` None): a positive operator does not hold, a
    negated one (``StringNotEquals``, ``ArnNotLike``...) holds, ``...IfExists`` holds, and ``Null`` tests exactly
    that absence. Values of one key are ORed; a negated operator holds when no value matches. Operators the
    platform does not use (numbers, dates, addresses, the set qualifiers) are read as met, as moto did.
    """
    values = [str(value) for value in (expected if isinstance(expected, list) else [expected])]
    if operator == "Null":
        return (actual is None) == (values[0].lower() == "true")
    if operator.endswith("IfExists"):
        if actual is None:
            return True
        operator = operator.removesuffix("IfExists")
    base = operator.replace("Not", "", 1) if operator.startswith(("StringNot", "ArnNot")) else operator
    if not base.startswith(("String", "Arn", "Bool")):
        return True
    negated = base != operator
    if actual is None:
        return negated
    matched = any(_matches(base, value, actual) for value in values)
    return not matched if negated else matched


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], incoming: Mapping[str, str]) -> bool:
    """Whether every condition of a statement holds for a request with the context ``incoming``."""
    return all(
        condition_holds(operator, expected, incoming.get(key))
        for operator, keys in conditions.items()
        for key, expected in keys.items()
    )


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

    def evaluate_as_iam(original: Callable[..., Any]) -> Callable[..., Any]:
        def _check_conditions(self: Any, incoming_condition_values: dict[str, str] | None) -> bool:
            return conditions_hold(self._statement.get("Condition") or {}, incoming_condition_values or {})

        return _check_conditions

    wrap(IAMPolicyStatement, "_check_conditions", evaluate_as_iam)
