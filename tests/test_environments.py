"""The environment matrix: shape of each environment, cross-field rules, and user overrides."""

from __future__ import annotations

import json

import pytest
from constructs.validation import ConfigurationError

from stacks.environments import (
    BASE_MATRIX,
    ENVIRONMENT_NAMES,
    OVERRIDES_ENV,
    OVERRIDES_FILE_ENV,
    apply_overrides,
    load_environments,
)


def _load(overrides: dict) -> dict:
    return load_environments(environ={OVERRIDES_ENV: json.dumps(overrides)})


def test_matrix_has_exactly_the_three_environments_and_validates() -> None:
    configs = load_environments(environ={})
    assert tuple(configs) == ENVIRONMENT_NAMES
    assert [c.name for c in configs.values()] == list(ENVIRONMENT_NAMES)


def test_dev_is_small_and_has_no_gpu_while_prod_is_highly_available() -> None:
    dev, staging, prod = (BASE_MATRIX[e] for e in ENVIRONMENT_NAMES)
    assert not dev.gpu_enabled and not dev.multi_az
    assert dev.network.az_count == 2 and dev.network.nat_gateways == "single"
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


def test_an_override_changes_only_the_named_field() -> None:
    configs = _load({"staging": {"network.az_count": 4, "budget.monthly_limit_usd": 900}})
    assert configs["staging"].network.az_count == 4
    assert configs["staging"].budget.monthly_limit_usd == 900
    assert configs["staging"].network.vpc_cidr == BASE_MATRIX["staging"].network.vpc_cidr
    assert configs["prod"] == BASE_MATRIX["prod"]


def test_list_overrides_become_tuples_and_files_are_read(tmp_path) -> None:
    path = tmp_path / "overrides.json"
    path.write_text(json.dumps({"dev": {"budget.alert_emails": ["a@example.com", "b@example.com"]}}))
    configs = load_environments(environ={OVERRIDES_FILE_ENV: str(path)})
    assert configs["dev"].budget.alert_emails == ("a@example.com", "b@example.com")


@pytest.mark.parametrize(
    ("overrides", "env", "field", "allowed_fragment"),
    [
        ({"dev": {"region": "moon-east-1"}}, "dev", "region", "us-east-1"),
        ({"dev": {"network.az_count": 9}}, "dev", "network.az_count", "from 2 to 6"),
        ({"staging": {"network.vpc_cidr": "10.30.0.0/16"}}, "prod", "network.vpc_cidr", "does not overlap staging"),
        ({"prod": {"network.vpc_cidr": "10.10.128.0/17"}}, "prod", "network.vpc_cidr", "does not overlap dev"),
        ({"dev": {"network.vpc_cidr": "10.10.0.0/8"}}, "dev", "network.vpc_cidr", "prefix from /16 to /20"),
        ({"prod": {"tags.team": ""}}, "prod", "tags.team", "non-empty tag value"),
        ({"prod": {"network.nat_gateways": "single"}}, "prod", "network.nat_gateways", "'per_az' when multi_az"),
        ({"dev": {"network.nat_gateways": "two"}}, "dev", "network.nat_gateways", "'single', 'per_az'"),
        ({"dev": {"budget.monthly_limit_usd": -5}}, "dev", "budget.monthly_limit_usd", "positive"),
        ({"dev": {"budget.alert_emails": ["not-an-email"]}}, "dev", "budget.alert_emails", "e-mail"),
        ({"dev": {"storage.backup_retention_days": 5}}, "dev", "storage.backup_retention_days", "from 31"),
        ({"prod": {"storage.force_destroy": True}}, "prod", "storage.force_destroy", "prevent_destroy"),
        ({"dev": {"network.flow_log_retention_days": 10}}, "dev", "network.flow_log_retention_days", "one of"),
        ({"dev": {"network.interface_endpoints": ["sagemaker"]}}, "dev", "network.interface_endpoints", "one of"),
        ({"dev": {"keys.deletion_window_days": 3}}, "dev", "keys.deletion_window_days", "from 7 to 30"),
        ({"dev": {"network.az_cont": 2}}, "dev", "network.az_cont", "'az_count'"),
        ({"dev": {"name": "qa"}}, "dev", "name", "any field but 'name'"),
    ],
)
def test_bad_values_name_environment_field_and_what_is_allowed(overrides, env, field, allowed_fragment) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _load(overrides)
    message = str(caught.value)
    assert f"environment '{env}'" in message
    assert f"field '{field}'" in message
    assert allowed_fragment in message


def test_gpu_instance_types_are_rejected_where_gpus_are_disabled() -> None:
    from dataclasses import dataclass, replace

    from stacks.environments import validate_environment

    @dataclass(frozen=True)
    class ComputeSection:
        instance_types: tuple[str, ...]

    # Any settings field named like an instance type is checked, whatever section it lives in.
    patched = replace(BASE_MATRIX["dev"])
    object.__setattr__(patched, "budget", ComputeSection(instance_types=("m6i.large", "g5.2xlarge")))
    with pytest.raises(ConfigurationError) as caught:
        validate_environment(patched)
    assert "environment 'dev'" in str(caught.value)
    assert "field 'budget.instance_types'" in str(caught.value)
    assert "non-GPU instance types only" in str(caught.value)


@pytest.mark.parametrize(
    ("environ", "field"),
    [
        ({OVERRIDES_ENV: "{not json"}, OVERRIDES_ENV),
        ({OVERRIDES_ENV: "[1, 2]"}, OVERRIDES_ENV),
        ({OVERRIDES_FILE_ENV: "/nonexistent/overrides.json"}, OVERRIDES_FILE_ENV),
    ],
)
def test_malformed_override_sources_are_clear_errors(environ, field) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ=environ)
    assert f"field '{field}'" in str(caught.value)


def test_unknown_environment_in_overrides_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(BASE_MATRIX, {"qa": {"region": "us-east-1"}})
    assert "'dev', 'staging', 'prod'" in str(caught.value)
