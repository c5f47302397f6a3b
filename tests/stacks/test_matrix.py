"""The environment matrix and its overrides: the shape of each environment, the rules between sections and
environments, and overrides that name the environment, the dotted field and what is allowed."""

from __future__ import annotations

import json

import pytest
from constructs.core.errors import ConfigurationError

from stacks.environment import EnvironmentConfig, leaves, validate_matrix
from stacks.matrix import ENVIRONMENT_NAMES, MATRIX
from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, apply_overrides, load_environments


def _load(overrides: dict) -> dict[str, EnvironmentConfig]:
    return load_environments(environ={OVERRIDES_ENV: json.dumps(overrides)})


def test_matrix_has_exactly_the_three_environments_and_validates() -> None:
    configs = load_environments(environ={})
    assert tuple(configs) == ENVIRONMENT_NAMES == ("dev", "staging", "prod")
    assert [c.name for c in configs.values()] == list(ENVIRONMENT_NAMES)
    assert configs == dict(MATRIX)


def test_dev_is_small_and_has_no_gpu_while_prod_is_highly_available() -> None:
    dev, staging, prod = (MATRIX[e] for e in ENVIRONMENT_NAMES)
    assert not dev.gpu_enabled and not dev.multi_az
    assert dev.network.az_count == 2 and dev.network.nat_gateways == "single"
    assert dev.training is None and dev.eks is not None and dev.eks.gpu_node_group is None
    assert prod.multi_az and prod.network.az_count == 3 and prod.network.nat_gateways == "per_az"
    # Staging mirrors prod's shape so a change is proven before it reaches prod.
    assert (staging.multi_az, staging.network.az_count, staging.network.nat_gateways) == (
        prod.multi_az,
        prod.network.az_count,
        prod.network.nat_gateways,
    )
    assert staging.budget.monthly_limit_usd < prod.budget.monthly_limit_usd
    assert prod.storage.prevent_destroy and not prod.storage.force_destroy
    assert dev.storage.force_destroy and not dev.storage.prevent_destroy
    assert (
        prod.storage.backup_retention_days >= staging.storage.backup_retention_days >= dev.storage.backup_retention_days
    )


def test_names_and_tags_derive_from_the_environment() -> None:
    prod = MATRIX["prod"]
    assert prod.name_prefix == "mlp-prod"
    assert prod.resource_tags == {
        "environment": "prod",
        "team": "ml-platform",
        "cost_center": "cc-4711",
        "project": "mlp",
    }
    # The order is the order of the owner tag keys, which the synthesized default_tags follow.
    assert list(prod.resource_tags) == ["environment", "team", "cost_center", "project"]


def test_an_override_changes_only_the_named_field() -> None:
    four_zones = ["use1-az1", "use1-az2", "use1-az4", "use1-az6"]
    configs = _load({"staging": {"network.zone_ids": four_zones, "budget.monthly_limit_usd": 900}})
    assert configs["staging"].network.zone_ids == tuple(four_zones)
    assert configs["staging"].budget.monthly_limit_usd == 900
    assert configs["staging"].network.vpc_cidr == MATRIX["staging"].network.vpc_cidr
    assert configs["prod"] == MATRIX["prod"]
    assert MATRIX["staging"].network.az_count == 3, "the matrix itself is never changed"


def test_list_overrides_become_tuples_and_files_are_read(tmp_path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"dev": {"budget.alert_emails": ["a@example.com", "b@example.com"]}}))
    configs = load_environments(environ={OVERRIDES_FILE_ENV: str(path)})
    assert configs["dev"].budget.alert_emails == ("a@example.com", "b@example.com")


def test_a_whole_section_can_be_replaced_by_an_object() -> None:
    section = {"vpc_cidr": "10.11.0.0/16", "zone_ids": ["use1-az1", "use1-az2"], "nat_gateways": "single"}
    configs = _load({"dev": {"network": section}})
    assert configs["dev"].network.vpc_cidr == "10.11.0.0/16"
    assert configs["dev"].network.flow_log_retention_days == 90, "an unset field of a replaced section is its default"


def test_overrides_that_only_make_sense_together_can_be_given_together() -> None:
    # Each alone breaks a rule across sections (multi-AZ needs a NAT per AZ, 3 AZs, a database standby and two
    # tracking server pods); together they hold.
    together = {
        "multi_az": True,
        "network.nat_gateways": "per_az",
        "network.zone_ids": ["use1-az1", "use1-az2", "use1-az4"],
        "mlflow.database.multi_az": True,
        "mlflow.replicas": 2,
    }
    assert _load({"dev": together})["dev"].multi_az
    with pytest.raises(ConfigurationError) as caught:
        _load({"dev": {"multi_az": True}})
    assert caught.value.field == "network.nat_gateways"


