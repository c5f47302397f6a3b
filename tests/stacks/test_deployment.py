"""Deployment settings come from ML_PLATFORM_* variables; a bad one names the variable and what is allowed."""

from __future__ import annotations

import pytest
from constructs.core.errors import ConfigurationError

from stacks.deployment import DeploymentSettings, load_deployment


def test_defaults_are_a_partial_s3_backend_in_us_east_1(clean_env) -> None:
    settings = load_deployment()
    assert (settings.backend, settings.state_bucket, settings.state_region) == ("s3", None, "us-east-1")
    assert settings.lock_table is None and settings.emulator_endpoint is None


def test_every_setting_is_read_from_its_variable_and_empty_means_unset(clean_env) -> None:
    clean_env.setenv("ML_PLATFORM_BACKEND", "local")
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", "acme-tf-state")
    clean_env.setenv("ML_PLATFORM_STATE_REGION", "eu-west-1")
    clean_env.setenv("ML_PLATFORM_LOCK_TABLE", "")
    clean_env.setenv("ML_PLATFORM_EMULATOR_ENDPOINT", "http://localhost:4566")
    assert load_deployment() == DeploymentSettings(
        backend="local",
        state_bucket="acme-tf-state",
        state_region="eu-west-1",
        lock_table=None,
        emulator_endpoint="http://localhost:4566",
    )


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("ML_PLATFORM_BACKEND", "consul", "'s3', 'local'"),
        ("ML_PLATFORM_STATE_BUCKET", "Not_A_Bucket", "S3 bucket name"),
        ("ML_PLATFORM_STATE_BUCKET", "192.168.5.4", "not an IP address"),
        ("ML_PLATFORM_STATE_REGION", '${file("/etc/hostname")}', "template expression"),
        ("ML_PLATFORM_STATE_REGION", "us-east-1\n", "AWS region"),
        ("ML_PLATFORM_STATE_REGION", "zz-moon-1", "AWS region"),
        ("ML_PLATFORM_LOCK_TABLE", "a b", "DynamoDB table name"),
        ("ML_PLATFORM_EMULATOR_ENDPOINT", "http://10.0.0.5:4566", "loopback"),
        ("ML_PLATFORM_EMULATOR_ENDPOINT", "https://s3.amazonaws.com", "loopback"),
        ("ML_PLATFORM_EMULATOR_ENDPOINT", "127.0.0.1:4566", "loopback"),
    ],
)
def test_bad_values_name_the_variable(clean_env, variable, value, fragment) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigurationError) as caught:
        load_deployment()
    assert (caught.value.where, caught.value.field, caught.value.value) == ("deployment", variable, value)
    assert fragment in caught.value.allowed


def test_settings_are_immutable() -> None:
    settings = DeploymentSettings()
    with pytest.raises(ValueError, match="frozen"):
        settings.backend = "local"  # type: ignore[misc]
