"""SecureBucket: name rules, the key requirement, and how its lifecycle settings reach the bucket."""

from __future__ import annotations

import pytest
from constructs.core.bindings import aws
from constructs.core.checks import suppressions_of
from constructs.core.errors import ConfigurationError
from constructs.core.iam import grant
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.settings import BUCKET_NAME_ALLOWED, BucketLifecycle

from tests.support.stacks import TinyStack
from tests.support.synth_json import only, policy, ref, resources


# One name per kind of S3 naming rule; is_bucket_name's own tests (test_settings.py) cover each rule.
@pytest.mark.parametrize("name", ["Upper-Case-Bucket", "a" * 64, "192.168.1.10", "two..dots", "xn--punycode"])
def test_invalid_bucket_names_are_rejected(name) -> None:
    tiny = TinyStack("bad")
    with pytest.raises(
        ConfigurationError, match=r"^bad/b: field 'bucket_name' = .* allowed: an S3 bucket name"
    ) as caught:
        SecureBucket(tiny.stack, "b", SecureBucketProps(bucket_name=name, kms_key=tiny.key))
    assert caught.value.allowed == BUCKET_NAME_ALLOWED


def test_account_token_counts_as_twelve_characters_in_the_name_check() -> None:
    tiny = TinyStack("tok")
    account = aws.data_aws_caller_identity.DataAwsCallerIdentity(tiny.stack, "id").account_id
    # 51 + 12 = 63 characters: allowed; one more is not.
    SecureBucket(tiny.stack, "ok", SecureBucketProps(bucket_name="b" * 50 + "-" + account, kms_key=tiny.key))
    with pytest.raises(ConfigurationError, match=r"tok/long: field 'bucket_name'"):
        SecureBucket(tiny.stack, "long", SecureBucketProps(bucket_name="b" * 51 + "-" + account, kms_key=tiny.key))


def test_a_bucket_needs_a_key_unless_it_is_a_log_bucket() -> None:
    tiny = TinyStack("nokey")
    with pytest.raises(ConfigurationError, match=r"nokey/b: field 'kms_key'.*only an access-log bucket"):
        SecureBucket(tiny.stack, "b", SecureBucketProps(bucket_name="some-bucket", kms_key=None))


def _log_bucket(tiny: TinyStack) -> SecureBucket:
    return SecureBucket(
        tiny.stack,
        "logs",
        SecureBucketProps(bucket_name="logs-b", kms_key=None, log_delivery_source_account="123456789012"),
    )


def test_the_access_log_bucket_admits_the_logging_service_only_for_its_source_buckets() -> None:
    tiny = TinyStack()
    logs = _log_bucket(tiny)
    for name in ("one", "two"):
        SecureBucket(
            tiny.stack, name, SecureBucketProps(bucket_name=f"{name}-b", kms_key=tiny.key, access_log_bucket=logs)
        )
    config = tiny.synth_with_paths()
    statements = policy(only(config, "aws_s3_bucket_policy", "logs/policy")["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport", "S3ServerAccessLogDelivery"]
    assert statements[1] == {
        "Sid": "S3ServerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": ref(config, "aws_s3_bucket", "logs/bucket", "arn") + "/*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {
                "aws:SourceArn": [ref(config, "aws_s3_bucket", f"{name}/bucket", "arn") for name in ("one", "two")]
            },
        },
    }
    # The source buckets' own policies admit no service.
    for name in ("one", "two"):
        (deny,) = policy(only(config, "aws_s3_bucket_policy", f"{name}/policy")["policy"])["Statement"]
        assert deny["Effect"] == "Deny"


def test_an_access_log_bucket_without_sources_admits_no_one() -> None:
    tiny = TinyStack()
    _log_bucket(tiny)
    (log_policy,) = resources(tiny.synth(), "aws_s3_bucket_policy").values()
    assert [s["Sid"] for s in policy(log_policy["policy"])["Statement"]] == ["DenyInsecureTransport"]


