"""SageMaker serving: what a fresh environment provisions, the log group and rollback alarms, and once a model
is published the model, endpoint configuration, blue/green endpoint and autoscaling (also validated by the
real terraform); then the endpoint construct alone: volume keys, A/B variants, traffic shifting, and the
network and name it needs."""

from __future__ import annotations

import json
import shutil

import cdktf
import pytest
from constructs.core.errors import ConfigurationError
from constructs.core.instance_types import has_instance_storage
from constructs.sagemaker.images import DLC_PYTORCH_INFERENCE_CPU, DLC_PYTORCH_INFERENCE_GPU
from constructs.sagemaker.settings import InstanceVariantSettings, SageMakerEndpointSettings

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from tests.sagemaker.tiny import DATA_KEY, endpoint_stack
from tests.support.stacks import context
from tests.support.synth_json import (
    ENVIRONMENTS,
    allow,
    arguments,
    arn_parts,
    doc,
    names_of,
    output,
    ref,
    resources,
    role_policies,
)

DEPLOYED_TYPES = (
    "aws_sagemaker_model",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_endpoint",
    "aws_appautoscaling_target",
    "aws_appautoscaling_policy",
)


# --- a fresh environment -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_fresh_environment_provisions_everything_but_the_model_and_endpoint(stacks, env) -> None:
    stack = stacks[env]
    for resource_type in DEPLOYED_TYPES:
        assert resources(stack, resource_type) == {}, resource_type
    assert names_of(stack, "aws_ecr_repository", "sagemaker/images/repository")
    assert names_of(stack, "aws_iam_role", "sagemaker/execution-role")
    assert len(names_of(stack, "aws_cloudwatch_metric_alarm")) >= 2
    assert output(stack, "sagemaker_endpoint_name")["value"] == f"mlp-{env}-inference"
    assert output(stack, "sagemaker_image_repository_url")["value"] == ref(
        stack, "aws_ecr_repository", "sagemaker/images/repository", "repository_url"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_log_group_is_encrypted_with_the_logs_key(stacks, env) -> None:
    stack = stacks[env]
    assert arguments(stack, "aws_cloudwatch_log_group", "platform/sagemaker/log-group") == {
        "name": f"/aws/sagemaker/Endpoints/mlp-{env}-inference",
        "retention_in_days": {"dev": 14, "staging": 30, "prod": 365}[env],
        "kms_key_id": ref(stack, "aws_kms_key", "keys/logs", "arn"),
        # Prod's logs outlive a renamed endpoint and a removed section (tests/stacks/test_protection.py).
        **({"skip_destroy": True, "lifecycle": {"prevent_destroy": True}} if env == "prod" else {}),
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_error_and_latency_alarms_per_variant(stacks, env) -> None:
    stack = stacks[env]
    name = f"mlp-{env}-inference"
    dimensions = {"EndpointName": name, "VariantName": "primary"}
    errors = arguments(stack, "aws_cloudwatch_metric_alarm", "sagemaker/alarm-primary-5xx")
    latency = arguments(stack, "aws_cloudwatch_metric_alarm", "sagemaker/alarm-primary-latency")
    assert {k: errors[k] for k in errors if k != "alarm_description"} == {
        "alarm_name": f"{name}-primary-5xx-errors",
        "namespace": "AWS/SageMaker",
        "metric_name": "Invocation5XXErrors",
        "dimensions": dimensions,
        "statistic": "Sum",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 2,
        "threshold": 5,
        "comparison_operator": "GreaterThanOrEqualToThreshold",
        "treat_missing_data": "notBreaching",
    }
    assert {k: latency[k] for k in latency if k != "alarm_description"} == {
        "alarm_name": f"{name}-primary-model-latency-p99",
        "namespace": "AWS/SageMaker",
        "metric_name": "ModelLatency",
        "dimensions": dimensions,
        "extended_statistic": "p99",
        "period": 60,
        "evaluation_periods": 3,
        "datapoints_to_alarm": 3,
        "threshold": 1_000_000,
        "comparison_operator": "GreaterThanThreshold",
        "treat_missing_data": "notBreaching",
    }


# --- a published model -----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_model_container_network_and_isolation(published, env) -> None:
    stack = published[env]
    _, region, _ = arn_parts(stack)
    model = arguments(stack, "aws_sagemaker_model", "platform/sagemaker/model-v1")
    image = (DLC_PYTORCH_INFERENCE_CPU if env == "dev" else DLC_PYTORCH_INFERENCE_GPU).replace("{region}", region)
    bucket = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "bucket")
    environment = {
        "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_REGION": region,
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }
    if env == "dev":
        environment["SAGEMAKER_MODEL_SERVER_WORKERS"] = "1"
    assert model["primary_container"] == {
        "image": image,
        "model_data_url": f"s3://{bucket}/models/inference/v1/model.tar.gz",
        "environment": environment,
    }
    assert model["execution_role_arn"] == ref(stack, "aws_iam_role", "platform/sagemaker/execution-role", "arn")
    assert model["enable_network_isolation"] is (env != "dev")
    assert model["lifecycle"] == {"create_before_destroy": True}
    # A replacement gets a new name: the suffix hashes the inputs inside Terraform.
    assert model["name"].startswith(f"mlp-{env}-inference-v1-${{substr(md5(jsonencode(")
    assert model["name"].endswith(")), 0, 8)}")
    if env == "dev":
        assert "vpc_config" not in model
    else:
        assert model["vpc_config"] == {
            "security_group_ids": [ref(stack, "aws_security_group", "platform/sagemaker/security-group", "id")],
            "subnets": [ref(stack, "aws_subnet", f"network/private-{i}", "id") for i in range(3)],
        }
    # The IAM policies exist before SageMaker uses the role.
    policies = {
        f"aws_iam_role_policy.{n}"
        for n, c in resources(stack, "aws_iam_role_policy").items()
        if c["role"] == ref(stack, "aws_iam_role", "platform/sagemaker/execution-role", "name")
    }
    assert set(model["depends_on"]) == policies


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_configuration_variants_kms_and_data_capture(published, env) -> None:
    stack = published[env]
    config = arguments(stack, "aws_sagemaker_endpoint_configuration", "platform/sagemaker/endpoint-configuration")
    model = ref(stack, "aws_sagemaker_model", "platform/sagemaker/model-v1", "name")
    bucket = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "bucket")
    key = ref(stack, "aws_kms_key", "keys/data", "arn")
    assert config["name_prefix"] == f"mlp-{env}-inference-"
    assert config["lifecycle"] == {"create_before_destroy": True}
    if env == "dev":
        assert config["production_variants"] == [
            {
                "variant_name": "primary",
                "model_name": model,
                "serverless_config": {"max_concurrency": 5, "memory_size_in_mb": 2048},
            }
        ]
        assert config["kms_key_arn"] == key
        assert "data_capture_config" not in config
        return
    assert config["production_variants"] == [
        {
            "variant_name": "primary",
            "model_name": model,
            "instance_type": "ml.g5.xlarge",
            "initial_instance_count": {"staging": 1, "prod": 2}[env],
            "initial_variant_weight": 1,
        }
    ]
    # ml.g5 volumes are local NVMe, encrypted by the instance: SageMaker rejects a KmsKeyId for them.
    assert "kms_key_arn" not in config
    assert config["data_capture_config"] == {
        "enable_capture": True,
        "initial_sampling_percentage": {"staging": 100, "prod": 20}[env],
        "destination_s3_uri": f"s3://{bucket}/data-capture/inference/",
        "kms_key_id": key,
        "capture_options": [{"capture_mode": "Input"}, {"capture_mode": "Output"}],
        "capture_content_type_header": {"json_content_types": ["application/json"], "csv_content_types": ["text/csv"]},
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_rolls_back_on_its_alarms(published, published_json, env) -> None:
    stack = published[env]
    endpoint = arguments(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint")
    assert endpoint["name"] == f"mlp-{env}-inference"
    assert endpoint["endpoint_config_name"] == ref(
        stack, "aws_sagemaker_endpoint_configuration", "platform/sagemaker/endpoint-configuration", "name"
    )
    if env == "dev":
        # Serverless: SageMaker's default update (blue/green, all at once); no capacity to shift in steps.
        assert "deployment_config" not in endpoint
        return
    alarms = [
        {"alarm_name": ref(stack, "aws_cloudwatch_metric_alarm", f"sagemaker/alarm-primary-{kind}", "alarm_name")}
        for kind in ("5xx", "latency")
    ]
    routing = (
        {"type": "ALL_AT_ONCE", "wait_interval_in_seconds": 600}
        if env == "staging"
        else {"type": "CANARY", "wait_interval_in_seconds": 900, "canary_size": {"type": "INSTANCE_COUNT", "value": 1}}
    )
    assert cdktf.Testing.to_have_resource_with_properties(
        published_json[env],
        "aws_sagemaker_endpoint",
        {
            "deployment_config": {
                "auto_rollback_configuration": {"alarms": alarms},
                "blue_green_update_policy": {
                    "traffic_routing_configuration": routing,
                    # Baking periods + termination wait + 1800 s to provision the new fleet.
                    "termination_wait_in_seconds": {"staging": 300, "prod": 900}[env],
                    "maximum_execution_timeout_in_seconds": {"staging": 2700, "prod": 4500}[env],
                },
            }
        },
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_autoscaling_target_and_policy(published, env) -> None:
    stack = published[env]
    if env == "dev":
        assert resources(stack, "aws_appautoscaling_target") == {}
        assert resources(stack, "aws_appautoscaling_policy") == {}
        return
    endpoint = ref(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint", "name")
    low, high = {"staging": (1, 2), "prod": (2, 6)}[env]
    assert arguments(stack, "aws_appautoscaling_target", "sagemaker/scaling-target-primary") == {
        "service_namespace": "sagemaker",
        "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
        "resource_id": f"endpoint/{endpoint}/variant/primary",
        "min_capacity": low,
        "max_capacity": high,
    }
    target = "sagemaker/scaling-target-primary"
    assert arguments(stack, "aws_appautoscaling_policy", "sagemaker/scaling-policy-primary") == {
        "name": f"mlp-{env}-inference-primary-invocations-per-instance",
        "policy_type": "TargetTrackingScaling",
        "service_namespace": ref(stack, "aws_appautoscaling_target", target, "service_namespace"),
        "scalable_dimension": ref(stack, "aws_appautoscaling_target", target, "scalable_dimension"),
        "resource_id": ref(stack, "aws_appautoscaling_target", target, "resource_id"),
        "target_tracking_scaling_policy_configuration": {
            "target_value": 100,
            "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
            "scale_in_cooldown": 300,
            "scale_out_cooldown": 60,
        },
    }


@pytest.mark.terraform
def test_published_stacks_validate_with_the_real_terraform(published, tmp_path) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    env_vars = terraform_cli_env(tmp_path)
    env_vars["TF_PLUGIN_CACHE_DIR"] = str(tmp_path / "plugin-cache")
    (tmp_path / "plugin-cache").mkdir()
    problems = validate_offline({env: aws_only(published[env]) for env in ENVIRONMENTS}, tmp_path, env_vars)
    assert problems == {env: [] for env in ENVIRONMENTS}, json.dumps(problems, indent=2)


# --- the construct on its own --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("instance_type", "local_nvme"),
    [
        ("ml.m5.xlarge", False),
        ("ml.c5.2xlarge", False),
        ("ml.p3.8xlarge", False),
        ("ml.inf2.xlarge", False),
        ("ml.g5.xlarge", True),
        ("ml.g6.2xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.p3dn.24xlarge", True),
        ("ml.c5d.xlarge", True),
        ("ml.m6id.large", True),
        ("ml.p5.48xlarge", True),
        ("ml.trn1.32xlarge", True),
    ],
)
def test_instance_storage_detection(instance_type, local_nvme) -> None:
    """Local NVMe storage decides whether an endpoint configuration (or training job) gets a volume key."""
    assert has_instance_storage(instance_type) is local_nvme


def test_ebs_backed_variants_get_the_volume_key_and_the_grant_to_use_it() -> None:
    settings = SageMakerEndpointSettings(
        model_version="v1", variants=(InstanceVariantSettings(instance_type="ml.m5.xlarge"),)
    )
    stack, endpoint = endpoint_stack(settings)
    config = arguments(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
    assert config["kms_key_arn"] == ref(stack, "aws_kms_key", DATA_KEY, "arn")
    assert endpoint.volume_kms_key_applied
    assert role_policies(stack, "sagemaker/execution-role")["encrypt-endpoint-volumes"] == doc(
        allow(
            "EncryptStorageVolumes",
            "kms:CreateGrant",
            ref(stack, "aws_kms_key", DATA_KEY, "arn"),
            StringEquals={"kms:ViaService": "sagemaker.us-east-1.amazonaws.com"},
            Bool={"kms:GrantIsForAWSResource": "true"},
        )
    )


def test_one_nvme_variant_drops_the_volume_key_for_the_whole_configuration() -> None:
    settings = SageMakerEndpointSettings(
        model_version="v1",
        inference_image="{repository}:1.0.0",
        variants=(
            InstanceVariantSettings(name="cpu", instance_type="ml.m5.xlarge"),
            InstanceVariantSettings(name="gpu", instance_type="ml.g5.xlarge"),
        ),
    )
    stack, endpoint = endpoint_stack(settings)
    config = arguments(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
    assert "kms_key_arn" not in config
    assert not endpoint.volume_kms_key_applied
    assert "encrypt-endpoint-volumes" not in role_policies(stack, "sagemaker/execution-role")


def test_ab_variants_serve_two_versions_with_weights_and_four_rollback_alarms() -> None:
    settings = SageMakerEndpointSettings(
        model_version="v3",
        variants=(
            InstanceVariantSettings(name="current", initial_weight=9),
            InstanceVariantSettings(name="candidate", initial_weight=1, model_version="v4"),
        ),
    )
    stack, _ = endpoint_stack(settings)
    config = arguments(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
    assert [
        (v["variant_name"], v["model_name"], v["initial_variant_weight"]) for v in config["production_variants"]
    ] == [
        ("current", ref(stack, "aws_sagemaker_model", "sagemaker/model-v3", "name"), 9),
        ("candidate", ref(stack, "aws_sagemaker_model", "sagemaker/model-v4", "name"), 1),
    ]
    urls = {
        m["primary_container"]["model_data_url"].rsplit("/", 2)[-2]
        for m in resources(stack, "aws_sagemaker_model").values()
    }
    assert urls == {"v3", "v4"}
    endpoint = arguments(stack, "aws_sagemaker_endpoint", "sagemaker/endpoint")
    assert len(endpoint["deployment_config"]["auto_rollback_configuration"]["alarms"]) == 4
    assert len(resources(stack, "aws_appautoscaling_target")) == 2


def test_linear_traffic_shifting_on_a_fixed_size_fleet() -> None:
    settings = SageMakerEndpointSettings(
        model_version="v1",
        variants=(InstanceVariantSettings(initial_instance_count=4),),
        min_instance_count=4,
        max_instance_count=4,
        traffic_shifting="LINEAR",
        linear_step_instance_count=1,
        wait_interval_seconds=300,
        termination_wait_seconds=0,
    )
    stack, _ = endpoint_stack(settings)
    policy_ = arguments(stack, "aws_sagemaker_endpoint", "sagemaker/endpoint")["deployment_config"][
        "blue_green_update_policy"
    ]
    assert policy_ == {
        "traffic_routing_configuration": {
            "type": "LINEAR",
            "wait_interval_in_seconds": 300,
            "linear_step_size": {"type": "INSTANCE_COUNT", "value": 1},
        },
        "termination_wait_in_seconds": 0,
        "maximum_execution_timeout_in_seconds": 4 * 300 + 1800,
    }
    # min == max: a fixed fleet, nothing to scale (and instance type changes need no deregistration).
    assert resources(stack, "aws_appautoscaling_target") == {}


def test_vpc_mode_needs_the_network() -> None:
    with pytest.raises(ConfigurationError) as error:
        endpoint_stack(SageMakerEndpointSettings(), vpc=None)
    assert error.value.field == "vpc" and error.value.where == "test/sagemaker"
    with pytest.raises(ConfigurationError) as error:
        endpoint_stack(SageMakerEndpointSettings(), private_subnets=())
    assert error.value.field == "private_subnets"


def test_endpoint_name_must_leave_room_for_the_configuration_suffix() -> None:
    with pytest.raises(ConfigurationError) as error:
        endpoint_stack(SageMakerEndpointSettings(), context=context(name_prefix="a-very-long-project-name-production"))
    assert error.value.field == "name_prefix"
    assert "36 characters" in str(error.value)
