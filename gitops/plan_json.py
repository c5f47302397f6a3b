"""Terraform's JSON outputs, read: the machine-readable UI stream of ``terraform plan -json`` and the plan
representation of ``terraform show -json PLANFILE``. Pure functions over text, so that tests feed them
recorded outputs; running terraform is the callers' business.

Formats (Terraform 1.11): the UI stream is one JSON object per line with a ``type`` (``version``, ``log``,
``diagnostic``, ``resource_drift``, ``planned_change``, ``change_summary``, ``outputs``, ...), UI version
1.x; the plan representation has ``format_version`` 1.x and lists ``resource_drift`` (what changed outside
Terraform, from the refresh), ``resource_changes`` and ``output_changes``, each change holding ``actions``
(``no-op``, ``create``, ``read``, ``update``, ``delete``, ``forget``; a replace is ``["delete", "create"]``
or ``["create", "delete"]``) and ``before``/``after`` values with ``before_sensitive``/``after_sensitive``
marks. Unknown message types and keys are ignored, as the format's compatibility promise asks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_MAJOR = "1"
"""The major version of the UI stream (``ui``) and of the plan representation (``format_version``) read here."""

NO_CHANGE_ACTIONS = frozenset({"no-op", "read"})
"""Plan-representation actions that change nothing (a data source read is not a change)."""

STREAM_NO_CHANGE_ACTIONS = frozenset({"noop", "read"})
"""The same in the UI stream's vocabulary."""

REPLACE_ACTIONS = (("delete", "create"), ("create", "delete"))

ENVIRONMENT_NAME = re.compile(r"[a-z][a-z0-9]{0,15}")
"""An environment's name as the matrix allows it (``EnvironmentName`` in ``stacks/environment.py``); the
commands write it into HTML comments, file paths and Markdown, so they accept nothing else."""

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
# How much of a line that is not JSON an error message quotes.
_QUOTE = 200


class PlanFormatError(ValueError):
    """Terraform's output is not the JSON this module reads (not JSON, or an unsupported version)."""


def environment(name: str) -> str:
    """``name`` if it is a valid environment name, else ``ValueError`` (an argparse ``type``)."""
    if not ENVIRONMENT_NAME.fullmatch(name):
        raise ValueError(f"not an environment name: {name!r}")
    return name


# --- the UI stream of `plan -json` -----------------------------------------------------------------------


@dataclass(frozen=True)
class StreamChange:
    """One ``resource_drift``, ``planned_change`` or output change of the stream: an address and its action."""

    address: str
    action: str