def test_access_logs_go_only_to_an_access_log_bucket() -> None:
    tiny = TinyStack("wiring")
    kms_bucket = SecureBucket(tiny.stack, "data", SecureBucketProps(bucket_name="data-b", kms_key=tiny.key))
    with pytest.raises(ConfigurationError) as caught:
        SecureBucket(
            tiny.stack, "src", SecureBucketProps(bucket_name="src-b", kms_key=tiny.key, access_log_bucket=kms_bucket)
        )
    assert (caught.value.where, caught.value.field) == ("wiring/src", "access_log_bucket")
    assert caught.value.value == "wiring/data"
    assert "an access-log bucket" in caught.value.allowed


def test_only_the_sse_s3_log_bucket_carries_the_s3_2_suppression() -> None:
    tiny = TinyStack()
    logs = SecureBucket(
        tiny.stack, "logs", SecureBucketProps(bucket_name="logs-b", kms_key=None, log_delivery_source_account="1")
    )
    data = SecureBucket(tiny.stack, "data", SecureBucketProps(bucket_name="data-b", kms_key=tiny.key))
    (reason,) = suppressions_of(logs).values()
    assert set(suppressions_of(logs)) == {"S3-2"}
    assert "S3 server access logging delivers only to buckets encrypted with SSE-S3" in reason
    assert suppressions_of(data) == {}


def test_lifecycle_settings_reach_the_bucket_and_its_rules() -> None:
    tiny = TinyStack()
    lifecycle = BucketLifecycle(
        force_destroy=True,
        prevent_destroy=False,
        expire_objects_after_days=10,
        noncurrent_transition_days=45,
        noncurrent_expiration_days=200,
        abort_multipart_days=3,
    )
    SecureBucket(tiny.stack, "b", SecureBucketProps(bucket_name="some-bucket", kms_key=tiny.key, lifecycle=lifecycle))
    config = tiny.synth()
    (bucket,) = resources(config, "aws_s3_bucket").values()
    assert bucket["force_destroy"] is True and "lifecycle" not in bucket
    (configuration,) = resources(config, "aws_s3_bucket_lifecycle_configuration").values()
    rules = {rule["id"]: rule for rule in configuration["rule"]}
    assert set(rules) == {
        "abort-incomplete-multipart-uploads",
        "tier-then-expire-old-versions",
        "expire-current-objects",
    }
    assert all(rule["status"] == "Enabled" and rule["filter"] == [{"prefix": ""}] for rule in rules.values())
    assert rules["abort-incomplete-multipart-uploads"]["abort_incomplete_multipart_upload"] == [
        {"days_after_initiation": 3}
    ]
    old = rules["tier-then-expire-old-versions"]
    assert old["noncurrent_version_transition"] == [{"noncurrent_days": 45, "storage_class": "STANDARD_IA"}]
    assert old["noncurrent_version_expiration"] == [{"noncurrent_days": 200}]
    assert rules["expire-current-objects"]["expiration"] == [{"days": 10}]
    # The lifecycle configuration waits for the bucket policy (TLS-only) to be in place.
    (policy_name,) = resources(config, "aws_s3_bucket_policy")
    assert configuration["depends_on"] == [f"aws_s3_bucket_policy.{policy_name}"]


def test_default_lifecycle_protects_the_bucket_and_keeps_current_objects() -> None:
    tiny = TinyStack()
    SecureBucket(tiny.stack, "b", SecureBucketProps(bucket_name="some-bucket", kms_key=tiny.key))
    config = tiny.synth()
    (bucket,) = resources(config, "aws_s3_bucket").values()
    assert bucket["force_destroy"] is False and bucket["lifecycle"] == {"prevent_destroy": True}
    (configuration,) = resources(config, "aws_s3_bucket_lifecycle_configuration").values()
    assert [rule["id"] for rule in configuration["rule"]] == [
        "abort-incomplete-multipart-uploads",
        "tier-then-expire-old-versions",
    ]
    (tls,) = policy(next(iter(resources(config, "aws_s3_bucket_policy").values()))["policy"])["Statement"]
    assert tls["Sid"] == "DenyInsecureTransport" and tls["Principal"] == {"AWS": "*"}


