#!/usr/bin/env python3
"""The checkov gate: checkov over each synthesized stack, held to the accepted findings per environment and resource.

checkov runs with every check on (no skip list) and reports in JSON; the gate then fails when

- checkov did not complete, could not parse the stack, or evaluated nothing (it exits 0 with zero checks
  when it cannot parse a file, so its exit code alone proves nothing);
- a check was skipped inside the stack, outside ``checkov-accepted.toml``;
- a check failed that no entry of ``checkov-accepted.toml`` accepts for that environment and resource;
- an entry no longer matches a failed check in one of its environments (a stale acceptance).

An entry with a ``scenario`` (an overrides file of the repository, such as ``examples/model-serving.json``)
belongs to the stacks synthesized with that file: it accepts findings, and is held to still match one, only when
the gate scans that scenario. The gate learns the scenario from ``--scenario`` or from
``ML_PLATFORM_OVERRIDES_FILE``, the variable the synthesis read. Entries without one apply to every scan, a
scenario's included: an overrides file adds to the platform, so the plain platform's findings must still be there.

``make scan`` runs it on ``cdktf.out``, and ``tests/policy/test_checkov_gate.py`` runs the same functions on the
test session's synthesized stacks::

    .venv/bin/python tools/checkov_gate.py [--out cdktf.out] [--scenario FILE] [ENV ...]
    # exit 0 pass, 1 gate failed, 2 error

checkov lives in its own virtual environment (``make checkov``; its exact ``boto3`` pin conflicts with the one
moto needs): ``ML_PLATFORM_CHECKOV`` or ``.venv-checkov/bin/checkov``. The gate uses only the standard library,
so checkov's environment and the project's stay apart.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ACCEPTED_FILE = ROOT / "checkov-accepted.toml"
CHECKOV_VARIABLE = "ML_PLATFORM_CHECKOV"
OVERRIDES_FILE_VARIABLE = "ML_PLATFORM_OVERRIDES_FILE"
DEFAULT_CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_TIMEOUT_SECONDS = 300
MIN_REASON_LENGTH = 20
_CHECK_ID = re.compile(r"CKV2?_[A-Z0-9]+_[0-9]+")
_ENTRY_KEYS = frozenset({"check", "environments", "resources", "why"})
_OPTIONAL_KEYS = frozenset({"scenario"})


class GateError(Exception):
    """The gate could not run: a missing scanner or stack, a malformed accepted-findings file, a broken report."""


@dataclass(frozen=True)
class Acceptance:
    """One accepted finding: ``check`` may fail on resources matching ``resources`` in ``environments``."""

    check: str
    environments: frozenset[str]
    resources: tuple[str, ...]
    why: str
    scenario: str | None = None
    """The overrides file (a path from the repository root) whose scans alone the entry belongs to; None: every scan."""

    def applies_in(self, scenario: str | None) -> bool:
        """Whether this entry accepts findings, and must still match one, in a scan of ``scenario``."""
        return self.scenario is None or self.scenario == scenario

    def scope(self) -> str:
        """How reports name the entry's scope: `` with <scenario>`` or nothing."""
        return f" with {self.scenario}" if self.scenario else ""

    def covers(self, finding: Finding) -> bool:
        """Whether this entry accepts ``finding``."""
        return (
            finding.check_id == self.check
            and finding.environment in self.environments
            and any(fnmatchcase(finding.path, pattern) for pattern in self.resources)
        )


@dataclass(frozen=True)
class Finding:
    """A failed check on one resource of one environment's stack."""

    environment: str
    check_id: str
    check_name: str
    address: str
    """The Terraform address, ``aws_x.name`` or ``data.aws_x.name``."""
    path: str
    """The construct path below the stack (``platform/storage/access-logs/bucket``); the address when unknown."""

    def describe(self) -> str:
        """One line naming the check and the resource."""
        return f"{self.check_id} {self.check_name!r} on {self.path} ({self.address})"


@dataclass(frozen=True)
class StaleAcceptance:
    """An accepted (check, resource pattern) that matched no failed check in an environment it lists."""

    environment: str
    acceptance: Acceptance
    pattern: str


