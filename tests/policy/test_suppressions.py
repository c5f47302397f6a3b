"""Suppressions: a reasoned exemption from one rule for one construct, recorded in the synthesized JSON.

A suppression that silences a finding is written into that resource's ``//`` block as
``"suppressed_checks": {"<rule id>": "<reason>"}``, so a reviewer of ``cdk.tf.json`` sees every exception.
"""

from __future__ import annotations

from pathlib import Path

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.checks import (
    check_failure_report,
    suppress,
    suppressions_of,
    synth_resources,
)
from constructs.policy.pack import security_checks
from constructs.policy.rules import BucketEncryptedWithKms
from constructs.storage.bucket import SecureBucket, SecureBucketProps

from stacks.matrix import MATRIX
from tests.policy.cases import NAMED_ADMIN_KEY_POLICY, tagged_stack
from tests.support.stacks import OWNER_TAGS, written
from tests.support.synth_json import resources

NOTES = "suppressed_checks"
"""The key of a resource's ``//`` block listing the suppressed rules that fired, with their reasons."""
VERSIONING_REASON = "versioning is managed outside Terraform for this test bucket"
KEPT = cdktf.TerraformResourceLifecycle(prevent_destroy=True)


def _notes(stack: dict) -> dict[str, dict[str, str]]:
    """``type.name`` -> suppressed checks, for every resource of a synthesized stack that records any."""
    return {
        f"{resource_type}.{name}": config["//"][NOTES]
        for resource_type, by_name in stack.get("resource", {}).items()
        for name, config in by_name.items()
        if NOTES in config.get("//", {})
    }


def _log_and_data_buckets(stack: cdktf.TerraformStack) -> tuple[SecureBucket, SecureBucket]:
    """An SSE-S3 access-log bucket (which violates S3-2, suppressed) and a compliant SSE-KMS data bucket."""
    # Protected stacks hold these too: the key is kept from Terraform's destroy (PROT-1).
    key = aws.kms_key.KmsKey(stack, "key", enable_key_rotation=True, lifecycle=KEPT, policy=NAMED_ADMIN_KEY_POLICY)
    logs = SecureBucket(
        stack, "logs", SecureBucketProps(bucket_name="logs-bucket", kms_key=None, log_delivery_source_account="1")
    )
    data = SecureBucket(stack, "data", SecureBucketProps(bucket_name="data-bucket", kms_key=key))
    return logs, data


# --- what a suppression silences --------------------------------------------------------------------


def test_a_suppression_silences_exactly_its_rule_on_its_construct() -> None:
    stack = tagged_stack(cdktf.Testing.app())
    raw = aws.s3_bucket.S3Bucket(stack, "raw", bucket="raw-bucket")
    checks = security_checks(gpu_enabled=False, protected=False)
    before = checks.violations(stack)
    assert [v.split(":", 1)[0] for v in before] == [
        "[tiny/raw] S3-1",
        "[tiny/raw] S3-2",
        "[tiny/raw] S3-3",
        "[tiny/raw] S3-4",
    ]
    suppress(raw, "S3-3", VERSIONING_REASON)
    after = checks.violations(stack)
    assert after == [v for v in before if "S3-3" not in v]


@pytest.mark.parametrize("reason", ["", "   ", "because", None])
def test_a_suppression_without_a_reason_is_rejected(reason) -> None:
    stack = tagged_stack(cdktf.Testing.app())
    group = aws.security_group.SecurityGroup(stack, "ssh")
    with pytest.raises(ValueError, match=r"tiny/ssh: suppressing NET-1 needs a written reason"):
        suppress(group, "NET-1", reason)
    assert suppressions_of(group) == {}


def test_suppressions_reach_everything_below_their_construct() -> None:
    stack = tagged_stack(cdktf.Testing.app())
    logs, data = _log_and_data_buckets(stack)
    found = {resource.path: (resource, suppressed) for resource, suppressed in synth_resources(stack)}
    # The SSE-S3 log bucket does violate S3-2; its SecureBucket's reasoned suppression covers the bucket below it.
    logs_bucket, logs_suppressed = found["tiny/logs/bucket"]
    assert BucketEncryptedWithKms().check(logs_bucket) == [
        f"{logs_bucket.address} is not encrypted with SSE-KMS and a customer-managed key"
    ]
    assert logs_suppressed == suppressions_of(logs)
    assert set(logs_suppressed) == {"S3-2"} and "server access logging" in logs_suppressed["S3-2"]
    assert found["tiny/logs/policy"][1] == logs_suppressed
    data_bucket, data_suppressed = found["tiny/data/bucket"]
    assert BucketEncryptedWithKms().check(data_bucket) == [] and data_suppressed == {}
    assert suppressions_of(data) == {}


