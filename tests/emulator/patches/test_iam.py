"""The IAM patches through boto3: AWS managed policies, and policy conditions in bucket policies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator

pytestmark = pytest.mark.emulator

MANAGED_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
SAGEMAKER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def test_aws_managed_policies_are_loaded(aws: Emulator) -> None:
    iam = aws.client("iam")
    iam.create_role(RoleName="emulator-test", AssumeRolePolicyDocument=json.dumps(SAGEMAKER_TRUST))
    iam.attach_role_policy(RoleName="emulator-test", PolicyArn=MANAGED_POLICY_ARN)
    attached = iam.list_attached_role_policies(RoleName="emulator-test")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [MANAGED_POLICY_ARN]


def test_bucket_policy_conditions_are_evaluated(aws: Emulator) -> None:
    s3 = aws.client("s3")

    def bucket_with_deny(name: str, condition: dict[str, Any] | None) -> None:
        s3.create_bucket(Bucket=name)
        statement = {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        }
        if condition is not None:
            statement["Condition"] = condition
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))

    # A TLS-only policy denies nothing to a client of the emulator, which stands in for HTTPS.
    bucket_with_deny("tls-only", {"Bool": {"aws:SecureTransport": "false"}})
    s3.put_object(Bucket="tls-only", Key="data", Body=b"x")
    assert s3.get_object(Bucket="tls-only", Key="data")["Body"].read() == b"x"
    deleted = s3.delete_objects(Bucket="tls-only", Delete={"Objects": [{"Key": "data"}]})
    assert [d["Key"] for d in deleted["Deleted"]] == ["data"] and "Errors" not in deleted

    # A condition that holds, and no condition at all, still deny.
    for name, condition in (("deny-over-tls", {"Bool": {"aws:SecureTransport": "true"}}), ("deny-all", None)):
        bucket_with_deny(name, condition)
        refused = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "data"}]})
        assert [e["Code"] for e in refused["Errors"]] == ["AccessDenied"]


def test_conditions_on_keys_absent_from_the_request_follow_iam(aws: Emulator) -> None:
    # The state bucket's policy: deny uploads that ask for another encryption, only when they ask (Null).
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="own-key-only")
    header = "s3:x-amz-server-side-encryption"
    guarded = {"StringNotEquals": {header: "aws:kms"}, "Null": {header: "false"}}
    statement = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::own-key-only/*",
        "Condition": guarded,
    }
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    s3.put_bucket_policy(Bucket="own-key-only", Policy=json.dumps(policy))
    s3.put_object(Bucket="own-key-only", Key="state", Body=b"x")  # no header: not denied
    # Without the guard, the negated operator matches the absent header, and the same upload is denied.
    statement["Condition"] = {"StringNotEquals": {header: "aws:kms"}}
    s3.put_bucket_policy(Bucket="own-key-only", Policy=json.dumps(policy))
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="own-key-only", Key="state", Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize(
    ("operator", "expected", "actual", "holds"),
    [
        ("StringEquals", "a", None, False),
        ("StringNotEquals", "a", None, True),
        ("StringNotEquals", ["a", "b"], "b", False),
        ("StringNotEquals", ["a", "b"], "c", True),
        ("StringEqualsIfExists", "a", None, True),
        ("StringEqualsIfExists", "a", "b", False),
        ("StringLike", "ml-platform/*", "ml-platform/dev/x", True),
        ("ArnNotLike", "arn:aws:iam::*:role/x-*", "arn:aws:iam::1:role/x-y", False),
        ("Null", "false", None, False),
        ("Null", "true", None, True),
        ("Bool", "false", "true", False),
    ],
)
def test_one_condition_is_evaluated_as_iam_does(operator: str, expected: Any, actual: str | None, holds: bool) -> None:
    from emulator.patches.iam import condition_holds

    assert condition_holds(operator, expected, actual) is holds
