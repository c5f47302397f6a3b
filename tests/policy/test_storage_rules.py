"""S3-1 .. S3-4 (the bucket baseline) and KMS-1 (key rotation) on hand-written input (PROT-1: test_protection_rules)."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.policy.rules import (
    BucketEncryptedWithKms,
    BucketPublicAccessBlocked,
    BucketTlsOnly,
    BucketVersioned,
    KmsKeyRotation,
)

from tests.policy.cases import check, check_one, document, stack_config

# --- S3-1 .. S3-4 ---------------------------------------------------------------------------------

_REF = "${aws_s3_bucket.b.id}"


def _deny_without_tls(action: str) -> str:
    """A bucket policy denying ``action`` to everyone over plain HTTP."""
    return document(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": action,
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def _bucket_stack(**changes: dict[str, Any] | None) -> dict[str, Any]:
    """A compliant bucket ``b`` with its companions; a change replaces (or with None removes) one companion."""
    companions: dict[str, dict[str, Any] | None] = {
        "aws_s3_bucket_public_access_block": {
            "bucket": _REF,
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
        "aws_s3_bucket_server_side_encryption_configuration": {
            "bucket": _REF,
            "rule": [
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": "${aws_kms_key.k.arn}",
                    }
                }
            ],
        },
        "aws_s3_bucket_versioning": {"bucket": _REF, "versioning_configuration": {"status": "Enabled"}},
        "aws_s3_bucket_policy": {
            "bucket": _REF,
            "policy": _deny_without_tls("s3:*"),
        },
    }
    companions.update(changes)
    resources: dict[str, dict[str, Any]] = {"aws_s3_bucket": {"b": {"bucket": "data-bucket"}}}
    for resource_type, config in companions.items():
        if config is not None:
            resources[resource_type] = {"c": config}
    return stack_config(resources)


S3_RULES = (BucketPublicAccessBlocked(), BucketEncryptedWithKms(), BucketVersioned(), BucketTlsOnly())


def test_s3_rules_pass_a_fully_configured_bucket_matched_by_reference_or_name() -> None:
    for rule in S3_RULES:
        assert check(rule, _bucket_stack(), "aws_s3_bucket", "b") == []
    by_name = _bucket_stack(
        aws_s3_bucket_versioning={"bucket": "data-bucket", "versioning_configuration": {"status": "Enabled"}}
    )
    assert check(BucketVersioned(), by_name, "aws_s3_bucket", "b") == []


@pytest.mark.parametrize(
    ("rule", "change", "message"),
    [
        (BucketPublicAccessBlocked(), {"aws_s3_bucket_public_access_block": None}, "no aws_s3_bucket_public_access"),
        (
            BucketPublicAccessBlocked(),
            {
                "aws_s3_bucket_public_access_block": {
                    "bucket": _REF,
                    "block_public_acls": True,
                    "block_public_policy": False,
                    "ignore_public_acls": True,
                }
            },
            "leaves ['block_public_policy', 'restrict_public_buckets'] off",
        ),
        (
            BucketEncryptedWithKms(),
            {
                "aws_s3_bucket_server_side_encryption_configuration": {
                    "bucket": _REF,
                    "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
                }
            },
            "not encrypted with SSE-KMS",
        ),
        (
            BucketEncryptedWithKms(),
            {
                "aws_s3_bucket_server_side_encryption_configuration": {
                    "bucket": _REF,
                    "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
                }
            },
            "not encrypted with SSE-KMS and a customer-managed key",
        ),
        (BucketEncryptedWithKms(), {"aws_s3_bucket_server_side_encryption_configuration": None}, "no server-side"),
        (
            BucketVersioned(),
            {"aws_s3_bucket_versioning": {"bucket": _REF, "versioning_configuration": {"status": "Suspended"}}},
            "does not have versioning Enabled",
        ),
        (
            BucketVersioned(),
            # Versioning of another bucket does not count for this one.
            {
                "aws_s3_bucket_versioning": {
                    "bucket": "${aws_s3_bucket.other.id}",
                    "versioning_configuration": {"status": "Enabled"},
                }
            },
            "does not have versioning Enabled",
        ),
        (BucketTlsOnly(), {"aws_s3_bucket_policy": None}, "no bucket policy denying aws:SecureTransport"),
        (
            BucketTlsOnly(),
            {
                "aws_s3_bucket_policy": {
                    "bucket": _REF,
                    # Denying one action without TLS leaves the others open.
                    "policy": _deny_without_tls("s3:PutObject"),
                }
            },
            "no bucket policy denying aws:SecureTransport",
        ),
    ],
)
def test_s3_rules_flag_missing_or_weak_companions(rule, change, message) -> None:
    (problem,) = check(rule, _bucket_stack(**change), "aws_s3_bucket", "b")
    assert problem.startswith("aws_s3_bucket.b ") and message in problem
    # Every other S3 rule still passes: each rule looks at its own companion only.
    for other in S3_RULES:
        if other.id != rule.id:
            assert check(other, _bucket_stack(**change), "aws_s3_bucket", "b") == []


# --- KMS-1 ----------------------------------------------------------------------------------------


def test_kms1_requires_rotation_of_symmetric_keys_only() -> None:
    rule = KmsKeyRotation()
    assert check_one(rule, "aws_kms_key", {"enable_key_rotation": True}) == []
    assert check_one(rule, "aws_kms_key", {"customer_master_key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY"}) == []
    assert check_one(rule, "aws_kms_key", {}) == ["aws_kms_key.r does not enable key rotation"]
    symmetric = {"enable_key_rotation": False, "customer_master_key_spec": "SYMMETRIC_DEFAULT"}
    assert check_one(rule, "aws_kms_key", symmetric) == ["aws_kms_key.r does not enable key rotation"]
