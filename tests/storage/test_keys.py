"""PlatformKeys: three rotating keys, each usable only through the services that need it, and administered by
named roles (the deploying role and ``keys.admin_role_arns``) while the account as a whole only reads them."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from constructs.core.errors import ConfigurationError
from constructs.storage.keys import (
    KEY_ADMIN_ACTIONS,
    KEY_READ_ACTIONS,
    KeyAdministrators,
    PlatformKeys,
    PlatformKeysProps,
    administration_statements,
)
from constructs.storage.settings import PlatformKeysSettings
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws

from stacks.matrix import MATRIX
from stacks.overrides import load_environments
from tests.support.stacks import DEPLOYER_ARN as DEPLOYER
from tests.support.stacks import TinyStack, context
from tests.support.synth_json import ENVIRONMENTS, arn_parts, data_ref, policy, resources

ROOT = "arn:aws:iam::123456789012:root"
READ_ONLY = [
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
]
ROLE_ARNS_ALLOWED = "IAM role ARNs such as 'arn:aws:iam::123456789012:role/PlatformAdmins'"


def _via_services(key: dict) -> list[str]:
    (use,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AccountUsesKeyThroughServices"]
    return [v.split(".", 1)[0] for v in use["Condition"]["StringEquals"]["kms:ViaService"]]


def _grants(statement: dict[str, Any], action: str) -> bool:
    """Whether the statement's actions (with IAM wildcards) include ``action``."""
    actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
    return any(fnmatch.fnmatchcase(action, pattern) for pattern in actions)


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal", {})
    values = principal.get("AWS", []) if isinstance(principal, dict) else principal
    return values if isinstance(values, list) else [values]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_keys_rotate_and_grant_only_their_services(stacks, env) -> None:
    keys = {c["//"]["metadata"]["path"].rsplit("/", 1)[1]: c for c in resources(stacks[env], "aws_kms_key").values()}
    assert set(keys) >= {"data", "eks-secrets", "logs"}
    for key in keys.values():
        assert key["enable_key_rotation"] is True
    expected_window = {"dev": 7, "staging": 14, "prod": 30}[env]
    assert {k["deletion_window_in_days"] for k in keys.values()} == {expected_window}

    assert _via_services(keys["data"]) == ["s3", "ec2", "sagemaker", "ecr", "rds"]
    assert _via_services(keys["eks-secrets"]) == ["eks"]
    logs = policy(keys["logs"]["policy"])
    (service,) = [s for s in logs["Statement"] if s["Sid"] == "CloudWatchLogsOfThisAccount"]
    assert re.fullmatch(
        r"logs\.\$\{data\.aws_region\.platform_region_\w+\.name\}\.amazonaws\.com", service["Principal"]["Service"]
    )
    assert "kms:EncryptionContext:aws:logs:arn" in service["Condition"]["ArnLike"]
    for key in keys.values():
        for statement in policy(key["policy"])["Statement"]:
            assert "kms:*" not in statement["Action"]


def _paths(keys: dict[str, Any]) -> list[str]:
    return [key["//"]["metadata"]["path"] for key in keys.values()]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_key_is_administered_by_the_deploying_role_and_only_read_by_the_account(stacks, env) -> None:
    stack = stacks[env]
    partition, _, account = arn_parts(stack)
    root = f"arn:{partition}:iam::{account}:root"
    deployer = data_ref(stack, "aws_iam_session_context", "platform/deployer", "issuer_arn")
    (session,) = [
        d
        for d in stack["data"]["aws_iam_session_context"].values()
        if d["//"]["metadata"]["path"].endswith("/deployer")
    ]
    # The session's role, not the session: an assumed-role ARN is no valid key policy principal.
    assert session["arn"] == data_ref(stack, "aws_caller_identity", "platform/account", "arn")
    keys = resources(stack, "aws_kms_key")
    # Every key: the platform's three, MLflow's secrets key, the cost alerts' key, the training cluster's
    # notifications key and the monitoring alerts' key where there are one and alarms.
    monitoring_key = [path for path in _paths(keys) if path.endswith("/monitoring/alerts/key")]
    assert len(monitoring_key) == (1 if env in ("staging", "prod") else 0)
    # And the secondary region's: the recovery key, and the serving standby's logs key with failover.
    secondary_keys = [path for path in _paths(keys) if "/platform/secondary/" in path]
    assert len(secondary_keys) == (MATRIX[env].secondary_region is not None) + (MATRIX[env].failover is not None)
    assert len(keys) == (6 if env in ("staging", "prod") else 5) + len(monitoring_key) + len(secondary_keys)
    for key in keys.values():
        statements = policy(key["policy"])["Statement"]
        assert statements[0] == {
            "Sid": "AccountReadsKey",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": READ_ONLY,
            "Resource": "*",
        }
        assert statements[1] == {
            "Sid": "AdministratorsManageKey",
            "Effect": "Allow",
            "Principal": {"AWS": [deployer]},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
        }
        for statement in statements[2:]:
            account_wide = {root, "*"} & set(_principals(statement))
            if not account_wide:
                continue
            assert not _grants(statement, "kms:PutKeyPolicy"), statement["Sid"]
            if _grants(statement, "kms:CreateGrant"):
                # Only grants an AWS service creates for the resource it encrypts.
                assert "kms:ViaService" in statement["Condition"]["StringEquals"], statement["Sid"]