@dataclass(frozen=True)
class GateResult:
    """What the gate found in one environment's stack."""

    environment: str
    errors: tuple[str, ...] = ()
    unaccepted: tuple[Finding, ...] = ()
    stale: tuple[StaleAcceptance, ...] = ()
    accepted: tuple[Finding, ...] = ()
    evaluated: frozenset[str] = field(default_factory=frozenset)
    """Terraform addresses of every resource checkov evaluated (passed or failed)."""
    elsewhere: tuple[tuple[Finding, tuple[str, ...]], ...] = ()
    """Unaccepted findings that an entry accepts on the same resource elsewhere, with where (per scenario)."""
    scenario: str | None = None
    """The overrides file the stack was synthesized with (None: the plain matrix)."""

    @property
    def ok(self) -> bool:
        """True when nothing fails the gate."""
        return not (self.errors or self.unaccepted or self.stale)


# --- the accepted findings -----------------------------------------------------------------------------------


def _entry_error(source: Path, index: int, key: str, value: object, allowed: str) -> GateError:
    return GateError(f"{source.name}: accepted[{index}].{key} = {value!r}: {allowed}")


def repository_file(value: str, base: Path, root: Path = ROOT) -> str | None:
    """``value`` (a path relative to ``base``, or absolute) as a path from ``root`` when it names a file there."""
    try:
        resolved = (base / value).resolve()
        relative = resolved.relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):
        return None
    return relative.as_posix() if value and resolved.is_file() else None


def scan_scenario(argument: str | None, environ: Mapping[str, str] = os.environ, cwd: Path | None = None) -> str | None:
    """The scenario of a scan: ``--scenario``, else ``ML_PLATFORM_OVERRIDES_FILE`` (relative to ``cwd``, as the
    synthesis reads it), as a path from the repository root; None when neither names a file of the repository (the
    plain matrix, or a user's own overrides file elsewhere)."""
    variable = environ.get(OVERRIDES_FILE_VARIABLE) or None
    base = cwd or Path.cwd()
    named = {
        source: (value, repository_file(value, base))
        for source, value in (("--scenario", argument), (OVERRIDES_FILE_VARIABLE, variable))
        if value is not None
    }
    # A user's own overrides file outside the repository is no scenario of this repository's acceptances: the scan
    # then holds the stacks to the plain entries. Only an explicit --scenario must name one.
    named = {source: pair for source, pair in named.items() if pair[1] is not None or source == "--scenario"}
    for source, (value, found) in named.items():
        if found is None:
            raise GateError(
                f"{source} = {value!r}: the scenario must be an existing overrides file inside the repository "
                f"({ROOT}), the file its stacks were synthesized with"
            )
    scenarios = {found for _, found in named.values()}
    if len(scenarios) > 1:
        raise GateError(
            f"--scenario {argument!r} and {OVERRIDES_FILE_VARIABLE}={variable!r} name different files: the gate must "
            "scan the scenario the stacks were synthesized with"
        )
    return scenarios.pop() if scenarios else None


def _acceptance(source: Path, index: int, entry: Mapping[str, Any], environments: frozenset[str]) -> Acceptance:
    if not _ENTRY_KEYS <= set(entry) <= _ENTRY_KEYS | _OPTIONAL_KEYS:
        allowed = f"{sorted(_ENTRY_KEYS)}, optionally {sorted(_OPTIONAL_KEYS)}"
        raise _entry_error(source, index, "keys", sorted(entry), allowed)
    check, envs, patterns, why = entry["check"], entry["environments"], entry["resources"], entry["why"]
    if not isinstance(check, str) or not _CHECK_ID.fullmatch(check):
        raise _entry_error(source, index, "check", check, "a checkov check id such as 'CKV_AWS_144'")
    known = ", ".join(sorted(environments))
    if (
        not isinstance(envs, list)
        or not envs
        or len(set(envs)) != len(envs)
        or not all(isinstance(env, str) and env in environments for env in envs)
    ):
        raise _entry_error(source, index, "environments", envs, f"a non-empty list without repeats of: {known}")
    if (
        not isinstance(patterns, list)
        or not patterns
        or len(set(patterns)) != len(patterns)
        or not all(isinstance(p, str) and p.strip() == p and p for p in patterns)
    ):
        raise _entry_error(source, index, "resources", patterns, "a non-empty list of distinct construct path patterns")
    if not isinstance(why, str) or len(why.strip()) < MIN_REASON_LENGTH:
        raise _entry_error(source, index, "why", why, f"a reason of at least {MIN_REASON_LENGTH} characters")
    scenario = entry.get("scenario")
    if scenario is not None and (not isinstance(scenario, str) or repository_file(scenario, ROOT) != scenario):
        allowed = "an existing overrides file inside the repository, as a path from its root (examples/x.json)"
        raise _entry_error(source, index, "scenario", scenario, allowed)
    return Acceptance(check, frozenset(envs), tuple(patterns), " ".join(why.split()), scenario)


