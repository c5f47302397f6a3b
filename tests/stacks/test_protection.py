"""Protected environments keep every resource that holds data or history out of Terraform's reach (rule PROT-1);
the others stay destroyable, as the emulator deploy test needs (it destroys dev and staging)."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.policy.rules import ProtectedData
from constructs.sagemaker.settings import InstanceVariantSettings, SageMakerEndpointSettings

from stacks.matrix import MATRIX
from tests.policy.cases import check
from tests.sagemaker.tiny import endpoint_stack
from tests.support.stacks import context
from tests.support.synth_json import ENVIRONMENTS, arguments, resources

# What the platform builds of the protected types in prod, by type and construct path (the endpoint itself
# appears once a model is published: see the construct test below).
PROD_PROTECTED = {
    ("aws_vpc", "prod/platform/network/vpc"),
    ("aws_cloudwatch_log_group", "prod/platform/network/flow-log-group"),
    ("aws_cloudwatch_log_group", "prod/platform/eks/cluster/log-group"),
    ("aws_cloudwatch_log_group", "prod/platform/sagemaker/log-group"),
    ("aws_cloudwatch_log_group", "prod/platform/training/idle-shutdown-logs"),
    ("aws_eks_cluster", "prod/platform/eks/cluster/cluster"),
    ("aws_ecr_repository", "prod/platform/sagemaker/images/repository"),
    ("aws_kms_key", "prod/platform/keys/data"),
    ("aws_kms_key", "prod/platform/keys/eks-secrets"),
    ("aws_kms_key", "prod/platform/keys/logs"),
    ("aws_kms_key", "prod/platform/training/notifications-key"),
    ("aws_kms_key", "prod/platform/budget/alerts/key"),
    ("aws_kms_key", "prod/platform/monitoring/alerts/key"),
    ("aws_cloudwatch_log_group", "prod/platform/monitoring/container-insights/performance-log-group"),
    ("aws_kms_key", "prod/platform/secondary/recovery-key"),
    # The serving standby in the secondary region (tests/resilience/test_serving_standby.py).
    ("aws_kms_key", "prod/platform/secondary/logs-key"),
    ("aws_vpc", "prod/platform/secondary/vpc/vpc"),
    ("aws_cloudwatch_log_group", "prod/platform/secondary/vpc/flow-log-group"),
    ("aws_cloudwatch_log_group", "prod/platform/secondary/standby/log-group"),
    ("aws_ecr_repository", "prod/platform/secondary/standby/images/repository"),
    ("aws_s3_bucket", "prod/platform/secondary/artifact-replica/bucket"),
    ("aws_s3_bucket", "prod/platform/secondary/replica-logs/bucket"),
    ("aws_kms_key", "prod/platform/mlflow-database/secret-key"),
    ("aws_db_instance", "prod/platform/mlflow-database/instance"),
    ("aws_secretsmanager_secret", "prod/platform/mlflow/admin-secret"),
    ("aws_cloudwatch_log_group", "prod/platform/mlflow-database/postgresql-log-group"),
    ("aws_cloudwatch_log_group", "prod/platform/mlflow-database/upgrade-log-group"),
    *(
        ("aws_s3_bucket", f"prod/platform/storage/{purpose}/bucket")
        for purpose in ("training-data", "model-artifacts", "checkpoints", "mlflow-artifacts", "access-logs")
    ),
}


def _protected_types(stack: dict[str, Any]) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    """Every resource of a type PROT-1 protects: (type, construct path) -> (logical name, configuration)."""
    return {
        (resource_type, config["//"]["metadata"]["path"]): (name, config)
        for resource_type in ProtectedData.PROTECTED_TYPES
        for name, config in resources(stack, resource_type).items()
    }


def test_prod_protects_every_resource_holding_data_or_history(stacks) -> None:
    assert MATRIX["prod"].protected
    found = _protected_types(stacks["prod"])
    assert set(found) == PROD_PROTECTED
    for (resource_type, path), (name, config) in found.items():
        assert config["lifecycle"] == {"prevent_destroy": True}, path
        if resource_type == "aws_cloudwatch_log_group":
            assert config["skip_destroy"] is True, path
        # The pack ran at synthesis; here it runs again on the JSON as written, and finds nothing.
        assert check(ProtectedData(protected=True), stacks["prod"], resource_type, name) == [], path


@pytest.mark.parametrize("env", [env for env in ENVIRONMENTS if not MATRIX[env].protected])
def test_unprotected_environments_stay_destroyable(stacks, env) -> None:
    found = _protected_types(stacks[env])
    # The same kinds of resources exist there (so the absence below means something) ...
    assert {resource_type for resource_type, _ in found} >= {
        "aws_vpc",
        "aws_cloudwatch_log_group",
        "aws_eks_cluster",
        "aws_ecr_repository",
        "aws_kms_key",
        "aws_s3_bucket",
    }
    for (resource_type, path), (name, config) in found.items():
        # ... and none carries a protection that would stop `terraform destroy` ...
        assert "prevent_destroy" not in config.get("lifecycle", {}), path
        assert "skip_destroy" not in config, path
        # ... so a protected environment's rule would report every one of them.
        assert check(ProtectedData(protected=True), stacks[env], resource_type, name), path


@pytest.mark.parametrize("protected", [True, False])
def test_a_published_endpoint_is_protected_with_its_environment(protected: bool) -> None:
    settings = SageMakerEndpointSettings(
        model_version="v1", variants=(InstanceVariantSettings(instance_type="ml.m5.xlarge"),)
    )
    stack, _ = endpoint_stack(settings, context=context(protected=protected))
    kept = {"prevent_destroy": True} if protected else None
    for resource_type, path in (
        ("aws_sagemaker_endpoint", "sagemaker/endpoint"),
        ("aws_cloudwatch_log_group", "sagemaker/log-group"),
        ("aws_ecr_repository", "sagemaker/images/repository"),
    ):
        assert arguments(stack, resource_type, path).get("lifecycle") == kept, path
    assert arguments(stack, "aws_cloudwatch_log_group", "sagemaker/log-group").get("skip_destroy") is (
        True if protected else None
    )
    # A new model version replaces the model and the endpoint configuration, in either environment.
    for resource_type, path in (
        ("aws_sagemaker_model", "sagemaker/model-v1"),
        ("aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration"),
    ):
        assert arguments(stack, resource_type, path)["lifecycle"] == {"create_before_destroy": True}, path
