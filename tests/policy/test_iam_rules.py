"""IAM-1 (no wildcard actions) and IAM-2 (no broad AWS-managed policies) on compliant and non-compliant input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.policy.rules import NoAdminManagedPolicies, NoWildcardActions

from tests.policy.cases import check, check_one, document, stack_config


def _allow(*actions: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": "arn:aws:s3:::b/*", **extra}


# --- IAM-1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "attribute"),
    [
        ("aws_iam_role_policy", "policy"),
        ("aws_iam_policy", "policy"),
        ("aws_iam_role", "assume_role_policy"),
        ("aws_s3_bucket_policy", "policy"),
        ("aws_kms_key", "policy"),
        ("aws_sns_topic_policy", "policy"),
        ("aws_ecr_repository_policy", "policy"),
        ("aws_sqs_queue_policy", "policy"),
    ],
)
def test_iam1_flags_service_wildcards_in_every_policy_attribute(resource_type, attribute) -> None:
    rule = NoWildcardActions()
    ok = document(_allow("s3:GetObject", "kms:Describe*"), {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert check_one(rule, resource_type, {attribute: ok}) == []
    bad = document(_allow("s3:GetObject"), _allow("ecr:*", Sid="TooBroad"))
    assert check_one(rule, resource_type, {attribute: bad}) == [
        f"{resource_type}.r.{attribute} statement TooBroad allows ['ecr:*']"
    ]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "statement #0 allows ['*']"),
        ({"Action": "sts:*", "Principal": {"Service": "ec2.amazonaws.com"}}, "statement #0 allows ['sts:*']"),
        ({"Effect": "Allow", "Action": ["*:GetObject"], "Resource": "*"}, "statement #0 allows ['*:GetObject']"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "statement #0 allows NotAction"),
    ],
)
def test_iam1_bare_star_missing_effect_and_not_action_are_violations(statement, expected) -> None:
    (message,) = check_one(NoWildcardActions(), "aws_iam_policy", {"policy": document(statement)})
    assert message.startswith(f"aws_iam_policy.r.policy {expected}")


def test_iam1_reads_inline_policies_and_policy_document_data_sources() -> None:
    rule = NoWildcardActions()
    inline = {
        "inline_policy": [{"name": "x", "policy": document(_allow("sagemaker:*"))}],
        "assume_role_policy": document(),
    }
    assert check_one(rule, "aws_iam_role", inline) == [
        "aws_iam_role.r.inline_policy[0].policy statement #0 allows ['sagemaker:*']"
    ]
    data = {
        "aws_iam_policy_document": {
            "doc": {
                "statement": [
                    {"effect": "Deny", "actions": ["s3:*"], "resources": ["*"]},
                    {"actions": ["eks:DescribeCluster", "eks:*"], "resources": ["*"]},
                ]
            }
        }
    }
    stack = stack_config(
        {"aws_iam_role_policy": {"r": {"policy": "${data.aws_iam_policy_document.doc.json}"}}}, data=data
    )
    assert check(rule, stack, "aws_iam_role_policy", "r") == [
        "aws_iam_role_policy.r.policy statement #1 allows ['eks:*']"
    ]


def test_iam1_rejects_policies_it_cannot_read_on_policy_resources_only() -> None:
    rule = NoWildcardActions()
    unreadable = {"policy": '${jsonencode({"Statement" = []})}'}
    (message,) = check_one(rule, "aws_iam_role_policy", unreadable)
    assert "is not a literal JSON document" in message
    # JSON that is not an IAM document (an ECR lifecycle policy) and non-policy types are left alone.
    assert check_one(rule, "aws_ecr_lifecycle_policy", {"policy": json.dumps({"rules": []})}) == []
    assert check_one(rule, "aws_vpc_endpoint", unreadable) == []


def test_iam1_lambda_permissions() -> None:
    rule = NoWildcardActions()
    assert check_one(rule, "aws_lambda_permission", {"action": "lambda:InvokeFunction"}) == []
    assert check_one(rule, "aws_lambda_permission", {"action": "lambda:*"}) == [
        "aws_lambda_permission.r allows action 'lambda:*'"
    ]


# --- IAM-2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "attribute", "arn"),
    [
        ("aws_iam_role_policy_attachment", "policy_arn", "arn:aws:iam::aws:policy/AmazonS3FullAccess"),
        ("aws_iam_role_policy_attachment", "policy_arn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        (
            "aws_iam_role",
            "managed_policy_arns",
            "arn:${data.aws_partition.p.partition}:iam::aws:policy/PowerUserAccess",
        ),
        (
            "aws_iam_role_policy_attachments_exclusive",
            "policy_arns",
            "arn:aws:iam::aws:policy/service-role/AWSLambda_FullAccess",
        ),
    ],
)
def test_iam2_flags_broad_aws_managed_policies(resource_type, attribute, arn) -> None:
    value = [arn] if attribute.endswith("arns") else arn
    expected_name = arn.rsplit("/", 1)[-1]
    assert check_one(NoAdminManagedPolicies(), resource_type, {attribute: value}) == [
        f"{resource_type}.r.{attribute} attaches the AWS-managed policy {expected_name} "
        "(write a least-privilege policy)"
    ]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        # A customer-managed policy is the account's own least-privilege document, whatever its name.
        "arn:aws:iam::123456789012:policy/TeamFullAccess",
        "${aws_iam_policy.p.arn}",
    ],
)
def test_iam2_allows_narrow_and_customer_managed_policies(arn) -> None:
    assert check_one(NoAdminManagedPolicies(), "aws_iam_role_policy_attachment", {"policy_arn": arn}) == []