def load_acceptances(environments: Iterable[str], source: Path = ACCEPTED_FILE) -> tuple[Acceptance, ...]:
    """Read and validate the accepted findings; ``environments`` are the names an entry may list."""
    known = frozenset(environments)
    try:
        document = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise GateError(f"cannot read the accepted findings {source}: {error}") from error
    entries = document.pop("accepted", [])
    if document:
        raise GateError(f"{source.name}: unknown top-level keys {sorted(document)}: the file holds [[accepted]] tables")
    if not isinstance(entries, list) or not all(isinstance(entry, dict) for entry in entries):
        raise GateError(f"{source.name}: accepted = {entries!r}: [[accepted]] tables, one per accepted finding")
    acceptances = tuple(_acceptance(source, index, entry, known) for index, entry in enumerate(entries))
    # The same check, environment and pattern twice in one scan (both without a scenario, with the same one, or
    # one without) would let one entry be edited while the other still accepts.
    seen: dict[tuple[str, str, str], list[int]] = {}
    for index, acceptance in enumerate(acceptances):
        for env in sorted(acceptance.environments):
            for pattern in acceptance.resources:
                earlier = seen.setdefault((acceptance.check, env, pattern), [])
                for first in earlier:
                    if acceptances[first].scenario in (None, acceptance.scenario) or acceptance.scenario is None:
                        taken = f"{acceptance.check} in {env} is already accepted[{first}]{acceptances[first].scope()}"
                        raise _entry_error(source, index, "resources", pattern, taken)
                earlier.append(index)
    return acceptances


# --- checkov's report ----------------------------------------------------------------------------------------


def _resolve(stack: Mapping[str, Any], checkov_address: str) -> tuple[str, str]:
    """The Terraform address and construct path (below the stack) of a resource checkov names.

    checkov names resources ``aws_x.name``, data sources ``data.aws_x.name``, and the blocks its graph checks
    do not type ``resource.name`` or ``data.name``.
    """
    parts = checkov_address.split(".")
    block = "data" if parts[0] == "data" else "resource"
    name = parts[-1]
    typed = len(parts) >= 2 and parts[-2] not in ("data", "resource")
    for kind in [parts[-2]] if typed else list(stack.get(block, {})):
        config = stack.get(block, {}).get(kind, {}).get(name)
        if config is not None:
            address = f"data.{kind}.{name}" if block == "data" else f"{kind}.{name}"
            path = config.get("//", {}).get("metadata", {}).get("path")
            # The first segment of a construct path is the stack; patterns are written below it.
            return address, path.split("/", 1)[1] if isinstance(path, str) and "/" in path else address
    return checkov_address, checkov_address


