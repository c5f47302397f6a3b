"""SageMaker settings: bad endpoint, variant and training settings fail early naming the field, through the
settings models and through matrix overrides, and publishing a model version is an override."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.sagemaker.settings import (
    InstanceVariantSettings,
    SageMakerEndpointSettings,
    SageMakerTrainingSettings,
    ServerlessVariantSettings,
)

from stacks.overrides import load_environments


@pytest.mark.parametrize(
    ("build", "where", "field"),
    [
        (
            lambda: SageMakerEndpointSettings(min_instance_count=3, max_instance_count=2),
            "SageMakerEndpointSettings",
            "min_instance_count",
        ),
        (lambda: InstanceVariantSettings(initial_weight=0), "InstanceVariantSettings", "initial_weight"),
        (lambda: InstanceVariantSettings(initial_weight=-1.5), "InstanceVariantSettings", "initial_weight"),
        (lambda: InstanceVariantSettings(initial_weight=math.nan), "InstanceVariantSettings", "initial_weight"),
        (lambda: InstanceVariantSettings(instance_type="p3.8xlarge"), "InstanceVariantSettings", "instance_type"),
        (lambda: InstanceVariantSettings(name="has space"), "InstanceVariantSettings", "name"),
        (
            lambda: InstanceVariantSettings(initial_instance_count=0),
            "InstanceVariantSettings",
            "initial_instance_count",
        ),
        (lambda: ServerlessVariantSettings(memory_size_in_mb=1500), "ServerlessVariantSettings", "memory_size_in_mb"),
        (
            lambda: ServerlessVariantSettings(max_concurrency=5, provisioned_concurrency=6),
            "ServerlessVariantSettings",
            "provisioned_concurrency",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(InstanceVariantSettings(name="a"), InstanceVariantSettings(name="a"))
            ),
            "SageMakerEndpointSettings",
            "variants[1].name",
        ),
        (lambda: SageMakerEndpointSettings(variants=()), "SageMakerEndpointSettings", "variants"),
        (
            lambda: SageMakerEndpointSettings(variants=tuple(InstanceVariantSettings(name=f"v{i}") for i in range(6))),
            "SageMakerEndpointSettings",
            "variants",
        ),
        (
            lambda: SageMakerEndpointSettings(variants=({"instance_type": "g5.xlarge"},)),
            "SageMakerEndpointSettings",
            "variants[0].instance_type",
        ),
        (
            lambda: SageMakerEndpointSettings(variants=(InstanceVariantSettings(initial_instance_count=3),)),
            "SageMakerEndpointSettings",
            "variants[0].initial_instance_count",
        ),
        (
            lambda: SageMakerEndpointSettings(traffic_shifting="CANARY"),
            "SageMakerEndpointSettings",
            "canary_instance_count",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(InstanceVariantSettings(initial_instance_count=2),),
                min_instance_count=2,
                max_instance_count=30,
                traffic_shifting="LINEAR",
            ),
            "SageMakerEndpointSettings",
            "linear_step_instance_count",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(InstanceVariantSettings(initial_instance_count=10),),
                min_instance_count=10,
                max_instance_count=10,
                traffic_shifting="LINEAR",
                wait_interval_seconds=3600,
            ),
            "SageMakerEndpointSettings",
            "wait_interval_seconds",
        ),
        (lambda: SageMakerEndpointSettings(traffic_shifting="BLUE"), "SageMakerEndpointSettings", "traffic_shifting"),
        (
            lambda: SageMakerEndpointSettings(variants=(ServerlessVariantSettings(),)),
            "SageMakerEndpointSettings",
            "vpc",
        ),
        (
            lambda: SageMakerEndpointSettings(variants=(ServerlessVariantSettings(),), vpc=False),
            "SageMakerEndpointSettings",
            "network_isolation",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(ServerlessVariantSettings(),), vpc=False, network_isolation=False
            ),
            "SageMakerEndpointSettings",
            "data_capture_percentage",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(ServerlessVariantSettings(), InstanceVariantSettings(name="b")),
                vpc=False,
                network_isolation=False,
                data_capture_percentage=None,
            ),
            "SageMakerEndpointSettings",
            "variants",
        ),
        (
            lambda: SageMakerEndpointSettings(
                variants=(
                    InstanceVariantSettings(name="a"),
                    InstanceVariantSettings(name="b", instance_type="ml.g5.xlarge"),
                )
            ),
            "SageMakerEndpointSettings",
            "inference_image",
        ),
        (
            lambda: SageMakerEndpointSettings(inference_image="docker.io/pytorch/pytorch:latest"),
            "SageMakerEndpointSettings",
            "inference_image",
        ),
        (lambda: SageMakerEndpointSettings(model_version="V1 final"), "SageMakerEndpointSettings", "model_version"),
        (lambda: SageMakerEndpointSettings(model_name="Inference"), "SageMakerEndpointSettings", "model_name"),
        (
            lambda: SageMakerEndpointSettings(data_capture_percentage=0),
            "SageMakerEndpointSettings",
            "data_capture_percentage",
        ),
        (lambda: SageMakerEndpointSettings(log_retention_days=10), "SageMakerEndpointSettings", "log_retention_days"),
        (lambda: SageMakerEndpointSettings(vpc="yes"), "SageMakerEndpointSettings", "vpc"),
        (
            lambda: SageMakerEndpointSettings(container_environment={"1BAD": "x"}),
            "SageMakerEndpointSettings",
            # The name of the first (name, value) pair.
            "container_environment[0][0]",
        ),
        (lambda: SageMakerTrainingSettings(instance_type="p3.8xlarge"), "SageMakerTrainingSettings", "instance_type"),
        (
            lambda: SageMakerTrainingSettings(max_runtime_seconds=7200, max_wait_seconds=3600),
            "SageMakerTrainingSettings",
            "max_wait_seconds",
        ),
        (
            lambda: SageMakerTrainingSettings(training_image="{repository}:1.0"),
            "SageMakerTrainingSettings",
            "training_image",
        ),
        (
            lambda: SageMakerTrainingSettings(training_data_prefix="datasets"),
            "SageMakerTrainingSettings",
            "training_data_prefix",
        ),
        (lambda: SageMakerTrainingSettings(input_mode="Stream"), "SageMakerTrainingSettings", "input_mode"),
    ],
)
def test_bad_settings_raise_configuration_error_naming_the_field(build, where, field) -> None:
    with pytest.raises(ConfigurationError) as error:
        build()
    assert (error.value.where, error.value.field) == (where, field)


def test_bad_variant_errors_say_what_is_allowed() -> None:
    with pytest.raises(ConfigurationError, match=r"'ml\.' prefix"):
        InstanceVariantSettings(instance_type="p3.8xlarge")
    with pytest.raises(ConfigurationError, match="greater than 0"):
        InstanceVariantSettings(initial_weight=0)
    with pytest.raises(ConfigurationError, match=r"<= max_instance_count \(2\)"):
        SageMakerEndpointSettings(min_instance_count=3, max_instance_count=2)


def _overridden(overrides: dict[str, Any]) -> dict[str, Any]:
    return load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})


def test_matrix_rejects_gpu_serving_and_training_in_dev() -> None:
    with pytest.raises(ConfigurationError) as error:
        _overridden({"dev": {"sagemaker.variants": [{"instance_type": "ml.g5.xlarge"}]}})
    assert (error.value.where, error.value.field) == ("environment 'dev'", "sagemaker.variants[0].instance_type")
    with pytest.raises(ConfigurationError) as error:
        _overridden({"dev": {"sagemaker_training.instance_type": "ml.p3.8xlarge"}})
    assert (error.value.where, error.value.field) == ("environment 'dev'", "sagemaker_training.instance_type")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"prod": {"sagemaker.max_instance_count": 1}}, "sagemaker.min_instance_count"),
        ({"staging": {"sagemaker.variants": [{"instance_type": "g5.xlarge"}]}}, "sagemaker.variants[0].instance_type"),
        (
            {"staging": {"sagemaker.variants": [{"name": "a", "initial_weight": 0}]}},
            "sagemaker.variants[0].initial_weight",
        ),
        ({"staging": {"sagemaker.variants": [{"name": "a"}, {"name": "a"}]}}, "sagemaker.variants[1].name"),
        ({"prod": {"sagemaker.canary_instance_count": 2}}, "sagemaker.canary_instance_count"),
        ({"dev": {"sagemaker.vpc": True}}, "sagemaker.vpc"),
        ({"staging": {"sagemaker_training.max_wait_seconds": 60}}, "sagemaker_training.max_wait_seconds"),
    ],
)
def test_matrix_overrides_fail_with_the_field_path(overrides, field) -> None:
    env = next(iter(overrides))
    with pytest.raises(ConfigurationError) as error:
        _overridden(overrides)
    assert (error.value.where, error.value.field) == (f"environment '{env}'", field)


def test_publishing_a_version_through_an_override_deploys_the_endpoint() -> None:
    configs = _overridden({"prod": {"sagemaker.model_version": "2025-06-01"}})
    assert configs["prod"].sagemaker is not None and configs["prod"].sagemaker.deployed
    assert configs["staging"].sagemaker is not None and not configs["staging"].sagemaker.deployed
