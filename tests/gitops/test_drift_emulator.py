"""The drift check end to end: real Terraform, the emulator, and a piece of the platform's own dev stack.

The dev stack is synthesized for the emulator by the product's own classes (``MlPlatformStack`` with
``ML_PLATFORM_EMULATOR_ENDPOINT`` and an S3 state bucket in the emulator, so the check reads its state from S3
without the lock, as in CI). Its training-data bucket (tagged by the provider's default tags), the bucket's
ownership controls and public access block, and the data sources they read are applied; the rest of the stack
is left out of the configuration, because a check over the whole stack would find all of it unapplied (and the
whole stack takes over a minute to apply here).

Then ``python -m gitops.drift dev`` runs three times: a tag removed from the bucket with boto3 is drift
(exit 2, the bucket's address and the tag's path in the report); with the tag put back the check is clean
(exit 0); a tag added in the code, not applied, is unapplied code (exit 3).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator
from gitops import drift
from gitops.terraform import MIRROR_ENV, aws_only, run_terraform
from tests.support.mirror import emulator_terraform_env, offline_mirror

pytestmark = [pytest.mark.emulator, pytest.mark.terraform]

STATE_BUCKET = "gitops-drift-check-state"
# The resources the applied piece starts from; what they reference comes along. Left out, to keep the test near a
# minute: the encryption and lifecycle settings (the provider holds a new KMS key for about 12 s until its policy
# propagates, and a lifecycle configuration for about a minute until its rules read back steadily), and the
# versioning and policy, which update attributes of the bucket's own state that only the next apply records, so a
# check right after the first apply would report them as drift until a refresh-only apply (15 s more).
ROOTS = re.compile(r"aws_s3_bucket(?:_ownership_controls|_public_access_block)?\.platform_storage_training-data_")
REFERENCE = re.compile(r"(?<![\w.])(?:data\.)?aws_\w+\.[\w-]+")
# A default tag of the provider, present on every resource of the stack.
REMOVED_TAG = "cost_center"
TIMEOUT = 240.0


def synthesize_dev(endpoint: str, outdir: Path) -> dict[str, Any]:
    """The dev stack, synthesized for the emulator at ``endpoint`` with its state in the emulator's S3."""
    from cdktf import App

    from stacks.deployment import load_deployment
    from stacks.ml_platform_stack import MlPlatformStack
    from stacks.overrides import load_environments

    with pytest.MonkeyPatch.context() as env:
        for name in ("ML_PLATFORM_OVERRIDES", "ML_PLATFORM_OVERRIDES_FILE", "ML_PLATFORM_BACKEND"):
            env.delenv(name, raising=False)
        env.setenv("ML_PLATFORM_EMULATOR_ENDPOINT", endpoint)
        env.setenv("ML_PLATFORM_STATE_BUCKET", STATE_BUCKET)
        app = App(outdir=str(outdir))
        MlPlatformStack(app, load_environments()["dev"], load_deployment())
        app.synth()
    config: dict[str, Any] = json.loads((outdir / "stacks" / "dev" / "cdk.tf.json").read_text())
    return config


def piece(config: dict[str, Any]) -> dict[str, Any]:
    """The AWS part of ``config`` reduced to the resources :data:`ROOTS` matches and all they reference."""
    config = aws_only(config, keep_backend=True)
    blocks = {
        f"data.{kind}.{name}" if block == "data" else f"{kind}.{name}": (block, kind, name)
        for block in ("resource", "data")
        for kind, bodies in config.get(block, {}).items()
        for name in bodies
    }
    wanted: set[str] = set()
    pending = [address for address, (block, _, _) in blocks.items() if block == "resource" and ROOTS.match(address)]
    while pending:
        address = pending.pop()
        if address in wanted:
            continue
        wanted.add(address)
        block, kind, name = blocks[address]
        pending += [found for found in REFERENCE.findall(json.dumps(config[block][kind][name])) if found in blocks]
    reduced: dict[str, Any] = {"terraform": config["terraform"], "provider": config["provider"]}
    for address in sorted(wanted):
        block, kind, name = blocks[address]
        reduced.setdefault(block, {}).setdefault(kind, {})[name] = config[block][kind][name]
    return reduced


def test_drift_then_clean_then_unapplied_code(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    config = piece(synthesize_dev(emulator.endpoint, tmp_path / "cdktf.out"))
    (bucket_name,) = (name for name in config["resource"]["aws_s3_bucket"] if "training-data" in name)
    bucket = f"aws_s3_bucket.{bucket_name}"
    assert sorted(config["resource"]) == [
        "aws_s3_bucket",
        "aws_s3_bucket_ownership_controls",
        "aws_s3_bucket_public_access_block",
    ]
    stack = tmp_path / "stacks" / "dev"
    stack.mkdir(parents=True)
    (stack / "cdk.tf.json").write_text(json.dumps(config, indent=2))

    mirror = offline_mirror()
    env = emulator_terraform_env(tmp_path)
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=STATE_BUCKET)
    run_terraform(["init", "-input=false", "-no-color"], stack, env, TIMEOUT)
    run_terraform(["apply", "-auto-approve", "-input=false", "-no-color"], stack, env, TIMEOUT)
    # The bucket's own record of its versioning, encryption, lifecycle and policy was read before the separate
    # resources set them; refreshing the state once, as a deploy should after applying, brings it up to date.
    applied = time.monotonic()

    # The check runs terraform in this process's environment, as `make drift` does.
    monkeypatch.setenv(MIRROR_ENV, mirror)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    report_file = tmp_path / "report.json"

    def check() -> tuple[int, dict[str, Any]]:
        code = drift.main(["dev", "--stacks-dir", str(tmp_path / "stacks"), "--report", str(report_file)])
        return code, json.loads(report_file.read_text())

    (name,) = (found["Name"] for found in s3.list_buckets()["Buckets"] if found["Name"].startswith("mlp-dev-training"))
    tags = s3.get_bucket_tagging(Bucket=name)["TagSet"]
    assert REMOVED_TAG in {tag["Key"] for tag in tags}
    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [tag for tag in tags if tag["Key"] != REMOVED_TAG]})
    code, report = check()
    assert (code, report["outcome"], report["errors"]) == (2, "drift", [])
    # The bucket's own `tags` also read back as {} where its state, written at creation, holds null: not drift.
    assert report["drifted"] == [{"address": bucket, "action": "update", "attributes": [f"tags_all.{REMOVED_TAG}"]}]
    assert report["unapplied"] == []

    s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})
    assert check() == (0, {"environment": "dev", "outcome": "clean", "drifted": [], "unapplied": [], "errors": []})

    config["resource"]["aws_s3_bucket"][bucket_name]["tags"] = {"purpose": "drift-check"}
    (stack / "cdk.tf.json").write_text(json.dumps(config, indent=2))
    code, report = check()
    assert (code, report["outcome"], report["drifted"]) == (3, "unapplied", [])
    assert report["unapplied"] == [{"address": bucket, "actions": ["update"]}]
    print(f"applied in {applied - started:.0f} s, three checks in {time.monotonic() - applied:.0f} s")
