"""Rules on whom resource policies let in: AWS services only on behalf of this account's resources (``IAM-3``),
and KMS keys administered by named principals, never by the whole account (``KMS-2``).

Like the rules of :mod:`constructs.policy.rules`, they read the final JSON configuration: policy documents parsed
from their JSON strings or from the ``aws_iam_policy_document`` data source they reference. Condition operators
and keys are matched as IAM matches them (keys case-insensitively, ``*`` and ``?`` wildcards in actions).
``docs/security.md`` lists the rules, why each exists, and how to suppress one with a reason.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from constructs.core.checks import SynthResource
from constructs.policy.documents import (
    UncheckablePolicy,
    as_list,
    points_at,
    policy_attributes,
    policy_statements,
)

# Operators under which a condition key must be present and equal to (or like) a value. `...IfExists`,
# negations and `ForAllValues:` also hold when the key is missing, and `Null` tests presence only, so none of
# them ties a request to a value.
_BINDING_OPERATORS = frozenset({"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "bool"})
# IAM's confused-deputy guards: the account, resource or organization a service acts for.
SOURCE_KEYS = ("aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid", "aws:sourceorgpaths")
# In a key policy, a service that binds every data key to its resource by encryption context (CloudWatch Logs:
# the log group ARN; SNS: the topic ARN) is bound to that resource by a condition on the context.
ENCRYPTION_CONTEXT_PREFIX = "kms:encryptioncontext:"
KMS_KEY_TYPES = frozenset(
    {"aws_kms_key", "aws_kms_replica_key", "aws_kms_external_key", "aws_kms_replica_external_key"}
)
KEY_POLICY_TYPES = KMS_KEY_TYPES | {"aws_kms_key_policy"}
# What only a key's administrators may do: whoever may call them can give anyone any use of the key.
KEY_ADMINISTRATION_ACTIONS = ("kms:PutKeyPolicy", "kms:CreateGrant")

_ACCOUNT_ROOT = re.compile(r"^arn:[^:]+:iam::[^:]+:root$")
_ACCOUNT_ID = re.compile(r"^(?:\d{12}|\$\{data\.aws_caller_identity\.[^.}]+\.account_id\})$")


def held_conditions(statement: dict[str, Any]) -> dict[str, list[str]]:
    """The statement's condition keys (lower-case) that must be present and match, with their values.

    Values that are nothing but wildcards (``*``) are dropped: they match whatever the request carries.
    """
    held: dict[str, list[str]] = {}
    conditions = statement.get("Condition")
    if not isinstance(conditions, dict):
        return held
    for operator, tests in conditions.items():
        base = str(operator).lower().removeprefix("foranyvalue:")
        if base not in _BINDING_OPERATORS or not isinstance(tests, dict):
            continue
        for key, values in tests.items():
            specific = [str(v) for v in as_list(values) if str(v).replace("*", "").replace("?", "")]
            if specific:
                held.setdefault(str(key).lower(), []).extend(specific)
    return held


def _label(statement: dict[str, Any], index: int) -> str:
    return str(statement.get("Sid") or f"#{index}")


def _readable_statements(resource: SynthResource, value: Any) -> list[dict[str, Any]] | None:
    try:
        return policy_statements(value, resource.stack)
    except UncheckablePolicy:
        return None


class ServicePrincipalsBoundToSource:
    """Rule ``IAM-3``: a resource policy lets an AWS service in only on behalf of this account's resources.

    An Allow statement for a ``Service`` principal (``logging.s3.amazonaws.com``, ``events.amazonaws.com``)
    without a source condition lets that service act for any customer's resource: another account could point
    its own bucket's logs, rule or alarm at ours (the confused deputy). So every such statement of a resource
    policy (bucket, key, topic, queue, repository, secret, log resource policy, on any resource type) must hold
    ``aws:SourceAccount``, ``aws:SourceArn``, ``aws:SourceOrgID`` or ``aws:SourceOrgPaths`` under an equality,
    ``Like`` or ``Arn`` operator (not ``...IfExists``, not a negation, not a bare ``*``). In a key policy a
    condition on the encryption context (``kms:EncryptionContext:aws:logs:arn``,
    ``kms:EncryptionContext:aws:sns:topicArn``) counts as well: it is how CloudWatch Logs binds a key to log
    groups, and the only binding SNS supports when EventBridge publishes to an encrypted topic (SNS documents
    the source keys as unsupported there). A Lambda permission for a service needs ``source_arn``,
    ``source_account`` or ``principal_org_id``.

    Role trust policies (which service may assume a role) are not checked: whether a service sends source keys
    when it assumes a role differs by service (EC2 does not), so each role's trust conditions are its
    construct's decision (the SageMaker execution role requires ``aws:SourceAccount``).
    """

    id = "IAM-3"
    description = "Resource policies grant AWS services only with aws:SourceAccount / aws:SourceArn / aws:SourceOrgID"

    @staticmethod
    def _bound(statement: dict[str, Any], key_policy: bool) -> bool:
        held = held_conditions(statement)
        if any(key in held for key in SOURCE_KEYS):
            return True
        return key_policy and any(key.startswith(ENCRYPTION_CONTEXT_PREFIX) for key in held)

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each service grant without a source condition."""
        if resource.type == "aws_lambda_permission":
            invoker = str(resource.config.get("principal", ""))
            sources = ("source_arn", "source_account", "principal_org_id")
            if invoker.endswith(".amazonaws.com") and not any(resource.config.get(s) for s in sources):
                return [f"{resource.address} lets {invoker} invoke without source_arn or source_account"]
            return []
        problems: list[str] = []
        key_policy = resource.type in KEY_POLICY_TYPES
        for attribute, value in policy_attributes(resource):
            if attribute == "assume_role_policy":
                continue
            for index, statement in enumerate(_readable_statements(resource, value) or []):
                principal = statement.get("Principal")
                services: list[Any] = as_list(principal.get("Service")) if isinstance(principal, dict) else []
                if not services or str(statement.get("Effect", "Allow")) != "Allow":
                    continue
                if not self._bound(statement, key_policy):
                    problems.append(
                        f"{resource.address}.{attribute} statement {_label(statement, index)} lets {services} in "
                        "without aws:SourceAccount, aws:SourceArn or aws:SourceOrgID (the confused-deputy guard)"
                    )
        return problems


