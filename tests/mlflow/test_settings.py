"""MLflow's settings and the environment rules about them: each limit and rule rejects a bad value with the field
named, the good values next to each limit pass, and what the settings switch off really disappears from the stack."""

from __future__ import annotations

import json
from typing import Any

import cdktf
import pytest
from constructs.core.errors import ConfigurationError
from constructs.mlflow.settings import MlflowDatabaseSettings, MlflowIngressSettings, MlflowSettings

from stacks.deployment import DeploymentSettings
from stacks.matrix import MATRIX
from stacks.ml_platform_stack import MlPlatformStack
from tests.mlflow.test_server import (
    dependency_paths,
    manifests,
    mlflow_releases,
    path_of,
    paths,
    secret_statements,
    server_values,
)
from tests.support.overrides import with_overrides
from tests.support.synth_json import only, output, policy, resources

HOSTNAME_ALLOWED = "a lowercase fully qualified host name"
ZONE = "ml.example.com"


def ingress(hostname: str = f"mlflow.{ZONE}", zone: str = ZONE) -> MlflowIngressSettings:
    return MlflowIngressSettings(hostname=hostname, hosted_zone_name=zone)


# --- the database -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        # PostgreSQL 15 leaves RDS standard support before the platform would upgrade it.
        ({"engine_version": "15"}, "engine_version", "one of '16', '17'"),
        ({"engine_version": 17}, "engine_version", "one of '16', '17'"),
        # Previous-generation classes (t2) and sizes RDS does not sell for PostgreSQL are refused before AWS does.
        ({"instance_class": "db.t2.micro"}, "instance_class", "an RDS for PostgreSQL instance class"),
        ({"instance_class": "db.t4g.nano"}, "instance_class", "an RDS for PostgreSQL instance class"),
        ({"instance_class": "db.m7g.medium"}, "instance_class", "an RDS for PostgreSQL instance class"),
        ({"instance_class": "t4g.micro"}, "instance_class", "an RDS for PostgreSQL instance class"),
        ({"allocated_storage_gib": 19}, "allocated_storage_gib", "a whole number from 20 to 1000"),
        ({"allocated_storage_gib": 1001}, "allocated_storage_gib", "a whole number from 20 to 1000"),
        # Autoscaling must leave room to grow, or RDS rejects the instance at apply time.
        (
            {"allocated_storage_gib": 50, "max_allocated_storage_gib": 30},
            "max_allocated_storage_gib",
            "None or a value above allocated_storage_gib (50)",
        ),
        (
            {"allocated_storage_gib": 50, "max_allocated_storage_gib": 50},
            "max_allocated_storage_gib",
            "above allocated_storage_gib (50)",
        ),
        ({"max_allocated_storage_gib": 20}, "max_allocated_storage_gib", "a whole number from 21 to 1000 or null"),
        ({"backup_retention_days": 0}, "backup_retention_days", "a whole number from 1 to 35"),
        ({"backup_retention_days": 36}, "backup_retention_days", "a whole number from 1 to 35"),
        ({"monitoring_interval_seconds": 20}, "monitoring_interval_seconds", "one of 0, 1, 5, 10, 15, 30, 60"),
        ({"log_retention_days": 10}, "log_retention_days", "a CloudWatch Logs retention"),
        ({"multi_az": "yes"}, "multi_az", "a boolean (true/false)"),
        ({"deletion_protection": None}, "deletion_protection", "a boolean (true/false)"),
        ({"storage_gib": 20}, "storage_gib", "one of 'engine_version'"),
    ],
)
def test_database_settings_reject_bad_values_naming_the_field(changes, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        MlflowDatabaseSettings(**changes)
    assert (error.value.where, error.value.field) == ("MlflowDatabaseSettings", field)
    assert fragment in error.value.allowed


def test_database_defaults_keep_the_data_and_values_at_each_limit_pass() -> None:
    default = MlflowDatabaseSettings()
    # Secure by default: the database survives a destroy and a mistaken delete unless an environment says otherwise.
    assert (default.deletion_protection, default.final_snapshot, default.backup_retention_days) == (True, True, 7)
    assert (default.engine_version, default.parameter_group_family) == ("17", "postgres17")
    assert MlflowDatabaseSettings(engine_version="16").parameter_group_family == "postgres16"
    edge = MlflowDatabaseSettings(allocated_storage_gib=1000, backup_retention_days=35, monitoring_interval_seconds=1)
    assert (edge.allocated_storage_gib, edge.max_allocated_storage_gib) == (1000, None)
    assert (
        MlflowDatabaseSettings(allocated_storage_gib=20, max_allocated_storage_gib=21).max_allocated_storage_gib == 21
    )
    for instance_class in ("db.t3.2xlarge", "db.t4g.micro", "db.r7i.16xlarge", "db.m6g.large"):
        assert MlflowDatabaseSettings(instance_class=instance_class).instance_class == instance_class


# --- the load balancer's name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hostname", "zone", "field", "fragment"),
    [
        ("mlflow.other.com", ZONE, "hostname", f"a name inside hosted_zone_name '{ZONE}'"),
        # The zone's apex is the zone, not a name inside it; a shared suffix is not a label boundary.
        (ZONE, ZONE, "hostname", "a name inside hosted_zone_name"),
        ("mlflowml.example.com", ZONE, "hostname", "a name inside hosted_zone_name"),
        ("MLflow.ml.example.com", ZONE, "hostname", HOSTNAME_ALLOWED),
        ("mlflow.ml.example.com.", ZONE, "hostname", HOSTNAME_ALLOWED),
        ("*.ml.example.com", ZONE, "hostname", HOSTNAME_ALLOWED),
        ("mlflow_1.ml.example.com", ZONE, "hostname", HOSTNAME_ALLOWED),
        # Terraform would evaluate it as an expression.
        ("${var.host}.ml.example.com", ZONE, "hostname", "text without '${'"),
        ("mlflow.ml.example.com", "ML.example.com", "hosted_zone_name", HOSTNAME_ALLOWED),
        ("mlflow.ml.example.com", "ml.example.com.", "hosted_zone_name", HOSTNAME_ALLOWED),
    ],
)
def test_ingress_settings_reject_names_outside_the_zone_or_malformed(hostname, zone, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        ingress(hostname, zone)
    assert (error.value.where, error.value.field, error.value.value) == (
        "MlflowIngressSettings",
        field,
        hostname if field == "hostname" else zone,
    )
    assert fragment in error.value.allowed


def test_ingress_accepts_names_at_any_depth_inside_the_zone() -> None:
    assert ingress().hostname == f"mlflow.{ZONE}"
    assert ingress(f"tracking.team-a.{ZONE}").hostname == f"tracking.team-a.{ZONE}"


# --- the tracking server ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        # A budget of one pod would block every node drain.
        ({"pod_disruption_budget": True, "replicas": 1}, "replicas", "2 or more when pod_disruption_budget"),
        # A load balancer must not serve anonymous requests.
        ({"ingress": ingress(), "authentication": "none"}, "authentication", "'basic-auth' when ingress is set"),
        ({"cpu_millicores": 1000, "cpu_limit_millicores": 500}, "cpu_limit_millicores", "a value >= cpu_millicores"),
        ({"cpu_millicores": 50}, "cpu_millicores", "a whole number from 100 to 16000"),
        # Faster than every 5 minutes hammers Secrets Manager; slower than daily lags a rotation too long.
        ({"secret_refresh_minutes": 2}, "secret_refresh_minutes", "a whole number from 5 to 1440"),
        ({"secret_refresh_minutes": 4}, "secret_refresh_minutes", "a whole number from 5 to 1440"),
        ({"secret_refresh_minutes": 2000}, "secret_refresh_minutes", "a whole number from 5 to 1440"),
        ({"replicas": 0}, "replicas", "a whole number from 1 to 10"),
        ({"replicas": 11}, "replicas", "a whole number from 1 to 10"),
        ({"memory_mib": 256}, "memory_mib", "a whole number from 512 to 65536"),
        ({"authentication": "oidc"}, "authentication", "one of 'basic-auth', 'none'"),
        # Nested sections report the full dotted path.
        ({"database": {"engine_version": "15"}}, "database.engine_version", "one of '16', '17'"),
        (
            {"ingress": {"hostname": "mlflow.other.com", "hosted_zone_name": ZONE}},
            "ingress.hostname",
            "a name inside hosted_zone_name",
        ),
        ({"ingress": {"hostname": "Mlflow.ml.example.com", "hosted_zone_name": ZONE}}, "ingress.hostname", "lower"),
    ],
)
def test_server_settings_reject_bad_values_naming_the_field(changes, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        MlflowSettings(**changes)
    assert (error.value.where, error.value.field) == ("MlflowSettings", field)
    assert fragment in error.value.allowed


def test_server_defaults_authenticate_and_values_at_each_limit_pass() -> None:
    default = MlflowSettings()
    assert (default.authentication, default.ingress, default.replicas, default.pod_disruption_budget) == (
        "basic-auth",
        None,
        1,
        False,
    )
    assert default.cpu_limit_millicores >= default.cpu_millicores
    assert [MlflowSettings(secret_refresh_minutes=m).secret_refresh_minutes for m in (5, 1440)] == [5, 1440]
    assert MlflowSettings(cpu_millicores=700, cpu_limit_millicores=700).cpu_limit_millicores == 700
    assert MlflowSettings(pod_disruption_budget=True, replicas=2).pod_disruption_budget is True
    # Without a load balancer, anonymous access (through kubectl port-forward only) is allowed.
    assert MlflowSettings(authentication="none").authentication == "none"
    assert MlflowSettings(ingress=ingress()).ingress == ingress()


# --- the environment rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "env", "field", "fragment"),
    [
        ({"dev": {"eks": None}}, "dev", "eks", "an EKS cluster while mlflow is set"),
        ({"staging": {"eks": None}}, "staging", "eks", "set mlflow to None as well"),
        # Production keeps its experiment history through a destroy and a week of point-in-time recovery.
        (
            {"prod": {"mlflow.database.deletion_protection": False}},
            "prod",
            "mlflow.database.deletion_protection",
            "True when protected is True",
        ),
        (
            {"prod": {"mlflow.database.final_snapshot": False}},
            "prod",
            "mlflow.database.final_snapshot",
            "True when protected is True",
        ),
        (
            {"prod": {"mlflow.database.backup_retention_days": 3}},
            "prod",
            "mlflow.database.backup_retention_days",
            "7 or more when protected is True",
        ),
        # A multi-AZ environment has no single point of failure: a standby and a pod per zone.
        ({"staging": {"mlflow.database.multi_az": False}}, "staging", "mlflow.database.multi_az", "multi_az is True"),
        ({"staging": {"mlflow.replicas": 1}}, "staging", "mlflow.replicas", "2 or more when multi_az is True"),
        ({"prod": {"mlflow.replicas": 1}}, "prod", "mlflow.replicas", "2 or more"),
        ({"staging": {"mlflow.authentication": "none"}}, "staging", "mlflow.authentication", "when ingress is set"),
        ({"staging": {"mlflow.ingress.hostname": "mlflow.other.com"}}, "staging", "mlflow.ingress.hostname", ZONE),
        ({"dev": {"mlflow.ingress.hostname": f"mlflow.{ZONE}"}}, "dev", "mlflow.ingress.hostname", "enabled section"),
        ({"dev": {"mlflow.secret_refresh_minutes": 2000}}, "dev", "mlflow.secret_refresh_minutes", "5 to 1440"),
        # What names or places production's data stays as the matrix says.
        ({"prod": {"mlflow": None}}, "prod", "mlflow", "the section stacks/matrix.py configures"),
    ],
)
def test_environment_rules_reject_unsafe_mlflow_overrides(overrides, env, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        with_overrides(overrides)
    assert (error.value.where, error.value.field) == (f"environment '{env}'", field)
    assert fragment in error.value.allowed


def test_environment_rules_accept_what_they_do_not_forbid() -> None:
    configs = with_overrides(
        {
            # Staging is not protected: its database may go with it.
            "staging": {"mlflow.database.deletion_protection": False, "mlflow.database.final_snapshot": False},
            "prod": {"mlflow.database.backup_retention_days": 7},
            # Kubeflow runs on EKS too, so it goes with it.
            "dev": {"eks": None, "mlflow": None, "kubeflow": None},
        }
    )
    assert configs["staging"].mlflow.database.deletion_protection is False
    assert configs["prod"].mlflow.database.backup_retention_days == 7
    assert (configs["dev"].eks, configs["dev"].mlflow, configs["dev"].kubeflow) == (None, None, None)
    # A multi-AZ environment already meets its rules in the matrix.
    for env in ("staging", "prod"):
        assert MATRIX[env].mlflow.database.multi_az and MATRIX[env].mlflow.replicas >= 2


# --- what the settings switch off is gone from the stack --------------------------------------------------

VARIANTS = {
    "dev": {"mlflow": None},
    "staging": {"mlflow.ingress": None, "mlflow.authentication": "none"},
    "prod": {"eks.in_cluster_components": False},
}


@pytest.fixture(scope="module")
def variants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The three environments with the overrides above, synthesized once the way main.py does."""
    configs = with_overrides(VARIANTS)
    outdir = tmp_path_factory.mktemp("mlflow-variants")
    app = cdktf.App(outdir=str(outdir))
    for env in VARIANTS:
        MlPlatformStack(app, configs[env], DeploymentSettings())
    app.synth()
    return {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in VARIANTS}


def mlflow_paths(stack: dict[str, Any]) -> list[str]:
    """Construct paths of every resource and data source of the MLflow feature (server and database)."""
    return [
        path_of(body)
        for block in ("resource", "data")
        for bodies in stack.get(block, {}).values()
        for body in bodies.values()
        if path_of(body).startswith(("platform/mlflow/", "platform/mlflow-database/"))
    ]


def test_without_mlflow_the_stack_has_no_mlflow_resource(variants, stacks) -> None:
    stack = variants["dev"]
    assert mlflow_paths(stack) == []
    assert mlflow_paths(stacks["dev"]), "the default dev stack has them"
    # Besides the system components, what stays in the cluster is Kubeflow's: its releases and the teams'
    # namespaces, without the ConfigMap giving each team MLflow's address.
    in_cluster = [path_of(r) for r in resources(stack, "helm_release").values() if r["namespace"] != "kube-system"]
    assert [p for p in in_cluster if not p.startswith("platform/kubeflow/")] == []
    namespaces = [n["metadata"]["name"] for n in resources(stack, "kubernetes_namespace_v1").values()]
    assert sorted(namespaces) == sorted(team.name for team in MATRIX["dev"].kubeflow.teams)
    assert resources(stack, "kubernetes_config_map_v1") == {}
    assert resources(stacks["dev"], "kubernetes_config_map_v1"), "the default dev stack has them"
    assert not [name for name in stack["output"] if name.startswith("mlflow_") and name != "mlflow_artifacts_bucket"]
    # The artifacts bucket belongs to storage and stays, for a later MLflow to find its history in.
    assert (
        output(stack, "mlflow_artifacts_bucket")["value"] == output(stacks["dev"], "mlflow_artifacts_bucket")["value"]
    )


def test_without_authentication_nothing_of_basic_auth_is_built(variants, stacks) -> None:
    stack = variants["staging"]
    values = server_values(stack)
    for key in ("extraArgs", "initContainers", "extraVolumes", "extraVolumeMounts"):
        assert key not in values, key
    assert "MLFLOW_AUTH_CONFIG_PATH" not in values["extraEnvVars"]
    assert values["deploymentAnnotations"] == {"secret.reloader.stakater.com/reload": "mlflow-database"}
    assert [(m["kind"], m["metadata"]["name"]) for m in manifests(stack)] == [
        ("SecretStore", "aws-secrets-manager"),
        ("ExternalSecret", "mlflow-database"),
    ]
    assert resources(stack, "aws_secretsmanager_secret") == {}
    assert "mlflow_admin_secret_arn" not in stack["output"]
    statements = policy(only(stack, "aws_iam_role_policy", "mlflow/secrets-irsa/permissions")["policy"])["Statement"]
    assert statements == secret_statements(stack, admin=False)
    assert "platform/mlflow/admin-secret" not in dependency_paths(stack, mlflow_releases(stack)["mlflow-credentials"])
    # Without a load balancer there is no certificate, record or Ingress, and clients use the Service.
    assert [p for p in mlflow_paths(stack) if "/ingress/" in p] == []
    assert output(stack, "mlflow_tracking_uri")["value"] == "http://mlflow.mlflow.svc.cluster.local"
    # The default staging stack, with authentication, has each of these.
    assert "extraArgs" in server_values(stacks["staging"]) and "mlflow_admin_secret_arn" in stacks["staging"]["output"]


def test_without_in_cluster_components_mlflow_keeps_only_its_aws_side(variants, stacks) -> None:
    stack = variants["prod"]
    in_cluster = [
        path_of(b)
        for k, bodies in stack["resource"].items()
        if k.startswith(("helm_", "kubernetes_"))
        for b in bodies.values()
    ]
    assert in_cluster == []
    # The roles, the admin secret and the certificate come with the first deploy, as the default has them.
    for kind, where in (
        ("aws_iam_role", "mlflow/server-irsa/role"),
        ("aws_iam_role", "mlflow/secrets-irsa/role"),
        ("aws_iam_role_policy", "mlflow/secrets-irsa/permissions"),
        ("aws_secretsmanager_secret", "mlflow/admin-secret"),
        ("aws_acm_certificate_validation", "mlflow/ingress/validation"),
    ):
        assert only(stack, kind, where) == only(stacks["prod"], kind, where), where
    # The alias record needs the Ingress's load balancer, so it waits for the second deploy.
    assert paths(stack, "aws_route53_record", "mlflow/") == {"platform/mlflow/ingress/validation-record"}
    assert "platform/mlflow/ingress/record" in paths(stacks["prod"], "aws_route53_record", "mlflow/")
    assert output(stack, "mlflow_tracking_uri")["value"] == "https://mlflow.ml.example.com"
