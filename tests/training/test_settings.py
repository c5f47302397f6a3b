"""The GPU training cluster's settings: every rule names its field, the documented alternatives pass, and the
environment matrix gives the cluster to staging and prod only, with overrides checked by the same rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.training.settings import GpuTrainingClusterSettings

from stacks.environment import EnvironmentConfig
from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides, load_environments

# The allowed text of data_prefix (S3KeyPrefix), shared with every bucket grant.
RELATIVE_PREFIX = "a relative S3 key prefix ending in '/'"


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"min_size": 3, "max_size": 2}, "min_size", "a value <= max_size (2)"),
        ({"instance_types": ("g5.12xlarge", "p4d.24xlarge")}, "instance_types", "the same GPU count"),
        ({"instance_types": ("g5.12xlarge", "x9.huge")}, "instance_types[1]", "an NVIDIA GPU instance type"),
        ({"instance_types": ("m6i.large", "c6i.large")}, "instance_types[0]", "an NVIDIA GPU instance type"),
        ({"instance_types": ("p3.8xlarge", "g4dn.12xlarge")}, "instance_types", "Turing or newer GPUs: p3.8xlarge"),
        ({"instance_types": ("g6e.12xlarge", "g5.12xlarge")}, "instance_types", "at least the GPU memory"),
        ({"instance_types": ("g5.12xlarge",)}, "instance_types", "at least two types when spot is used"),
        ({"instance_types": ("g5.12xlarge", "g5.12xlarge")}, "instance_types", "each item at most once"),
        ({"instance_types": ["g5.12xlarge", "g6.12xlarge"]}, "instance_types", "a list of"),
        ({"max_size": 0}, "max_size", "from 1 to 100"),
        ({"on_demand_base_capacity": 3}, "on_demand_base_capacity", "from 0 to max_size (2)"),
        ({"on_demand_percentage_above_base": 101}, "on_demand_percentage_above_base", "from 0 to 100"),
        ({"root_volume_size_gb": 50}, "root_volume_size_gb", "from 100 to 16384"),
        ({"root_device_name": "/dev/sda1"}, "root_device_name", "'/dev/xvda', the root device of the AMI"),
        ({"ami_ssm_parameter": "ami-0123456789abcdef0"}, "ami_ssm_parameter", "the name of an SSM parameter"),
        ({"imds_hop_limit": 3}, "imds_hop_limit", "a whole number from 1 to 2"),
        (
            {"efa_enabled": True, "instance_types": ("g5.xlarge", "g6.xlarge")},
            "efa_enabled",
            "g5.xlarge, g6.xlarge have no EFA",
        ),
        # The dataset prefix reaches the node's script (DATA_PREFIX) only through this field.
        ({"data_prefix": "/datasets"}, "data_prefix", RELATIVE_PREFIX),
        ({"data_prefix": "a/../b/"}, "data_prefix", RELATIVE_PREFIX),
        ({"data_prefix": "data sets/"}, "data_prefix", RELATIVE_PREFIX),
        ({"data_prefix": "datasets"}, "data_prefix", RELATIVE_PREFIX),
        # So does the checkpoint grace period (CHECKPOINT_GRACE_SECONDS): a spot notice leaves about 120 s.
        ({"checkpoint_grace_seconds": 200}, "checkpoint_grace_seconds", "a whole number from 5 to 110"),
        ({"checkpoint_grace_seconds": 0}, "checkpoint_grace_seconds", "a whole number from 5 to 110"),
        ({"checkpoint_grace_seconds": True}, "checkpoint_grace_seconds", "a whole number from 5 to 110"),
        ({"termination_heartbeat_seconds": 100}, "termination_heartbeat_seconds", "from 120 (checkpoint_grace"),
        (
            {"checkpoint_grace_seconds": 110, "termination_heartbeat_seconds": 169},
            "termination_heartbeat_seconds",
            "from 170 (checkpoint_grace_seconds + 60 s to sync) to 7200",
        ),
        ({"idle_minutes": 42}, "idle_minutes", "a multiple of 5 from 15 to 1440"),
        ({"idle_minutes": 10}, "idle_minutes", "a multiple of 5 from 15 to 1440"),
        ({"idle_gpu_utilization_percent": 0}, "idle_gpu_utilization_percent", "from 1 to 50"),
        ({"scale_to_zero_cron": "every night"}, "scale_to_zero_cron", "a 5-field cron expression"),
        ({"scale_to_zero_cron": "0 20 * * *", "schedule_time_zone": "CET+1"}, "schedule_time_zone", "IANA time zone"),
        ({"schedule_time_zone": ""}, "schedule_time_zone", "IANA time zone"),
        ({"scale_to_zero_cron": "0 20 * * *", "min_size": 1}, "min_size", "0 when scale_to_zero_cron is set"),
        ({"ecr_repository_arns": ("arn:aws:s3:::bucket",)}, "ecr_repository_arns[0]", "ECR repository ARNs"),
        ({"log_retention_days": 10}, "log_retention_days", "one of 1, 3, 5"),
        ({"notification_emails": ("not-an-address",)}, "notification_emails[0]", "e-mail addresses"),
    ],
)
def test_bad_settings_name_the_field(overrides: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        GpuTrainingClusterSettings(**overrides)
    assert caught.value.where == "GpuTrainingClusterSettings"
    assert caught.value.field == field
    assert fragment in str(caught.value)


@pytest.mark.parametrize("minutes", [15, 60, 1440])
def test_idle_minutes_accept_whole_alarm_periods(minutes: int) -> None:
    assert GpuTrainingClusterSettings(idle_minutes=minutes).idle_minutes == minutes


def test_settings_accept_the_documented_alternatives() -> None:
    ubuntu = "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-ubuntu-24.04/latest/ami-id"
    settings = GpuTrainingClusterSettings(
        instance_types=("p4d.24xlarge", "p4de.24xlarge"),
        ami_ssm_parameter=ubuntu,
        root_device_name="/dev/sda1",
        efa_enabled=True,
        imds_hop_limit=2,
        data_prefix="",
        scale_to_zero_cron="30 19 * * MON-FRI",
        schedule_time_zone="Europe/Berlin",
    )
    assert settings.instance_types == ("p4d.24xlarge", "p4de.24xlarge")
    assert settings.gpus_per_node == 8
    # On-demand only needs no second type, and a proprietary-driver AMI may run Volta GPUs.
    proprietary = "/ml-platform/amis/gpu-training-proprietary-driver"
    assert GpuTrainingClusterSettings(
        instance_types=("p3.8xlarge",), on_demand_percentage_above_base=100, ami_ssm_parameter=proprietary
    ).instance_types == ("p3.8xlarge",)


@pytest.mark.parametrize("prefix", ["", "datasets/", "year=2024/", "datasets/imagenet-1k/v2.1/"])
def test_dataset_prefixes_the_script_can_use_are_accepted(prefix: str) -> None:
    assert GpuTrainingClusterSettings(data_prefix=prefix).data_prefix == prefix


@pytest.mark.parametrize("seconds", [5, 110])
def test_checkpoint_grace_limits_are_inclusive(seconds: int) -> None:
    settings = GpuTrainingClusterSettings(checkpoint_grace_seconds=seconds, termination_heartbeat_seconds=170)
    assert settings.checkpoint_grace_seconds == seconds


# --- the environment matrix ----------------------------------------------------------------------------------


def test_matrix_gives_training_to_staging_and_prod_only() -> None:
    assert MATRIX["dev"].training is None
    staging, prod = MATRIX["staging"].training, MATRIX["prod"].training
    assert staging is not None and prod is not None
    assert staging.max_size < prod.max_size
    assert staging.on_demand_percentage_above_base == 0 and prod.on_demand_percentage_above_base == 100
    assert staging.scale_to_zero_cron is not None and prod.scale_to_zero_cron is None


def test_gpu_cluster_in_dev_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"dev": {"training.instance_types": ["g5.12xlarge", "g6.12xlarge"]}})
    assert "environment 'dev'" in str(caught.value) and "enabled section" in str(caught.value)

    dev = MATRIX["dev"]
    fields = {name: getattr(dev, name) for name in EnvironmentConfig.model_fields}
    with pytest.raises(ConfigurationError) as caught:
        EnvironmentConfig(**{**fields, "training": GpuTrainingClusterSettings()})
    assert caught.value.where == "environment 'dev'"
    assert caught.value.field == "training.instance_types"
    assert "non-GPU instance types only" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"staging": {"training.min_size": 3}}, "training.min_size", "a value <= max_size (2)"),
        (
            {"prod": {"training.instance_types": ["g5.12xlarge", "p3.16xlarge"]}},
            "training.instance_types",
            "same GPU count",
        ),
        (
            {"prod": {"training.instance_types": ["g5.12xlarge", "z1.gpu"]}},
            "training.instance_types[1]",
            "an NVIDIA GPU instance type",
        ),
        ({"staging": {"training.idle_minutes": 7}}, "training.idle_minutes", "a multiple of 5 from 15 to 1440"),
        ({"staging": {"training.data_prefix": "../datasets/"}}, "training.data_prefix", RELATIVE_PREFIX),
        (
            {"prod": {"training.checkpoint_grace_seconds": 120}},
            "training.checkpoint_grace_seconds",
            "a whole number from 5 to 110",
        ),
    ],
)
def test_bad_training_overrides_fail_clearly(overrides: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    env = next(iter(overrides))
    assert f"environment '{env}'" in str(caught.value)
    assert f"field '{field}'" in str(caught.value)
    assert fragment in str(caught.value)


def test_training_overrides_apply() -> None:
    overrides = {"prod": {"training.max_size": 4}, "staging": {"training.scale_to_zero_cron": None}}
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    assert configs["prod"].training is not None and configs["prod"].training.max_size == 4
    assert configs["staging"].training is not None and configs["staging"].training.scale_to_zero_cron is None
