"""Small, typed helpers for writing least-privilege IAM policy documents.

Policies are rendered with ``json.dumps`` so that Terraform sees a literal JSON string in which
only ARNs and names are interpolations; the policy checks can then read actions and resources
straight from the synthesized configuration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.refs import RoleRef


@dataclass(frozen=True)
class PolicyStatement:
    """One IAM policy statement. Actions and resources are tuples so statements stay immutable."""

    sid: str
    actions: tuple[str, ...]
    resources: tuple[str, ...] = ()
    effect: str = "Allow"
    principals: dict[str, Any] | None = None
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Only for Deny statements that except a few resources ("deny reading any object but the state").
    not_resources: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The statement as an IAM JSON object."""
        statement: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals is not None:
            statement["Principal"] = self.principals
        statement["Action"] = list(self.actions) if len(self.actions) > 1 else self.actions[0]
        if self.resources:
            statement["Resource"] = list(self.resources) if len(self.resources) > 1 else self.resources[0]
        if self.not_resources:
            statement["NotResource"] = list(self.not_resources)
        if self.conditions:
            statement["Condition"] = self.conditions
        return statement


def policy_document(*statements: PolicyStatement) -> str:
    """Render statements as an IAM policy document string."""
    return json.dumps({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]}, sort_keys=False)


def service_trust_policy(*services: str, conditions: dict[str, dict[str, Any]] | None = None) -> str:
    """A trust policy that lets the given AWS services (``ec2.amazonaws.com``) assume a role."""
    return policy_document(
        PolicyStatement(
            sid="TrustedServices",
            actions=("sts:AssumeRole",),
            principals={"Service": list(services) if len(services) > 1 else services[0]},
            conditions=conditions or {},
        )
    )


def grant(scope: Construct, id: str, role: RoleRef, *statements: PolicyStatement, name: str | None = None) -> Any:
    """Attach ``statements`` to ``role`` as one inline policy named after the intent (``name`` or ``id``).

    One inline policy per grant keeps a plan readable ("role X gains read-training-data") and
    lets a grant be removed without touching the others.
    """
    return aws.iam_role_policy.IamRolePolicy(
        scope,
        id,
        name=name or id,
        role=role.name,
        policy=policy_document(*statements),
    )


def service_role(
    scope: Construct,
    id: str,
    *,
    name: str,
    services: tuple[str, ...],
    description: str,
    trust_conditions: dict[str, dict[str, Any]] | None = None,
) -> RoleRef:
    """An IAM role assumable only by ``services``, with no permissions until something grants them.

    ``trust_conditions`` narrow who may assume it further (e.g. ``aws:SourceAccount`` against the
    confused-deputy problem).
    """
    return aws.iam_role.IamRole(
        scope,
        id,
        name=name,
        description=description,
        assume_role_policy=service_trust_policy(*services, conditions=trust_conditions),
        max_session_duration=3600,
    )