@pytest.mark.parametrize(
    ("overrides", "env", "field", "allowed_fragment"),
    [
        ({"dev": {"region": "moon-east-1"}}, "dev", "region", "us-east-1"),
        ({"dev": {"network.zone_ids": ["use1-az1"]}}, "dev", "network.zone_ids", "(2 to 6 items)"),
        ({"staging": {"network.vpc_cidr": "10.30.0.0/16"}}, "staging", "network.vpc_cidr", "does not overlap prod"),
        ({"staging": {"network.vpc_cidr": "10.10.128.0/17"}}, "staging", "network.vpc_cidr", "does not overlap dev"),
        ({"dev": {"network.vpc_cidr": "10.10.0.0/8"}}, "dev", "network.vpc_cidr", "prefix from /16 to /20"),
        ({"prod": {"tags.team": ""}}, "prod", "tags.team", "tag value of 1-256"),
        ({"prod": {"network.nat_gateways": "single"}}, "prod", "network.nat_gateways", "'per_az' when multi_az"),
        ({"dev": {"network.nat_gateways": "two"}}, "dev", "network.nat_gateways", "'single', 'per_az'"),
        ({"dev": {"budget.monthly_limit_usd": -5}}, "dev", "budget.monthly_limit_usd", "from 1 to 1000000"),
        ({"dev": {"budget.alert_emails": ["not-an-email"]}}, "dev", "budget.alert_emails[0]", "e-mail"),
        ({"dev": {"storage.backup_retention_days": 5}}, "dev", "storage.backup_retention_days", "from 31"),
        ({"prod": {"storage.force_destroy": True}}, "prod", "storage.force_destroy", "prevent_destroy"),
        ({"dev": {"network.flow_log_retention_days": 10}}, "dev", "network.flow_log_retention_days", "one of"),
        ({"dev": {"network.interface_endpoints": ["sagemaker"]}}, "dev", "network.interface_endpoints[0]", "one of"),
        ({"dev": {"keys.deletion_window_days": 3}}, "dev", "keys.deletion_window_days", "from 7 to 30"),
        ({"dev": {"network.zone_id": ["use1-az1"]}}, "dev", "network.zone_id", "'zone_ids'"),
        ({"dev": {"name": "qa"}}, "dev", "name", "'dev': the value in stacks/matrix.py"),
        ({"dev": {"training.max_size": 2}}, "dev", "training.max_size", "a path into an enabled section"),
        ({"dev": {"network": {"zone_ids": ["use1-az1", "use1-az2"], "typo": 1}}}, "dev", "network.typo", "one of"),
    ],
)
def test_bad_values_name_environment_field_and_what_is_allowed(overrides, env, field, allowed_fragment) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load(overrides)
    message = str(caught.value)
    assert f"environment '{env}'" in message
    assert f"field '{field}'" in message
    assert allowed_fragment in message


def test_gpu_instance_types_are_rejected_wherever_gpus_are_disabled() -> None:
    # Every field named like an instance type is checked, whatever section it lives in.
    for overrides, field in (
        ({"eks.cpu_node_group.instance_types": ["m6i.large", "g5.2xlarge"]}, "eks.cpu_node_group.instance_types"),
        ({"sagemaker_training.instance_type": "ml.p4d.24xlarge"}, "sagemaker_training.instance_type"),
        ({"sagemaker.variants": [{"name": "a"}, {"name": "b", "instance_type": "ml.g6.xlarge"}]}, None),
    ):
        with pytest.raises(ConfigurationError) as caught:
            _load({"dev": overrides})
        assert caught.value.where == "environment 'dev'"
        if field is not None:
            assert caught.value.field == field
    instance_paths = [path for path, _ in leaves(MATRIX["staging"]) if "instance_type" in path.rsplit(".", 1)[-1]]
    assert {
        "eks.cpu_node_group.instance_types",
        "eks.gpu_node_group.instance_types",
        "training.instance_types",
        "sagemaker.variants[0].instance_type",
        "sagemaker_training.instance_type",
    } <= set(instance_paths)


def test_the_same_gpu_types_are_fine_where_gpus_are_enabled() -> None:
    configs = _load({"staging": {"sagemaker_training.instance_type": "ml.p4d.24xlarge"}})
    assert configs["staging"].sagemaker_training is not None
    assert configs["staging"].sagemaker_training.instance_type == "ml.p4d.24xlarge"


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({OVERRIDES_ENV: "{not json"}, OVERRIDES_ENV),
        ({OVERRIDES_ENV: "[1, 2]"}, OVERRIDES_ENV),
        ({OVERRIDES_ENV: '{"dev": [1]}'}, OVERRIDES_ENV),
        ({OVERRIDES_FILE_ENV: "/nonexistent/overrides.json"}, OVERRIDES_FILE_ENV),
    ],
)
def test_malformed_override_sources_are_clear_errors(environ, field) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ=environ)
    assert f"field '{field}'" in str(caught.value)


def test_unknown_environment_in_overrides_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"qa": {"region": "us-east-1"}})
    assert "'dev', 'staging', 'prod'" in str(caught.value)


def test_matrix_rules_across_environments() -> None:
    renamed = {**MATRIX, "dev": MATRIX["staging"]}
    with pytest.raises(ConfigurationError) as caught:
        validate_matrix(renamed)
    assert (caught.value.where, caught.value.field) == ("environment 'dev'", "name")


def test_a_matrix_entry_built_with_a_broken_rule_names_its_environment() -> None:
    dev = MATRIX["dev"]
    fields = {name: getattr(dev, name) for name in type(dev).model_fields}
    with pytest.raises(ConfigurationError) as caught:
        EnvironmentConfig(**{**fields, "multi_az": True})
    assert (caught.value.where, caught.value.field) == ("environment 'dev'", "network.nat_gateways")
