"""MlStorage: the data buckets of every environment, their protection, access logs, lifecycle and grants."""

from __future__ import annotations

import json
import re

import pytest
from constructs.core.bindings import aws
from constructs.storage.ml_storage import MlStorage, MlStorageProps
from constructs.storage.settings import StorageSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, arn_parts, doc, policy, ref, resources

DATA_BUCKETS = ("training-data", "model-artifacts", "checkpoints", "mlflow-artifacts")


def _by_bucket(stack: dict, resource_type: str) -> dict[str, dict]:
    """Resources of a bucket sub-resource type keyed by the bucket's purpose (path segment)."""
    found = {}
    for config in resources(stack, resource_type).values():
        path = config["//"]["metadata"]["path"].split("/")
        if "storage" in path:
            found[path[path.index("storage") + 1]] = config
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_data_buckets_are_private_encrypted_versioned_and_tls_only(stacks, env) -> None:
    stack = stacks[env]
    buckets = _by_bucket(stack, "aws_s3_bucket")
    assert set(DATA_BUCKETS) <= set(buckets)
    for purpose in DATA_BUCKETS:
        assert re.fullmatch(
            rf"mlp-{env}-{purpose}-\$\{{data\.aws_caller_identity\.platform_account_\w+\.account_id\}}",
            buckets[purpose]["bucket"],
        )
    pabs = _by_bucket(stack, "aws_s3_bucket_public_access_block")
    sse = _by_bucket(stack, "aws_s3_bucket_server_side_encryption_configuration")
    versioning = _by_bucket(stack, "aws_s3_bucket_versioning")
    ownership = _by_bucket(stack, "aws_s3_bucket_ownership_controls")
    policies = _by_bucket(stack, "aws_s3_bucket_policy")
    for purpose in DATA_BUCKETS:
        flags = pabs[purpose]
        assert all(
            flags[f] is True
            for f in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
        )
        (rule,) = sse[purpose]["rule"]
        assert rule["bucket_key_enabled"] is True
        assert rule["apply_server_side_encryption_by_default"]["sse_algorithm"] == "aws:kms"
        assert rule["apply_server_side_encryption_by_default"]["kms_master_key_id"].startswith(
            "${aws_kms_key.platform_keys_data_"
        )
        assert versioning[purpose]["versioning_configuration"]["status"] == "Enabled"
        assert ownership[purpose]["rule"]["object_ownership"] == "BucketOwnerEnforced"
        (deny,) = policy(policies[purpose]["policy"])["Statement"]
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert len(deny["Resource"]) == 2 and deny["Resource"][1].endswith("/*")


@pytest.mark.parametrize(
    ("env", "force_destroy", "prevent_destroy", "logging"),
    [("dev", True, False, False), ("staging", False, False, True), ("prod", False, True, True)],
)
def test_protection_and_access_logging_follow_the_matrix(stacks, env, force_destroy, prevent_destroy, logging) -> None:
    buckets = _by_bucket(stacks[env], "aws_s3_bucket")
    for purpose in DATA_BUCKETS:
        assert buckets[purpose]["force_destroy"] is force_destroy
        assert buckets[purpose].get("lifecycle", {}).get("prevent_destroy", False) is prevent_destroy
    logs = _by_bucket(stacks[env], "aws_s3_bucket_logging")
    if logging:
        assert set(logs) == set(DATA_BUCKETS)
        assert all(
            cfg["target_bucket"].startswith("${aws_s3_bucket.platform_storage_access-logs_bucket_")
            for cfg in logs.values()
        )
        # The log bucket is protected like the data it logs.
        assert buckets["access-logs"]["force_destroy"] is force_destroy
        assert buckets["access-logs"].get("lifecycle", {}).get("prevent_destroy", False) is prevent_destroy
        log_sse = _by_bucket(stacks[env], "aws_s3_bucket_server_side_encryption_configuration")["access-logs"]
        # S3 server access logging cannot deliver into SSE-KMS buckets.
        assert log_sse["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
        log_policy = policy(_by_bucket(stacks[env], "aws_s3_bucket_policy")["access-logs"]["policy"])
        (delivery,) = [s for s in log_policy["Statement"] if s["Sid"] == "S3ServerAccessLogDelivery"]
        assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert delivery["Action"] == "s3:PutObject"
        # The logging service writes only for this account's four data buckets (AWS's confused-deputy guard).
        assert delivery["Condition"] == {
            "StringEquals": {"aws:SourceAccount": arn_parts(stacks[env])[2]},
            "ArnLike": {
                "aws:SourceArn": [ref(stacks[env], "aws_s3_bucket", f"{p}/bucket", "arn") for p in DATA_BUCKETS]
            },
        }
    else:
        assert logs == {} and "access-logs" not in _by_bucket(stacks[env], "aws_s3_bucket")


@pytest.mark.parametrize(
    ("env", "checkpoint_days", "retention"), [("dev", 7, 31), ("staging", 14, 60), ("prod", 30, 90)]
)
def test_lifecycle_rules(stacks, env, checkpoint_days, retention) -> None:
    lifecycles = _by_bucket(stacks[env], "aws_s3_bucket_lifecycle_configuration")
    for purpose in DATA_BUCKETS:
        rules = {rule["id"]: rule for rule in lifecycles[purpose]["rule"]}
        assert rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"] == [
            {"days_after_initiation": 7}
        ]
        if retention >= 60:
            old = rules["tier-then-expire-old-versions"]
            assert old["noncurrent_version_transition"] == [{"noncurrent_days": 30, "storage_class": "STANDARD_IA"}]
        else:
            # Tiering a version deleted a day later would pay STANDARD_IA's 30-day minimum for nothing.
            old = rules["expire-old-versions"]
            assert "noncurrent_version_transition" not in old
        assert old["noncurrent_version_expiration"] == [{"noncurrent_days": retention}]
        if purpose == "checkpoints":
            assert rules["expire-current-objects"]["expiration"] == [{"days": checkpoint_days}]
        else:
            assert "expire-current-objects" not in rules


