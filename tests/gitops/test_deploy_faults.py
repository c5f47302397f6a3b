"""Faults during deploys, with dev's state in the emulator's S3 (the product's S3 backend, ``use_lockfile = true``).

The dev stack is synthesized the product's way (``main.build_app`` with ``ML_PLATFORM_BACKEND=s3``,
``ML_PLATFORM_STATE_BUCKET`` and ``ML_PLATFORM_EMULATOR_ENDPOINT``), so its state and its lock file live in the
emulator's S3 at ``ml-platform/dev/terraform.tfstate`` and ``...tfstate.tflock``. Its AWS part is applied with
``-target`` on :data:`SUBSET`: ten resources of the six kinds that an untracked copy would duplicate or collide with
(VPC, security group, KMS keys and aliases, IAM role, bucket). Every terraform command loads the AWS provider's
schema several times (about 10 s of CPU here), so each extra command costs more than the resources do; the KMS
keys and the VPC keep the provider waiting for about 12 s after they exist, which gives every scenario a window in
which an apply has created some objects and not others.

1. Two applies at once: the second fails on the lock, says who holds it, and changes nothing; the first finishes,
   and a plan after it is clean.
2. An apply cancelled the way GitHub Actions cancels a step (SIGINT to the process; SIGTERM 7.5 s later; the tree
   killed 2.5 s after that): terraform stops by itself on SIGINT, saves what it created (cut-short objects as
   tainted) and releases the lock; a re-apply replaces the tainted objects and converges.
3. An apply killed with SIGKILL partway: the lock stays, and no state was saved (an apply writes its state to
   the backend at most every 20 s, and on SIGINT or at its end), so what it created is unknown to Terraform and
   a plain re-apply would duplicate the VPC and the keys and fail on the role's and bucket's names. Recovery as
   the README's "Recovering a stale state lock" says: read the lock ID from the next plan's error,
   ``terraform force-unlock -force <ID>``, import the orphans, apply; then the plan is clean.

After each scenario the emulator holds exactly the objects the state holds, kind by kind: no duplicates.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from gitops.terraform import aws_only
from stacks.backend import state_key
from tests.gitops.faults import (
    SIGINT_GRACE,
    StateBucket,
    Timings,
    Workspace,
    import_blocks,
    inventory,
    lock_info,
    orphans,
    state_ids,
    tracked,
    wait_until,
)
from tests.support.mirror import emulator_terraform_env
from tests.support.synth_json import address

pytestmark = [pytest.mark.emulator, pytest.mark.terraform]

ENVIRONMENT = "dev"
STATE_BUCKET = "ml-platform-fault-tests-state"
STATE_KEY = state_key(ENVIRONMENT)
LOCK_KEY = f"{STATE_KEY}.tflock"
# Seconds one terraform command may take; the subset applies in about 30 s here.
TIMEOUT = 240.0

# (resource type, end of its construct path) of what the tests apply.
SUBSET = (
    ("aws_vpc", "network/vpc"),
    ("aws_security_group", "eks/cluster/api-sg"),
    ("aws_kms_key", "keys/data"),
    ("aws_kms_key", "keys/logs"),
    ("aws_kms_key", "keys/eks-secrets"),
    ("aws_kms_alias", "keys/data-alias"),
    ("aws_kms_alias", "keys/logs-alias"),
    ("aws_kms_alias", "keys/eks-secrets-alias"),
    ("aws_iam_role", "network/flow-log-role"),
    ("aws_s3_bucket", "storage/training-data/bucket"),
)
PER_KIND = Counter(kind for kind, _ in SUBSET)


@pytest.fixture(scope="module")
def dev_stack(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Dev's AWS part as synthesized with its state in the emulator's S3 (the backend kept)."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("fault-cdktf.out")
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as env:
        for variable in ("ML_PLATFORM_OVERRIDES", "ML_PLATFORM_OVERRIDES_FILE", "ML_PLATFORM_LOCK_TABLE"):
            env.delenv(variable, raising=False)
        env.setenv("ML_PLATFORM_BACKEND", "s3")
        env.setenv("ML_PLATFORM_STATE_BUCKET", STATE_BUCKET)
        env.setenv("ML_PLATFORM_EMULATOR_ENDPOINT", emulator.endpoint)
        build_app(str(outdir)).synth()
    print(f"synth: {time.monotonic() - started:.1f} s")
    stack = aws_only(json.loads((outdir / "stacks" / ENVIRONMENT / "cdk.tf.json").read_text()), keep_backend=True)
    backend = stack["terraform"]["backend"]["s3"]
    assert (backend["bucket"], backend["key"], backend["use_lockfile"]) == (STATE_BUCKET, STATE_KEY, True)
    assert backend["endpoints"]["s3"] == emulator.endpoint
    return stack


@pytest.fixture
def state(emulator: Emulator) -> StateBucket:
    """A fresh environment: the emulator emptied, and the (versioned) state bucket created."""
    # moto's state is process-wide: start from nothing, whatever ran earlier in this session or module.
    emulator.reset()
    bucket = StateBucket(emulator, STATE_BUCKET)
    bucket.create()
    return bucket


@pytest.fixture
def terraform_env(tmp_path: Path) -> dict[str, str]:
    """The environment of terraform commands against the emulator, with their own CLI config."""
    cli = tmp_path / "cli"
    cli.mkdir()
    return emulator_terraform_env(cli)


def _targets(stack: dict[str, Any]) -> list[str]:
    return [f"-target={address(stack, kind, suffix)}" for kind, suffix in SUBSET]


def _apply(stack: dict[str, Any]) -> tuple[str, ...]:
    return ("apply", "-auto-approve", "-input=false", *_targets(stack))


def _partway(emulator: Emulator) -> Callable[[], bool]:
    """Whether a KMS key and the VPC exist: the provider then waits on each for 10-12 s, and their aliases and
    security group come after that, so an apply seen in this state has created some objects and not others."""
    ec2, kms = emulator.client("ec2"), emulator.client("kms")

    def partway() -> bool:
        vpcs = [vpc for vpc in ec2.describe_vpcs()["Vpcs"] if not vpc["IsDefault"]]
        return bool(vpcs) and bool(kms.list_keys()["Keys"])

    return partway


def _assert_clean_plan(workspace: Workspace, stack: dict[str, Any]) -> None:
    plan = workspace.terraform("plan", "plan", "-detailed-exitcode", "-input=false", *_targets(stack), ok=(0, 2))
    assert plan.returncode == 0, f"the plan after the apply is not clean:\n{plan.stdout[-4000:]}"


def _assert_no_duplicates(emulator: Emulator, state: StateBucket) -> None:
    """The emulator holds exactly the objects the state holds, and as many of each kind as the subset has."""
    saved = state_ids(state.get(STATE_KEY))
    assert tracked(inventory(emulator, STATE_BUCKET)) == {kind: saved[kind] for kind in PER_KIND}
    assert {kind: len(saved[kind]) for kind in PER_KIND} == PER_KIND


def test_a_second_apply_fails_on_the_lock_and_changes_nothing(
    emulator: Emulator, dev_stack: dict[str, Any], state: StateBucket, terraform_env: dict[str, str], tmp_path: Path
) -> None:
    timings = Timings()
    first = Workspace(tmp_path / "first", dev_stack, terraform_env, timings)
    second = Workspace(tmp_path / "second", dev_stack, terraform_env, timings)
    first.init()
    second.init()
    with first.start("apply", *_apply(dev_stack)) as apply:
        wait_until(lambda: state.get(LOCK_KEY) is not None, TIMEOUT, "lock file", while_running=apply)
        held = state.get(LOCK_KEY)
        assert held is not None
        versions = state.versions(STATE_KEY)
        # -lock-timeout=0s is the default, spelled out: with a timeout the second apply would wait until the first
        # released the lock and then plan against its result; this test wants the refusal.
        locked_out = second.terraform(
            "second apply (locked out)", *_apply(dev_stack), "-lock-timeout=0s", ok=(1,), timeout=TIMEOUT
        ).stdout
        assert apply.running(), "the first apply ended before the second tried the lock"
        # The second apply wrote no state and left the first one's lock as it was.
        assert state.versions(STATE_KEY) == versions
        assert state.get(LOCK_KEY) == held
        exit_code = apply.wait(TIMEOUT)
        timings.record("first apply", apply.started)

    assert "Error: Error acquiring the state lock" in locked_out
    # S3 refused the second lock file: the conditional write (If-None-Match: *) found the first one.
    assert "PreconditionFailed" in locked_out
    info = lock_info(locked_out)
    assert info["ID"] == held.body["ID"]
    assert (info["Operation"], info["Who"]) == ("OperationTypeApply", held.body["Who"])
    assert info["Path"] == f"{STATE_BUCKET}/{STATE_KEY}"
    assert "Plan:" not in locked_out and "Creating..." not in locked_out

    assert exit_code == 0, apply.output()[-4000:]
    assert f"Resources: {len(SUBSET)} added, 0 changed, 0 destroyed" in apply.output()
    assert state.get(LOCK_KEY) is None, "the first apply did not release its lock"
    _assert_no_duplicates(emulator, state)
    # The second checkout, planning again now, finds nothing left to do.
    _assert_clean_plan(second, dev_stack)
    print(timings.report("lock contention"))


def test_an_apply_cancelled_with_sigint_saves_what_it_created_and_a_reapply_converges(
    emulator: Emulator, dev_stack: dict[str, Any], state: StateBucket, terraform_env: dict[str, str], tmp_path: Path
) -> None:
    timings = Timings()
    workspace = Workspace(tmp_path / "dev", dev_stack, terraform_env, timings)
    workspace.init()
    with workspace.start("apply", *_apply(dev_stack)) as apply:
        wait_until(_partway(emulator), TIMEOUT, "KMS key and VPC", while_running=apply)
        cancelled = time.monotonic()
        signals = apply.cancel_like_github_actions()
        stopped_in = round(time.monotonic() - cancelled, 1)
        timings.record("apply until cancelled", apply.started)
        exit_code = apply.wait(0)
    output = apply.output()
    assert signals == ["SIGINT"], f"terraform outlived {SIGINT_GRACE} s after SIGINT:\n{output[-4000:]}"
    assert exit_code == 1
    assert "Interrupt received." in output and "Gracefully shutting down..." in output
    assert state.get(LOCK_KEY) is None, "the interrupted apply left its lock"

    saved = state.get(STATE_KEY)
    assert saved is not None, "the interrupted apply saved no state"
    created = inventory(emulator, STATE_BUCKET)
    assert created["aws_kms_alias"] == created["aws_security_group"] == {}
    # Everything the apply created is in the state: objects whose creation was cut short are there as tainted.
    assert orphans(created, saved) == {}
    instances = [i for r in saved.body["resources"] if r["mode"] == "managed" for i in r["instances"]]
    tainted = sum(instance.get("status") == "tainted" for instance in instances)
    kinds = sorted(r["type"] for r in saved.body["resources"] if r["mode"] == "managed")
    print(f"SIGINT: exited {exit_code} after {stopped_in} s; state serial {saved.body['serial']} holds")
    print(f"{len(instances)} resources, {tainted} tainted: {kinds}")

    reapplied = workspace.terraform("re-apply", *_apply(dev_stack), timeout=TIMEOUT).stdout
    # Tainted objects are replaced, the rest is created: nothing is created twice.
    added = len(SUBSET) - len(instances) + tainted
    assert f"Resources: {added} added, 0 changed, {tainted} destroyed" in reapplied, reapplied[-4000:]
    _assert_clean_plan(workspace, dev_stack)
    _assert_no_duplicates(emulator, state)
    print(timings.report("SIGINT"))


WRONG_LOCK_ID = "00000000-0000-0000-0000-000000000000"


def test_an_apply_killed_partway_leaves_a_stale_lock_and_orphans_that_importing_recovers(
    emulator: Emulator, dev_stack: dict[str, Any], state: StateBucket, terraform_env: dict[str, str], tmp_path: Path
) -> None:
    timings = Timings()
    workspace = Workspace(tmp_path / "dev", dev_stack, terraform_env, timings)
    workspace.init()
    with workspace.start("apply", *_apply(dev_stack)) as apply:
        wait_until(_partway(emulator), TIMEOUT, "KMS key and VPC", while_running=apply)
        apply.kill_tree()
        timings.record("apply until killed", apply.started)

    stale = state.get(LOCK_KEY)
    assert stale is not None, "a killed apply cannot release its lock"
    assert stale.body["Operation"] == "OperationTypeApply"
    # Killed well within 20 s of its first created object, the apply never wrote its state: everything it
    # created is unknown to Terraform.
    assert state.get(STATE_KEY) is None
    created = inventory(emulator, STATE_BUCKET)
    lost = orphans(created, None)
    assert lost == {kind: found for kind, found in created.items() if found}
    assert created["aws_kms_alias"] == created["aws_security_group"] == {}
    print(f"SIGKILL: objects no state knows about: {lost}")

    # The operator's recovery. The next plan fails on the lock and names its holder (the lock file holds the same).
    blocked = workspace.terraform("plan (locked)", "plan", "-input=false", ok=(1,)).stdout
    assert "Error: Error acquiring the state lock" in blocked
    info = lock_info(blocked)
    assert (info["ID"], info["Who"], info["Created"][:19]) == (
        stale.body["ID"],
        stale.body["Who"],
        stale.body["Created"][:19].replace("T", " "),
    )
    # force-unlock releases only the lock it is given the ID of: a lock another run took meanwhile stays.
    refused = workspace.terraform("force-unlock (wrong ID)", "force-unlock", "-force", WRONG_LOCK_ID, ok=(1,)).stdout
    assert f"lock ID '{WRONG_LOCK_ID}' does not match the existing lock ID '{info['ID']}'" in refused
    assert state.get(LOCK_KEY) == stale
    unlocked = workspace.terraform("force-unlock", "force-unlock", "-force", info["ID"]).stdout
    assert "Terraform state has been successfully unlocked!" in unlocked
    assert state.get(LOCK_KEY) is None

    # Each orphan is imported as the resource it was created for, found by its name, Name tag or description.
    imports = import_blocks(lost, dev_stack)
    recovery = workspace.path / "recovery-imports.tf.json"
    recovery.write_text(json.dumps({"import": imports}, indent=2))
    recovered = workspace.terraform("re-apply with imports", *_apply(dev_stack), timeout=TIMEOUT).stdout
    assert f"Resources: {len(imports)} imported, {len(SUBSET) - len(imports)} added" in recovered, recovered[-4000:]
    recovery.unlink()
    _assert_clean_plan(workspace, dev_stack)
    _assert_no_duplicates(emulator, state)
    print(f"SIGKILL: imported {[block['to'] for block in imports]}")
    print(timings.report("SIGKILL"))
