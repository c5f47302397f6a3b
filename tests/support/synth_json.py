"""Queries over a synthesized ``cdk.tf.json`` (parsed), shared by every test module.

Resources are found by type and by the end of their construct path (``//.metadata.path``), the way a reader
of the JSON finds them; references are built the way cdktf writes them (``${aws_iam_role.<name>.arn}``).
"""

from __future__ import annotations

import json
from typing import Any

from stacks.matrix import ENVIRONMENT_NAMES

ENVIRONMENTS = ENVIRONMENT_NAMES
"""The environments of the matrix, in order (dev, staging, prod)."""
VERSION = "2012-10-17"


def resources(stack: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    """All resources of one type in a parsed stack, by logical name."""
    return stack.get("resource", {}).get(resource_type, {})


def names_of(stack: dict[str, Any], resource_type: str, path_suffix: str = "", block: str = "resource") -> list[str]:
    """Logical names of the resources (or data sources) of ``resource_type`` whose path ends with ``path_suffix``."""
    return [
        name
        for name, config in stack.get(block, {}).get(resource_type, {}).items()
        if config["//"]["metadata"]["path"].endswith(path_suffix)
    ]


def name_of(stack: dict[str, Any], resource_type: str, path_suffix: str, block: str = "resource") -> str:
    """The logical name of the one resource (or data source) whose path ends with ``path_suffix``."""
    matches = names_of(stack, resource_type, path_suffix, block)
    assert len(matches) == 1, f"expected one {resource_type} ending in {path_suffix!r}, found {len(matches)}"
    return matches[0]


def only(stack: dict[str, Any], resource_type: str, path_suffix: str = "") -> dict[str, Any]:
    """The single resource of ``resource_type`` whose construct path ends with ``path_suffix``."""
    return resources(stack, resource_type)[name_of(stack, resource_type, path_suffix)]


def address(stack: dict[str, Any], resource_type: str, path_suffix: str) -> str:
    """``<type>.<name>`` of the one resource whose path ends with ``path_suffix``."""
    return f"{resource_type}.{name_of(stack, resource_type, path_suffix)}"


def ref(stack: dict[str, Any], resource_type: str, path_suffix: str, attribute: str) -> str:
    """``${<type>.<name>.<attribute>}``: how the JSON refers to that resource's attribute."""
    return f"${{{address(stack, resource_type, path_suffix)}.{attribute}}}"


def data_ref(stack: dict[str, Any], data_type: str, path_suffix: str, attribute: str) -> str:
    """``${data.<type>.<name>.<attribute>}`` for the data source whose path ends with ``path_suffix``."""
    return f"${{data.{data_type}.{name_of(stack, data_type, path_suffix, block='data')}.{attribute}}}"


def arn_parts(stack: dict[str, Any]) -> tuple[str, str, str]:
    """(partition, region, account) references of the platform's data sources, as ARNs spell them."""
    return (
        data_ref(stack, "aws_partition", "platform/partition", "partition"),
        data_ref(stack, "aws_region", "platform/region", "name"),
        data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
    )


def policy(document: str) -> dict[str, Any]:
    """Parse an IAM policy JSON string."""
    return json.loads(document)


def role_policies(stack: dict[str, Any], role_suffix: str) -> dict[str, dict[str, Any]]:
    """Inline policies attached to the role whose path ends with ``role_suffix``, by policy name."""
    role = ref(stack, "aws_iam_role", role_suffix, "name")
    return {
        config["name"]: policy(config["policy"])
        for config in resources(stack, "aws_iam_role_policy").values()
        if config["role"] == role
    }


def role_attachments(stack: dict[str, Any], role_suffix: str) -> list[str]:
    """Managed policy ARNs attached to the role whose path ends with ``role_suffix``."""
    role = ref(stack, "aws_iam_role", role_suffix, "name")
    return [c["policy_arn"] for c in resources(stack, "aws_iam_role_policy_attachment").values() if c["role"] == role]


def output(stack: dict[str, Any], name: str) -> dict[str, Any]:
    """The Terraform output called ``name``."""
    outputs = stack.get("output", {})
    assert name in outputs, f"expected an output {name!r}, found {sorted(outputs)}"
    return outputs[name]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    """An IAM policy document with ``statements``."""
    return {"Version": VERSION, "Statement": list(statements)}


def allow(sid: str, actions: list[str] | str, resources_: list[str] | str, **condition: Any) -> dict[str, Any]:
    """An Allow statement as the platform writes it (conditions by operator, as keyword arguments)."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources_}
    if condition:
        statement["Condition"] = condition
    return statement


def arguments(stack: dict[str, Any], resource_type: str, path_suffix: str = "") -> dict[str, Any]:
    """The single resource's arguments as written (:func:`only` without cdktf's ``//`` metadata)."""
    return {key: value for key, value in only(stack, resource_type, path_suffix).items() if key != "//"}


def default_provider(stack: dict[str, Any]) -> dict[str, Any]:
    """The stack's default AWS provider (its region's), not an alias such as the secondary region's."""
    (provider,) = [provider for provider in stack["provider"]["aws"] if "alias" not in provider]
    return dict(provider)


def in_primary_region(stack: dict[str, Any]) -> dict[str, Any]:
    """The stack without the resources and data sources of its aliased providers (the secondary region's)."""
    view = dict(stack)
    for block in ("resource", "data"):
        view[block] = {
            kind: kept
            for kind, by_name in stack.get(block, {}).items()
            if (kept := {name: config for name, config in by_name.items() if "provider" not in config})
        }
    return view
