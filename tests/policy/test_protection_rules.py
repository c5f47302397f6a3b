"""PROT-1 (protected data and history) on hand-written input: every protected type, each of its protections, and
the types that stay replaceable."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.policy.rules import ProtectedData
from hypothesis import given
from hypothesis import strategies as st

from tests.policy.cases import check_one

PROTECTED = ProtectedData(protected=True)
UNPROTECTED = ProtectedData(protected=False)
TYPES = sorted(ProtectedData.PROTECTED_TYPES)
KEEP = {"lifecycle": {"prevent_destroy": True}}


def _safe(resource_type: str) -> dict[str, Any]:
    """A configuration of ``resource_type`` that nothing can destroy: prevent_destroy and its own protection."""
    config: dict[str, Any] = dict(KEEP)
    flag = ProtectedData.OWN_PROTECTION.get(resource_type)
    if flag:
        config[flag] = True
    return config


def test_the_protected_types_include_everything_the_issue_names() -> None:
    named = {"aws_s3_bucket", "aws_kms_key", "aws_cloudwatch_log_group", "aws_ecr_repository", "aws_vpc"}
    named |= {"aws_sagemaker_endpoint", "aws_eks_cluster", "aws_db_instance", "aws_rds_cluster"}
    named |= {"aws_efs_file_system", "aws_ebs_volume", "aws_dynamodb_table", "aws_secretsmanager_secret"}
    assert named <= ProtectedData.PROTECTED_TYPES
    # A flag of a type outside the list would never be checked.
    assert set(ProtectedData.OWN_PROTECTION) <= ProtectedData.PROTECTED_TYPES
    assert set(ProtectedData.NO_FORCE_DELETE) <= ProtectedData.PROTECTED_TYPES
    assert set(ProtectedData.FINAL_SNAPSHOT) <= ProtectedData.PROTECTED_TYPES


@pytest.mark.parametrize("resource_type", TYPES)
def test_every_protected_type_needs_prevent_destroy(resource_type: str) -> None:
    assert check_one(PROTECTED, resource_type, _safe(resource_type)) == []
    for lifecycle in (None, {}, {"prevent_destroy": False}, {"create_before_destroy": True}):
        config = {**_safe(resource_type), "lifecycle": lifecycle}
        assert check_one(PROTECTED, resource_type, config) == [
            f"{resource_type}.r could be destroyed: lifecycle.prevent_destroy is not true (protected environment)"
        ]
        # Unprotected environments stay destroyable.
        assert check_one(UNPROTECTED, resource_type, config) == []


def test_prevent_destroy_is_read_as_terraform_reads_it() -> None:
    # A lifecycle block written as a list, and the string "true" (an override can write either), protect.
    assert check_one(PROTECTED, "aws_vpc", {"lifecycle": [{"prevent_destroy": True}]}) == []
    assert check_one(PROTECTED, "aws_vpc", {"lifecycle": {"prevent_destroy": "true"}}) == []
    (problem,) = check_one(PROTECTED, "aws_vpc", {"lifecycle": {"prevent_destroy": "false"}})
    assert "lifecycle.prevent_destroy is not true" in problem


@pytest.mark.parametrize(("resource_type", "flag"), sorted(ProtectedData.OWN_PROTECTION.items()))
def test_a_resource_with_a_protection_of_its_own_needs_it_too(resource_type: str, flag: str) -> None:
    for value in (None, False, "false"):
        config = {**KEEP, flag: value}
        assert check_one(PROTECTED, resource_type, config) == [
            f"{resource_type}.r could be destroyed: {flag} is not true (protected environment)"
        ]
        assert check_one(UNPROTECTED, resource_type, config) == []
    assert check_one(PROTECTED, resource_type, {**KEEP, flag: "true"}) == []


@pytest.mark.parametrize(("resource_type", "flag"), sorted(ProtectedData.NO_FORCE_DELETE.items()))
def test_a_protected_resource_is_never_force_deleted(resource_type: str, flag: str) -> None:
    assert check_one(PROTECTED, resource_type, {**KEEP, flag: False}) == []
    assert check_one(PROTECTED, resource_type, {**KEEP, flag: True}) == [
        f"{resource_type}.r could be destroyed: {flag} is true (protected environment)"
    ]
    assert check_one(UNPROTECTED, resource_type, {flag: True}) == []


def test_a_protected_key_needs_prevent_destroy_and_the_longest_deletion_window() -> None:
    # The provider's default window is the 30-day maximum.
    assert check_one(PROTECTED, "aws_kms_key", KEEP) == []
    assert check_one(PROTECTED, "aws_kms_key", {**KEEP, "deletion_window_in_days": 30}) == []
    # prevent_destroy does not excuse a short window: it leaves with the resource block, the window does not.
    for window in (7, 29, "${var.window}"):
        assert check_one(PROTECTED, "aws_kms_key", {**KEEP, "deletion_window_in_days": window}) == [
            f"aws_kms_key.r could be destroyed: deletion_window_in_days = {window!r}, not the 30-day maximum "
            "(protected environment)"
        ]
    # Nor does the longest window excuse a missing prevent_destroy.
    (problem,) = check_one(PROTECTED, "aws_kms_key", {"deletion_window_in_days": 30})
    assert "lifecycle.prevent_destroy is not true" in problem
    assert check_one(UNPROTECTED, "aws_kms_key", {"deletion_window_in_days": 7}) == []


@pytest.mark.parametrize(("resource_type", "flag"), sorted(ProtectedData.FINAL_SNAPSHOT.items()))
def test_a_protected_database_leaves_a_final_snapshot(resource_type: str, flag: str) -> None:
    # The provider's default (false) takes the snapshot.
    assert check_one(PROTECTED, resource_type, _safe(resource_type)) == []
    taken = {**_safe(resource_type), flag: False, "final_snapshot_identifier": "db-final"}
    assert check_one(PROTECTED, resource_type, taken) == []
    for value in (True, "true"):
        assert check_one(PROTECTED, resource_type, {**_safe(resource_type), flag: value}) == [
            f"{resource_type}.r could be destroyed: {flag} is true (no final snapshot) (protected environment)"
        ]
        assert check_one(UNPROTECTED, resource_type, {flag: value}) == []


def test_a_protected_secret_keeps_a_recovery_window() -> None:
    # Unset, the provider asks for AWS's 30 days.
    assert check_one(PROTECTED, "aws_secretsmanager_secret", KEEP) == []
    for days in (7, 30):
        assert check_one(PROTECTED, "aws_secretsmanager_secret", {**KEEP, "recovery_window_in_days": days}) == []
    # 0 deletes the secret at once; a value Terraform resolves later cannot be shown to be a window.
    for days in (0, "${var.days}"):
        assert check_one(PROTECTED, "aws_secretsmanager_secret", {**KEEP, "recovery_window_in_days": days}) == [
            f"aws_secretsmanager_secret.r could be destroyed: recovery_window_in_days = {days!r}, not a recovery "
            "window of 7-30 days (protected environment)"
        ]
    assert check_one(UNPROTECTED, "aws_secretsmanager_secret", {"recovery_window_in_days": 0}) == []


def test_one_message_names_every_way_a_resource_could_be_destroyed() -> None:
    assert check_one(PROTECTED, "aws_s3_bucket", {"force_destroy": True}) == [
        "aws_s3_bucket.r could be destroyed: lifecycle.prevent_destroy is not true; force_destroy is true "
        "(protected environment)"
    ]
    assert check_one(PROTECTED, "aws_cloudwatch_log_group", {"name": "/x"}) == [
        "aws_cloudwatch_log_group.r could be destroyed: lifecycle.prevent_destroy is not true; skip_destroy is not "
        "true (protected environment)"
    ]


@pytest.mark.parametrize(
    "resource_type",
    [
        # Rebuilt from code: compute, immutable model versions, network plumbing, permissions, notifications.
        "aws_eks_node_group",
        "aws_autoscaling_group",
        "aws_launch_template",
        "aws_lambda_function",
        "aws_sagemaker_model",
        "aws_sagemaker_endpoint_configuration",
        "aws_subnet",
        "aws_nat_gateway",
        "aws_security_group",
        "aws_iam_role",
        "aws_kms_alias",
        "aws_cloudwatch_metric_alarm",
        "aws_sns_topic",
        "aws_sqs_queue",
    ],
)
def test_what_code_rebuilds_stays_replaceable(resource_type: str) -> None:
    assert check_one(PROTECTED, resource_type, {"force_destroy": True, "force_delete": True}) == []


@given(
    resource_type=st.sampled_from(TYPES),
    prevent_destroy=st.sampled_from([True, "true", False, "false", None]),
    own_flag=st.sampled_from([True, "true", False, None]),
    forced=st.sampled_from([True, "true", False, None]),
    window=st.one_of(st.none(), st.integers(min_value=7, max_value=30)),
    skipped=st.sampled_from([True, "true", False, None]),
    recovery=st.one_of(st.none(), st.just(0), st.integers(min_value=7, max_value=30)),
)
def test_a_resource_passes_exactly_when_nothing_can_destroy_it(
    resource_type: str,
    prevent_destroy: Any,
    own_flag: Any,
    forced: Any,
    window: int | None,
    skipped: Any,
    recovery: int | None,
) -> None:
    config: dict[str, Any] = {"lifecycle": {"prevent_destroy": prevent_destroy}}
    if own := ProtectedData.OWN_PROTECTION.get(resource_type):
        config[own] = own_flag
    if force := ProtectedData.NO_FORCE_DELETE.get(resource_type):
        config[force] = forced
    if window is not None:
        config["deletion_window_in_days"] = window
    if skip := ProtectedData.FINAL_SNAPSHOT.get(resource_type):
        config[skip] = skipped
    if recovery is not None:
        config["recovery_window_in_days"] = recovery
    protected = (
        prevent_destroy in (True, "true")
        and (resource_type not in ProtectedData.OWN_PROTECTION or own_flag in (True, "true"))
        and (resource_type not in ProtectedData.NO_FORCE_DELETE or forced not in (True, "true"))
        and (resource_type != "aws_kms_key" or window in (None, 30))
        and (resource_type not in ProtectedData.FINAL_SNAPSHOT or skipped not in (True, "true"))
        and (resource_type != "aws_secretsmanager_secret" or recovery != 0)
    )
    problems = check_one(PROTECTED, resource_type, config)
    assert (problems == []) is protected
    assert len(problems) <= 1 and all(p.endswith("(protected environment)") for p in problems)
    assert check_one(UNPROTECTED, resource_type, config) == []
