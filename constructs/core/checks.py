"""Checks that run on every stack at synthesis, once per stack, on the configuration written for it.

Each rule is a small object with an ``id``, a one-line ``description`` and a ``check`` method that
looks at one synthesized resource and returns what is wrong with it. Rules see the resource's
*final* Terraform configuration, after escape hatches, overrides and every Aspect, exactly as Terraform
will see it (they read the written ``cdk.tf.json``), so nothing slips past by being set in an unusual way.

:meth:`SynthChecks.apply_to` adds the checks to a stack. They run as a validation of its app, which cdktf
runs once every stack is written (``app.synth()``, ``cdktf synth``, ``python main.py``); a stack that fails
is removed, and ``main.py`` writes into a scratch directory that replaces ``cdktf.out`` only on success.
``cdktf.Testing.synth`` writes nothing and runs no app validation: tests call ``app.synth()``, or
:meth:`SynthChecks.violations` on a stack.

A rule can be suppressed for one construct (and everything below it) with :func:`suppress`, which
requires a written reason. Violations fail synthesis with the construct path and the rule id. A suppression
that silences a finding is written into the synthesized JSON of that resource, under
``"//": {"suppressed_checks": {"<rule>": "<reason>"}}`` (Terraform ignores ``//`` keys), so a reviewer of
``cdk.tf.json`` sees every exception and why it was made.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jsii
from cdktf import App, TerraformResource, TerraformStack
from constructs import IConstruct, IValidation
from constructs.core.stack_json import stack_json

_SUPPRESSIONS_ATTR = "_ml_platform_suppressions"
_CHECKS_ATTR = "_ml_platform_checks"
SUPPRESSED_CHECKS_KEY = "suppressed_checks"
"""Key under a resource's ``//`` comment block that lists the suppressed rules that fired, with their reasons."""


# Start of every check failure message. The error crosses the jsii boundary (the validation runs as a
# callback from the Node.js kernel, which reports it) and comes back as a RuntimeError carrying only the
# text, so callers recognise a check failure by this marker.
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


class SynthChecks:
    """The rules of one policy (``name``), run over every resource of the stacks they are applied to."""

    def __init__(self, name: str, rules: Iterable[Rule]) -> None:
        self.name = name
        self.rules = tuple(rules)

    def apply_to(self, stack: TerraformStack) -> None:
        """Check ``stack`` each time its app is synthesized, on the configuration written for it.

        A violation fails the synthesis, and the failing stack's file is removed.
        """
        _WrittenStackChecks.of(stack).add(stack, self)

    def violations(self, stack: TerraformStack, config: dict[str, Any] | None = None) -> list[str]:
        """Every violation in ``stack`` (configuration ``config``, else its current one) as ``[path] RULE-ID: ...``."""
        return self.findings(stack, stack.to_terraform() if config is None else config)[0]

    def findings(
        self, stack: TerraformStack, config: dict[str, Any]
    ) -> tuple[list[str], dict[tuple[str, str], dict[str, str]]]:
        """The violations in ``stack``'s configuration ``config``, and the findings that suppressions silenced:
        ``(problems, {(resource type, name): {rule id: reason}})``."""
        problems: list[str] = []
        silenced: dict[tuple[str, str], dict[str, str]] = {}
        for resource, suppressed in synth_resources(stack, config):
            for rule in self.rules:
                found = rule.check(resource)
                if not found:
                    continue
                if rule.id in suppressed:
                    silenced.setdefault((resource.type, resource.name), {})[rule.id] = suppressed[rule.id]
                    continue
                problems.extend(f"[{resource.path}] {rule.id}: {message}" for message in found)
        for rule in self.rules:
            check_stack = getattr(rule, "check_stack", None)
            if check_stack is not None:
                problems.extend(f"[{stack.node.path}] {rule.id}: {message}" for message in check_stack(config))
        return problems, silenced

    def check_written(self, stack: TerraformStack, stack_file: Path) -> str | None:
        """Check the configuration written for ``stack`` to ``stack_file``.

        Returns the failure report (which starts with the policy's name), or None when ``stack`` complies; then
        each silenced finding is noted in the file under its resource's ``//`` block, with its reason.
        """
        config = json.loads(stack_file.read_text())
        problems, silenced = self.findings(stack, config)
        if problems:
            summary = f"{self.name}: {len(problems)} violation(s) in stack '{stack.node.id}':"
            return summary + "".join(f"\n  {problem}" for problem in problems)
        if silenced:
            _note_suppressions(config, silenced)
            stack_file.write_text(stack_json(config))
        return None


def _note_suppressions(config: dict[str, Any], silenced: dict[tuple[str, str], dict[str, str]]) -> None:
    """Note each silenced finding in its resource's ``//`` block, as an override of ``//`` would.

    cdktf lists every resource's overridden keys in the stack's ``//.metadata.overrides``, by resource type; the
    note is such an override, so it is listed there too (after the type's other entries: the list is
    informational, and only its order within a type could differ from an override made before the write).
    """
    overrides = config.setdefault("//", {}).setdefault("metadata", {}).setdefault("overrides", {})
    for (resource_type, name), rules in sorted(silenced.items()):
        notes = config["resource"][resource_type][name].setdefault("//", {})
        if SUPPRESSED_CHECKS_KEY not in notes:
            overrides.setdefault(resource_type, []).append("//")
        notes[SUPPRESSED_CHECKS_KEY] = dict(sorted(rules.items()))


@jsii.implements(IValidation)
class _WrittenStackChecks:
    """The checks of every stack of one app, as a validation of the app.

    cdktf runs an app's own validations once every stack is written, so the checks read each stack's final
    configuration from its file. (Checking before the write would need the configuration from the jsii kernel,
    a second rendering of every stack; and an Aspect is called back from the kernel for every construct.)
    """

    def __init__(self, app: App) -> None:
        self.app = app
        self.stacks: list[tuple[TerraformStack, SynthChecks]] = []

    @classmethod
    def of(cls, stack: TerraformStack) -> _WrittenStackChecks:
        """The checks of ``stack``'s app, added to the app on first use."""
        app = stack.node.root
        if not isinstance(app, App):
            raise TypeError(f"{stack.node.path}: checks need the stack to belong to a cdktf App")
        checks: _WrittenStackChecks | None = getattr(app, _CHECKS_ATTR, None)
        if checks is None:
            checks = cls(app)
            setattr(app, _CHECKS_ATTR, checks)
            app.node.add_validation(checks)
        return checks

    def add(self, stack: TerraformStack, checks: SynthChecks) -> None:
        """Run ``checks`` on ``stack``."""
        self.stacks.append((stack, checks))

    def validate(self) -> list[str]:
        """Check every written stack; raise :class:`SynthesisCheckError` with one report for all that fail.

        (Raised rather than returned: cdktf would report returned errors with advice to skip validations.)
        """
        reports: list[str] = []
        for stack, checks in self.stacks:
            stack_file = Path(self.app.outdir) / "stacks" / stack.node.id / "cdk.tf.json"
            if not stack_file.is_file():
                reports.append(f"{checks.name}: stack '{stack.node.id}' was not written to {stack_file}")
                continue
            report = checks.check_written(stack, stack_file)
            if report is not None:
                stack_file.unlink()
                reports.append(report)
        if reports:
            raise SynthesisCheckError(CHECK_FAILURE_MARKER + "\n".join(reports))
        return []