def _results(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    found = report.get("results", {}).get(key, [])
    return found if isinstance(found, list) else []


def evaluate(
    environment: str,
    report: object,
    stack: Mapping[str, Any],
    acceptances: Sequence[Acceptance],
    scenario: str | None = None,
) -> GateResult:
    """Hold one environment's checkov JSON report to the accepted findings of ``scenario``.

    ``stack`` is the synthesized ``cdk.tf.json`` the report is about; it gives each finding its construct path.
    ``scenario`` is the overrides file it was synthesized with (None: the plain matrix); only the entries without a
    scenario and those of ``scenario`` apply.
    """
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
        return GateResult(environment, errors=("checkov did not produce one terraform_json report",), scenario=scenario)
    summary = report["summary"]
    errors = []
    if summary.get("parsing_errors", 0) != 0:
        errors.append(f"checkov could not parse the stack ({summary.get('parsing_errors')} parsing errors)")
    evaluated = frozenset(
        _resolve(stack, str(check["resource"]))[0]
        for key in ("passed_checks", "failed_checks")
        for check in _results(report, key)
    )
    if not evaluated or summary.get("passed", 0) + summary.get("failed", 0) == 0:
        errors.append("checkov evaluated no resource (an unreadable stack passes every check by checking nothing)")
    for skipped in _results(report, "skipped_checks"):
        errors.append(
            f"{skipped.get('check_id')} was skipped on {skipped.get('resource')} inside the stack: "
            "accept findings in checkov-accepted.toml only"
        )
    findings = []
    for check in _results(report, "failed_checks"):
        address, path = _resolve(stack, str(check["resource"]))
        findings.append(Finding(environment, str(check["check_id"]), str(check["check_name"]), address, path))
    applying = [a for a in acceptances if a.applies_in(scenario)]
    accepted = [f for f in findings if any(a.covers(f) for a in applying)]
    unaccepted = [f for f in findings if f not in accepted]
    stale = [
        StaleAcceptance(environment, acceptance, pattern)
        for acceptance in applying
        if environment in acceptance.environments
        for pattern in acceptance.resources
        if not any(f.check_id == acceptance.check and fnmatchcase(f.path, pattern) for f in findings)
    ]
    # A finding accepted on the same resource in another environment (or only in another scenario) is the case an
    # environment-blind skip hides.
    elsewhere = []
    for finding in unaccepted:
        scopes: dict[str, set[str]] = {}
        for a in acceptances:
            if a.check == finding.check_id and any(fnmatchcase(finding.path, p) for p in a.resources):
                scopes.setdefault(a.scope(), set()).update(a.environments)
        if scopes:
            where = tuple(", ".join(sorted(envs)) + scope for scope, envs in sorted(scopes.items()))
            elsewhere.append((finding, where))
    return GateResult(
        environment,
        tuple(errors),
        tuple(unaccepted),
        tuple(stale),
        tuple(accepted),
        evaluated,
        tuple(elsewhere),
        scenario,
    )


# --- running checkov -----------------------------------------------------------------------------------------


def checkov_binary() -> Path:
    """The checkov executable: ``ML_PLATFORM_CHECKOV``, else the project's ``.venv-checkov``."""
    binary = Path(os.environ.get(CHECKOV_VARIABLE) or DEFAULT_CHECKOV)
    if not binary.is_file():
        raise GateError(f"checkov not found at {binary}: run `make checkov` or set {CHECKOV_VARIABLE} to its path")
    return binary


def run_checkov(binary: Path, stack_files: Mapping[str, Path]) -> dict[str, object]:
    """checkov's parsed JSON report for each environment's ``cdk.tf.json``; the scans run in parallel."""
    with tempfile.TemporaryDirectory(prefix="checkov-home-") as home:
        # checkov reads a .checkov.yaml from its working and home directories; none may add skips behind the gate.
        env = {**os.environ, "HOME": home, "ANSI_COLORS_DISABLED": "1", "LOG_LEVEL": "ERROR"}
        command = [str(binary), "--framework", "terraform_json", "--skip-download", "--output", "json", "--file"]
        processes = {
            name: subprocess.Popen(
                [*command, str(path)], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for name, path in stack_files.items()
        }
        reports: dict[str, object] = {}
        try:
            for name, process in processes.items():
                stdout, stderr = process.communicate(timeout=CHECKOV_TIMEOUT_SECONDS)
                # checkov exits 1 when a check failed; anything else means it did not complete.
                if process.returncode not in (0, 1):
                    raise GateError(f"checkov failed on {name} (exit {process.returncode}):\n{stderr[-3000:]}")
                try:
                    reports[name] = json.loads(stdout)
                except json.JSONDecodeError as error:
                    raise GateError(f"checkov's output for {name} is not JSON ({error}):\n{stdout[:500]}") from error
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return reports


def stack_file(out_dir: Path, environment: str) -> Path:
    """``<out_dir>/stacks/<environment>/cdk.tf.json``, which must exist, as an absolute path.

    Absolute, because checkov runs in a scratch home directory: a relative ``--out cdktf.out`` (``make scan``'s) would
    point it at nothing, and it reports a file it cannot find as a parsing error, not as a failure.
    """
    path = (out_dir / "stacks" / environment / "cdk.tf.json").resolve()
    if not path.is_file():
        raise GateError(f"no synthesized stack for {environment!r} at {path}: synthesize first (python main.py)")
    return path


def synthesized_environments(out_dir: Path) -> list[str]:
    """The environments with a synthesized stack under ``out_dir``."""
    return sorted(p.parent.name for p in (out_dir / "stacks").glob("*/cdk.tf.json"))


def scan(
    out_dir: Path,
    environments: Sequence[str],
    acceptances: Sequence[Acceptance],
    binary: Path | None = None,
    scenario: str | None = None,
) -> list[GateResult]:
    """Scan each environment's stack under ``out_dir`` with checkov and hold it to ``acceptances`` of ``scenario``
    (the overrides file the stacks were synthesized with, as a path from the repository root; see ``scan_scenario``).
    """
    files = {env: stack_file(out_dir, env) for env in environments}
    reports = run_checkov(binary or checkov_binary(), files)
    return [
        evaluate(env, reports[env], json.loads(files[env].read_text(encoding="utf-8")), acceptances, scenario)
        for env in environments
    ]


# --- the report ------------------------------------------------------------------------------------------------


def format_report(results: Sequence[GateResult]) -> str:
    """A readable report: every failure by environment, then a one-line summary."""
    lines = []
    for result in results:
        for error in result.errors:
            lines.append(f"{result.environment}: {error}")
        elsewhere = dict(result.elsewhere)
        for finding in result.unaccepted:
            note = f" (accepted in {'; '.join(elsewhere[finding])} only)" if finding in elsewhere else ""
            lines.append(f"{result.environment}: not accepted: {finding.describe()}{note}")
        for stale in result.stale:
            others = sorted(stale.acceptance.environments - {result.environment})
            lines.append(
                f"{result.environment}: stale acceptance: {stale.acceptance.check} on {stale.pattern!r}"
                f"{stale.acceptance.scope()} no longer fails here"
                f" (remove {result.environment} from the entry or narrow it"
                + (f"; it stays accepted in {', '.join(others)})" if others else ")")
            )
    failures = sum(len(r.errors) + len(r.unaccepted) + len(r.stale) for r in results)
    accepted = sum(len(r.accepted) for r in results)
    scenarios = sorted({r.scenario for r in results if r.scenario})
    names = ", ".join(r.environment for r in results) + "".join(f" with {s}" for s in scenarios)
    verdict = "passed" if failures == 0 else f"FAILED with {failures} problem{'s' if failures != 1 else ''}"
    lines.append(f"checkov gate {verdict} ({names}; {accepted} accepted findings, see {ACCEPTED_FILE.name})")
    if any(r.unaccepted for r in results):
        lines.append(f"Fix the resource, or accept the finding for that environment and resource in {ACCEPTED_FILE}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: 0 when every stack passes, 1 when the gate fails, 2 when it cannot run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("environments", nargs="*", help="environments to scan (default: every synthesized stack)")
    parser.add_argument("--out", type=Path, default=Path("cdktf.out"), help="the synthesis output directory")
    parser.add_argument("--accepted", type=Path, default=ACCEPTED_FILE, help="the accepted findings file")
    parser.add_argument(
        "--scenario",
        help=f"the overrides file the stacks were synthesized with (default: ${OVERRIDES_FILE_VARIABLE}, else none)",
    )
    arguments = parser.parse_args(argv)
    try:
        scenario = scan_scenario(arguments.scenario)
        present = synthesized_environments(arguments.out)
        environments = arguments.environments or present
        if not environments:
            raise GateError(f"no synthesized stack under {arguments.out}/stacks: synthesize first (python main.py)")
        acceptances = load_acceptances(present or environments, arguments.accepted)
        results = scan(arguments.out, environments, acceptances, scenario=scenario)
    except GateError as error:
        print(f"checkov gate error: {error}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
