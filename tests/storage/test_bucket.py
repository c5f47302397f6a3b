"""SecureBucket: name rules, the key requirement, how its lifecycle settings reach the bucket, its grants, and
the access-log bucket's delivery grants (S3 server access logs, load balancer access logs)."""

from __future__ import annotations

import re

import pytest
from constructs.core.bindings import aws
from constructs.core.checks import suppressions_of, synth_resources
from constructs.core.errors import ConfigurationError
from constructs.core.iam import grant
from constructs.policy.resource_policies import ServicePrincipalsBoundToSource
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


# --- allow_load_balancer_logs: ELB access-log delivery to the access-log bucket ----------------------------------

ACCOUNT = "123456789012"
ELB_REASON_START = "Elastic Load Balancing's log delivery documents no aws:SourceAccount or aws:SourceArn key"


def _iam_match(pattern: str, key: str) -> bool:
    """IAM's match of a Resource with wildcards: '*' is any run of characters ('/' included), '?' one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, key) is not None


def test_load_balancers_may_deliver_logs_only_under_the_prefix_and_this_accounts_awslogs() -> None:
    tiny = TinyStack()
    logs = SecureBucket(
        tiny.stack,
        "logs",
        SecureBucketProps(bucket_name="logs-b", kms_key=None, log_delivery_source_account=ACCOUNT),
    )
    logs.allow_load_balancer_logs("load-balancers")
    config = tiny.synth_with_paths()
    statements = policy(only(config, "aws_s3_bucket_policy", "logs/policy")["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == ["DenyInsecureTransport", "LoadBalancerAccessLogDelivery"]
    arn = ref(config, "aws_s3_bucket", "logs/bucket", "arn")
    delivery = statements[1]
    assert delivery == {
        "Sid": "LoadBalancerAccessLogDelivery",
        "Effect": "Allow",
        # The log delivery principal of ELB's current bucket policy (not a regional ELB account).
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{arn}/load-balancers/*/AWSLogs/{ACCOUNT}/*",
    }
    key_pattern = delivery["Resource"].removeprefix(f"{arn}/")
    # Where ELB writes for a load balancer logging under load-balancers/model-chat (the test file it writes when
    # logging is turned on, and a log file); nothing of another account, nothing outside the prefix.
    written = f"load-balancers/model-chat/AWSLogs/{ACCOUNT}"
    assert _iam_match(key_pattern, f"{written}/ELBAccessLogTestFile")
    assert _iam_match(key_pattern, f"{written}/elasticloadbalancing/us-east-1/2026/01/15/a_app.log.gz")
    assert not _iam_match(key_pattern, "load-balancers/model-chat/AWSLogs/999999999999/x.log.gz")
    assert not _iam_match(key_pattern, f"data-b/AWSLogs/{ACCOUNT}/x.log.gz")
    assert not _iam_match(key_pattern, f"load-balancers/AWSLogs/{ACCOUNT}-x/y")


def test_load_balancer_logs_join_the_server_access_log_delivery() -> None:
    tiny = TinyStack()
    logs = _log_bucket(tiny)
    SecureBucket(tiny.stack, "one", SecureBucketProps(bucket_name="one-b", kms_key=tiny.key, access_log_bucket=logs))
    logs.allow_load_balancer_logs("lb")
    config = tiny.synth_with_paths()
    statements = policy(only(config, "aws_s3_bucket_policy", "logs/policy")["policy"])["Statement"]
    # Granting ELB keeps what S3 server access logging had (the policy is rewritten, not replaced).
    assert [s["Sid"] for s in statements] == [
        "DenyInsecureTransport",
        "S3ServerAccessLogDelivery",
        "LoadBalancerAccessLogDelivery",
    ]
    arn = ref(config, "aws_s3_bucket", "logs/bucket", "arn")
    assert statements[2]["Resource"] == f"{arn}/lb/*/AWSLogs/123456789012/*"


def test_load_balancer_logs_are_refused_on_a_kms_bucket_naming_the_field() -> None:
    tiny = TinyStack("wiring")
    data = SecureBucket(tiny.stack, "data", SecureBucketProps(bucket_name="data-b", kms_key=tiny.key))
    with pytest.raises(ConfigurationError) as caught:
        data.allow_load_balancer_logs("load-balancers")
    assert caught.value.where == "wiring/data"
    assert "an access-log bucket" in caught.value.allowed and "SSE-S3" in caught.value.allowed
    # Nothing was granted on the way out.
    (statement,) = policy(only(tiny.synth_with_paths(), "aws_s3_bucket_policy", "data/policy")["policy"])["Statement"]
    assert statement["Sid"] == "DenyInsecureTransport"
    # What makes the bucket unfit is its key: the error names that field of its props, as the constructor does
    # ('load balancer access logs' is no field anyone could look up or change).
    assert caught.value.field == "kms_key"


def test_the_load_balancer_grant_is_exempt_from_iam_3_on_the_bucket_policy_only_with_a_reason() -> None:
    tiny = TinyStack()
    logs = SecureBucket(
        tiny.stack, "logs", SecureBucketProps(bucket_name="logs-b", kms_key=None, log_delivery_source_account=ACCOUNT)
    )
    plain = _log_bucket_named(tiny, "plain")
    logs.allow_load_balancer_logs("load-balancers")
    found = {resource.path: (resource, suppressed) for resource, suppressed in synth_resources(tiny.stack)}
    log_policy, suppressed = found["tiny/logs/policy"]
    # The exemption silences a real finding: the statement has no source condition (ELB documents none).
    (finding,) = ServicePrincipalsBoundToSource().check(log_policy)
    assert "LoadBalancerAccessLogDelivery" in finding
    assert suppressed["IAM-3"] == suppressions_of(logs.policy)["IAM-3"]
    assert suppressed["IAM-3"].startswith(ELB_REASON_START)
    assert "AWSLogs/<this account>/" in suppressed["IAM-3"]
    # Only the policy is exempt: the bucket itself, and a log bucket without load balancer logs, are not.
    assert "IAM-3" not in found["tiny/logs/bucket"][1]
    assert "IAM-3" not in suppressions_of(logs)
    assert "IAM-3" not in suppressions_of(plain.policy)
    assert ServicePrincipalsBoundToSource().check(found["tiny/plain/policy"][0]) == []


def _log_bucket_named(tiny: TinyStack, id: str) -> SecureBucket:
    return SecureBucket(
        tiny.stack, id, SecureBucketProps(bucket_name=f"{id}-b", kms_key=None, log_delivery_source_account=ACCOUNT)
    )
