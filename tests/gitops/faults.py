"""What the deploy-fault tests need beside terraform itself: a terraform run in the background that can be
cancelled the way a CI runner cancels it, the state and lock objects in the emulator's S3, and an inventory of
the objects the emulator holds, matched against the state and, for orphans, against the configuration.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, Emulator
from gitops.terraform import run_terraform

# GitHub Actions cancels a step by sending SIGINT to the step's process, SIGTERM if it is still running 7.5 s
# later, and killing the whole process tree 2.5 s after that (docs.github.com, "Workflow cancellation reference";
# the runner's ProcessInvoker sends each signal with kill(pid), to that one process, not to its group).
SIGINT_GRACE = 7.5
SIGTERM_GRACE = 2.5

# How an operator recognizes an object the state lost, per resource type: the argument of the configuration that
# :func:`inventory` reads back from the emulator. Named resources by their name, the others by what the stack
# writes on them (the VPC's Name tag, the key's description).
IDENTITY_ARGUMENTS: dict[str, Callable[[dict[str, Any]], str]] = {
    "aws_vpc": lambda body: body["tags"]["Name"],
    "aws_security_group": lambda body: body["name"],
    "aws_kms_key": lambda body: body["description"],
    "aws_kms_alias": lambda body: body["name"],
    "aws_iam_role": lambda body: body["name"],
    "aws_s3_bucket": lambda body: body["bucket"],
}
ACCOUNT_REFERENCE = re.compile(r"\$\{data\.aws_caller_identity\.[\w-]+\.account_id\}")
LOCK_INFO_LINE = re.compile(r"^\s+(ID|Path|Operation|Who|Version|Created|Info):\s*(.*)$", re.MULTILINE)


@dataclass
class Timings:
    """Seconds per terraform step of one test, printed at its end (``pytest -s`` shows them)."""

    steps: dict[str, float] = field(default_factory=dict)

    def record(self, step: str, started: float) -> None:
        """Record ``step`` as having run from ``started`` (``time.monotonic()``) until now."""
        self.steps[step] = round(time.monotonic() - started, 1)

    def report(self, test: str) -> str:
        """One line: the test and each step's seconds, in the order they ran."""
        return f"{test}: " + ", ".join(f"{step} {seconds} s" for step, seconds in self.steps.items())


