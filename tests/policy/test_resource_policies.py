"""IAM-3 (service principals only on behalf of named sources) and KMS-2 (key administration by named principals,
never the whole account) on compliant and non-compliant input, and on the platform's own key policies."""

from __future__ import annotations

from typing import Any

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.policy.resource_policies import KeyAdministrationNamed, ServicePrincipalsBoundToSource
from constructs.storage.keys import KeyAdministrators, key_policy
from hypothesis import given
from hypothesis import strategies as st

from tests.policy.cases import (
    KEY_ADMIN_ROLE,
    NAMED_ADMIN_KEY_POLICY,
    check,
    check_one,
    document,
    stack_config,
    tagged_stack,
)
from tests.support.stacks import context, written

ROOT = "arn:aws:iam::123456789012:root"
ACCOUNT_TOKEN = "${data.aws_caller_identity.account.account_id}"
ROOT_TOKEN = f"arn:${{data.aws_partition.p.partition}}:iam::{ACCOUNT_TOKEN}:root"


def _service(service: str, condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": "Svc",
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::logs/*",
        **extra,
    }
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _key_statement(principal: Any, actions: Any, condition: dict[str, Any] | None = None, **extra: Any) -> dict:
    statement: dict[str, Any] = {"Sid": "K", "Effect": "Allow", "Principal": principal, "Resource": "*", **extra}
    if actions is not None:
        statement["Action"] = actions
    if condition is not None:
        statement["Condition"] = condition
    return statement


# --- IAM-3 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"aws:SourceAccount": "123456789012"}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::source-bucket"}},
        {"ArnEquals": {"AWS:SourceArn": ["arn:aws:events:us-east-1:123456789012:rule/r"]}},
        {"StringEquals": {"aws:SourceOrgID": "o-abc123"}},
        {"ForAnyValue:StringLike": {"aws:SourceOrgPaths": ["o-abc123/r-ab12/ou-ab12-11111111/*"]}},
        {"StringEquals": {"aws:SourceAccount": ACCOUNT_TOKEN}, "ArnLike": {"aws:SourceArn": "${aws_s3_bucket.b.arn}"}},
    ],
)
@pytest.mark.parametrize("resource_type", ["aws_s3_bucket_policy", "aws_sns_topic_policy", "aws_sqs_queue_policy"])
def test_iam3_passes_service_grants_bound_to_a_source(resource_type, condition) -> None:
    config = {"policy": document(_service("logging.s3.amazonaws.com", condition))}
    assert check_one(ServicePrincipalsBoundToSource(), resource_type, config) == []


@pytest.mark.parametrize(
    "condition",
    [
        None,
        # Conditions that hold when the key is missing, or that admit everyone else.
        {"StringEqualsIfExists": {"aws:SourceAccount": "123456789012"}},
        {"StringNotEquals": {"aws:SourceAccount": "111111111111"}},
        {"Null": {"aws:SourceArn": "false"}},
        {"ForAllValues:StringEquals": {"aws:SourceAccount": ["123456789012"]}},
        # A bare wildcard matches whatever the service sends.
        {"ArnLike": {"aws:SourceArn": "*"}},
        # Other keys do not say on whose behalf the service acts.
        {"Bool": {"aws:SecureTransport": "true"}},
        {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
    ],
)
def test_iam3_flags_service_grants_without_a_source(condition) -> None:
    config = {"policy": document(_service("logging.s3.amazonaws.com", condition))}
    assert check_one(ServicePrincipalsBoundToSource(), "aws_s3_bucket_policy", config) == [
        "aws_s3_bucket_policy.r.policy statement Svc lets ['logging.s3.amazonaws.com'] in without "
        "aws:SourceAccount, aws:SourceArn or aws:SourceOrgID (the confused-deputy guard)"
    ]


def test_iam3_looks_at_every_service_of_a_statement_and_every_policy_attribute() -> None:
    rule = ServicePrincipalsBoundToSource()
    several = _service("sns.amazonaws.com", None, Principal={"Service": ["sns.amazonaws.com", "s3.amazonaws.com"]})
    (message,) = check_one(rule, "aws_sns_topic", {"policy": document(several)})
    assert "lets ['sns.amazonaws.com', 's3.amazonaws.com'] in" in message
    data = {
        "aws_iam_policy_document": {
            "doc": {
                "statement": [
                    {
                        "actions": ["sqs:SendMessage"],
                        "resources": ["*"],
                        "principals": [{"type": "Service", "identifiers": ["events.amazonaws.com"]}],
                    }
                ]
            }
        }
    }
    stack = stack_config({"aws_sqs_queue_policy": {"r": {"policy": "${data.aws_iam_policy_document.doc.json}"}}}, data)
    (message,) = check(rule, stack, "aws_sqs_queue_policy", "r")
    assert message.startswith("aws_sqs_queue_policy.r.policy statement #0 lets ['events.amazonaws.com'] in")


def test_iam3_leaves_other_statements_and_trust_policies_alone() -> None:
    rule = ServicePrincipalsBoundToSource()
    deny = _service("logging.s3.amazonaws.com", None, Effect="Deny")
    account = {"Effect": "Allow", "Principal": {"AWS": ROOT}, "Action": "s3:GetObject", "Resource": "*"}
    identity = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    assert check_one(rule, "aws_s3_bucket_policy", {"policy": document(deny, account)}) == []
    assert check_one(rule, "aws_iam_role_policy", {"policy": document(identity)}) == []
    trust = document({"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"})
    assert check_one(rule, "aws_iam_role", {"assume_role_policy": trust}) == []


@pytest.mark.parametrize("resource_type", ["aws_kms_key", "aws_kms_key_policy"])
def test_iam3_accepts_an_encryption_context_binding_in_key_policies_only(resource_type) -> None:
    rule = ServicePrincipalsBoundToSource()
    logs = _key_statement(
        {"Service": "logs.us-east-1.amazonaws.com"},
        ["kms:Encrypt*", "kms:Decrypt*"],
        {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:*"}},
    )
    sns = _key_statement(
        {"Service": "events.amazonaws.com"},
        ["kms:Decrypt", "kms:GenerateDataKey*"],
        {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": "arn:aws:sns:us-east-1:123456789012:t"}},
    )
    assert check_one(rule, resource_type, {"policy": document(logs, sns)}) == []
    unbound = _key_statement({"Service": "events.amazonaws.com"}, ["kms:Decrypt", "kms:GenerateDataKey*"])
    (message,) = check_one(rule, resource_type, {"policy": document(unbound)})
    assert f"{resource_type}.r.policy statement K lets ['events.amazonaws.com'] in without" in message
    # Elsewhere an encryption context says nothing about the service's source.
    assert check_one(rule, "aws_sns_topic_policy", {"policy": document(sns)}) != []


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"principal": "events.amazonaws.com", "source_arn": "${aws_cloudwatch_event_rule.r.arn}"}, False),
        ({"principal": "lambda.alarms.cloudwatch.amazonaws.com", "source_account": ACCOUNT_TOKEN}, False),
        ({"principal": "events.amazonaws.com", "principal_org_id": "o-abc123"}, False),
        ({"principal": "123456789012"}, False),
        ({"principal": "events.amazonaws.com"}, True),
        ({"principal": "s3.amazonaws.com", "source_arn": ""}, True),
    ],
)
def test_iam3_lambda_permissions_need_a_source(config, problem) -> None:
    found = check_one(ServicePrincipalsBoundToSource(), "aws_lambda_permission", {"action": "lambda:Invoke", **config})
    expected = [f"aws_lambda_permission.r lets {config['principal']} invoke without source_arn or source_account"]
    assert found == (expected if problem else [])


# --- KMS-2 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [{"AWS": ROOT}, {"AWS": ROOT_TOKEN}, {"AWS": "123456789012"}, {"AWS": "*"}, "*"])
@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ("kms:*", ["kms:PutKeyPolicy", "kms:CreateGrant"]),
        ("*", ["kms:PutKeyPolicy", "kms:CreateGrant"]),
        (["kms:Describe*", "kms:Put*"], ["kms:PutKeyPolicy"]),
        (["kms:Create*", "kms:List*"], ["kms:CreateGrant"]),
        (["kms:putkeypolicy"], ["kms:PutKeyPolicy"]),
        (["kms:Cre?teGrant"], ["kms:CreateGrant"]),
    ],
)
def test_kms2_flags_administration_by_the_whole_account(principal, actions, expected) -> None:
    policy = document(_key_statement(principal, actions))
    (message,) = check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": policy})
    assert message.startswith(f"aws_kms_key.r.policy statement K gives {expected} to ")
    assert message.endswith("(the whole account): name key administrators instead")


def test_kms2_reads_not_action_and_policy_resources() -> None:
    rule = KeyAdministrationNamed()
    everything_but_use = _key_statement({"AWS": ROOT}, None, NotAction=["kms:Encrypt", "kms:Decrypt"])
    (message,) = check_one(rule, "aws_kms_key_policy", {"key_id": "k", "policy": document(everything_but_use)})
    assert "gives ['kms:PutKeyPolicy', 'kms:CreateGrant']" in message
    all_admin = _key_statement({"AWS": ROOT}, None, NotAction="kms:*")
    assert check_one(rule, "aws_kms_key_policy", {"key_id": "k", "policy": document(all_admin)}) == []


@pytest.mark.parametrize(
    "statement",
    [
        # Named administrators, and the account reading the key.
        _key_statement({"AWS": [KEY_ADMIN_ROLE, "${data.aws_iam_session_context.d.issuer_arn}"]}, "kms:*"),
        _key_statement({"AWS": ROOT}, ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:ListGrants"]),
        # Grants an AWS service creates for the resource it encrypts.
        _key_statement(
            {"AWS": ROOT},
            ["kms:Decrypt", "kms:CreateGrant"],
            {"StringEquals": {"kms:ViaService": "ec2.x.amazonaws.com"}},
        ),
        _key_statement({"AWS": "*"}, "kms:CreateGrant", {"Bool": {"kms:GrantIsForAWSResource": "true"}}),
        # A deny and a service principal are not the account's administration.
        _key_statement({"AWS": ROOT}, "kms:*", Effect="Deny"),
        _key_statement({"Service": "logs.amazonaws.com"}, ["kms:Encrypt*"]),
    ],
)
def test_kms2_passes_named_administrators_and_service_created_grants(statement) -> None:
    assert check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": document(statement)}) == []


@pytest.mark.parametrize(
    "condition",
    [
        {"StringEquals": {"kms:CallerAccount": "123456789012"}},
        {"Bool": {"kms:GrantIsForAWSResource": "false"}},
        {"StringEqualsIfExists": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}},
    ],
)
def test_kms2_a_condition_that_does_not_tie_the_grant_to_a_service_is_not_enough(condition) -> None:
    statement = _key_statement({"AWS": ROOT}, "kms:CreateGrant", condition)
    (message,) = check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": document(statement)})
    assert "gives ['kms:CreateGrant']" in message


def test_kms2_a_key_without_a_policy_has_the_accounts_default_unless_a_key_policy_sets_one() -> None:
    rule = KeyAdministrationNamed()
    assert check_one(rule, "aws_kms_key", {"enable_key_rotation": True}) == [
        "aws_kms_key.r has no policy, so AWS's default gives the account root kms:*"
    ]
    attached = {"aws_kms_key_policy": {"p": {"key_id": "${aws_kms_key.r.id}", "policy": NAMED_ADMIN_KEY_POLICY}}}
    assert check_one(rule, "aws_kms_key", {"enable_key_rotation": True}, **attached) == []
    other = {"aws_kms_key_policy": {"p": {"key_id": "${aws_kms_key.other.id}", "policy": NAMED_ADMIN_KEY_POLICY}}}
    assert check_one(rule, "aws_kms_key", {"enable_key_rotation": True}, **other) != []
    # Other resources with a policy are not key policies.
    account_wide = document(_key_statement({"AWS": ROOT}, "kms:*"))
    assert check_one(rule, "aws_s3_bucket_policy", {"policy": account_wide}) == []


def test_kms2_an_unreadable_key_policy_fails() -> None:
    (message,) = check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": '${jsonencode({"Statement" = []})}'})
    assert message == "aws_kms_key.r.policy cannot be read, so its administrators are unknown"


def test_the_pack_fails_the_synth_for_an_account_administered_key() -> None:
    stack = tagged_stack(cdktf.Testing.app())
    aws.kms_key.KmsKey(stack, "key", enable_key_rotation=True, policy=document(_key_statement({"AWS": ROOT}, "kms:*")))
    with pytest.raises(Exception, match=r"\[tiny/key\] KMS-2: aws_kms_key.key.policy statement K gives"):
        written(stack)


# --- properties ------------------------------------------------------------------------------------------

_ADMIN = ("kms:PutKeyPolicy", "kms:CreateGrant")


@st.composite
def _patterns_covering(draw: st.DrawFn, action: str) -> str:
    """``action`` with some of its characters replaced by IAM wildcards, in random case."""
    chars = list(action)
    for index in draw(st.lists(st.integers(0, len(chars) - 1), max_size=4)):
        chars[index] = draw(st.sampled_from(["*", "?"]))
    text = "".join(chars)
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in text)


@given(st.sampled_from(_ADMIN).flatmap(_patterns_covering), st.sampled_from([ROOT, ROOT_TOKEN, "123456789012", "*"]))
def test_any_pattern_covering_an_administration_action_is_caught_for_the_account(pattern, principal) -> None:
    statement = _key_statement({"AWS": principal}, [pattern])
    assert check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": document(statement)}) != []


@given(
    st.lists(
        st.from_regex(r"arn:aws:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_-]{1,64}", fullmatch=True), max_size=4, unique=True
    )
)
def test_every_key_policy_the_platform_writes_passes_both_rules(roles) -> None:
    written = key_policy(context(), KeyAdministrators("${data.aws_iam_session_context.d.issuer_arn}", tuple(roles)))
    assert check_one(KeyAdministrationNamed(), "aws_kms_key", {"policy": written}) == []
    assert check_one(ServicePrincipalsBoundToSource(), "aws_kms_key", {"policy": written}) == []