@pytest.mark.parametrize(("env", "retention"), [("staging", 60), ("prod", 90)])
def test_access_logs_expire_after_the_backup_retention(stacks, env, retention) -> None:
    rules = {
        r["id"]: r for r in _by_bucket(stacks[env], "aws_s3_bucket_lifecycle_configuration")["access-logs"]["rule"]
    }
    assert rules["expire-current-objects"]["expiration"] == [{"days": retention}]


def _storage(**settings) -> tuple[TinyStack, MlStorage, object]:
    tiny = TinyStack("store")
    storage = MlStorage(
        tiny.stack,
        "storage",
        MlStorageProps(context=tiny.context, data_key=tiny.key, settings=StorageSettings(**settings)),
    )
    role = aws.iam_role.IamRole(tiny.stack, "trainer", name="trainer", assume_role_policy="{}")
    return tiny, storage, role


def _logical_name(config: dict, resource_type: str, purpose: str, part: str) -> str:
    """Logical name of ``storage/<purpose>/<part>`` (``Testing.synth`` keeps no construct paths to match)."""
    prefix = f"storage_{purpose}_{part}_"
    (name,) = [n for n in resources(config, resource_type) if n.startswith(prefix)]
    return name


def test_bucket_names_come_from_the_context() -> None:
    tiny, _, _ = _storage(access_logging=True)
    config = tiny.synth()
    buckets = resources(config, "aws_s3_bucket")
    assert sorted(b["bucket"] for b in buckets.values()) == sorted(
        f"p-test-{purpose}-123456789012" for purpose in (*DATA_BUCKETS, "access-logs")
    )
    logging = resources(config, "aws_s3_bucket_logging")
    assert {c["target_prefix"] for c in logging.values()} == {f"p-test-{p}-123456789012/" for p in DATA_BUCKETS}
    log_policy = policy(
        resources(config, "aws_s3_bucket_policy")[
            _logical_name(config, "aws_s3_bucket_policy", "access-logs", "policy")
        ]["policy"]
    )
    (delivery,) = [s for s in log_policy["Statement"] if s["Sid"] == "S3ServerAccessLogDelivery"]
    data_bucket_arns = [
        f"${{aws_s3_bucket.{_logical_name(config, 'aws_s3_bucket', purpose, 'bucket')}.arn}}"
        for purpose in DATA_BUCKETS
    ]
    assert delivery["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": data_bucket_arns},
    }


def test_without_access_logging_there_is_no_log_bucket() -> None:
    tiny, storage, _ = _storage(access_logging=False)
    config = tiny.synth()
    assert storage.access_logs is None
    assert "aws_s3_bucket_logging" not in config["resource"]
    assert len(resources(config, "aws_s3_bucket")) == len(DATA_BUCKETS)
    assert storage.data_buckets == (
        storage.training_data,
        storage.model_artifacts,
        storage.checkpoints,
        storage.mlflow_artifacts,
    )


def test_grant_read_writes_exact_least_privilege_policy() -> None:
    tiny, storage, role = _storage()
    storage.training_data.grant_read(role)
    config = tiny.synth()
    (grant,) = config["resource"]["aws_iam_role_policy"].values()
    assert grant["name"] == "read-training-data"
    assert grant["role"] == "${aws_iam_role.trainer.name}"
    bucket = f"${{aws_s3_bucket.{_logical_name(config, 'aws_s3_bucket', 'training-data', 'bucket')}.arn}}"
    assert json.loads(grant["policy"]) == doc(
        {
            "Sid": "TrainingDataListBucket",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": bucket,
        },
        {
            "Sid": "TrainingDataReadObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{bucket}/*",
        },
        {
            "Sid": "TrainingDataUseBucketKey",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": "${aws_kms_key.key.arn}",
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
        },
    )


def test_grant_read_write_on_a_prefix_is_scoped_to_it() -> None:
    tiny, storage, role = _storage()
    storage.checkpoints.grant_read_write(role, prefix="checkpoints/cluster-a/")
    config = tiny.synth()
    (grant,) = config["resource"]["aws_iam_role_policy"].values()
    assert grant["name"] == "read-write-checkpoints"
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert statements["CheckpointsListBucket"]["Condition"] == {
        "StringLike": {"s3:prefix": ["checkpoints/cluster-a/*"]}
    }
    # GetBucketLocation requests carry no s3:prefix, so it is granted without the prefix condition.
    assert statements["CheckpointsLocateBucket"]["Action"] == "s3:GetBucketLocation"
    assert "Condition" not in statements["CheckpointsLocateBucket"]
    assert statements["CheckpointsReadObjects"]["Resource"].endswith("/checkpoints/cluster-a/*")
    assert statements["CheckpointsWriteObjects"]["Action"] == [
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    ]
    assert statements["CheckpointsWriteObjects"]["Resource"].endswith("/checkpoints/cluster-a/*")
    assert statements["CheckpointsUseBucketKey"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    for statement in statements.values():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any(a == "*" or a.endswith(":*") for a in actions)
        assert statement["Resource"] != "*"


def test_two_buckets_granted_to_one_role_get_distinct_policy_names() -> None:
    tiny, storage, role = _storage()
    storage.training_data.grant_read(role)
    storage.model_artifacts.grant_read(role)
    names = sorted(c["name"] for c in tiny.synth()["resource"]["aws_iam_role_policy"].values())
    assert names == ["read-model-artifacts", "read-training-data"]
