"""The MLflow database construct on its own, in each environment's shape: engine, TLS, encryption, credentials that
Terraform never sees, network reach, logs, monitoring, protection, the security pack, the props and settings checks,
and the real ``terraform validate``."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.core.iam import policy_document, service_trust_policy
from constructs.mlflow.database import MlflowDatabase, MlflowDatabaseProps
from constructs.mlflow.settings import MlflowDatabaseSettings
from constructs.policy.pack import security_checks
from constructs.storage.keys import PlatformKeys, PlatformKeysProps

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from stacks.matrix import MATRIX
from tests.support.stacks import DEPLOYER_ARN, OWNER_TAGS, context
from tests.support.synth_json import (
    ENVIRONMENTS,
    address,
    allow,
    arguments,
    doc,
    only,
    policy,
    ref,
    resources,
)

ACCOUNT = "123456789012"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
SECRETS_MANAGER = "secretsmanager.us-east-1.amazonaws.com"
# What each environment's database promises, written out rather than read from the matrix.
EXPECTED = {
    "dev": {
        "instance_class": "db.t4g.micro",
        "allocated_storage": 20,
        "max_allocated_storage": None,
        "multi_az": False,
        "backup_retention_period": 1,
        "deletion_protection": False,
        "final_snapshot": False,
        "performance_insights": False,
        "monitoring_interval": 0,
        "log_retention": 14,
        "protected": False,
    },
    "staging": {
        "instance_class": "db.t4g.small",
        "allocated_storage": 20,
        "max_allocated_storage": 100,
        "multi_az": True,
        "backup_retention_period": 7,
        "deletion_protection": True,
        "final_snapshot": True,
        "performance_insights": True,
        "monitoring_interval": 60,
        "log_retention": 30,
        "protected": False,
    },
    "prod": {
        "instance_class": "db.m7g.large",
        "allocated_storage": 50,
        "max_allocated_storage": 500,
        "multi_az": True,
        "backup_retention_period": 14,
        "deletion_protection": True,
        "final_snapshot": True,
        "performance_insights": True,
        "monitoring_interval": 15,
        "log_retention": 365,
        "protected": True,
    },
}


@dataclass(frozen=True)
class Built:
    """One synthesized database stack: its configuration (with construct paths), the construct, and what the
    security pack finds in it."""

    config: dict[str, Any]
    database: MlflowDatabase
    violations: list[str]


def build(
    settings: MlflowDatabaseSettings, *, protected: bool = False, subnets: int = 2, name_prefix: str = "p-test"
) -> Built:
    """A stack ``test`` holding the platform keys, a VPC with ``subnets`` private subnets, a security group standing
    in for the EKS cluster's (``cluster-sg``), the database ``database``, a role ``reader`` granted its credentials
    and a policy ``credentials`` of its read statements; the provider tags everything with the owner tags, as the
    platform's stacks do."""
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "test")
    aws.provider.AwsProvider(
        stack, "aws", region="us-east-1", default_tags=[aws.provider.AwsProviderDefaultTags(tags=dict(OWNER_TAGS))]
    )
    ctx = context(protected=protected, name_prefix=name_prefix)
    keys = PlatformKeys(stack, "keys", PlatformKeysProps(context=ctx))
    lifecycle = cdktf.TerraformResourceLifecycle(prevent_destroy=True) if protected else None
    vpc = aws.vpc.Vpc(stack, "vpc", cidr_block="10.0.0.0/16", lifecycle=lifecycle)
    private = [
        aws.subnet.Subnet(stack, f"private-{i}", vpc_id=vpc.id, cidr_block=f"10.0.{i}.0/24") for i in range(subnets)
    ]
    cluster_sg = aws.security_group.SecurityGroup(
        stack, "cluster-sg", name="cluster", description="stands in for the EKS cluster group", vpc_id=vpc.id
    )
    database = MlflowDatabase(
        stack,
        "database",
        MlflowDatabaseProps(
            context=ctx,
            settings=settings,
            vpc_id=vpc.id,
            subnet_ids=[subnet.id for subnet in private],
            client_security_group_id=cluster_sg.id,
            data_key=keys.data,
            logs_key=keys.logs,
            keys=keys.props.settings,
            key_administrators=keys.administrators,
        ),
    )
    reader = aws.iam_role.IamRole(
        stack, "reader", name="reader", assume_role_policy=service_trust_policy("ec2.amazonaws.com")
    )
    database.grant_read_credentials(reader)
    # What the in-cluster part does with the statements: a policy of its own.
    aws.iam_policy.IamPolicy(
        stack, "credentials", name="credentials", policy=policy_document(*database.credentials_read_statements())
    )
    violations = security_checks(gpu_enabled=False, protected=protected).violations(stack)
    cdktf.Testing.synth(stack)
    return Built(json.loads(json.dumps(stack.to_terraform())), database, violations)


