"""Plan-level proof against the emulator: prod's data survives every plan an override can produce.

Run by tests/stacks/test_emulator_deploy.py next to the dev and staging cycles, on the same emulator and the
same synthesized stacks. Production's stateful resources that hold data on their own (buckets, KMS keys, log
groups, the image repository) are applied from the synthesized prod stack. Then:

- ``terraform plan -destroy`` fails on them (``lifecycle.prevent_destroy``), naming each one it reaches: no
  override can produce a plan that destroys them, because the overrides that would (a removed section, a renamed
  prefix, model, region, VPC or zone) are refused before synthesis (tests/stacks/test_input_boundary.py), and
  whatever else reaches Terraform still meets ``prevent_destroy``;
- the prod stack synthesized with another ``tags.project`` plans no replacement and no destruction: the tag is a
  tag, resource names come from ``resource_prefix``.

The cluster, the endpoint and the rest of prod's graph carry the same lifecycle (tests/stacks/test_protection.py);
they are left out here because applying them needs the whole network and takes minutes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gitops.terraform import aws_only, run_terraform

# Resource types whose protection is proven by a plan here (each must occur in prod with prevent_destroy).
APPLIED_TYPES = ("aws_s3_bucket", "aws_kms_key", "aws_cloudwatch_log_group", "aws_ecr_repository")


def _protected_targets(stack: dict[str, Any]) -> list[str]:
    targets = []
    for kind in APPLIED_TYPES:
        names = [
            name
            for name, body in stack["resource"].get(kind, {}).items()
            if body.get("lifecycle", {}).get("prevent_destroy") is True
        ]
        assert names, f"prod has no {kind} with prevent_destroy"
        targets += [f"{kind}.{name}" for name in names]
    return targets


def _without_prevent_destroy(stack: dict[str, Any]) -> dict[str, Any]:
    """The same stack with prevent_destroy lifted: only so the test can clean the emulator afterwards."""
    stack = json.loads(json.dumps(stack))
    for bodies in stack["resource"].values():
        for body in bodies.values():
            body.get("lifecycle", {}).pop("prevent_destroy", None)
    return stack


def run_protection_cycle(
    stack_dir: Path, renamed_dir: Callable[[], Path], renamed_project: str, workdir: Path, env: Mapping[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Apply prod's data resources, prove a destroy plan fails on them and a project rename replaces nothing.

    Returns the KMS keys it created and destroyed (key ARN: deletion window in days), which are pending deletion,
    and the log groups the destroy kept (``skip_destroy``), for the caller to delete.
    """
    prod = aws_only(json.loads((stack_dir / "cdk.tf.json").read_text()))
    targets = _protected_targets(prod)
    workdir.mkdir()
    config = workdir / "cdk.tf.json"
    config.write_text(json.dumps(prod))
    selected = [f"-target={target}" for target in targets]

    def terraform(*args: str, ok: tuple[int, ...] = (0,)) -> str:
        result = run_terraform([*args, "-input=false", "-no-color"], workdir, env, timeout=300, ok_returncodes=ok)
        return result.stdout

    terraform("init")
    try:
        terraform("apply", "-auto-approve", "-parallelism=20", *selected)
        state = json.loads((workdir / "terraform.tfstate").read_text())
        created = {
            (resource["type"], instance["attributes"]["id"]): instance["attributes"]
            for resource in state["resources"]
            if resource["mode"] == "managed"
            for instance in resource["instances"]
        }
        keys = {
            body["arn"]: body["deletion_window_in_days"] for (kind, _), body in created.items() if kind == "aws_kms_key"
        }
        kept = [name for kind, name in created if kind == "aws_cloudwatch_log_group"]

        # The state was just written by apply: the plans need no refresh of it.
        refused = terraform("plan", "-destroy", "-refresh=false", *selected, ok=(1,))
        blocked = set(re.findall(r"Resource\s+(\S+)\s+has\s+lifecycle\.prevent_destroy\s+set", refused))
        # Terraform plans a resource's destruction only after its dependents': where a dependent (a log group of a
        # key) already stopped the plan, the key itself is not reached, and is not named.
        unreached = set(targets) - blocked
        assert blocked <= set(targets) and all(t.startswith("aws_kms_key.") for t in unreached), refused[-3000:]
        assert {t.split(".")[0] for t in blocked} == set(APPLIED_TYPES), refused[-3000:]

        config.write_text(json.dumps(aws_only(json.loads((renamed_dir() / "cdk.tf.json").read_text()))))
        plan = terraform("plan", "-detailed-exitcode", "-refresh=false", *selected, ok=(0, 2))
        assert re.search(r"Plan: 0 to add, [1-9]\d* to change, 0 to destroy", plan), plan[-3000:]
        assert "must be replaced" not in plan and "will be destroyed" not in plan
        assert renamed_project in plan, "the tag change should be planned in place"
    finally:
        # prevent_destroy lifted; the log groups (skip_destroy) leave the state but stay in the emulator.
        config.write_text(json.dumps(_without_prevent_destroy(prod)))
        terraform("destroy", "-auto-approve", "-refresh=false", "-parallelism=20", *selected)
    return keys, kept
