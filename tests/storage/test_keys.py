"""PlatformKeys: three rotating keys, each usable only through the services that need it."""

from __future__ import annotations

import re

import pytest
from constructs.core.errors import ConfigurationError
from constructs.storage.keys import KEY_ADMIN_ACTIONS, PlatformKeys, PlatformKeysProps
from constructs.storage.settings import PlatformKeysSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, policy, resources


def _via_services(key: dict) -> list[str]:
    (use,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AccountUsesKeyThroughServices"]
    return [v.split(".", 1)[0] for v in use["Condition"]["StringEquals"]["kms:ViaService"]]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_keys_rotate_and_grant_only_their_services(stacks, env) -> None:
    keys = {c["//"]["metadata"]["path"].rsplit("/", 1)[1]: c for c in resources(stacks[env], "aws_kms_key").values()}
    assert set(keys) >= {"data", "eks-secrets", "logs"}
    for key in keys.values():
        assert key["enable_key_rotation"] is True
    expected_window = {"dev": 7, "staging": 14, "prod": 30}[env]
    assert {k["deletion_window_in_days"] for k in keys.values()} == {expected_window}

    assert _via_services(keys["data"]) == ["s3", "ec2", "sagemaker", "ecr"]
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
    admin = statements["AccountAdministersKey"]
    assert admin["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    assert admin["Action"] == list(KEY_ADMIN_ACTIONS)
    assert statements["AccountUsesKeyThroughServices"]["Condition"]["StringEquals"]["kms:ViaService"] == [
        "s3.us-east-1.amazonaws.com",
        "ec2.us-east-1.amazonaws.com",
        "sagemaker.us-east-1.amazonaws.com",
        "ecr.us-east-1.amazonaws.com",
    ]
    attach = statements["AccountServiceRolesAttachEncryptedVolumes"]
    assert attach["Condition"] == {
        "StringEquals": {"kms:CallerAccount": "123456789012", "kms:ViaService": "ec2.us-east-1.amazonaws.com"},
        "Bool": {"kms:GrantIsForAWSResource": "true"},
    }
    (logs,) = [k for k in keys if k["description"] == "ML platform CloudWatch Logs"]
    (service,) = policy(logs["policy"])["Statement"][1:]
    assert service["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert service["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:us-east-1:123456789012:*"}
    }


@pytest.mark.parametrize("days", [7, 30])
def test_deletion_window_accepts_what_kms_allows(days) -> None:
    assert PlatformKeysSettings(deletion_window_days=days).deletion_window_days == days


@pytest.mark.parametrize("days", [6, 31, 0, True, "30"])
def test_deletion_window_outside_what_kms_allows_is_rejected(days) -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"^PlatformKeysSettings: field 'deletion_window_days' = .* allowed: a whole number from 7 to 30$",
    ):
        PlatformKeysSettings(deletion_window_days=days)
