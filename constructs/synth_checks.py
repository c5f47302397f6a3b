"""Checks that run on every stack at synthesis, as a CDKTF Aspect, cdk-nag style.

Each rule is a small object with an ``id``, a one-line ``description`` and a ``check`` method that
looks at one synthesized resource and returns what is wrong with it. Rules see the resource's
*final* Terraform configuration, after escape hatches and overrides, exactly as Terraform will see
it, so nothing slips past by being set in an unusual way.

A rule can be suppressed for one construct (and everything below it) with :func:`suppress`, which
requires a written reason. Violations fail synthesis with the construct path and the rule id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import jsii
from cdktf import IAspect, TerraformResource, TerraformStack
from constructs import IConstruct

_SUPPRESSIONS_ATTR = "_ml_platform_suppressions"


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
    """A synthesis check: ``check`` returns one message per problem found (empty when compliant)."""

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


def synth_resources(stack: TerraformStack) -> list[tuple[SynthResource, IConstruct]]:
    """Every resource of ``stack`` with its final configuration and its construct."""
    config = stack.to_terraform()
    by_type = config.get("resource", {})
    found: list[tuple[SynthResource, IConstruct]] = []
    for node in stack.node.find_all():
        if not isinstance(node, TerraformResource):
            continue
        resource_type = node.terraform_resource_type
        name = node.friendly_unique_id
        resource_config = by_type.get(resource_type, {}).get(name)
        if resource_config is None:
            continue
        found.append(
            (
                SynthResource(
                    type=resource_type,
                    name=name,
                    path=node.node.path,
                    config=resource_config,
                    taggable=hasattr(type(node), "tags_input"),
                    stack=config,
                ),
                node,
            )
        )
    return found


@jsii.implements(IAspect)
class SynthChecks:
    """An Aspect that runs ``rules`` over every resource of the stack it is added to.

    It acts once, when visiting the stack itself, on the stack's final configuration.
    """

    def __init__(self, name: str, rules: Iterable[Rule]) -> None:
        self.name = name
        self.rules = tuple(rules)

    def violations(self, stack: TerraformStack) -> list[str]:
        """Every violation in ``stack`` as ``[path] RULE-ID: message``."""
        problems: list[str] = []
        for resource, node in synth_resources(stack):
            suppressed = suppressions_of(node)
            for rule in self.rules:
                if rule.id in suppressed:
                    continue
                for message in rule.check(resource):
                    problems.append(f"[{resource.path}] {rule.id}: {message}")
        return problems

    def visit(self, node: IConstruct) -> None:
        """Check the stack; raise :class:`SynthesisCheckError` listing every violation."""
        if not TerraformStack.is_stack(node):
            return
        problems = self.violations(node)  # type: ignore[arg-type]
        if problems:
            summary = f"{CHECK_FAILURE_MARKER}{self.name}: {len(problems)} violation(s) in stack '{node.node.id}':"
            raise SynthesisCheckError(summary + "".join(f"\n  {problem}" for problem in problems))