class KeyAdministrationNamed:
    """Rule ``KMS-2``: no key policy lets the whole account (or anyone) change the key policy or create grants.

    A key policy statement for the account principal (``arn:<partition>:iam::<account>:root`` or the bare
    account ID) lets every principal that an IAM policy of the account allows act on the key, and ``*`` lets
    anyone; with ``kms:PutKeyPolicy`` or ``kms:CreateGrant`` (also through ``kms:*``, ``kms:Put*``,
    ``kms:Create*`` or ``NotAction``), IAM alone then decides who may give anyone any use of the key. Those
    actions belong to named administrators (:func:`constructs.storage.keys.key_policy`). ``kms:CreateGrant``
    limited by ``kms:ViaService`` or ``kms:GrantIsForAWSResource`` is not administration and passes: an AWS
    service creates that grant for the resource it encrypts (an EBS volume, an EKS cluster). A key without a
    policy gets AWS's default one, ``kms:*`` for the account, and fails too, unless an ``aws_kms_key_policy``
    sets it; a key policy that cannot be read fails, since nobody can tell who administers the key.
    """

    id = "KMS-2"
    description = "Key policies give kms:PutKeyPolicy / kms:CreateGrant to named principals, never the account"

    @staticmethod
    def _account_wide(principal: Any) -> list[str]:
        if principal == "*":
            return ["*"]
        if not isinstance(principal, dict):
            return []
        return [
            p
            for p in as_list(principal.get("AWS"))
            if isinstance(p, str) and (p == "*" or _ACCOUNT_ROOT.match(p) or _ACCOUNT_ID.match(p))
        ]

    @staticmethod
    def _allowed(statement: dict[str, Any], action: str) -> bool:
        def matches(patterns: Any) -> bool:
            return any(fnmatch.fnmatchcase(action.lower(), str(p).lower()) for p in as_list(patterns))

        if "NotAction" in statement:
            return not matches(statement["NotAction"])
        return matches(statement.get("Action"))

    def _administration(self, statement: dict[str, Any]) -> list[str]:
        held = held_conditions(statement)
        through_service = "kms:viaservice" in held or "true" in [
            v.lower() for v in held.get("kms:grantisforawsresource", [])
        ]
        return [
            action
            for action in KEY_ADMINISTRATION_ACTIONS
            if self._allowed(statement, action) and not (action == "kms:CreateGrant" and through_service)
        ]

    def _has_policy(self, resource: SynthResource) -> bool:
        if resource.config.get("policy") is not None:
            return True
        return any(
            points_at(config.get("key_id"), resource, ("id", "key_id", "arn"))
            for config in resource.others("aws_kms_key_policy").values()
        )

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each account-wide administration grant, and for keys left with the default policy."""
        if resource.type not in KEY_POLICY_TYPES:
            return []
        if resource.type in KMS_KEY_TYPES and not self._has_policy(resource):
            return [f"{resource.address} has no policy, so AWS's default gives the account root kms:*"]
        problems: list[str] = []
        for attribute, value in policy_attributes(resource):
            statements = _readable_statements(resource, value)
            if statements is None:
                problems.append(f"{resource.address}.{attribute} cannot be read, so its administrators are unknown")
                continue
            for index, statement in enumerate(statements):
                if str(statement.get("Effect", "Allow")) != "Allow":
                    continue
                who = self._account_wide(statement.get("Principal"))
                actions = self._administration(statement) if who else []
                if actions:
                    problems.append(
                        f"{resource.address}.{attribute} statement {_label(statement, index)} gives {actions} to "
                        f"{who} (the whole account): name key administrators instead"
                    )
        return problems