# --- read_grant / read_write_grant: a bucket's grant as statements, for a policy combining several buckets ---------


def _role(tiny: TinyStack, id: str) -> aws.iam_role.IamRole:
    return aws.iam_role.IamRole(tiny.stack, id, name=id, assume_role_policy="{}")


@pytest.mark.parametrize("prefix", ["", "teams/vision/"], ids=["whole-bucket", "prefix"])
@pytest.mark.parametrize("access", ["read", "read_write"])
def test_grant_statements_are_exactly_what_the_grant_attaches(access, prefix) -> None:
    # One role gets the bucket's own grant, the other an inline policy of read_grant / read_write_grant: an IRSA
    # role combining several buckets' statements must get what each bucket would grant it alone, no more.
    tiny = TinyStack()
    bucket = SecureBucket(tiny.stack, "model-artifacts", SecureBucketProps(bucket_name="arts-b", kms_key=tiny.key))
    alone, combined = _role(tiny, "alone"), _role(tiny, "combined")
    if access == "read":
        bucket.grant_read(alone, prefix=prefix)
        statements = bucket.read_grant(prefix)
    else:
        bucket.grant_read_write(alone, prefix=prefix)
        statements = bucket.read_write_grant(prefix)
    grant(tiny.stack, "combined-policy", combined, *statements)
    config = tiny.synth()
    documents = {p["role"]: policy(p["policy"]) for p in resources(config, "aws_iam_role_policy").values()}
    assert documents["${aws_iam_role.alone.name}"] == documents["${aws_iam_role.combined.name}"]
    assert documents["${aws_iam_role.alone.name}"]["Statement"]


def test_grant_statements_carry_the_buckets_purpose_and_its_prefix_only() -> None:
    tiny = TinyStack()
    data = SecureBucket(tiny.stack, "training-data", SecureBucketProps(bucket_name="data-b", kms_key=tiny.key))
    arts = SecureBucket(tiny.stack, "model-artifacts", SecureBucketProps(bucket_name="arts-b", kms_key=tiny.key))
    role = _role(tiny, "team")
    grant(tiny.stack, "team-policy", role, *data.read_grant("teams/a/"), *arts.read_write_grant("teams/a/"))
    config = tiny.synth_with_paths()
    (document,) = (policy(p["policy"]) for p in resources(config, "aws_iam_role_policy").values())
    statements = {s["Sid"]: s for s in document["Statement"]}
    # Both buckets grant "ListBucket", "ReadObjects" ...; IAM refuses repeated Sids, hence the purpose in front.
    assert list(statements) == [
        "TrainingDataListBucket",
        "TrainingDataLocateBucket",
        "TrainingDataReadObjects",
        "TrainingDataUseBucketKey",
        "ModelArtifactsListBucket",
        "ModelArtifactsLocateBucket",
        "ModelArtifactsReadObjects",
        "ModelArtifactsWriteObjects",
        "ModelArtifactsUseBucketKey",
    ]
    for purpose, sid_prefix in (("training-data", "TrainingData"), ("model-artifacts", "ModelArtifacts")):
        arn = ref(config, "aws_s3_bucket", f"{purpose}/bucket", "arn")
        assert statements[f"{sid_prefix}ListBucket"]["Resource"] == arn
        assert statements[f"{sid_prefix}ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["teams/a/*"]}}
        assert statements[f"{sid_prefix}ReadObjects"]["Resource"] == f"{arn}/teams/a/*"
    assert statements["ModelArtifactsWriteObjects"]["Resource"] == (
        ref(config, "aws_s3_bucket", "model-artifacts/bucket", "arn") + "/teams/a/*"
    )
    # Reading the training data gives no write action on it.
    actions = {s["Sid"]: s["Action"] if isinstance(s["Action"], list) else [s["Action"]] for s in document["Statement"]}
    assert [sid for sid, granted in actions.items() if "s3:PutObject" in granted] == ["ModelArtifactsWriteObjects"]
