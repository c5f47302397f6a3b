"""EKS settings and their place in the matrix: bad values fail early and name the field, the rules hold per env."""

from __future__ import annotations

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.settings import EksClusterSettings, EksGpuNodeGroupSettings, EksNodeGroupSettings

from stacks.environment import EnvironmentConfig
from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides, load_environments
from tests.support.overrides import with_overrides

PUBLIC_CIDRS_ALLOWED = (
    "public IPv4 CIDR blocks of at most 256 addresses (prefix /24 to /32) such as '203.0.113.0/24' (never "
    "0.0.0.0/0; no private, shared 100.64.0.0/10, loopback, link-local, multicast or reserved space; the "
    "documentation ranges 192.0.2.0/24, 198.51.100.0/24 and 203.0.113.0/24 are accepted for examples)"
)
PRIVATE_CIDRS_ALLOWED = (
    "private IPv4 CIDR blocks such as '10.99.0.0/16' inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16 "
    "(RFC 1918) or 100.64.0.0/10 (RFC 6598) (never 0.0.0.0/0; prefix /8 or longer)"
)


# --- cluster settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        ({"public_access_cidrs": ("0.0.0.0/0",)}, "public_access_cidrs[0]", "never 0.0.0.0/0"),
        ({"public_access_cidrs": ("203.0.113.0/24", "0.0.0.0/0")}, "public_access_cidrs[1]", "never 0.0.0.0/0"),
        ({"public_access_cidrs": ("0.0.0.0/1",)}, "public_access_cidrs[0]", "prefix /24 to /32"),
        ({"public_access_cidrs": ("198.51.0.0/16",)}, "public_access_cidrs[0]", "prefix /24 to /32"),
        ({"public_access_cidrs": ("10.1.2.0/24",)}, "public_access_cidrs[0]", "no private"),
        ({"private_access_cidrs": ("198.51.100.0/24",)}, "private_access_cidrs[0]", "(RFC 1918)"),
        ({"public_access_cidrs": ("10.0.0.1/8",)}, "public_access_cidrs[0]", "CIDR"),
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "public_access_cidrs", "a list of public IPv4 CIDR"),
        ({"private_access_cidrs": ("0.0.0.0/0",)}, "private_access_cidrs[0]", "never 0.0.0.0/0"),
        ({"kubernetes_version": "1.29"}, "kubernetes_version", "one of '1.35', '1.36'"),
        ({"kubernetes_version": "1.32"}, "kubernetes_version", "one of '1.35', '1.36'"),
        ({"log_types": ("api", "authenticator")}, "log_types", "includes ('api', 'audit', 'authenticator')"),
        ({"log_types": ("api", "audit", "authenticator", "kubelet")}, "log_types[3]", "controllerManager"),
        ({"log_retention_days": 10}, "log_retention_days", "one of 1, 3, 5, 7, 14, 30"),
        ({"admin_role_arns": ("arn:aws:iam::123:user/me",)}, "admin_role_arns[0]", "IAM role ARNs"),
        (
            {"admin_role_arns": ("arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/A")},
            "admin_role_arns",
            "each item at most once",
        ),
        ({"support_type": "FOREVER"}, "support_type", "one of 'STANDARD', 'EXTENDED'"),
        ({"storage_reclaim_policy": "Recycle"}, "storage_reclaim_policy", "one of 'Retain', 'Delete'"),
        (
            {"cpu_node_group": EksNodeGroupSettings(min_size=0, desired_size=0)},
            "cpu_node_group.min_size",
            "a whole number from 1 to 100",
        ),
        (
            {"cpu_node_group": EksNodeGroupSettings(instance_types=("g5.xlarge",))},
            "cpu_node_group.instance_types",
            "non-GPU",
        ),
        ({"cpu_node_group": EksGpuNodeGroupSettings(min_size=1, desired_size=1)}, "cpu_node_group", "EksNodeGroup"),
        # A GPU group is built from GPU settings only (the GPU node group construct relies on it to count GPUs).
        ({"gpu_node_group": EksNodeGroupSettings()}, "gpu_node_group", "EksGpuNodeGroupSettings"),
        ({"deployer_admin_access": "yes"}, "deployer_admin_access", "a boolean (true/false)"),
        ({"deployer_admin_access": False}, "deployer_admin_access", "admin_role_arns listing the deploying role"),
        ({"in_cluster_components": "false"}, "in_cluster_components", "a boolean (true/false)"),
        ({"in_cluster_components": 0}, "in_cluster_components", "a boolean (true/false)"),
        ({"in_cluster_components": 1}, "in_cluster_components", "a boolean (true/false)"),
        ({"in_cluster_components": None}, "in_cluster_components", "a boolean (true/false)"),
    ],
)
def test_cluster_settings_reject_unsafe_or_unknown_values(changes, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings(**changes)
    assert error.value.where == "EksClusterSettings"
    assert error.value.field == field
    assert fragment in error.value.allowed


@pytest.mark.parametrize(
    ("field", "accepted", "allowed"),
    [
        ("public_access_cidrs", "203.0.113.7/32", PUBLIC_CIDRS_ALLOWED),
        ("private_access_cidrs", "10.0.0.0/8", PRIVATE_CIDRS_ALLOWED),
    ],
)
def test_cidr_rules_say_what_a_specific_block_is(field, accepted, allowed) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings(**{field: (accepted, "0.0.0.0/0")})
    assert (error.value.field, error.value.value, error.value.allowed) == (f"{field}[1]", "0.0.0.0/0", allowed)


def test_public_endpoint_only_with_named_cidrs() -> None:
    assert EksClusterSettings().endpoint_public_access is False
    settings = EksClusterSettings(public_access_cidrs=("203.0.113.0/24",), private_access_cidrs=("172.16.0.0/12",))
    assert settings.endpoint_public_access is True
    assert settings.public_access_cidrs == ("203.0.113.0/24",)


def test_the_deployer_entry_can_be_left_out_when_admin_roles_are_named() -> None:
    admin = "arn:aws:iam::123456789012:role/PlatformAdmins"
    settings = EksClusterSettings(admin_role_arns=(admin,), deployer_admin_access=False)
    assert (settings.admin_role_arns, settings.deployer_admin_access) == ((admin,), False)


# --- node group settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, allowed",
    [
        ({"min_size": 5, "max_size": 2, "desired_size": 2}, "min_size", "a value <= max_size (2)"),
        ({"desired_size": 9}, "desired_size", "a value from min_size (2) to max_size (6)"),
        ({"max_size": 0, "min_size": 0, "desired_size": 0}, "max_size", "a whole number from 1 to 100"),
        ({"capacity_type": "RESERVED"}, "capacity_type", "one of 'ON_DEMAND', 'SPOT'"),
        ({"instance_types": ()}, "instance_types", "(at least 1 item)"),
        ({"instance_types": ["m6i.large"]}, "instance_types", "a list of EC2 instance type"),
        ({"instance_types": ("ml.m5.large",)}, "instance_types[0]", "an EC2 instance type such as 'm6i.large'"),
        ({"disk_size_gib": 10}, "disk_size_gib", "a whole number from 20 to 2000"),
        ({"min_size": "2"}, "min_size", "a whole number from 0 to 100"),
        ({"min_size": True}, "min_size", "a whole number from 0 to 100"),
        ({"nodes": 3}, "nodes", "one of 'instance_types', 'min_size'"),
    ],
)
def test_node_group_settings_reject_bad_shapes(changes, field, allowed) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksNodeGroupSettings(**changes)
    assert (error.value.where, error.value.field) == ("EksNodeGroupSettings", field)
    assert allowed in error.value.allowed