# --- what a suppression writes into the synthesized JSON --------------------------------------------


def test_a_silenced_finding_is_recorded_on_its_resource_only(tmp_path) -> None:
    app = cdktf.App(outdir=str(tmp_path))
    stack = tagged_stack(app, protected=True)
    logs, _ = _log_and_data_buckets(stack)
    config = written(stack)
    (bucket_name,) = [n for n in resources(config, "aws_s3_bucket") if n.startswith("logs_bucket_")]
    # Only the bucket, where S3-2 found something, carries the note; its companions under the same
    # suppressed construct, and the compliant data bucket, carry none.
    assert _notes(config) == {f"aws_s3_bucket.{bucket_name}": suppressions_of(logs)}
    note = config["resource"]["aws_s3_bucket"][bucket_name]["//"]
    assert note["metadata"]["path"] == "tiny/logs/bucket"
    assert set(note) == {"metadata", NOTES}


def test_the_note_is_written_exactly_as_cdktf_writes_an_override(tmp_path) -> None:
    """The checks add the note to the file cdktf wrote; the file is the one cdktf writes for the same override."""
    checked = tagged_stack(cdktf.App(outdir=str(tmp_path / "checked")), protected=True)
    _log_and_data_buckets(checked)
    by_hand = cdktf.TerraformStack(cdktf.App(outdir=str(tmp_path / "by-hand")), "tiny")
    aws.provider.AwsProvider(
        by_hand, "aws", region="us-east-1", default_tags=[aws.provider.AwsProviderDefaultTags(tags=dict(OWNER_TAGS))]
    )
    logs, _ = _log_and_data_buckets(by_hand)
    bucket = logs.node.find_child("bucket")
    assert isinstance(bucket, cdktf.TerraformResource)
    bucket.add_override(f"//.{NOTES}", suppressions_of(logs))
    written(checked)
    written(by_hand)
    files = [tmp_path / out / "stacks" / "tiny" / "cdk.tf.json" for out in ("checked", "by-hand")]
    assert NOTES in files[0].read_text()
    assert files[0].read_bytes() == files[1].read_bytes()


def test_a_suppression_whose_rule_finds_nothing_writes_nothing(tmp_path) -> None:
    app = cdktf.App(outdir=str(tmp_path))
    stack = tagged_stack(app, protected=True)
    logs, data = _log_and_data_buckets(stack)
    key = aws.kms_key.KmsKey(stack, "rotating", enable_key_rotation=True, lifecycle=KEPT, policy=NAMED_ADMIN_KEY_POLICY)
    # Rules the data bucket, the key and the whole stack comply with: these suppressions silence nothing.
    suppress(data, "S3-2", "the data bucket is encrypted with SSE-KMS, so this suppression silences nothing")
    suppress(key, "KMS-1", "the key rotates, so this suppression silences nothing at all")
    suppress(stack, "GPU-1", "no GPU anywhere in this stack, so this suppression silences nothing")
    config = written(stack)
    (log_bucket,) = [n for n in resources(config, "aws_s3_bucket") if n.startswith("logs_bucket_")]
    # The log bucket is under the stack's GPU-1 suppression too, but only its S3-2 exemption silences a finding.
    assert set(suppressions_of(logs)) == {"S3-2", "GPU-1"}
    assert _notes(config) == {f"aws_s3_bucket.{log_bucket}": {"S3-2": suppressions_of(logs)["S3-2"]}}
    assert config["resource"]["aws_kms_key"]["rotating"]["//"] == {
        "metadata": {"path": "tiny/rotating", "uniqueId": "rotating"}
    }


