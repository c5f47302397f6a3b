"""What the policy tests share: one rule run on one hand-written resource, and a small stack with the pack.

Rules are checked on configurations written the way ``cdk.tf.json`` holds them, without synthesizing; the
stack helpers are for what needs the checks at synthesis (violations, suppressions, notes in the JSON).
"""

from __future__ import annotations

import json
from typing import Any

import cdktf
from constructs.core.bindings import aws
from constructs.core.checks import Rule, SynthResource
from constructs.policy.pack import security_checks

from tests.support.stacks import OWNER_TAGS
from tests.support.synth_json import doc


def document(*statements: dict[str, Any]) -> str:
    """An IAM policy document as a JSON string, as policy attributes hold it."""
    return json.dumps(doc(*statements))


KEY_ADMIN_ROLE = "arn:aws:iam::123456789012:role/key-admin"
NAMED_ADMIN_KEY_POLICY = document(
    {"Effect": "Allow", "Principal": {"AWS": KEY_ADMIN_ROLE}, "Action": ["kms:Put*", "kms:Create*"], "Resource": "*"}
)
"""A key policy that rule KMS-2 accepts: one named role administers the key (a key without a policy fails)."""


def stack_config(resources: dict[str, dict[str, dict[str, Any]]], data: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack configuration holding ``resources`` (by type, then name) and ``data`` sources."""
    return {"resource": resources, **({"data": data} if data else {})}


def check(rule: Rule, stack: dict[str, Any], resource_type: str, name: str) -> list[str]:
    """What ``rule`` finds wrong with resource ``name`` of ``resource_type`` in ``stack``."""
    config = stack["resource"][resource_type][name]
    resource = SynthResource(
        type=resource_type, name=name, path=f"test/{name}", config=config, taggable=True, stack=stack
    )
    return list(rule.check(resource))


def check_one(rule: Rule, resource_type: str, config: dict[str, Any], **others: dict[str, dict[str, Any]]) -> list[str]:
    """Check one resource named ``r`` of ``resource_type``, with other resources of the stack by type."""
    resources = {kind: dict(by_name) for kind, by_name in others.items()}
    resources.setdefault(resource_type, {})["r"] = config
    return check(rule, stack_config(resources), resource_type, "r")


def tagged_stack(
    app: cdktf.App, *, name: str = "tiny", gpu_enabled: bool = False, protected: bool = False
) -> cdktf.TerraformStack:
    """A stack whose provider tags everything with the owner tags, checked by the security pack at synthesis."""
    stack = cdktf.TerraformStack(app, name)
    aws.provider.AwsProvider(
        stack, "aws", region="us-east-1", default_tags=[aws.provider.AwsProviderDefaultTags(tags=dict(OWNER_TAGS))]
    )
    security_checks(gpu_enabled=gpu_enabled, protected=protected).apply_to(stack)
    return stack
