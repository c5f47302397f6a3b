#!/usr/bin/env python3
"""Re-record the Terraform outputs that the unit tests of ``gitops`` replay (``tests/gitops/recorded/``).

Everything recorded is real: Terraform 1.11.4 with the offline hashicorp/aws 5.100.0 provider against the
local AWS emulator. A tiny configuration (an S3 bucket with tags, its versioning, an SNS topic, one output)
is applied, then:

* ``check-<scenario>.refresh`` and ``check-<scenario>.code``: the two plans of ``gitops.drift``, for the
  scenarios ``clean``, ``unapplied`` (a tag value changed in the code), ``drift`` (a tag removed from the
  bucket, its versioning suspended and the topic deleted, all with boto3), ``both`` (that drift plus the
  code change) and ``error`` (an output reading an undeclared resource);
* ``pr-<name>``: pull-request plans (``plan -out`` + ``show -json`` + ``show -no-color``): ``change`` (a tag
  value changed; recorded twice, ``change-again``, for the fingerprint), ``change-other`` (another value),
  ``replace`` (bucket and topic renamed), ``destroy`` (bucket removed from the code), and ``error.log``, the
  text output of a failing plan.

``.jsonl`` files are ``plan -json`` streams, ``.json`` files ``show -json`` of the saved plan, ``.txt``
``show -no-color``. ``manifest.json`` names the command and exit code behind each file. ``show -json``
output is stored without ``configuration``, ``planned_values`` and ``prior_state``, which the commands do
not read (``configuration`` also holds the emulator's port); nothing else is changed.

    .venv/bin/python tests/gitops/record.py      # from the repository root, about 5 minutes
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    # Run as a script: make the project's packages importable.
    sys.path.insert(0, str(ROOT))

from emulator import Emulator, start_emulator, terraform_provider_block  # noqa: E402
from gitops.terraform import run_terraform  # noqa: E402
from tests.support.mirror import emulator_terraform_env  # noqa: E402

RECORDED = Path(__file__).resolve().parent / "recorded"
BUCKET = "gitops-recorded-data"
TOPIC = "gitops-recorded-alerts"
# Parts of `show -json` that no gitops command reads; dropped to keep the recordings small.
UNREAD_PLAN_KEYS = ("configuration", "planned_values", "prior_state")
PLAN_FLAGS = ["-detailed-exitcode", "-json", "-lock=false", "-input=false"]


def configuration(
    endpoint: str,
    *,
    purpose: str = "training",
    bucket: str = BUCKET,
    topic: str = TOPIC,
    with_bucket: bool = True,
    broken: bool = False,
) -> dict[str, Any]:
    """The recorded Terraform JSON configuration, in the variant the keyword arguments describe."""
    resources: dict[str, Any] = {"aws_sns_topic": {"alerts": {"name": topic, "tags": {"team": "ml"}}}}
    outputs: dict[str, Any] = {}
    if with_bucket:
        resources["aws_s3_bucket"] = {"data": {"bucket": bucket, "tags": {"team": "ml", "purpose": purpose}}}
        resources["aws_s3_bucket_versioning"] = {
            "data": {"bucket": "${aws_s3_bucket.data.id}", "versioning_configuration": {"status": "Enabled"}}
        }
        outputs["bucket_arn"] = {"value": "${aws_s3_bucket.data.arn}"}
    if broken:
        outputs["broken"] = {"value": "${aws_s3_bucket.missing.arn}"}
    config: dict[str, Any] = {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}},
        "provider": {"aws": [terraform_provider_block(endpoint)]},
        "resource": resources,
    }
    if outputs:
        config["output"] = outputs
    return config


class Recorder:
    """Runs terraform in one working directory and writes what it printed under :data:`RECORDED`."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        """Record runs in ``workdir`` with the terraform environment ``env``."""
        self.workdir = workdir
        self.env = env
        self.manifest: dict[str, dict[str, Any]] = {}

    def configure(self, config: dict[str, Any]) -> None:
        """Make ``config`` the working directory's configuration."""
        (self.workdir / "main.tf.json").write_text(json.dumps(config, indent=2), encoding="utf-8")

    def run(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        """``terraform *args``, failing unless it exits with one of ``ok``."""
        return run_terraform(list(args), self.workdir, self.env, timeout=300, ok_returncodes=ok)

    def save(self, name: str, text: str, args: list[str], exit_code: int) -> None:
        """Write ``text`` to ``recorded/name`` and note the command behind it."""
        (RECORDED / name).write_text(text, encoding="utf-8")
        self.manifest[name] = {"command": ["terraform", *args], "exit_code": exit_code}

    def plan(self, name: str, *extra: str, show: bool, text: bool = False) -> int:
        """A ``plan -json`` stream (``name.jsonl``), with ``show -json`` (``name.json``) and text if asked."""
        plan_file = f"{name}.tfplan"
        args = ["plan", *extra, *PLAN_FLAGS, f"-out={plan_file}"]
        result = self.run(*args, ok=(0, 1, 2))
        self.save(f"{name}.jsonl", result.stdout, args, result.returncode)
        if show and result.returncode != 1:
            self.show_json(name)
        if text and result.returncode != 1:
            self.save(f"{name}.txt", self.run("show", "-no-color", plan_file).stdout, ["show", plan_file], 0)
        print(f"{name}: exit {result.returncode}", flush=True)
        return result.returncode

    def drift_check(self, scenario: str) -> None:
        """The two plans ``gitops.drift`` runs; like it, show as JSON only a plan that lists changes (exit 2)."""
        for kind, flag in (("refresh", "-refresh-only"), ("code", "-refresh=false")):
            name = f"check-{scenario}.{kind}"
            if self.plan(name, flag, show=False) == 2:
                self.show_json(name)

    def show_json(self, name: str) -> None:
        """``show -json`` of the plan saved as ``name.tfplan``, without the parts no command reads."""
        plan_file = f"{name}.tfplan"
        shown = json.loads(self.run("show", "-json", plan_file).stdout)
        for key in UNREAD_PLAN_KEYS:
            shown.pop(key, None)
        self.save(f"{name}.json", json.dumps(shown, indent=1) + "\n", ["show", "-json", plan_file], 0)


def make_drift(emulator: Emulator) -> None:
    """Change the applied resources behind Terraform's back: a tag, the versioning, the topic."""
    s3 = emulator.client("s3")
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "team", "Value": "ml"}]})
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Suspended"})
    sns = emulator.client("sns")
    sns.delete_topic(TopicArn=f"arn:aws:sns:us-east-1:123456789012:{TOPIC}")


