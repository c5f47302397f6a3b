"""SecureBucket and MlStorage: security baseline of every bucket, lifecycle, protection, grants."""

from __future__ import annotations

import json
import re

import cdktf
import pytest
from constructs.ml_storage import MlStorage, MlStorageProps, StorageSettings
from constructs.platform_keys import PlatformKeys, PlatformKeysProps
from constructs.provider_bindings import aws
from constructs.secure_bucket import SecureBucket, SecureBucketProps
from constructs.validation import ConfigurationError

from tests.conftest import ENVIRONMENTS, policy, resources

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
        log_sse = _by_bucket(stacks[env], "aws_s3_bucket_server_side_encryption_configuration")["access-logs"]
        # S3 server access logging cannot deliver into SSE-KMS buckets.
        assert log_sse["rule"][0]["apply_server_side_encryption_by_default"] == {"sse_algorithm": "AES256"}
        log_policy = policy(_by_bucket(stacks[env], "aws_s3_bucket_policy")["access-logs"]["policy"])
        (delivery,) = [s for s in log_policy["Statement"] if s["Sid"] == "S3ServerAccessLogDelivery"]
        assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
        assert delivery["Action"] == "s3:PutObject"
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


def _storage_stack(**settings) -> tuple[cdktf.TerraformStack, MlStorage, object]:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "store")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    keys = PlatformKeys(
        stack, "keys", PlatformKeysProps(name_prefix="t", account_id="123456789012", region="us-east-1")
    )
    storage = MlStorage(
        stack,
        "storage",
        MlStorageProps(
            name_prefix="acme-dev", account_id="123456789012", data_key=keys.data, settings=StorageSettings(**settings)
        ),
    )
    role = aws.iam_role.IamRole(stack, "trainer", name="trainer", assume_role_policy="{}")
    return stack, storage, role


def test_grant_read_writes_exact_least_privilege_policy() -> None:
    stack, storage, role = _storage_stack()
    storage.training_data.grant_read(role)
    config = json.loads(cdktf.Testing.synth(stack))
    (grant,) = config["resource"]["aws_iam_role_policy"].values()
    assert grant["name"] == "read-training-data"
    assert grant["role"] == "${aws_iam_role.trainer.name}"
    (bucket_name,) = [n for n in config["resource"]["aws_s3_bucket"] if n.startswith("storage_training-data_bucket_")]
    (key_name,) = [n for n in config["resource"]["aws_kms_key"] if n.startswith("keys_data_")]
    bucket = f"${{aws_s3_bucket.{bucket_name}.arn}}"
    key = f"${{aws_kms_key.{key_name}.arn}}"
    assert json.loads(grant["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
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
                "Resource": key,
                "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            },
        ],
    }


def test_grant_read_write_on_a_prefix_is_scoped_to_it() -> None:
    stack, storage, role = _storage_stack()
    storage.checkpoints.grant_read_write(role, prefix="checkpoints/cluster-a/")
    config = json.loads(cdktf.Testing.synth(stack))
    (grant,) = config["resource"]["aws_iam_role_policy"].values()
    assert grant["name"] == "read-write-checkpoints"
    statements = {s["Sid"]: s for s in json.loads(grant["policy"])["Statement"]}
    assert statements["CheckpointsListBucket"]["Condition"] == {
        "StringLike": {"s3:prefix": ["checkpoints/cluster-a/*"]}
    }
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
    stack, storage, role = _storage_stack()
    storage.training_data.grant_read(role)
    storage.model_artifacts.grant_read(role)
    names = sorted(
        c["name"] for c in json.loads(cdktf.Testing.synth(stack))["resource"]["aws_iam_role_policy"].values()
    )
    assert names == ["read-model-artifacts", "read-training-data"]


@pytest.mark.parametrize(
    "name",
    [
        "ab",
        "Upper-Case-Bucket",
        "bucket_with_underscore",
        "-leading-dash",
        "a" * 64,
        "192.168.1.10",
        "two..dots",
        "xn--punycode",
    ],
)
def test_invalid_bucket_names_are_rejected(name) -> None:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "bad")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    with pytest.raises(ConfigurationError, match=r"bad/b: field 'bucket_name'.*allowed"):
        SecureBucket(stack, "b", SecureBucketProps(bucket_name=name, kms_key=None, log_delivery_source_account="1"))


def test_account_token_counts_as_twelve_characters_in_the_name_check() -> None:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "tok")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    account = aws.data_aws_caller_identity.DataAwsCallerIdentity(stack, "id").account_id
    # 51 + 12 = 63 characters: allowed; one more is not.
    SecureBucket(
        stack,
        "ok",
        SecureBucketProps(bucket_name="b" * 50 + "-" + account, kms_key=None, log_delivery_source_account="1"),
    )
    with pytest.raises(ConfigurationError, match="bucket_name"):
        SecureBucket(
            stack,
            "long",
            SecureBucketProps(bucket_name="b" * 51 + "-" + account, kms_key=None, log_delivery_source_account="1"),
        )


def test_a_bucket_needs_a_key_unless_it_is_a_log_bucket() -> None:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "nokey")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    with pytest.raises(ConfigurationError, match=r"field 'kms_key'.*only an access-log bucket"):
        SecureBucket(stack, "b", SecureBucketProps(bucket_name="some-bucket", kms_key=None))


def test_protected_bucket_cannot_be_force_destroyed() -> None:
    with pytest.raises(ConfigurationError, match="StorageSettings: field 'force_destroy'"):
        StorageSettings(force_destroy=True, prevent_destroy=True)
