#!/usr/bin/env python3
"""The checkov gate: checkov over each synthesized stack, held to the accepted findings per environment and resource.

checkov runs with every check on (no skip list) and reports in JSON; the gate then fails when

- checkov did not complete, could not parse the stack, or evaluated nothing (it exits 0 with zero checks
  when it cannot parse a file, so its exit code alone proves nothing);
- a check was skipped inside the stack, outside ``checkov-accepted.toml``;
- a check failed that no entry of ``checkov-accepted.toml`` accepts for that environment and resource;
- an entry no longer matches a failed check in one of its environments (a stale acceptance).

``make scan`` runs it on ``cdktf.out``, and ``tests/policy/test_checkov_gate.py`` runs the same functions on the
test session's synthesized stacks::

    .venv/bin/python tools/checkov_gate.py [--out cdktf.out] [ENV ...]   # exit 0 pass, 1 gate failed, 2 error

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
DEFAULT_CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_TIMEOUT_SECONDS = 300
MIN_REASON_LENGTH = 20
_CHECK_ID = re.compile(r"CKV2?_[A-Z0-9]+_[0-9]+")
_ENTRY_KEYS = frozenset({"check", "environments", "resources", "why"})


class GateError(Exception):
    """The gate could not run: a missing scanner or stack, a malformed accepted-findings file, a broken report."""


@dataclass(frozen=True)
class Acceptance:
    """One accepted finding: ``check`` may fail on resources matching ``resources`` in ``environments``."""

    check: str
    environments: frozenset[str]
    resources: tuple[str, ...]
    why: str

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
    """Unaccepted findings that an entry accepts on the same resource in other environments, with those."""

    @property
    def ok(self) -> bool:
        """True when nothing fails the gate."""
        return not (self.errors or self.unaccepted or self.stale)


# --- the accepted findings -----------------------------------------------------------------------------------


def _entry_error(source: Path, index: int, key: str, value: object, allowed: str) -> GateError:
    return GateError(f"{source.name}: accepted[{index}].{key} = {value!r}: {allowed}")


def _acceptance(source: Path, index: int, entry: Mapping[str, Any], environments: frozenset[str]) -> Acceptance:
    if set(entry) != _ENTRY_KEYS:
        raise _entry_error(source, index, "keys", sorted(entry), f"exactly {sorted(_ENTRY_KEYS)}")
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
    return Acceptance(check, frozenset(envs), tuple(patterns), " ".join(why.split()))


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
    # The same check, environment and pattern twice would let one entry be edited while the other still accepts.
    seen: dict[tuple[str, str, str], int] = {}
    for index, acceptance in enumerate(acceptances):
        for env in acceptance.environments:
            for pattern in acceptance.resources:
                first = seen.setdefault((acceptance.check, env, pattern), index)
                if first != index:
                    raise _entry_error(
                        source, index, "resources", pattern, f"{acceptance.check} in {env} is already accepted[{first}]"
                    )
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
) -> GateResult:
    """Hold one environment's checkov JSON report to the accepted findings.

    ``stack`` is the synthesized ``cdk.tf.json`` the report is about; it gives each finding its construct path.
    """
    if not isinstance(report, dict) or not isinstance(report.get("summary"), dict):
        return GateResult(environment, errors=("checkov did not produce one terraform_json report",))
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
    accepted = [f for f in findings if any(a.covers(f) for a in acceptances)]
    unaccepted = [f for f in findings if f not in accepted]
    stale = [
        StaleAcceptance(environment, acceptance, pattern)
        for acceptance in acceptances
        if environment in acceptance.environments
        for pattern in acceptance.resources
        if not any(f.check_id == acceptance.check and fnmatchcase(f.path, pattern) for f in findings)
    ]
    # A finding accepted on the same resource in another environment is the case an environment-blind skip hides.
    elsewhere = []
    for finding in unaccepted:
        envs = {
            env
            for a in acceptances
            if a.check == finding.check_id and any(fnmatchcase(finding.path, p) for p in a.resources)
            for env in a.environments
        }
        if envs:
            elsewhere.append((finding, tuple(sorted(envs))))
    return GateResult(
        environment, tuple(errors), tuple(unaccepted), tuple(stale), tuple(accepted), evaluated, tuple(elsewhere)
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
    """``<out_dir>/stacks/<environment>/cdk.tf.json``, which must exist."""
    path = out_dir / "stacks" / environment / "cdk.tf.json"
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
) -> list[GateResult]:
    """Scan each environment's stack under ``out_dir`` with checkov and hold it to ``acceptances``."""
    files = {env: stack_file(out_dir, env) for env in environments}
    reports = run_checkov(binary or checkov_binary(), files)
    return [
        evaluate(env, reports[env], json.loads(files[env].read_text(encoding="utf-8")), acceptances)
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
            note = f" (accepted in {', '.join(elsewhere[finding])} only)" if finding in elsewhere else ""
            lines.append(f"{result.environment}: not accepted: {finding.describe()}{note}")
        for stale in result.stale:
            others = sorted(stale.acceptance.environments - {result.environment})
            lines.append(
                f"{result.environment}: stale acceptance: {stale.acceptance.check} on {stale.pattern!r} no longer fails"
                f" here (remove {result.environment} from the entry or narrow it"
                + (f"; it stays accepted in {', '.join(others)})" if others else ")")
            )
    failures = sum(len(r.errors) + len(r.unaccepted) + len(r.stale) for r in results)
    accepted = sum(len(r.accepted) for r in results)
    names = ", ".join(r.environment for r in results)
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
    arguments = parser.parse_args(argv)
    try:
        present = synthesized_environments(arguments.out)
        environments = arguments.environments or present
        if not environments:
            raise GateError(f"no synthesized stack under {arguments.out}/stacks: synthesize first (python main.py)")
        acceptances = load_acceptances(present or environments, arguments.accepted)
        results = scan(arguments.out, environments, acceptances)
    except GateError as error:
        print(f"checkov gate error: {error}", file=sys.stderr)
        return 2
    print(format_report(results))
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
