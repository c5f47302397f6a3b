"""Checks that run on every stack at synthesis, as a CDKTF Aspect, cdk-nag style.

Each rule is a small object with an ``id``, a one-line ``description`` and a ``check`` method that
looks at one synthesized resource and returns what is wrong with it. Rules see the resource's
*final* Terraform configuration, after escape hatches and overrides, exactly as Terraform will see
it, so nothing slips past by being set in an unusual way.

A rule can be suppressed for one construct (and everything below it) with :func:`suppress`, which
requires a written reason. Violations fail synthesis with the construct path and the rule id. A suppression
that silences a finding is written into the synthesized JSON of that resource, under
``"//": {"suppressed_checks": {"<rule>": "<reason>"}}`` (Terraform ignores ``//`` keys), so a reviewer of
``cdk.tf.json`` sees every exception and why it was made.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsii
from cdktf import IAspect, TerraformResource, TerraformStack
from constructs import IConstruct

_SUPPRESSIONS_ATTR = "_ml_platform_suppressions"
SUPPRESSED_CHECKS_KEY = "suppressed_checks"
"""Key under a resource's ``//`` comment block that lists the suppressed rules that fired, with their reasons."""


# Start of every check failure message. The error crosses the jsii boundary (the aspect runs as a
# callback from the Node.js kernel) and comes back as a RuntimeError carrying only the text, so
# callers recognise a check failure by this marker.
CHECK_FAILURE_MARKER = "synthesis checks failed: "


class SynthesisCheckError(Exception):
    """One or more synthesis checks failed; the message lists every violation."""


def check_failure_report(error: BaseException) -> str | None:
    """The violation report carried by ``error`` if it is a synthesis check failure, else None."""
    text = str(error)
    if CHECK_FAILURE_MARKER not in text:
        return None
    return text.split(CHECK_FAILURE_MARKER, 1)[1].strip()