def test_keys_are_named_and_scoped_by_the_context() -> None:
    tiny = TinyStack("keys")
    PlatformKeys(tiny.stack, "keys", PlatformKeysProps(context=tiny.context))
    config = tiny.synth()
    aliases = sorted(a["name"] for a in resources(config, "aws_kms_alias").values())
    assert aliases == ["alias/p-test-data", "alias/p-test-eks-secrets", "alias/p-test-logs"]
    keys = [k for name, k in resources(config, "aws_kms_key").items() if name.startswith("keys_")]
    assert len(keys) == 3
    # The default window is the longest one: a deleted key makes everything it encrypted unreadable.
    assert {k["deletion_window_in_days"] for k in keys} == {30}
    (data,) = [k for k in keys if k["description"].startswith("ML platform data")]
    statements = {s["Sid"]: s for s in policy(data["policy"])["Statement"]}
    assert statements["AccountReadsKey"]["Principal"] == {"AWS": ROOT}
    assert statements["AccountReadsKey"]["Action"] == READ_ONLY
    admin = statements["AdministratorsManageKey"]
    assert admin["Principal"] == {"AWS": [DEPLOYER]}
    assert admin["Action"] == list(KEY_ADMIN_ACTIONS)
    assert statements["AccountUsesKeyThroughServices"]["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.us-east-1.amazonaws.com",
        "ec2.us-east-1.amazonaws.com",
        "sagemaker.us-east-1.amazonaws.com",
        "ecr.us-east-1.amazonaws.com",
        "rds.us-east-1.amazonaws.com",
    ]
    attach = statements["AccountServiceRolesAttachEncryptedVolumes"]
    assert attach["Condition"] == {
        "StringEquals": {"kms:CallerAccount": "123456789012", "kms:ViaService": "ec2.us-east-1.amazonaws.com"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    (logs,) = [k for k in keys if k["description"] == "ML platform CloudWatch Logs"]
    (service,) = policy(logs["policy"])["Statement"][2:]
    assert service["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert service["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:*"}
    }


def test_named_administrators_join_the_deploying_role_on_every_key() -> None:
    tiny = TinyStack("admins")
    named = ("arn:aws:iam::123456789012:role/break-glass", "arn:aws:iam::123456789012:role/ci/deploy")
    # The deploying role listed again is named once.
    settings = PlatformKeysSettings(admin_role_arns=(*named, DEPLOYER))
    keys = PlatformKeys(tiny.stack, "keys", PlatformKeysProps(tiny.context, settings))
    assert keys.administrators == KeyAdministrators(DEPLOYER, (*named, DEPLOYER))
    config = tiny.synth()
    for name, key in resources(config, "aws_kms_key").items():
        if not name.startswith("keys_"):
            continue
        (admin,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AdministratorsManageKey"]
        assert admin["Principal"] == {"AWS": [DEPLOYER, *named]}


# --- keys.admin_role_arns ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arns",
    [
        (),
        ("arn:aws:iam::123456789012:role/PlatformAdmins",),
        ("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_0123456789abcdef",),
        ("arn:aws-cn:iam::210987654321:role/break-glass", "arn:aws-us-gov:iam::123456789012:role/a+b=c,d.e@f_g-h"),
    ],
)
def test_admin_role_arns_accept_iam_roles(arns) -> None:
    assert PlatformKeysSettings(admin_role_arns=arns).admin_role_arns == arns


@pytest.mark.parametrize(
    ("arns", "field", "allowed"),
    [
        # Wildcards: a role pattern would let anyone able to create a matching role administer the keys.
        (("arn:aws:iam::123456789012:role/*",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("arn:aws:iam::123456789012:role/admin-*",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("arn:aws:iam::*:role/admin",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("*",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        # Not roles: users, the account, an assumed-role session, a policy.
        (("arn:aws:iam::123456789012:user/alice",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("arn:aws:iam::123456789012:root",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("123456789012",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("arn:aws:sts::123456789012:assumed-role/admin/session",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (
            ("arn:aws:iam::123456789012:role/ok", "arn:aws:iam::123456789012:policy/admin"),
            "admin_role_arns[1]",
            ROLE_ARNS_ALLOWED,
        ),
        # A role name longer than IAM's 64 characters, an account that is not 12 digits.
        (("arn:aws:iam::123456789012:role/" + "r" * 65,), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        (("arn:aws:iam::12345:role/admin",), "admin_role_arns[0]", ROLE_ARNS_ALLOWED),
        # Duplicates.
        (
            ("arn:aws:iam::123456789012:role/admin", "arn:aws:iam::123456789012:role/admin"),
            "admin_role_arns",
            "each item at most once",
        ),
    ],
)
def test_admin_role_arns_reject_anything_but_distinct_roles(arns, field, allowed) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PlatformKeysSettings(admin_role_arns=arns)
    assert (caught.value.where, caught.value.field) == ("PlatformKeysSettings", field)
    assert caught.value.allowed.startswith(allowed)


def test_admin_role_arns_must_be_a_list_of_strings() -> None:
    with pytest.raises(ConfigurationError, match=r"^PlatformKeysSettings: field 'admin_role_arns'"):
        PlatformKeysSettings(admin_role_arns="arn:aws:iam::123456789012:role/admin")  # type: ignore[arg-type]


def test_a_bad_administrator_in_an_override_names_the_environment_and_field() -> None:
    overrides = {"prod": {"keys.admin_role_arns": ["arn:aws:iam::123456789012:user/alice"]}}
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    assert (caught.value.where, caught.value.field) == ("environment 'prod'", "keys.admin_role_arns[0]")
    assert caught.value.value == "arn:aws:iam::123456789012:user/alice"
    good = {"prod": {"keys.admin_role_arns": ["arn:aws:iam::123456789012:role/break-glass"]}}
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(good)})
    assert configs["prod"].keys.admin_role_arns == ("arn:aws:iam::123456789012:role/break-glass",)


# --- properties of the administration statements -----------------------------------------------------------

_ROLE_ARN = st.from_regex(
    r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/([A-Za-z0-9+=,.@_-]{1,16}/){0,2}[A-Za-z0-9+=,.@_-]{1,64}",
    fullmatch=True,
)


@given(st.lists(_ROLE_ARN, max_size=5, unique=True), st.sampled_from([DEPLOYER, "${data.x.y.issuer_arn}"]))
def test_named_roles_always_administer_next_to_the_deployer_and_the_account_only_reads(roles, deployer) -> None:
    settings = PlatformKeysSettings(admin_role_arns=tuple(roles))
    read, manage = administration_statements(context(), KeyAdministrators(deployer, settings.admin_role_arns))
    assert read.principals == {"AWS": ROOT} and read.actions == KEY_READ_ACTIONS
    assert not any(
        fnmatch.fnmatchcase(action, pattern)
        for action in ("kms:PutKeyPolicy", "kms:CreateGrant", "kms:ScheduleKeyDeletion")
        for pattern in read.actions
    )
    principals = manage.principals["AWS"] if manage.principals else []
    assert principals[0] == deployer
    assert principals == [deployer, *(role for role in roles if role != deployer)]
    assert len(set(principals)) == len(principals)


@given(_ROLE_ARN, st.integers(min_value=0, max_value=200), st.sampled_from(["*", "?", "*/*"]))
def test_a_wildcard_anywhere_in_a_role_arn_is_rejected(arn, at, wildcard) -> None:
    position = at % (len(arn) + 1)
    with pytest.raises(ConfigurationError) as caught:
        PlatformKeysSettings(admin_role_arns=(arn[:position] + wildcard + arn[position:],))
    assert caught.value.field == "admin_role_arns[0]"


# --- the rendered policies against the emulator's KMS ------------------------------------------------------


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's KMS in this process, with throw-away credentials."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        yield boto3.client("kms", region_name="us-east-1")


@pytest.mark.slow
def test_the_emulator_accepts_every_rendered_key_policy(kms) -> None:
    tiny = TinyStack("moto")
    admins = ("arn:aws:iam::123456789012:role/break-glass",)
    PlatformKeys(
        tiny.stack,
        "keys",
        PlatformKeysProps(tiny.context, PlatformKeysSettings(admin_role_arns=admins)),
    )
    documents = [k["policy"] for name, k in resources(tiny.synth(), "aws_kms_key").items() if name.startswith("keys_")]
    assert len(documents) == 3
    for document in documents:
        key_id = kms.create_key(Policy=document, Description="rendered", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"][
            "KeyId"
        ]
        stored = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
        assert stored == json.loads(document)
        # Terraform's update path (PutKeyPolicy) and its reads, as the deploying role performs them.
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=document)
        kms.enable_key_rotation(KeyId=key_id)
        assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
        assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