def test_every_silenced_rule_of_a_resource_is_recorded_sorted_by_rule_id(tmp_path) -> None:
    app = cdktf.App(outdir=str(tmp_path))
    stack = tagged_stack(app)
    raw = aws.s3_bucket.S3Bucket(stack, "raw", bucket="raw-bucket")
    reasons = {
        rule: f"{rule} is handled outside Terraform for this test bucket" for rule in ("S3-4", "S3-1", "S3-3", "S3-2")
    }
    for rule, reason in reasons.items():
        suppress(raw, rule, reason)
    config = written(stack)
    recorded = config["resource"]["aws_s3_bucket"]["raw"]["//"][NOTES]
    assert list(recorded) == ["S3-1", "S3-2", "S3-3", "S3-4"]
    assert recorded == reasons


def test_an_unsuppressed_violation_still_fails_the_synth() -> None:
    app = cdktf.Testing.app()
    stack = tagged_stack(app)
    raw = aws.s3_bucket.S3Bucket(stack, "raw", bucket="raw-bucket")
    suppress(raw, "S3-3", VERSIONING_REASON)
    with pytest.raises(Exception, match=r"\[tiny/raw\] S3-1") as caught:
        written(stack)
    report = check_failure_report(caught.value)
    assert report is not None
    assert [line.split(":", 1)[0].strip() for line in report.splitlines()[1:]] == [
        "[tiny/raw] S3-1",
        "[tiny/raw] S3-2",
        "[tiny/raw] S3-4",
    ]
    # Only the silenced finding is left out of the report, and the failed stack is not left on disk.
    assert "S3-3" not in report
    assert not (Path(app.outdir) / "stacks" / "tiny" / "cdk.tf.json").exists()


# --- the real environments ------------------------------------------------------------------------


def _access_log_reasons() -> tuple[dict[str, str], dict[str, str]]:
    """The suppressions of an SSE-S3 access-log SecureBucket that receives load balancer logs, as the construct
    registers them: the bucket's own, and its policy's."""
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "reason")
    logs = SecureBucket(
        stack, "logs", SecureBucketProps(bucket_name="logs-bucket", kms_key=None, log_delivery_source_account="1")
    )
    logs.allow_load_balancer_logs("load-balancers")
    return suppressions_of(logs), suppressions_of(logs.policy)


@pytest.mark.parametrize(("env", "access_logs"), [("dev", False), ("staging", True), ("prod", True)])
def test_the_access_log_bucket_records_its_s3_2_and_iam_3_exemptions(stacks, env, access_logs) -> None:
    stack = stacks[env]
    notes = _notes(stack)
    if not access_logs:
        # No access-log bucket in dev, and nothing else is exempt from any rule.
        assert notes == {}
        return
    by_path: dict[str, dict[str, str]] = {}
    for where, recorded in notes.items():
        kind, name = where.split(".", 1)
        by_path[stack["resource"][kind][name]["//"]["metadata"]["path"]] = recorded
    bucket_reasons, policy_reasons = _access_log_reasons()
    # The SSE-S3 bucket is exempt from S3-2; its policy, which lets ELB deliver the load balancers' logs without a
    # source condition (ELB documents none), from IAM-3. Each note sits on the resource where its rule fired, and
    # nothing else of the environment is exempt from anything.
    # A serving standby's replica logs to an access-log bucket of its own region (docs/disaster-recovery.md).
    standby = {f"{env}/platform/secondary/replica-logs/bucket": {"S3-2": bucket_reasons["S3-2"]}}
    assert by_path == {
        f"{env}/platform/storage/access-logs/bucket": {"S3-2": bucket_reasons["S3-2"]},
        f"{env}/platform/storage/access-logs/policy": {"IAM-3": policy_reasons["IAM-3"]},
        **(standby if MATRIX[env].failover is not None else {}),
    }
    (bucket_address,) = [a for a in notes if a.startswith("aws_s3_bucket.platform_storage_")]
    assert bucket_address.startswith("aws_s3_bucket.platform_storage_access-logs_bucket_")
    (policy_address,) = [a for a in notes if a.startswith("aws_s3_bucket_policy.")]
    assert policy_address.startswith("aws_s3_bucket_policy.platform_storage_access-logs_policy_")
    assert "S3 server access logging delivers only to buckets encrypted with SSE-S3" in bucket_reasons["S3-2"]
    assert "Elastic Load Balancing's log delivery documents no aws:SourceAccount" in policy_reasons["IAM-3"]
    # The IAM-3 exemption is the policy's alone: the bucket under the same construct is not exempt from it.
    assert "IAM-3" not in bucket_reasons