class BackgroundTerraform:
    """A terraform command running in its own session (so its provider processes form one group with it).

    Use it as a context manager: leaving the block kills the group if terraform is still running, so a failed
    assertion never leaves an apply behind.
    """

    def __init__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], log: Path) -> None:
        """Start ``terraform *args`` in ``cwd``, its output (stdout and stderr) going to ``log``."""
        binary = shutil.which("terraform", path=env.get("PATH"))
        if binary is None:
            raise FileNotFoundError("terraform is not on PATH")
        self.log = log
        self.started = time.monotonic()
        with log.open("w") as sink:
            self.process = subprocess.Popen(
                [binary, *args],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def __enter__(self) -> BackgroundTerraform:
        """Return the running command."""
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        """Kill terraform and its providers if terraform is still running."""
        if self.process.poll() is None:
            self.kill_tree()

    def running(self) -> bool:
        """Whether terraform has not exited yet."""
        return self.process.poll() is None

    def output(self) -> str:
        """Everything terraform printed so far."""
        return self.log.read_text()

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for terraform to exit and return its exit code."""
        return self.process.wait(timeout)

    def kill_tree(self) -> None:
        """SIGKILL terraform and its providers at once: the runner's last resort, an OOM kill, a lost machine."""
        # Sent while terraform is alive and unreaped, so the group id cannot name anybody else's processes.
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def cancel_like_github_actions(self) -> list[str]:
        """Cancel terraform as GitHub Actions cancels a step whose process it is; return the signals it took.

        SIGINT to the process; SIGTERM if it is still running :data:`SIGINT_GRACE` seconds later; the whole tree
        killed if it is still running :data:`SIGTERM_GRACE` seconds after that. (A step that runs terraform from
        its shell, not as its process, passes terraform neither signal: terraform only meets the final kill.)
        """
        sent = []
        for signum, grace in ((signal.SIGINT, SIGINT_GRACE), (signal.SIGTERM, SIGTERM_GRACE)):
            os.kill(self.process.pid, signum)
            sent.append(signum.name)
            try:
                self.process.wait(grace)
                return sent
            except subprocess.TimeoutExpired:
                continue
        self.kill_tree()
        sent.append("SIGKILL")
        return sent


class Workspace:
    """One checkout of a stack: a working directory with its own copy of the configuration and ``terraform init``."""

    def __init__(self, path: Path, config: dict[str, Any], env: Mapping[str, str], timings: Timings) -> None:
        """Write ``config`` as ``cdk.tf.json`` into ``path``; nothing runs until :meth:`init`."""
        self.path = path
        self.env = dict(env)
        self.timings = timings
        path.mkdir(parents=True)
        (path / "cdk.tf.json").write_text(json.dumps(config, indent=2))

    def terraform(
        self, step: str, *args: str, ok: tuple[int, ...] = (0,), timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``terraform *args`` here (non-interactive, no colour), recording its time as ``step``."""
        started = time.monotonic()
        try:
            return run_terraform([*args, "-no-color"], self.path, self.env, timeout=timeout, ok_returncodes=ok)
        finally:
            self.timings.record(step, started)

    def init(self) -> None:
        """``terraform init`` against the configured backend (the state bucket must exist)."""
        self.terraform(f"init {self.path.name}", "init", "-input=false")

    def start(self, name: str, *args: str) -> BackgroundTerraform:
        """Start ``terraform *args`` here in the background; its output goes to ``<name>.log``."""
        return BackgroundTerraform([*args, "-no-color"], self.path, self.env, self.path / f"{name}.log")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, *, while_running: BackgroundTerraform) -> None:
    """Poll ``condition`` every 0.1 s until it holds; fail naming ``what`` if it does not within ``timeout``
    seconds, or if the command it waits on exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if not while_running.running():
            raise AssertionError(f"terraform exited before {what}:\n{while_running.output()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s:\n{while_running.output()[-3000:]}")
        time.sleep(0.1)


# --- the state bucket ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredObject:
    """One object of the state bucket as it is now: its parsed JSON body, ETag and version."""

    body: dict[str, Any]
    etag: str
    version_id: str


class StateBucket:
    """The emulator's state bucket, seen the way an operator sees it with ``aws s3``."""

    def __init__(self, emulator: Emulator, name: str) -> None:
        """The bucket ``name`` in ``emulator``; :meth:`create` makes it."""
        self.s3 = emulator.client("s3")
        self.name = name

    def create(self) -> None:
        """Create the bucket, versioned like the bootstrap stack's, which must exist before ``terraform init``."""
        self.s3.create_bucket(Bucket=self.name)
        self.s3.put_bucket_versioning(Bucket=self.name, VersioningConfiguration={"Status": "Enabled"})

    def get(self, key: str) -> StoredObject | None:
        """The object at ``key``, or ``None`` if there is none."""
        try:
            found = self.s3.get_object(Bucket=self.name, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] == "NoSuchKey":
                return None
            raise
        return StoredObject(json.loads(found["Body"].read()), found["ETag"], found.get("VersionId", ""))

    def versions(self, key: str) -> list[str]:
        """Every version id ever written at ``key`` (delete markers included), newest first."""
        listing = self.s3.list_object_versions(Bucket=self.name, Prefix=key)
        entries = [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]
        return [entry["VersionId"] for entry in entries if entry["Key"] == key]


def lock_info(output: str) -> dict[str, str]:
    """The ``Lock Info:`` block terraform prints when it cannot take or release a lock, as a dict."""
    _, found, block = output.partition("Lock Info:")
    assert found, f"no lock info in the output:\n{output[-3000:]}"
    return {key: value.strip() for key, value in LOCK_INFO_LINE.findall(block)}


# --- what the emulator holds, what the state holds ----------------------------------------------------------------


def inventory(emulator: Emulator, state_bucket: str) -> dict[str, dict[str, str]]:
    """Every object of the types in :data:`IDENTITY_ARGUMENTS` in the emulator: type -> {id: identity}.

    Objects on their way out are left out (a KMS key pending deletion is destroyed as far as Terraform goes), and
    so is what is not the platform's: the default VPC and security groups, AWS-managed keys, the state bucket.
    """
    ec2, kms, iam, s3 = (emulator.client(service) for service in ("ec2", "kms", "iam", "s3"))
    keys = {}
    for key in kms.list_keys()["Keys"]:
        metadata = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if metadata["KeyManager"] == "CUSTOMER" and metadata["KeyState"] != "PendingDeletion":
            keys[metadata["KeyId"]] = metadata.get("Description", "")
    return {
        "aws_vpc": {
            vpc["VpcId"]: next((tag["Value"] for tag in vpc.get("Tags", []) if tag["Key"] == "Name"), "")
            for vpc in ec2.describe_vpcs()["Vpcs"]
            if not vpc["IsDefault"]
        },
        "aws_security_group": {
            group["GroupId"]: group["GroupName"]
            for group in ec2.describe_security_groups()["SecurityGroups"]
            if group["GroupName"] != "default"
        },
        "aws_kms_key": keys,
        "aws_kms_alias": {
            alias["AliasName"]: alias["AliasName"]
            for alias in kms.list_aliases()["Aliases"]
            if not alias["AliasName"].startswith("alias/aws/")
        },
        "aws_iam_role": {role["RoleName"]: role["RoleName"] for role in iam.list_roles()["Roles"]},
        "aws_s3_bucket": {b["Name"]: b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"] != state_bucket},
    }


def state_ids(state: StoredObject | None) -> dict[str, set[str]]:
    """The id of every managed resource instance in a state snapshot (tainted ones included), by type."""
    ids: dict[str, set[str]] = {kind: set() for kind in IDENTITY_ARGUMENTS}
    for resource in state.body["resources"] if state else []:
        if resource["mode"] == "managed":
            ids.setdefault(resource["type"], set()).update(i["attributes"]["id"] for i in resource["instances"])
    return ids


def tracked(objects: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """The ids of an :func:`inventory`, in the shape of :func:`state_ids`."""
    return {kind: set(found) for kind, found in objects.items()}


def orphans(objects: dict[str, dict[str, str]], state: StoredObject | None) -> dict[str, dict[str, str]]:
    """The objects of an :func:`inventory` that the state does not know: type -> {id: identity}."""
    known = state_ids(state)
    lost = {kind: {i: who for i, who in found.items() if i not in known[kind]} for kind, found in objects.items()}
    return {kind: found for kind, found in lost.items() if found}


def import_blocks(lost: dict[str, dict[str, str]], config: dict[str, Any]) -> list[dict[str, str]]:
    """Terraform ``import`` blocks that adopt each orphan as the resource of ``config`` it was created for.

    Each orphan is matched on its identity (:data:`IDENTITY_ARGUMENTS`) against the configuration, the account
    id filled in as the operator knows it; exactly one resource must match.
    """
    blocks = []
    for kind, found in sorted(lost.items()):
        wanted = {
            name: ACCOUNT_REFERENCE.sub(ACCOUNT_ID, IDENTITY_ARGUMENTS[kind](body))
            for name, body in config["resource"][kind].items()
        }
        for object_id, identity in sorted(found.items()):
            matches = [name for name, value in wanted.items() if value == identity]
            assert len(matches) == 1, f"{kind} {object_id} ({identity!r}) matches {matches} in the configuration"
            blocks.append({"to": f"{kind}.{matches[0]}", "id": object_id})
    return blocks