def record(emulator: Emulator, scratch: Path) -> dict[str, dict[str, Any]]:
    """Apply the configuration and record every scenario; the manifest of what was written."""
    workdir = scratch / "stack"
    workdir.mkdir()
    recorder = Recorder(workdir, emulator_terraform_env(scratch))
    endpoint = emulator.endpoint
    recorder.configure(configuration(endpoint))
    recorder.run("init", "-input=false", "-no-color")
    recorder.run("apply", "-auto-approve", "-input=false", "-no-color")
    # The bucket's own `versioning` attribute was read before aws_s3_bucket_versioning enabled it; until an
    # apply refreshes the state, a refresh-only plan reports that as drift (as it would in AWS).
    recorder.run("apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color")
    recorder.drift_check("clean")

    recorder.configure(configuration(endpoint, purpose="serving"))
    recorder.plan("pr-change", show=True, text=True)
    recorder.plan("pr-change-again", show=True)
    recorder.drift_check("unapplied")
    recorder.configure(configuration(endpoint, purpose="inference"))
    recorder.plan("pr-change-other", show=True)
    recorder.configure(configuration(endpoint, bucket=f"{BUCKET}-2", topic=f"{TOPIC}-2"))
    recorder.plan("pr-replace", show=True, text=True)
    recorder.configure(configuration(endpoint, with_bucket=False))
    recorder.plan("pr-destroy", show=True, text=True)

    make_drift(emulator)
    recorder.configure(configuration(endpoint))
    recorder.drift_check("drift")
    recorder.configure(configuration(endpoint, purpose="serving"))
    recorder.drift_check("both")

    recorder.configure(configuration(endpoint, broken=True))
    recorder.drift_check("error")
    failed = recorder.run("plan", "-no-color", "-lock=false", "-input=false", ok=(1,))
    recorder.save("pr-error.log", failed.stdout, ["plan", "-no-color", "-lock=false", "-input=false"], 1)
    return recorder.manifest


def record_into(folder: Path, recording: Callable[[Emulator, Path], dict[str, dict[str, Any]]]) -> int:
    """Run ``recording`` on a fresh emulator and write its files and their manifest into ``folder`` (emptied first)."""
    started = time.monotonic()
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    version = json.loads(subprocess.run(["terraform", "version", "-json"], capture_output=True, check=True).stdout)
    with start_emulator() as emulator, tempfile.TemporaryDirectory(prefix=f"gitops-{folder.name}-") as scratch:
        emulator.reset()
        manifest = recording(emulator, Path(scratch))
    document = {"terraform_version": version["terraform_version"], "files": dict(sorted(manifest.items()))}
    (folder / "manifest.json").write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"recorded {len(manifest)} files in {time.monotonic() - started:.0f} s")
    return 0


def main() -> int:
    """Record everything into :data:`RECORDED` (replacing what is there)."""
    return record_into(RECORDED, record)


if __name__ == "__main__":
    sys.exit(main())
