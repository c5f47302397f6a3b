"""Reading the synthesized Terraform JSON the way the policy rules need it.

Helpers over a resource's configuration (nested blocks, references between resources, companion resources
of a bucket) and IAM policy documents, parsed from their JSON strings or from the
``aws_iam_policy_document`` data source they reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from constructs.core.checks import SynthResource

_REFERENCE = re.compile(r"^\$\{([a-z0-9_]+)\.([^.}]+)\.([a-z0-9_]+)\}$")
_DATA_REFERENCE = re.compile(r"^\$\{data\.([a-z0-9_]+)\.([^.}]+)\.([a-z0-9_]+)\}$")

# Attributes that hold a whole IAM or resource policy document, whatever the resource type.
POLICY_ATTRIBUTES = ("policy", "assume_role_policy", "access_policies", "access_policy", "policy_document")
# Resource types whose policy must be checkable: anything else that cannot be parsed is not an IAM document.
POLICY_RESOURCE_TYPES = frozenset(
    {
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_iam_policy",
        "aws_iam_user_policy",
        "aws_iam_group_policy",
        "aws_s3_bucket_policy",
        "aws_kms_key",
        "aws_sns_topic",
        "aws_sns_topic_policy",
        "aws_sqs_queue_policy",
        "aws_ecr_repository_policy",
        "aws_ecr_registry_policy",
        "aws_secretsmanager_secret_policy",
        "aws_cloudwatch_log_resource_policy",
    }
)


# --- helpers over the synthesized JSON -------------------------------------------------------------


def blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as a list of dicts: cdktf renders single blocks as objects, repeated ones as lists."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def block(value: Any) -> dict[str, Any]:
    """The first (only) instance of a nested block, or an empty dict."""
    found = blocks(value)
    return found[0] if found else {}


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def is_token(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def referenced(value: Any, resource_type: str) -> str | None:
    """The logical name referenced by ``${<resource_type>.<name>.<attribute>}``, if ``value`` is one."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match and match.group(1) == resource_type:
        return match.group(2)
    return None


def points_at(value: Any, target: SynthResource, attributes: Sequence[str], literal_key: str | None = None) -> bool:
    """Whether ``value`` refers to ``target`` through one of ``attributes`` (or equals its literal name)."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match:
        return match.group(1) == target.type and match.group(2) == target.name and match.group(3) in attributes
    literal = target.config.get(literal_key) if literal_key else None
    return literal is not None and value == literal


def companions(resource: SynthResource, companion_type: str, key: str = "bucket") -> list[dict[str, Any]]:
    """Resources of ``companion_type`` whose ``key`` refers to ``resource`` (an S3 bucket)."""
    return [
        config
        for config in resource.others(companion_type).values()
        if points_at(config.get(key), resource, ("id", "bucket"), literal_key="bucket")
    ]


def walk_config(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (dotted path, key, value) for every key of a nested configuration.

    cdktf metadata and tag maps are skipped: a tag's key is free text, not an argument.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("//", "tags", "tags_all"):
                continue
            child = f"{path}.{key}" if path else key
            yield child, key, item
            yield from walk_config(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_config(item, f"{path}[{index}]")


# --- IAM policy documents ----------------------------------------------------------------------------


class UncheckablePolicy(Exception):
    """A policy attribute is neither literal JSON nor a reference to an ``aws_iam_policy_document``."""


def _from_policy_document_data(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of an ``aws_iam_policy_document`` data source in IAM JSON form."""
    statements = []
    for block in blocks(data.get("statement")):
        statement: dict[str, Any] = {"Effect": block.get("effect", "Allow")}
        if "actions" in block:
            statement["Action"] = block["actions"]
        if "not_actions" in block:
            statement["NotAction"] = block["not_actions"]
        principals = blocks(block.get("principals"))
        if principals:
            statement["Principal"] = {p.get("type"): p.get("identifiers") for p in principals}
        conditions: dict[str, dict[str, Any]] = {}
        for condition in blocks(block.get("condition")):
            conditions.setdefault(condition.get("test", ""), {})[condition.get("variable", "")] = condition.get(
                "values"
            )
        if conditions:
            statement["Condition"] = conditions
        statements.append(statement)
    return statements


def policy_statements(value: Any, stack: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The statements of a policy attribute.

    Returns None when ``value`` is JSON but not a policy (an ECR lifecycle policy, say); raises
    :class:`UncheckablePolicy` when it cannot be read at all.
    """
    if isinstance(value, dict):
        document: Any = value
    elif isinstance(value, str):
        data_match = _DATA_REFERENCE.match(value)
        if data_match and data_match.group(1) == "aws_iam_policy_document":
            data = stack.get("data", {}).get("aws_iam_policy_document", {}).get(data_match.group(2))
            if data is None:
                raise UncheckablePolicy(f"references a missing policy document {value}")
            return _from_policy_document_data(data)
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            raise UncheckablePolicy(
                "is not a literal JSON document nor an aws_iam_policy_document reference "
                "(write it with constructs.core.iam so it can be checked)"
            ) from None
    else:
        raise UncheckablePolicy(f"has an unexpected value {value!r}")
    if not isinstance(document, dict) or "Statement" not in document:
        return None
    return [s for s in as_list(document["Statement"]) if isinstance(s, dict)]


def policy_attributes(resource: SynthResource) -> Iterator[tuple[str, Any]]:
    """Every (attribute, value) of ``resource`` that holds a policy document."""
    for attribute in POLICY_ATTRIBUTES:
        if resource.config.get(attribute) is not None:
            yield attribute, resource.config[attribute]
    for index, inline in enumerate(blocks(resource.config.get("inline_policy"))):
        if inline.get("policy") is not None:
            yield f"inline_policy[{index}].policy", inline["policy"]


def is_wildcard_action(action: Any) -> bool:
    if not isinstance(action, str) or is_token(action):
        return False
    service, _, name = action.partition(":")
    return action.strip() == "*" or service.strip() == "*" or name.strip() == "*"
