"""The drift check of one environment: what changed outside Terraform, and what code is not applied yet.

    python -m gitops.drift ENV [--stacks-dir cdktf.out/stacks] [--init] [--report REPORT.json]
                               [--markdown REPORT.md] [--timeout SECONDS]

In ``<stacks-dir>/<env>`` (after ``terraform init -input=false`` with ``--init``) two plans run side by side,
neither taking the state lock (``-lock=false``: the check only reads):

* ``terraform plan -refresh-only -detailed-exitcode -json -lock=false`` compares the real infrastructure with
  the state: its ``resource_drift`` is what changed outside Terraform;
* ``terraform plan -refresh=false -detailed-exitcode -json -lock=false`` compares the code with the state:
  its changes are code not applied yet. Without ``-refresh=false`` this plan would also list the undoing of
  every drift as a change, and the two could not be told apart.

Each plan is saved with ``-out`` to a scratch directory and, when it lists changes (exit code 2), read back
with ``terraform show -json`` for the detail: which attributes drifted, which actions are pending. The exit
code of the refresh-only plan alone does not say whether anything drifted (it is 2 whenever the refreshed
state differs from the stored one in any way, including ways the plan does not report, and for outputs
added in the code), so drift is what ``resource_drift`` lists.

An endpoint parked by its idle policy is not drift: SageMaker endpoints whose ``delete_endpoint`` idle policy
deleted them (the prior state carries the tag ``ml-platform:idle-policy = delete_endpoint``), with the
scalable targets and scaling policies of their variants that AWS deregisters along with them, are listed as
parked ("the next deploy recreates it") and leave the outcome as it would be without them. Any other change to
such an endpoint, or the deletion of one without the tag, is drift.

Exit codes: 0 clean; 2 drift (unapplied code, if any, is listed too); 3 code not yet applied, no drift;
1 error: terraform failed or timed out, reported an error, or printed output that is malformed or
truncated. The report names attribute paths, never values, so a drifted secret does not reach Slack or an
issue. ``--report`` writes it as JSON, ``--markdown`` as Markdown for a Slack message or an issue body.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops.plan_json import (
    PlanFormatError,
    environment,
    ignored_changes,
    load_plan,
    output_changes,
    parse_plan_stream,
    resource_changes,
    resource_drift,
)
from gitops.plans import fence
from gitops.terraform import TerraformError, run_terraform, terraform_cli_env

EXIT_CODES = {"clean": 0, "error": 1, "drift": 2, "unapplied": 3}
"""The exit code of each outcome."""

DEFAULT_TIMEOUT = 1800.0
"""Seconds one terraform command may take: refreshing a whole environment in AWS takes minutes."""

PLAN_FLAGS = ("-detailed-exitcode", "-json", "-lock=false", "-input=false")
# Lines of text output quoted when terraform failed without a diagnostic (a crash, a command-line error).
QUOTED_LINES = 20
# Every exit code is examined here, not raised by the runner; only a timeout is.
_ANY_EXIT = range(-255, 256)
IDLE_TAG = "ml-platform:idle-policy"
"""The tag of an endpoint its idle policy may delete (set by ``constructs/sagemaker/idle_settings.py``)."""
PARKED = "parked by the idle policy: the next deploy recreates it"
"""How a parked endpoint's resources are reported."""
# What AWS removes with a deleted endpoint: the Application Auto Scaling targets of its variants and their policies.
_SCALING_TYPES = ("aws_appautoscaling_target", "aws_appautoscaling_policy")


@dataclass(frozen=True)
class TerraformRun:
    """How one terraform command ended: its exit code (``None``: killed after the timeout) and output."""

    returncode: int | None
    output: str


def terraform(args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float) -> TerraformRun:
    """Run ``terraform *args`` in ``cwd`` (stdout and stderr together). The one place the check runs terraform."""
    try:
        result = run_terraform(args, cwd, env, timeout=timeout, ok_returncodes=_ANY_EXIT)
    except TerraformError as error:
        return TerraformRun(error.returncode, error.output)
    return TerraformRun(result.returncode, result.stdout)


@dataclass(frozen=True)
class DriftedResource:
    """A resource changed outside Terraform: ``update`` (with the attribute paths that differ) or ``delete``."""

    address: str
    action: str
    attributes: tuple[str, ...]