@pytest.fixture(scope="module")
def built() -> dict[str, Built]:
    """The database of each environment of the matrix, in that environment's protection.

    Without the replication of its backups, which needs the secondary region (tests/resilience covers it).
    """
    return {
        env: build(
            MATRIX[env].mlflow.database.model_copy(update={"replicated_backup_retention_days": None}),
            protected=MATRIX[env].protected,
        )
        for env in ENVIRONMENTS
    }


def test_replicated_backups_need_the_secondary_region() -> None:
    settings = MATRIX["prod"].mlflow.database
    assert settings.replicated_backup_retention_days is not None
    with pytest.raises(ConfigurationError, match=r"field 'recovery_region' = None .*the environment's secondary"):
        build(settings, protected=True)


def _instance(config: dict[str, Any]) -> dict[str, Any]:
    return only(config, "aws_db_instance", "database/instance")


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key path, value) pair of a JSON value."""
    if isinstance(value, dict):
        return [
            pair for key, item in value.items() for pair in [(f"{path}.{key}", item), *_walk(item, f"{path}.{key}")]
        ]
    if isinstance(value, list):
        return [pair for index, item in enumerate(value) for pair in _walk(item, f"{path}[{index}]")]
    return []


# --- what each environment gets --------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_pinned_postgres_major_with_tls_only_and_connections_logged(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    assert (instance["engine"], instance["engine_version"]) == ("postgres", "17")
    # RDS picks and upgrades minors; a major upgrade is a planned change; no extended-support fees.
    assert instance["auto_minor_version_upgrade"] is True
    assert instance["allow_major_version_upgrade"] is False
    assert instance["engine_lifecycle_support"] == "open-source-rds-extended-support-disabled"
    # RDS's default CA for new instances (rds-ca-rsa2048-g1 since 2024); naming it makes the provider modify the
    # instance (and wait for it again) right after creating it.
    assert "ca_cert_identifier" not in instance
    group = only(config, "aws_db_parameter_group", "database/parameter-group")
    assert group["family"] == "postgres17"
    assert group["name"] == "p-test-mlflow-postgres17"
    assert {p["name"]: p["value"] for p in group["parameter"]} == {
        "rds.force_ssl": "1",
        "log_connections": "1",
        "log_disconnections": "1",
    }
    assert instance["parameter_group_name"] == ref(config, "aws_db_parameter_group", "database/parameter-group", "name")
    assert instance["apply_immediately"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_storage_snapshots_and_insights_are_encrypted_with_the_data_key(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    data_key = ref(config, "aws_kms_key", "keys/data", "arn")
    assert (instance["storage_type"], instance["storage_encrypted"], instance["kms_key_id"]) == ("gp3", True, data_key)
    assert instance["copy_tags_to_snapshot"] is True
    if EXPECTED[env]["performance_insights"]:
        assert instance["performance_insights_enabled"] is True
        assert instance["performance_insights_kms_key_id"] == data_key
        assert instance["performance_insights_retention_period"] == 7
    else:
        assert not any(key.startswith("performance_insights") for key in instance)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rds_keeps_the_password_and_terraform_sees_none(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    assert instance["manage_master_user_password"] is True
    assert instance["master_user_secret_kms_key_id"] == ref(config, "aws_kms_key", "database/secret-key", "arn")
    assert (instance["db_name"], instance["username"], instance["port"]) == ("mlflow", "mlflow", 5432)
    assert instance["iam_database_authentication_enabled"] is True
    # No password argument anywhere (password, password_wo, a provider's or a secret version's), only the switch.
    arguments_named = [path.rsplit(".", 1)[-1] for path, _ in _walk(config)]
    assert [name for name in arguments_named if "password" in name] == ["manage_master_user_password"]
    assert "aws_secretsmanager_secret_version" not in config["resource"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_availability_backups_and_protection_follow_the_environment(built, env) -> None:
    instance = _instance(built[env].config)
    expected = EXPECTED[env]
    for argument in ("instance_class", "allocated_storage", "multi_az", "backup_retention_period"):
        assert instance[argument] == expected[argument], argument
    assert instance.get("max_allocated_storage") == expected["max_allocated_storage"]
    assert instance["deletion_protection"] is expected["deletion_protection"]
    assert instance["skip_final_snapshot"] is not expected["final_snapshot"]
    if expected["final_snapshot"]:
        assert instance["final_snapshot_identifier"] == "p-test-mlflow-final"
    else:
        assert "final_snapshot_identifier" not in instance
    # A protected environment keeps its automated backups (point-in-time recovery) after a deletion.
    assert instance["delete_automated_backups"] is not expected["protected"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_enhanced_monitoring_has_a_role_only_when_on(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    interval = EXPECTED[env]["monitoring_interval"]
    roles = {c["name"] for c in resources(config, "aws_iam_role").values()}
    if not interval:
        assert "monitoring_interval" not in instance and "monitoring_role_arn" not in instance
        assert roles == {"reader"}
        assert resources(config, "aws_iam_role_policy_attachment") == {}
        return
    assert instance["monitoring_interval"] == interval
    assert instance["monitoring_role_arn"] == ref(config, "aws_iam_role", "database/monitoring-role", "arn")
    role = only(config, "aws_iam_role", "database/monitoring-role")
    assert role["name"] == "p-test-mlflow-monitoring"
    assert policy(role["assume_role_policy"]) == doc(
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "monitoring.rds.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": ACCOUNT,
                    "aws:SourceArn": f"arn:aws:rds:us-east-1:{ACCOUNT}:db:p-test-mlflow",
                }
            },
        }
    )
    (attachment,) = resources(config, "aws_iam_role_policy_attachment").values()
    assert attachment["role"] == ref(config, "aws_iam_role", "database/monitoring-role", "name")
    assert attachment["policy_arn"] == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    # RDS checks the role's permissions when it creates the instance.
    assert address(config, "aws_iam_role_policy_attachment", "database/monitoring-policy") in instance["depends_on"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_cluster_group_reaches_postgres(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    group_id = ref(config, "aws_security_group", "database/security-group", "id")
    assert instance["vpc_security_group_ids"] == [group_id]
    assert instance["publicly_accessible"] is False
    group = arguments(config, "aws_security_group", "database/security-group")
    assert group == {
        "name": "p-test-mlflow-db",
        "description": "PostgreSQL of the MLflow database p-test-mlflow: only from the EKS cluster",
        "vpc_id": "${aws_vpc.vpc.id}",
        "tags": {"Name": "p-test-mlflow-db"},
    }
    rules = [
        r
        for r in resources(config, "aws_vpc_security_group_ingress_rule").values()
        if r["security_group_id"] == group_id
    ]
    assert [{k: v for k, v in r.items() if k != "//"} for r in rules] == [
        {
            "security_group_id": group_id,
            "description": "PostgreSQL from the EKS cluster security group (nodes and pods)",
            "ip_protocol": "tcp",
            "from_port": 5432,
            "to_port": 5432,
            "referenced_security_group_id": "${aws_security_group.cluster-sg.id}",
        }
    ]
    # No egress rule and no rule of the older kind: the group admits exactly that one source.
    assert resources(config, "aws_vpc_security_group_egress_rule") == {}
    assert resources(config, "aws_security_group_rule") == {}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_instance_runs_in_the_given_private_subnets(built, env) -> None:
    config = built[env].config
    subnet_group = only(config, "aws_db_subnet_group", "database/subnet-group")
    assert subnet_group["name"] == "p-test-mlflow"
    assert subnet_group["subnet_ids"] == ["${aws_subnet.private-0.id}", "${aws_subnet.private-1.id}"]
    assert _instance(config)["db_subnet_group_name"] == ref(
        config, "aws_db_subnet_group", "database/subnet-group", "name"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_log_groups_exist_before_the_instance_exports_to_them(built, env) -> None:
    config = built[env].config
    instance = _instance(config)
    assert instance["enabled_cloudwatch_logs_exports"] == ["postgresql", "upgrade"]
    protected = EXPECTED[env]["protected"]
    for export in ("postgresql", "upgrade"):
        group = only(config, "aws_cloudwatch_log_group", f"database/{export}-log-group")
        assert group["name"] == f"/aws/rds/instance/p-test-mlflow/{export}"
        assert group["retention_in_days"] == EXPECTED[env]["log_retention"]
        assert group["kms_key_id"] == ref(config, "aws_kms_key", "keys/logs", "arn")
        assert group.get("skip_destroy") is (True if protected else None)
        assert address(config, "aws_cloudwatch_log_group", f"database/{export}-log-group") in instance["depends_on"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_prevent_destroy_only_in_a_protected_environment(built, env) -> None:
    config = built[env].config
    kept = {"lifecycle": {"prevent_destroy": True}} if EXPECTED[env]["protected"] else {}
    for resource_type, suffix in (
        ("aws_db_instance", "database/instance"),
        ("aws_kms_key", "database/secret-key"),
        ("aws_cloudwatch_log_group", "database/postgresql-log-group"),
        ("aws_cloudwatch_log_group", "database/upgrade-log-group"),
    ):
        assert {k: v for k, v in only(config, resource_type, suffix).items() if k == "lifecycle"} == kept, suffix
    # The parameter group is replaced before its old family is let go, in every environment.
    assert only(config, "aws_db_parameter_group", "database/parameter-group")["lifecycle"] == {
        "create_before_destroy": True
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_security_pack_finds_nothing(built, env) -> None:
    assert built[env].violations == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_secret_key_is_usable_only_through_secrets_manager(built, env) -> None:
    config = built[env].config
    key = only(config, "aws_kms_key", "database/secret-key")
    assert key["enable_key_rotation"] is True
    assert key["deletion_window_in_days"] == 30
    statements = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    assert set(statements) == {"AccountReadsKey", "AdministratorsManageKey", "AccountUsesKeyThroughSecretsManager"}
    assert statements["AccountReadsKey"]["Principal"] == {"AWS": ROOT}
    assert statements["AdministratorsManageKey"]["Principal"] == {"AWS": [DEPLOYER_ARN]}
    use = statements["AccountUsesKeyThroughSecretsManager"]
    assert use["Principal"] == {"AWS": "*"}
    assert use["Action"] == ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    assert use["Condition"] == {"StringEquals": {"kms:CallerAccount": ACCOUNT, "kms:ViaService": SECRETS_MANAGER}}
    alias = only(config, "aws_kms_alias", "database/secret-key-alias")
    assert alias["name"] == "alias/p-test-mlflow-database-secret"
    assert alias["target_key_id"] == ref(config, "aws_kms_key", "database/secret-key", "key_id")


def test_the_credentials_grant_names_exactly_the_secret_and_its_key(built) -> None:
    config = built["prod"].config
    secret = ref(config, "aws_db_instance", "database/instance", "master_user_secret[0].secret_arn")
    key = ref(config, "aws_kms_key", "database/secret-key", "arn")
    expected = doc(
        allow("ReadDatabaseCredentials", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"], secret),
        allow("DecryptDatabaseCredentials", "kms:Decrypt", key, StringEquals={"kms:ViaService": SECRETS_MANAGER}),
    )
    grant = only(config, "aws_iam_role_policy", "database/grant-read-credentials-reader")
    assert (grant["name"], grant["role"]) == ("read-mlflow-database-credentials", "${aws_iam_role.reader.name}")
    assert policy(grant["policy"]) == expected
    # The statements the in-cluster part attaches to its own role name the same secret and key.
    assert policy(only(config, "aws_iam_policy", "test/credentials")["policy"]) == expected
    database = built["prod"].database
    assert (database.port, database.database_name, database.username) == (5432, "mlflow", "mlflow")


# --- the props and settings checks -----------------------------------------------------------------------


@pytest.mark.parametrize("subnets", [0, 1])
def test_fewer_than_two_subnets_are_refused(subnets: int) -> None:
    with pytest.raises(ConfigurationError) as error:
        build(MlflowDatabaseSettings(), subnets=subnets)
    assert (error.value.where, error.value.field) == ("test/database", "subnet_ids")
    assert "at least two AZs" in error.value.allowed


@pytest.mark.parametrize(
    "name_prefix",
    [
        "9lives",  # an identifier starts with a letter
        "ml--dev",  # no two hyphens in a row
        "m" * 47,  # 54 characters with '-mlflow': its monitoring role's name would exceed IAM's 64
    ],
)
def test_a_prefix_that_makes_no_instance_identifier_is_refused(name_prefix: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        build(MlflowDatabaseSettings(), name_prefix=name_prefix)
    assert (error.value.field, error.value.value) == ("context.name_prefix", name_prefix)
    assert "valid RDS instance identifier of at most 53" in error.value.allowed


def test_the_longest_prefix_still_names_every_resource() -> None:
    config = build(MlflowDatabaseSettings(monitoring_interval_seconds=60), name_prefix="m" * 46).config
    role_name = only(config, "aws_iam_role", "database/monitoring-role")["name"]
    assert (role_name, len(role_name)) == ("m" * 46 + "-mlflow-monitoring", 64)


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"allocated_storage_gib": 50, "max_allocated_storage_gib": 40}, "max_allocated_storage_gib", "above"),
        ({"allocated_storage_gib": 50, "max_allocated_storage_gib": 50}, "max_allocated_storage_gib", "above"),
        ({"instance_class": "db.t4g.nano"}, "instance_class", "RDS for PostgreSQL instance class"),
        ({"instance_class": "m7g.large"}, "instance_class", "RDS for PostgreSQL instance class"),
        ({"engine_version": "15"}, "engine_version", "'16'"),
        ({"engine_version": "17.2"}, "engine_version", "'17'"),
    ],
)
def test_bad_settings_name_their_field(changes: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as error:
        MlflowDatabaseSettings(**changes)
    assert error.value.field == field
    assert fragment in error.value.allowed


# --- the real terraform ----------------------------------------------------------------------------------


@pytest.mark.terraform
def test_the_database_validates_with_the_real_terraform(built, tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    env_vars = terraform_cli_env(tmp_path)
    # Dev and prod between them write every argument the construct can (prod: insights, monitoring, protection).
    configs = {env: aws_only(built[env].config) for env in ("dev", "prod")}
    assert validate_offline(configs, tmp_path / "validate", env_vars) == {"dev": [], "prod": []}