@dataclass(frozen=True)
class SynthResource:
    """One resource of a stack as Terraform will see it.

    type: Terraform type (``aws_s3_bucket``); name: logical name in the JSON; path: construct path;
    config: the resource's JSON configuration; taggable: the resource type has a ``tags`` argument;
    stack: the whole stack configuration (for rules that look at providers or other resources).
    """

    type: str
    name: str
    path: str
    config: dict[str, Any]
    taggable: bool
    stack: dict[str, Any]

    @property
    def address(self) -> str:
        """The Terraform address, ``type.name``."""
        return f"{self.type}.{self.name}"

    def others(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """All resources of ``resource_type`` in the same stack, by logical name."""
        return self.stack.get("resource", {}).get(resource_type, {})


class Rule(Protocol):
    """A synthesis check: ``check`` returns one message per problem found (empty when compliant).

    A rule that also looks at what is not a resource (data sources, providers, outputs, the backend) defines
    ``check_stack(config) -> Sequence[str]`` as well; it runs once per stack, on the whole configuration.
    """

    id: str
    description: str

    def check(self, resource: SynthResource) -> Sequence[str]: ...


def suppress(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Exempt ``construct`` and everything below it from ``rule_id``; ``reason`` is mandatory."""
    if not isinstance(reason, str) or len(reason.strip()) < 10:
        raise ValueError(
            f"{construct.node.path}: suppressing {rule_id} needs a written reason of at least 10 characters"
        )
    existing: dict[str, str] = getattr(construct, _SUPPRESSIONS_ATTR, {})
    setattr(construct, _SUPPRESSIONS_ATTR, {**existing, rule_id: reason.strip()})


def suppressions_of(construct: IConstruct) -> dict[str, str]:
    """Suppressions that apply to ``construct`` (its own and its ancestors')."""
    merged: dict[str, str] = {}
    for scope in construct.node.scopes:
        merged.update(getattr(scope, _SUPPRESSIONS_ATTR, {}))
    return merged


# Terraform type and taggability per resource class, looked up once: every property read on a
# construct is a round trip to the jsii kernel, and a stack holds hundreds of resources.
_CLASS_INFO: dict[type, tuple[str, bool]] = {}


def _class_info(node: TerraformResource) -> tuple[str, bool]:
    cls = type(node)
    info = _CLASS_INFO.get(cls)
    if info is None:
        resource_type = getattr(cls, "TF_RESOURCE_TYPE", None) or node.terraform_resource_type
        info = _CLASS_INFO[cls] = (resource_type, hasattr(cls, "tags_input"))
    return info


@dataclass(frozen=True)
class _Scope:
    """A construct carrying suppressions: its path and its own suppressions."""

    path: str
    suppressions: dict[str, str]


def _suppressed_scopes(stack: TerraformStack) -> tuple[list[_Scope], set[str]]:
    """Constructs with suppressions (pre-order, so ancestors come first) and the taggable resource types."""
    scopes: list[_Scope] = []
    taggable_types: set[str] = set()
    for node in stack.node.find_all():
        own = getattr(node, _SUPPRESSIONS_ATTR, None)
        if own:
            scopes.append(_Scope(node.node.path, own))
        if isinstance(node, TerraformResource):
            resource_type, taggable = _class_info(node)
            if taggable:
                taggable_types.add(resource_type)
    return scopes, taggable_types


def synth_resources(
    stack: TerraformStack, config: dict[str, Any] | None = None
) -> list[tuple[SynthResource, dict[str, str]]]:
    """Every resource of ``stack`` with its final configuration and the suppressions that apply to it.

    ``config``: the stack's final configuration when the caller already has it (``stack.to_terraform()``).
    """
    if config is None:
        config = stack.to_terraform()
    scopes, taggable_types = _suppressed_scopes(stack)
    found: list[tuple[SynthResource, dict[str, str]]] = []
    for resource_type, by_name in config.get("resource", {}).items():
        for name, resource_config in by_name.items():
            path = resource_config.get("//", {}).get("metadata", {}).get("path", f"{resource_type}.{name}")
            suppressions: dict[str, str] = {}
            for scope in scopes:
                if path == scope.path or path.startswith(scope.path + "/"):
                    suppressions.update(scope.suppressions)
            resource = SynthResource(
                type=resource_type,
                name=name,
                path=path,
                config=resource_config,
                taggable=resource_type in taggable_types,
                stack=config,
            )
            found.append((resource, suppressions))
    return found


def _construct_at(stack: TerraformStack, path: str) -> IConstruct | None:
    """The construct at ``path`` (a path below ``stack``), looked up one level at a time."""
    prefix = stack.node.path + "/"
    if not path.startswith(prefix):
        return None
    node: IConstruct = stack
    for part in path[len(prefix) :].split("/"):
        child = node.node.try_find_child(part)
        if child is None:
            return None
        node = child
    return node


@jsii.implements(IAspect)
class SynthChecks:
    """An Aspect that runs ``rules`` over every resource of the stack it is added to.

    It acts once, when visiting the stack itself, on the stack's final configuration.
    """

    def __init__(self, name: str, rules: Iterable[Rule]) -> None:
        self.name = name
        self.rules = tuple(rules)

    def violations(self, stack: TerraformStack) -> list[str]:
        """Every violation in ``stack`` as ``[path] RULE-ID: message``; suppressed findings are recorded."""
        problems: list[str] = []
        silenced: dict[str, dict[str, str]] = {}
        stack_config = stack.to_terraform()
        for resource, suppressed in synth_resources(stack, stack_config):
            for rule in self.rules:
                findings = rule.check(resource)
                if not findings:
                    continue
                if rule.id in suppressed:
                    silenced.setdefault(resource.path, {})[rule.id] = suppressed[rule.id]
                    continue
                problems.extend(f"[{resource.path}] {rule.id}: {message}" for message in findings)
        for rule in self.rules:
            check_stack = getattr(rule, "check_stack", None)
            if check_stack is not None:
                problems.extend(f"[{stack.node.path}] {rule.id}: {message}" for message in check_stack(stack_config))
        for path, rules in silenced.items():
            construct = _construct_at(stack, path)
            if isinstance(construct, TerraformResource):
                construct.add_override(f"//.{SUPPRESSED_CHECKS_KEY}", dict(sorted(rules.items())))
        return problems

    def visit(self, node: IConstruct) -> None:
        """Check the stack; raise :class:`SynthesisCheckError` listing every violation."""
        if not TerraformStack.is_stack(node):
            return
        problems = self.violations(node)  # type: ignore[arg-type]
        if problems:
            summary = f"{CHECK_FAILURE_MARKER}{self.name}: {len(problems)} violation(s) in stack '{node.node.id}':"
            raise SynthesisCheckError(summary + "".join(f"\n  {problem}" for problem in problems))