@dataclass(frozen=True)
class PendingChange:
    """A change the code asks for that is not applied: a resource (or ``output.<name>``) and its actions."""

    address: str
    actions: tuple[str, ...]


@dataclass(frozen=True)
class ParkedResource:
    """A resource gone because its endpoint's idle policy deleted the endpoint: not drift, undone by a deploy."""

    address: str
    endpoint: str


@dataclass
class DriftReport:
    """The result of one environment's drift check."""

    environment: str
    drifted: list[DriftedResource] = field(default_factory=list)
    unapplied: list[PendingChange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    parked: list[ParkedResource] = field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``error`` over ``drift`` over ``unapplied`` over ``clean``."""
        if self.errors:
            return "error"
        if self.drifted:
            return "drift"
        return "unapplied" if self.unapplied else "clean"

    @property
    def exit_code(self) -> int:
        """The command's exit code for this outcome."""
        return EXIT_CODES[self.outcome]

    def to_json(self) -> dict[str, Any]:
        """The report as ``REPORT.json`` holds it (``parked`` only when something is parked)."""
        report: dict[str, Any] = {
            "environment": self.environment,
            "outcome": self.outcome,
            "drifted": [
                {"address": item.address, "action": item.action, "attributes": list(item.attributes)}
                for item in self.drifted
            ],
            "unapplied": [{"address": item.address, "actions": list(item.actions)} for item in self.unapplied],
            "errors": list(self.errors),
        }
        if self.parked:
            report["parked"] = [{"address": item.address, "endpoint": item.endpoint} for item in self.parked]
        return report

    def _headline(self) -> str:
        env = f"`{self.environment}`"
        if self.outcome == "error":
            return f"The drift check of {env} failed, so nothing is known about drift:"
        if self.outcome == "drift":
            return f"Drift in {env}: {_count(len(self.drifted), 'resource')} changed outside Terraform."
        if self.outcome == "unapplied":
            return f"No drift in {env}, but code is not applied yet: {_count(len(self.unapplied), 'change')}."
        if self.parked:
            endpoints = _count(len({item.endpoint for item in self.parked}), "endpoint")
            return f"No drift in {env}: all is as last applied but {endpoints} parked by the idle policy."
        return f"No drift in {env}: the infrastructure is as last applied, and all the code is applied."

    def text(self) -> str:
        """The short report printed on stdout."""
        lines = [self._headline().replace("`", "")]
        if self.drifted:
            lines.append("Changed outside Terraform:")
            lines += [f"  {item.address}: {_drift_text(item, quote='')}" for item in self.drifted]
        if self.unapplied:
            lines.append("Code not yet applied:")
            lines += [f"  {item.address}: {', '.join(item.actions)}" for item in self.unapplied]
        if self.parked:
            lines.append("Parked endpoints:")
            lines += [f"  {item.address}: {PARKED} ({item.endpoint})" for item in self.parked]
        lines += [f"  {line}" for error in self.errors for line in error.splitlines()]
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """The report in Markdown that reads well both as a GitHub issue and as a Slack message."""
        parts = [self._headline()]
        if self.errors:
            body = "\n".join(self.errors)
            parts.append(f"{fence(body)}text\n{body}\n{fence(body)}")
        if self.drifted:
            lines = ["Changed outside Terraform (attribute paths only, never values):"]
            lines += [f"- `{item.address}`: {_drift_text(item, quote='`')}" for item in self.drifted]
            parts.append("\n".join(lines))
        if self.unapplied:
            lines = ["Code not yet applied:" if not self.drifted else "Also in the code but not applied yet:"]
            lines += [f"- `{item.address}`: {', '.join(item.actions)}" for item in self.unapplied]
            parts.append("\n".join(lines))
        if self.parked:
            lines = ["Parked endpoints (not drift):"]
            lines += [f"- `{item.address}`: {PARKED} (`{item.endpoint}`)" for item in self.parked]
            parts.append("\n".join(lines))
        if self.drifted:
            parts.append(
                f"Deploys to `{self.environment}` wait until this is explained: undo the change, or merge its "
                "correction in a pull request labelled `drift-correction`. "
                f"`make drift ENV={self.environment}` runs this check locally."
            )
        return "\n\n".join(parts) + "\n"


def _count(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _drift_text(item: DriftedResource, quote: str) -> str:
    if item.action == "delete":
        return "deleted"
    if not item.attributes:
        return item.action
    return f"{item.action} of " + ", ".join(f"{quote}{path}{quote}" for path in item.attributes)


def parked_resources(plan: Mapping[str, Any]) -> dict[str, str]:
    """``{address: endpoint}`` of the ``resource_drift`` entries that parking an endpoint explains.

    A parked endpoint is an ``aws_sagemaker_endpoint`` deleted outside Terraform whose prior state carries
    :data:`IDLE_TAG` = ``delete_endpoint``. The deletions of the scalable targets and scaling policies of its
    variants (``endpoint/<name>/variant/...``) go with it. Nothing else is: not an update, not an untagged
    endpoint, not another endpoint's scaling.
    """
    entries = [e for e in plan.get("resource_drift", []) if isinstance(e, Mapping) and _deleted(e) is not None]
    endpoints = {}
    for entry in entries:
        before = _deleted(entry) or {}
        tags = {**(before.get("tags") or {}), **(before.get("tags_all") or {})}
        if entry.get("type") == "aws_sagemaker_endpoint" and tags.get(IDLE_TAG) == "delete_endpoint":
            endpoints[str(entry.get("address"))] = str(before.get("name"))
    parked = dict(endpoints)
    for entry in entries:
        before = _deleted(entry) or {}
        resource_id = str(before.get("resource_id", ""))
        for name in endpoints.values():
            scaling = entry.get("type") in _SCALING_TYPES and before.get("service_namespace") == "sagemaker"
            if scaling and resource_id.startswith(f"endpoint/{name}/variant/"):
                parked[str(entry.get("address"))] = name
    return parked


def _deleted(entry: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The prior state of a resource the entry shows deleted, else None."""
    change = entry.get("change")
    if not isinstance(change, Mapping) or change.get("actions") != ["delete"] or entry.get("deposed"):
        return None
    before = change.get("before")
    return before if isinstance(before, Mapping) else None


# --- reading the two plans -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRun:
    """One plan of the check: how it ran, and ``show -json`` of its saved plan if it listed changes."""

    name: str
    run: TerraformRun
    shown: TerraformRun | None = None


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return "\n".join(lines[-QUOTED_LINES:]) or "(no output)"


def read_plan(plan: PlanRun, errors: list[str]) -> dict[str, Any] | None:
    """The saved plan's JSON, ``{}`` if the plan found no changes, or None after adding to ``errors`` why not."""
    run = plan.run
    if run.returncode is None:
        errors.append(f"{plan.name}: timed out and was killed; its output ended with:\n{_tail(run.output)}")
        return None
    stream = parse_plan_stream(run.output)
    if run.returncode not in (0, 2):
        errors.append(f"{plan.name}: terraform exited with {run.returncode}")
        errors += [f"{plan.name}: {error}" for error in stream.errors]
        if not stream.errors:
            errors.append(f"{plan.name}: its output ended with:\n{_tail(run.output)}")
        return None
    if stream.failed:
        errors += [f"{plan.name}: {problem}" for problem in [*stream.errors, *stream.problems]]
        return None
    if run.returncode == 0:
        listed = [change.address for change in [*stream.drifted, *stream.planned]]
        if listed:
            errors.append(f"{plan.name}: exit code 0 (no changes) but the output lists changes to {listed}")
            return None
        return {}
    if plan.shown is None or plan.shown.returncode != 0:
        output = plan.shown.output if plan.shown else "(not run)"
        errors.append(f"{plan.name}: `terraform show -json` of the saved plan failed:\n{_tail(output)}")
        return None
    try:
        return load_plan(plan.shown.output)
    except PlanFormatError as error:
        errors.append(f"{plan.name}: `terraform show -json` of the saved plan: {error}")
        return None


def assess(
    env_name: str, refresh: PlanRun, code: PlanRun, ignored: Mapping[str, Sequence[str]] | None = None
) -> DriftReport:
    """The report from the refresh-only plan (``refresh``) and the plan of the code (``code``).

    ignored: the attribute paths each resource's ``lifecycle.ignore_changes`` names (``ignored_changes``): a
    change of those alone is not drift.
    """
    report = DriftReport(env_name)
    try:
        refreshed = read_plan(refresh, report.errors)
        if refreshed:
            drifts = resource_drift(refreshed, ignored)
            parked = parked_resources(refreshed)
            report.drifted = sorted(
                (
                    DriftedResource(drift.address, "-".join(drift.actions), drift.attributes)
                    for drift in drifts
                    if drift.address not in parked
                ),
                key=lambda item: item.address,
            )
            report.parked = sorted(
                (ParkedResource(d.address, parked[d.address]) for d in drifts if d.address in parked),
                key=lambda item: item.address,
            )
        planned = read_plan(code, report.errors)
        if planned:
            report.unapplied = sorted(
                (PendingChange(change.address, change.actions) for change in resource_changes(planned)),
                key=lambda item: item.address,
            )
            report.unapplied += [
                PendingChange(f"output.{name}", actions) for name, actions in sorted(output_changes(planned).items())
            ]
    except PlanFormatError as error:
        report.errors.append(f"`terraform show -json` printed a plan this check cannot read: {error}")
    return report


# --- running terraform -----------------------------------------------------------------------------------


def run_check(stack_dir: Path, env_name: str, *, init: bool = False, timeout: float = DEFAULT_TIMEOUT) -> DriftReport:
    """Run the drift check of ``env_name`` in its synthesized stack directory ``stack_dir``."""
    if not (stack_dir / "cdk.tf.json").is_file():
        return DriftReport(env_name, errors=[f"no synthesized stack in {stack_dir} (run `make synth` first)"])
    with tempfile.TemporaryDirectory(prefix="gitops-drift-") as scratch:
        env = terraform_cli_env(scratch)
        if init:
            started = terraform(["init", "-input=false", "-no-color"], stack_dir, env, timeout)
            if started.returncode != 0:
                ending = "timed out" if started.returncode is None else f"exited with {started.returncode}"
                return DriftReport(env_name, errors=[f"terraform init {ending}:\n{_tail(started.output)}"])
        plan_files = {name: str(Path(scratch) / f"{name}.tfplan") for name in ("refresh", "code")}
        commands = {
            "refresh": ["plan", "-refresh-only", *PLAN_FLAGS, f"-out={plan_files['refresh']}"],
            "code": ["plan", "-refresh=false", *PLAN_FLAGS, f"-out={plan_files['code']}"],
        }
        # The two plans only read (no lock), so they run side by side: most of each is the provider starting.
        with ThreadPoolExecutor(max_workers=2) as pool:
            planning = {name: pool.submit(terraform, args, stack_dir, env, timeout) for name, args in commands.items()}
            runs = {name: future.result() for name, future in planning.items()}
            shows = {
                name: pool.submit(terraform, ["show", "-json", plan_files[name]], stack_dir, env, timeout)
                for name, run in runs.items()
                if run.returncode == 2
            }
            shown = {name: future.result() for name, future in shows.items()}
    return assess(
        env_name,
        PlanRun("refresh-only plan", runs["refresh"], shown.get("refresh")),
        PlanRun("plan of the code", runs["code"], shown.get("code")),
        ignored_changes(json.loads((stack_dir / "cdk.tf.json").read_text())),
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gitops.drift", description=__doc__.split("\n\n")[0])
    parser.add_argument("env", type=environment, help="the environment to check (dev, staging, prod)")
    parser.add_argument("--stacks-dir", type=Path, default=Path("cdktf.out/stacks"), help="synthesized stacks")
    parser.add_argument("--init", action="store_true", help="run `terraform init -input=false` first")
    parser.add_argument("--report", type=Path, help="write the report as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the report as Markdown here")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per terraform command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Check one environment, print the short report, write the requested files; the outcome's exit code."""
    args = _parser().parse_args(argv)
    try:
        report = run_check(args.stacks_dir / args.env, args.env, init=args.init, timeout=args.timeout)
    except OSError as error:
        # terraform missing from PATH, an unreadable stack directory: the check could not run.
        report = DriftReport(args.env, errors=[f"the check could not run terraform: {error}"])
    sys.stdout.write(report.text())
    if args.report:
        args.report.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(report.markdown(), encoding="utf-8")
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