@dataclass
class StreamResult:
    """What a ``plan -json`` stream said, and what was wrong with it.

    ``errors`` are the error diagnostics Terraform reported; ``problems`` what makes the stream itself
    unreadable or incomplete (a line that is not JSON, no ``change_summary`` at the end, no output at all).
    ``stray_lines`` keeps the text of lines that are not JSON, which is where a crash or a command-line
    error (printed on stderr) ends up.
    """

    terraform_version: str | None = None
    drifted: list[StreamChange] = field(default_factory=list)
    planned: list[StreamChange] = field(default_factory=list)
    outputs: list[StreamChange] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    stray_lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the stream reports an error or cannot be trusted."""
        return bool(self.errors or self.problems)


def format_diagnostic(diagnostic: Mapping[str, Any]) -> str:
    """One line per diagnostic: ``summary: detail (where)``, where = the resource address or file:line."""
    text = str(diagnostic.get("summary") or "(no summary)")
    detail = " ".join(str(diagnostic.get("detail") or "").split())
    if detail:
        text += f": {detail}"
    where = diagnostic.get("address")
    source = diagnostic.get("range")
    if not where and isinstance(source, Mapping):
        start = source.get("start")
        line = start.get("line") if isinstance(start, Mapping) else None
        where = f"{source.get('filename')}:{line}" if line else source.get("filename")
    return f"{text} ({where})" if where else text


def _change(message: Mapping[str, Any]) -> StreamChange:
    change = message.get("change")
    if not isinstance(change, Mapping):
        raise PlanFormatError("no 'change' object")
    resource = change.get("resource")
    address = resource.get("addr") if isinstance(resource, Mapping) else None
    if not isinstance(address, str) or not isinstance(change.get("action"), str):
        raise PlanFormatError("a change without a resource address or action")
    return StreamChange(address, change["action"])


def _read_message(result: StreamResult, message: Mapping[str, Any]) -> None:
    kind = message.get("type")
    if kind == "version":
        result.terraform_version = str(message.get("terraform"))
        if str(message.get("ui", "")).split(".")[0] != SUPPORTED_MAJOR:
            result.problems.append(f"unsupported UI stream version {message.get('ui')!r} (this reads 1.x)")
    elif kind == "diagnostic":
        diagnostic = message.get("diagnostic")
        if not isinstance(diagnostic, Mapping):
            raise PlanFormatError("a diagnostic without its 'diagnostic' object")
        target = result.errors if diagnostic.get("severity") == "error" else result.warnings
        target.append(format_diagnostic(diagnostic))
    elif kind == "resource_drift":
        result.drifted.append(_change(message))
    elif kind == "planned_change":
        change = _change(message)
        if change.action not in STREAM_NO_CHANGE_ACTIONS:
            result.planned.append(change)
    elif kind == "outputs":
        outputs = message.get("outputs")
        if not isinstance(outputs, Mapping):
            raise PlanFormatError("an outputs message without its 'outputs' object")
        result.outputs = [
            StreamChange(f"output.{name}", str(output.get("action")))
            for name, output in sorted(outputs.items())
            if isinstance(output, Mapping) and output.get("action") not in STREAM_NO_CHANGE_ACTIONS
        ]
    elif kind == "change_summary":
        changes = message.get("changes")
        if not isinstance(changes, Mapping):
            raise PlanFormatError("a change_summary without its 'changes' object")
        result.summary = dict(changes)


def parse_plan_stream(text: str) -> StreamResult:
    """Read the output of ``terraform plan -json`` (see the module docstring for the format).

    A line that is not a JSON object, or a message missing the parts of its type, is a problem naming
    the line; so is a stream that ends without ``change_summary`` (Terraform prints it last, so without it
    the plan did not finish or the output was cut), unless error diagnostics explain why. Empty output is
    a problem too.
    """
    result = StreamResult()
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        result.problems.append("terraform printed nothing")
        return result
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            result.problems.append(f"line {number} is not JSON: {line[:_QUOTE]!r}")
            result.stray_lines.append(line)
            continue
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            result.problems.append(f"line {number} is not a message of the UI stream: {line[:_QUOTE]!r}")
            continue
        try:
            _read_message(result, message)
        except PlanFormatError as error:
            result.problems.append(f"line {number} ({message['type']}): {error}")
    if result.terraform_version is None:
        result.problems.append("no version message: this is not the output of `terraform plan -json`")
    if result.summary is None and not result.errors:
        result.problems.append(
            "the output ends without a change_summary: terraform stopped before the plan was complete, "
            "or its output was cut"
        )
    return result


# --- the plan representation of `show -json` -------------------------------------------------------------


def load_plan(text: str) -> dict[str, Any]:
    """Parse ``terraform show -json PLANFILE`` output; ``PlanFormatError`` if it is not a 1.x plan."""
    try:
        plan = json.loads(text)
    except json.JSONDecodeError as error:
        raise PlanFormatError(f"the plan is not JSON ({error})") from None
    if not isinstance(plan, dict) or "format_version" not in plan:
        raise PlanFormatError("not the JSON of a plan (no format_version)")
    if str(plan["format_version"]).split(".")[0] != SUPPORTED_MAJOR:
        raise PlanFormatError(f"unsupported plan format {plan['format_version']!r} (this reads 1.x)")
    for key in ("resource_drift", "resource_changes"):
        if not isinstance(plan.get(key, []), list):
            raise PlanFormatError(f"'{key}' is not a list")
    if not isinstance(plan.get("output_changes", {}), dict):
        raise PlanFormatError("'output_changes' is not an object")
    return plan


@dataclass(frozen=True)
class ResourceChange:
    """One entry of ``resource_changes`` or ``resource_drift``: what happens to which resource."""

    address: str
    type: str
    actions: tuple[str, ...]
    mode: str = "managed"
    importing: bool = False

    @property
    def is_replace(self) -> bool:
        """Destroyed and created again (in either order)."""
        return self.actions in REPLACE_ACTIONS

    @property
    def is_destroy(self) -> bool:
        """Destroyed for good."""
        return self.actions == ("delete",)


def _entries(plan: Mapping[str, Any], key: str) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for entry in plan.get(key, []):
        change = entry.get("change") if isinstance(entry, Mapping) else None
        if not isinstance(change, Mapping) or not isinstance(change.get("actions"), list):
            raise PlanFormatError(f"an entry of '{key}' has no change actions")
        yield entry, change


def _address(entry: Mapping[str, Any]) -> str:
    address = str(entry.get("address"))
    deposed = entry.get("deposed")
    return f"{address} (deposed {deposed})" if deposed else address


def _is_change(entry: Mapping[str, Any], change: Mapping[str, Any]) -> bool:
    # A pure move or import is a no-op on the object, but still a change of the state.
    moved_or_imported = entry.get("previous_address") or change.get("importing")
    return not set(change["actions"]) <= NO_CHANGE_ACTIONS or bool(moved_or_imported)


def resource_changes(plan: Mapping[str, Any]) -> list[ResourceChange]:
    """The resource changes of the plan, no-ops and data-source reads left out, in the plan's order."""
    return [
        ResourceChange(
            _address(entry),
            str(entry.get("type")),
            tuple(change["actions"]),
            entry.get("mode", "managed"),
            importing=bool(change.get("importing")),
        )
        for entry, change in _entries(plan, "resource_changes")
        if _is_change(entry, change)
    ]


