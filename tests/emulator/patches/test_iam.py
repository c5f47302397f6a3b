"""The IAM patches through boto3: AWS managed policies, and policy conditions in bucket policies."""

from __future__ import annotations

import json
from typing import Any

import pytest

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