def test_min_greater_than_max_names_both_fields() -> None:
    with pytest.raises(ConfigurationError, match=r"'min_size' = 5 .* <= max_size \(2\)"):
        EksNodeGroupSettings(min_size=5, max_size=2, desired_size=2)


@pytest.mark.parametrize(
    "instance_types, field, fragment",
    [
        (("m6i.xlarge",), "instance_types[0]", "NVIDIA GPU instance type"),
        (("inf2.xlarge",), "instance_types[0]", "NVIDIA GPU instance type"),
        (("g5g.xlarge",), "instance_types[0]", "NVIDIA GPU instance type (x86_64)"),
        (("g5.xlarge", "m6i.xlarge"), "instance_types[1]", "NVIDIA GPU instance type"),
        (("g5.xlarge", "g5.12xlarge"), "instance_types", "same number of GPUs"),
    ],
)
def test_gpu_group_accepts_only_nvidia_types_of_one_shape(instance_types, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksGpuNodeGroupSettings(instance_types=instance_types)
    assert (error.value.where, error.value.field) == ("EksGpuNodeGroupSettings", field)
    assert fragment in error.value.allowed


@pytest.mark.parametrize(
    "instance_types, gpus",
    [(("g5.xlarge", "g5.2xlarge"), 1), (("g5.12xlarge", "g6.12xlarge"), 4), (("p4d.24xlarge",), 8)],
)
def test_gpu_group_counts_the_gpus_of_its_one_node_shape(instance_types, gpus) -> None:
    assert EksGpuNodeGroupSettings(instance_types=instance_types).gpus_per_instance == gpus


def test_gpu_group_defaults_scale_from_zero_on_spot() -> None:
    gpu = EksGpuNodeGroupSettings()
    assert (gpu.min_size, gpu.desired_size, gpu.capacity_type, gpu.disk_size_gib) == (0, 0, "SPOT", 100)


# --- the environment matrix -------------------------------------------------------------------------------


def test_a_gpu_group_in_dev_is_rejected_by_the_matrix() -> None:
    dev = MATRIX["dev"]
    data = {name: getattr(dev, name) for name in type(dev).model_fields}
    data["eks"] = dev.eks.model_copy(update={"gpu_node_group": MATRIX["staging"].eks.gpu_node_group})
    with pytest.raises(ConfigurationError) as error:
        EnvironmentConfig(**data)
    assert error.value.where == "environment 'dev'"
    assert error.value.field == "eks.gpu_node_group.instance_types"
    assert "gpu_enabled is False" in error.value.allowed


def test_dev_gpu_group_cannot_be_switched_on_by_override_either() -> None:
    with pytest.raises(ConfigurationError, match=r"eks\.gpu_node_group\.max_size.*enabled section"):
        with_overrides({"dev": {"eks.gpu_node_group.max_size": 2}})
    with pytest.raises(ConfigurationError) as error:
        with_overrides({"dev": {"eks.gpu_node_group": {"instance_types": ["g5.xlarge"]}}})
    assert (error.value.where, error.value.field) == ("environment 'dev'", "eks.gpu_node_group.instance_types")
    assert "gpu_enabled is False for dev" in error.value.allowed
    with pytest.raises(ConfigurationError, match=r"eks\.cpu_node_group\.instance_types.*non-GPU"):
        with_overrides({"dev": {"eks.cpu_node_group.instance_types": ["g5.xlarge"]}})


def test_node_group_min_above_max_via_override_names_environment_and_field() -> None:
    with pytest.raises(ConfigurationError) as error:
        apply_overrides(MATRIX, {"staging": {"eks.gpu_node_group.min_size": 5}})
    assert error.value.where == "environment 'staging'"
    assert error.value.field == "eks.gpu_node_group.min_size"
    assert error.value.allowed == "a value <= max_size (4)"


def test_public_endpoint_overrides() -> None:
    configs = with_overrides({"dev": {"eks.public_access_cidrs": ["203.0.113.0/24"]}})
    assert configs["dev"].eks.public_access_cidrs == ("203.0.113.0/24",)
    assert configs["dev"].eks.endpoint_public_access is True
    assert configs["prod"].eks.endpoint_public_access is False
    with pytest.raises(ConfigurationError) as error:
        with_overrides({"dev": {"eks.public_access_cidrs": ["0.0.0.0/0"]}})
    assert (error.value.where, error.value.field) == ("environment 'dev'", "eks.public_access_cidrs[0]")
    assert "never 0.0.0.0/0" in error.value.allowed
    with pytest.raises(ConfigurationError) as error:
        with_overrides({"prod": {"eks.public_access_cidrs": ["203.0.113.0/24"]}})
    assert (error.value.where, error.value.field) == ("environment 'prod'", "eks.public_access_cidrs")
    assert "protected" in error.value.allowed


def test_matrix_gives_every_environment_a_cluster_and_gpus_only_where_enabled() -> None:
    for name, config in load_environments(environ={}).items():
        assert config.eks is not None
        assert config.eks.endpoint_public_access is False
        assert (config.eks.gpu_node_group is not None) == config.gpu_enabled, name


def test_in_cluster_components_is_overridable_per_environment_and_type_checked() -> None:
    configs = with_overrides({"prod": {"eks.in_cluster_components": False}})
    assert {name: config.eks.in_cluster_components for name, config in configs.items()} == {
        "dev": True,
        "staging": True,
        "prod": False,
    }
    with pytest.raises(ConfigurationError) as error:
        with_overrides({"staging": {"eks.in_cluster_components": "false"}})
    assert (error.value.where, error.value.field) == ("environment 'staging'", "eks.in_cluster_components")
    assert error.value.allowed == "a boolean (true/false)"