def output_changes(plan: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``{output name: actions}`` of the outputs the plan changes."""
    changes: dict[str, tuple[str, ...]] = {}
    for name, change in plan.get("output_changes", {}).items():
        actions = tuple(change.get("actions", ())) if isinstance(change, Mapping) else ()
        if not actions:
            raise PlanFormatError(f"output {name!r} has no change actions")
        if not set(actions) <= NO_CHANGE_ACTIONS:
            changes[name] = actions
    return changes


@dataclass(frozen=True)
class Drift:
    """A resource that changed outside Terraform: its address, the action and the attribute paths that differ."""

    address: str
    actions: tuple[str, ...]
    attributes: tuple[str, ...]


# Attributes AWS itself moves forward all the time, which no configuration sets: a database's latest restorable
# time advances every few minutes. A difference in them alone is not drift.
VOLATILE_ATTRIBUTES = frozenset({"latest_restorable_time"})


IGNORE_ALL = ("",)
"""The ignored paths of a resource with ``ignore_changes = all``: every attribute."""


def ignored_changes(configuration: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """``{address: attribute paths}`` of the ``lifecycle.ignore_changes`` of a synthesized ``cdk.tf.json``.

    What the configuration tells Terraform to leave alone, something else owns by design: cluster-autoscaler
    moves a node group's desired size, an off-hours schedule its bounds. A refresh-only plan still reports those
    changes (Terraform leaves them out of the normal plan only), so the drift check must leave them out itself.
    """
    ignored: dict[str, tuple[str, ...]] = {}
    for resource_type, by_name in (configuration.get("resource") or {}).items():
        for name, config in by_name.items():
            paths = (config.get("lifecycle") or {}).get("ignore_changes") if isinstance(config, Mapping) else None
            if paths == "all" or paths == ["all"]:
                ignored[f"{resource_type}.{name}"] = IGNORE_ALL
            elif paths:
                ignored[f"{resource_type}.{name}"] = tuple(str(path) for path in paths)
    return ignored


def _is_ignored(path: str, ignored: Sequence[str]) -> bool:
    return any(not rule or path == rule or path.startswith((f"{rule}.", f"{rule}[")) for rule in ignored)


def resource_drift(plan: Mapping[str, Any], ignored: Mapping[str, Sequence[str]] | None = None) -> list[Drift]:
    """The ``resource_drift`` entries of a plan, with the attribute paths whose values differ.

    A resource deleted outside Terraform has no attributes left to compare; its list is empty. An update
    whose only differences are between null and an empty collection is left out: that is the provider
    normalizing what it read, not a change (the state of a resource created without tags of its own
    records ``tags = null``, and every later read gives ``{}``). So is an update of
    :data:`VOLATILE_ATTRIBUTES` alone, which AWS changes by itself, and one of attributes the configuration
    ignores (``ignored``, from :func:`ignored_changes`) alone.
    """
    drifts = []
    for entry, change in _entries(plan, "resource_drift"):
        before, after = change.get("before"), change.get("after")
        attributes: tuple[str, ...] = ()
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            attributes = tuple(
                changed_paths(before, after, change.get("before_sensitive"), change.get("after_sensitive"))
            )
            rules = (ignored or {}).get(_address(entry), ())
            if not {path for path in attributes if not _is_ignored(path, rules)} - VOLATILE_ATTRIBUTES:
                continue
        drifts.append(Drift(_address(entry), tuple(change["actions"]), attributes))
    return drifts


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _IDENTIFIER.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{json.dumps(key)}]"


def _child(marks: Any, key: str | int) -> Any:
    if isinstance(key, int):
        return marks[key] if isinstance(marks, list) and key < len(marks) else None
    return marks.get(key) if isinstance(marks, Mapping) else None


def _empty(value: Any) -> bool:
    return value is None or value == {} or value == []


def _diff(before: Any, after: Any, path: str, marks: tuple[Any, Any], found: list[str]) -> None:
    if before == after or (_empty(before) and _empty(after)):
        return
    if marks[0] is True or marks[1] is True:
        # Below a sensitive value even the keys may be secret: name the sensitive attribute only.
        found.append(path)
    elif isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in sorted(set(before) | set(after)):
            if key in before and key in after:
                _diff(before[key], after[key], _path(path, key), (_child(marks[0], key), _child(marks[1], key)), found)
            else:
                found.append(_path(path, key))
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            _diff(old, new, _path(path, index), (_child(marks[0], index), _child(marks[1], index)), found)
    else:
        found.append(path)


def changed_paths(
    before: Mapping[str, Any], after: Mapping[str, Any], before_sensitive: Any = None, after_sensitive: Any = None
) -> list[str]:
    """The attribute paths whose values differ between two values of one resource, in sorted key order.

    The walk descends through objects and through lists of equal length, down to the values that differ:
    ``tags.purpose`` (a map key; keys that are not identifiers are quoted: ``tags["ml-platform:owner"]``),
    ``versioning[0].enabled`` (an attribute of the first block). A list whose length changed, or a value
    that changed type, is named as a whole (``grant``). Null and an empty collection count as equal (for a
    provider both mean "none"). Under a sensitive value the walk stops at the sensitive attribute. Values
    themselves are never returned, only paths.
    """
    found: list[str] = []
    _diff(before, after, "", (before_sensitive, after_sensitive), found)
    return found


# --- the fingerprint -------------------------------------------------------------------------------------


def _mask(value: Any, marks: Any, old: Any = None, old_marks: Any = None) -> Any:
    """``value`` with its sensitive parts replaced by a marker saying only whether each differs from ``old``."""
    if marks is True or old_marks is True:
        return {"(sensitive value)": "unchanged" if value == old else "changed"}
    if isinstance(value, Mapping):
        old_map = old if isinstance(old, Mapping) else {}
        return {
            key: _mask(item, _child(marks, key), old_map.get(key), _child(old_marks, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        old_list = old if isinstance(old, list) else []
        old_items = [old_list[index] if index < len(old_list) else None for index in range(len(value))]
        return [
            _mask(item, _child(marks, index), old_items[index], _child(old_marks, index))
            for index, item in enumerate(value)
        ]
    return value


_CHANGE_KEYS = ("actions", "after_unknown", "before_sensitive", "after_sensitive", "replace_paths", "importing")


def _canonical_change(change: Mapping[str, Any]) -> dict[str, Any]:
    canonical = {key: change[key] for key in _CHANGE_KEYS if key in change}
    before, after = change.get("before"), change.get("after")
    before_marks, after_marks = change.get("before_sensitive"), change.get("after_sensitive")
    canonical["before"] = _mask(before, before_marks, before, before_marks)
    canonical["after"] = _mask(after, after_marks, before, before_marks)
    return canonical


def fingerprint(plan: Mapping[str, Any]) -> str:
    """A sha256 over what the plan would change: its resource changes and output changes.

    Included, per change: the address (and previous address, deposed key, action reason), actions,
    before and after values, which parts are unknown or sensitive, replace paths and imports. Left out:
    no-op and read entries, and everything that depends on when or where the plan was made (``timestamp``,
    the refreshed drift, the prior state, the configuration, versions, checks). Sensitive values are
    replaced by a marker saying whether the value changes, which is all the plan's text shows a reviewer
    (``~ password = (sensitive value)``): binding the value itself would add no review guarantee, and a
    published hash of otherwise visible plan content would let a short secret be guessed offline.
    """
    changes = []
    for entry, change in _entries(plan, "resource_changes"):
        if not _is_change(entry, change):
            continue
        item = {key: entry[key] for key in ("address", "previous_address", "deposed", "action_reason") if key in entry}
        item["change"] = _canonical_change(change)
        changes.append(item)
    changes.sort(key=lambda item: (item["address"], item.get("deposed") or ""))
    outputs = {name: _canonical_change(plan["output_changes"][name]) for name in output_changes(plan)}
    document = {"resource_changes": changes, "output_changes": outputs}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
