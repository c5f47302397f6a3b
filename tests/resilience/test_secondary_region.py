"""The secondary region: its aliased provider, its recovery key, and the MLflow database's replicated backups."""

from __future__ import annotations

import json

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.core.regions import RegionScope

from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides
from tests.support.synth_json import arn_parts, data_ref, only, policy, ref, resources

RECOVERING = ("staging", "prod")
REPLICATED_DAYS = {"staging": 7, "prod": 14}
SECONDARY = "aws.secondary"


def _providers(stack: dict) -> dict[str | None, dict]:
    return {provider.get("alias"): provider for provider in stack["provider"]["aws"]}


@pytest.mark.parametrize("env", RECOVERING)
def test_the_secondary_region_has_an_aliased_provider_with_the_environments_tags(stacks, env) -> None:
    providers = _providers(stacks[env])
    assert set(providers) == {None, "secondary"}
    assert providers["secondary"]["region"] == MATRIX[env].secondary_region == "us-west-2"
    assert providers["secondary"]["region"] != providers[None]["region"]
    assert providers["secondary"]["default_tags"] == providers[None]["default_tags"]


def test_dev_pays_for_no_second_region(stacks) -> None:
    stack = stacks["dev"]
    assert set(_providers(stack)) == {None}
    for by_name in stack["resource"].values():
        assert all("provider" not in config for config in by_name.values())
    assert not resources(stack, "aws_db_instance_automated_backups_replication")


@pytest.mark.parametrize("env", RECOVERING)
def test_the_recovery_key_lives_in_the_secondary_region_and_serves_rds_and_s3_there(stacks, env) -> None:
    stack = stacks[env]
    _, _, account = arn_parts(stack)
    key = only(stack, "aws_kms_key", "platform/secondary/recovery-key")
    assert key["provider"] == SECONDARY
    assert key["enable_key_rotation"] is True
    alias = only(stack, "aws_kms_alias", "platform/secondary/recovery-key-alias")
    assert (alias["provider"], alias["name"]) == (SECONDARY, f"alias/mlp-{env}-recovery")
    region = data_ref(stack, "aws_region", "platform/secondary/region", "name")
    (secondary_region,) = [
        d for d in stack["data"]["aws_region"].values() if d["//"]["metadata"]["path"].endswith("secondary/region")
    ]
    assert secondary_region["provider"] == SECONDARY
    (use,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AccountUsesKeyThroughServices"]
    # The services of the secondary region, not the primary's: a key is used where it lives. A serving standby adds
    # SageMaker and ECR (tests/resilience/test_serving_standby.py).
    services = ["rds", "s3"] + (["sagemaker", "ecr"] if MATRIX[env].failover is not None else [])
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}}
    assert use["Principal"] == {"AWS": f"arn:{arn_parts(stack)[0]}:iam::{account}:root"}
    protected = MATRIX[env].protected
    assert key.get("lifecycle") == ({"prevent_destroy": True} if protected else None)


@pytest.mark.parametrize("env", RECOVERING)
def test_the_mlflow_databases_backups_are_replicated_to_the_secondary_region(stacks, env) -> None:
    stack = stacks[env]
    replication = only(stack, "aws_db_instance_automated_backups_replication", "mlflow-database/backup-replication")
    # Started from the destination region, as RDS requires.
    assert replication["provider"] == SECONDARY
    assert replication["source_db_instance_arn"] == ref(stack, "aws_db_instance", "mlflow-database/instance", "arn")
    assert replication["kms_key_id"] == ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn")
    assert replication["retention_period"] == REPLICATED_DAYS[env]
    # Everything else stays in the primary region, but for a serving standby (tests/resilience/test_serving_standby.py).
    if MATRIX[env].failover is not None:
        return
    aliased = {
        f"{kind}.{name}"
        for kind, by_name in stack["resource"].items()
        for name, config in by_name.items()
        if config.get("provider") == SECONDARY
    }
    assert {name.split(".")[0] for name in aliased} == {
        "aws_kms_key",
        "aws_kms_alias",
        "aws_db_instance_automated_backups_replication",
    }


def test_a_region_scope_gives_its_provider_to_everything_below_it_that_has_none() -> None:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "regions")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    west = aws.provider.AwsProvider(stack, "west", region="us-west-2", alias="west")
    east = aws.provider.AwsProvider(stack, "east", region="eu-west-1", alias="europe")
    scope = RegionScope(stack, "west-scope", west)
    nested = RegionScope(scope, "inner", west)
    aws.sns_topic.SnsTopic(nested, "deep", name="deep")
    aws.sns_topic.SnsTopic(scope, "chosen", name="chosen", provider=east)
    aws.data_aws_region.DataAwsRegion(scope, "where")
    aws.sns_topic.SnsTopic(stack, "home", name="home")
    synthesized = json.loads(cdktf.Testing.synth(stack))
    topics = {t["name"]: t.get("provider") for t in synthesized["resource"]["aws_sns_topic"].values()}
    assert topics == {"deep": "aws.west", "chosen": "aws.europe", "home": None}
    (region,) = synthesized["data"]["aws_region"].values()
    assert region["provider"] == "aws.west"


@pytest.mark.parametrize(
    ("overrides", "field", "allowed"),
    [
        ({"secondary_region": None}, "secondary_region", "when protected is True"),
        ({"secondary_region": "us-east-1"}, "secondary_region", "a region other than region (us-east-1)"),
        ({"secondary_region": "mars-west-1"}, "secondary_region", "us-west-2"),
        (
            {"mlflow.database.replicated_backup_retention_days": None},
            "mlflow.database.replicated_backup_retention_days",
            "1 to 35 days when protected is True",
        ),
        (
            {"mlflow.database.replicated_backup_retention_days": 36},
            "mlflow.database.replicated_backup_retention_days",
            "from 1 to 35",
        ),
    ],
)
def test_prod_without_a_working_recovery_region_is_refused(overrides, field, allowed) -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"prod": overrides})
    message = str(caught.value)
    assert "environment 'prod'" in message
    assert f"field '{field}'" in message
    assert allowed in message


def test_replicated_backups_need_a_secondary_region() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"staging": {"secondary_region": None}})
    message = str(caught.value)
    assert "environment 'staging'" in message
    assert "field 'mlflow.database.replicated_backup_retention_days'" in message
    assert "None while secondary_region is None" in message
    # Without replication, staging needs no second region: the choice is the matrix's.
    unreplicated = {"secondary_region": None, "mlflow.database.replicated_backup_retention_days": None}
    assert apply_overrides(MATRIX, {"staging": unreplicated})["staging"].secondary_region is None


def test_a_protected_environment_spans_availability_zones() -> None:
    single = {"multi_az": False, "network.nat_gateways": "single", "mlflow.database.multi_az": False}
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"prod": single})
    message = str(caught.value)
    assert "environment 'prod'" in message
    assert "field 'multi_az'" in message
    assert "True when protected is True" in message
