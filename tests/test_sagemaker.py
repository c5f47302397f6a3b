"""SageMaker serving and training: role trust and exact policy scope, image repository, model and VPC,
variants and KMS, data capture, deployment guardrails, autoscaling, alarms, the training job spec,
and clear errors for bad settings.

The default matrix is a fresh installation: no model is published, so the model, endpoint and
autoscaling are absent. The ``published`` stacks are the same matrix with ``sagemaker.model_version``
set, which is exactly what a user does after publishing a model (docs/sagemaker.md).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.provider_bindings import aws
from constructs.sagemaker_common import (
    DLC_PYTORCH_INFERENCE_CPU,
    DLC_PYTORCH_INFERENCE_GPU,
    has_instance_storage,
)
from constructs.sagemaker_endpoint import (
    InstanceVariantSettings,
    SageMakerEndpoint,
    SageMakerEndpointProps,
    SageMakerEndpointSettings,
    ServerlessVariantSettings,
)
from constructs.sagemaker_training import SageMakerTraining, SageMakerTrainingProps, SageMakerTrainingSettings
from constructs.secure_bucket import SecureBucket, SecureBucketProps
from constructs.validation import ConfigurationError

from stacks.environments import BASE_MATRIX, apply_overrides, load_environments, validate_environment
from stacks.ml_platform_stack import DeploymentSettings, MlPlatformStack
from tests.conftest import ENVIRONMENTS, policy, resources
from tests.support.terraform import run_terraform, terraform_cli_env
from tests.test_terraform_validate import aws_only

VERSION = "2012-10-17"
STAGED = ("staging", "prod")
DEPLOYED_TYPES = (
    "aws_sagemaker_model",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_endpoint",
    "aws_appautoscaling_target",
    "aws_appautoscaling_policy",
)


# --- helpers -------------------------------------------------------------------------------------


def _path(name: str, config: dict[str, Any]) -> str:
    """The construct path; ``Testing.synth`` omits the metadata, so fall back to the logical name."""
    if "//" in config:
        return config["//"]["metadata"]["path"]
    return name.rsplit("_", 1)[0].replace("_", "/")


def _names(stack: dict[str, Any], block: str, resource_type: str, path_suffix: str) -> list[str]:
    return [
        name
        for name, config in stack.get(block, {}).get(resource_type, {}).items()
        if _path(name, config).endswith(path_suffix)
    ]


def ref(stack: dict[str, Any], resource_type: str, path_suffix: str, attribute: str) -> str:
    """``${<type>.<name>.<attribute>}`` of the one resource whose construct path ends with ``path_suffix``."""
    (name,) = _names(stack, "resource", resource_type, path_suffix)
    return f"${{{resource_type}.{name}.{attribute}}}"


def data_ref(stack: dict[str, Any], data_type: str, path_suffix: str, attribute: str) -> str:
    (name,) = _names(stack, "data", data_type, path_suffix)
    return f"${{data.{data_type}.{name}.{attribute}}}"


def one(stack: dict[str, Any], resource_type: str, path_suffix: str) -> dict[str, Any]:
    (name,) = _names(stack, "resource", resource_type, path_suffix)
    config = dict(stack["resource"][resource_type][name])
    config.pop("//", None)
    return config


def arn_parts(stack: dict[str, Any]) -> tuple[str, str, str]:
    """(partition, region, account) references of the platform's data sources."""
    return (
        data_ref(stack, "aws_partition", "platform/partition", "partition"),
        data_ref(stack, "aws_region", "platform/region", "name"),
        data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
    )


def role_policies(stack: dict[str, Any], role_suffix: str) -> dict[str, dict[str, Any]]:
    """Inline policies attached to one role, by policy name."""
    role = ref(stack, "aws_iam_role", role_suffix, "name")
    return {
        config["name"]: policy(config["policy"])
        for config in resources(stack, "aws_iam_role_policy").values()
        if config["role"] == role
    }


def outputs(stack: dict[str, Any], name: str) -> Any:
    matches = [o for key, o in stack["output"].items() if key == name]
    assert len(matches) == 1, f"expected one output {name}"
    return matches[0]


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": list(statements)}


def allow(sid: str, actions: list[str] | str, resources_: list[str] | str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources_}
    if condition:
        statement["Condition"] = condition
    return statement


def trust(account: str) -> dict[str, Any]:
    return doc(
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    )


def eni_statements(stack: dict[str, Any], security_group_suffix: str) -> list[dict[str, Any]]:
    partition, region, account = arn_parts(stack)
    interfaces = f"arn:{partition}:ec2:{region}:{account}:network-interface/*"
    subnets = [ref(stack, "aws_subnet", f"network/private-{i}", "arn") for i in range(3)]
    return [
        allow(
            "CreateInterfacesInPlatformSubnets",
            "ec2:CreateNetworkInterface",
            [interfaces, *subnets, ref(stack, "aws_security_group", security_group_suffix, "arn")],
        ),
        allow(
            "ManageInterfacesInPlatformVpc",
            [
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            interfaces,
            ArnEquals={"ec2:Vpc": ref(stack, "aws_vpc", "network/vpc", "arn")},
        ),
        allow(
            "DescribeNetwork",
            [
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ],
            "*",
        ),
    ]


def ecr_pull(repository_arn: str) -> dict[str, Any]:
    return doc(
        allow(
            "PullImageLayers",
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            repository_arn,
        ),
        allow("GetRegistryToken", "ecr:GetAuthorizationToken", "*"),
    )


def logs(group_arn: str) -> dict[str, Any]:
    return doc(
        allow("CreateLogGroup", "logs:CreateLogGroup", group_arn),
        allow(
            "WriteLogStreams",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            f"{group_arn}:log-stream:*",
        ),
    )


def metrics(namespace: str) -> dict[str, Any]:
    return doc(
        allow(
            "PublishMetrics",
            "cloudwatch:PutMetricData",
            "*",
            StringEquals={"cloudwatch:namespace": namespace},
        )
    )


# --- the published matrix (a model version is set everywhere) -------------------------------------


@pytest.fixture(scope="module")
def published_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every environment synthesized with ``sagemaker.model_version = "v1"``, as after publishing a model."""
    configs = apply_overrides(BASE_MATRIX, {env: {"sagemaker.model_version": "v1"} for env in ENVIRONMENTS})
    outdir = tmp_path_factory.mktemp("sagemaker-published")
    app = cdktf.App(outdir=str(outdir))
    for env in ENVIRONMENTS:
        validate_environment(configs[env])
        MlPlatformStack(app, configs[env], DeploymentSettings())
    app.synth()
    return outdir


@pytest.fixture(scope="module")
def published_json(published_dir: Path) -> dict[str, str]:
    return {env: (published_dir / "stacks" / env / "cdk.tf.json").read_text() for env in ENVIRONMENTS}


@pytest.fixture(scope="module")
def published(published_json: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {env: json.loads(text) for env, text in published_json.items()}


# --- a fresh environment -------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_fresh_environment_provisions_everything_but_the_model_and_endpoint(stacks, env) -> None:
    stack = stacks[env]
    for resource_type in DEPLOYED_TYPES:
        assert resources(stack, resource_type) == {}, resource_type
    assert _names(stack, "resource", "aws_ecr_repository", "sagemaker/images/repository")
    assert _names(stack, "resource", "aws_iam_role", "sagemaker/execution-role")
    assert len(_names(stack, "resource", "aws_cloudwatch_metric_alarm", "")) >= 2
    assert outputs(stack, "sagemaker_endpoint_name")["value"] == f"mlp-{env}-inference"
    assert outputs(stack, "sagemaker_image_repository_url")["value"] == ref(
        stack, "aws_ecr_repository", "sagemaker/images/repository", "repository_url"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_image_repository_scans_pins_tags_encrypts_and_expires(stacks, stack_json, env) -> None:
    stack = stacks[env]
    assert cdktf.Testing.to_have_resource_with_properties(
        stack_json[env],
        "aws_ecr_repository",
        {
            "name": f"mlp-{env}/inference",
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": {"scan_on_push": True},
            "encryption_configuration": [
                {"encryption_type": "KMS", "kms_key": ref(stack, "aws_kms_key", "keys/data", "arn")}
            ],
            "force_delete": env == "dev",
        },
    )
    keep, untagged = {"dev": (10, 3), "staging": (30, 7), "prod": (100, 14)}[env]
    lifecycle = one(stack, "aws_ecr_lifecycle_policy", "sagemaker/images/lifecycle")
    assert lifecycle["repository"] == ref(stack, "aws_ecr_repository", "sagemaker/images/repository", "name")
    assert json.loads(lifecycle["policy"]) == {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {untagged} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep only the newest {keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                "action": {"type": "expire"},
            },
        ]
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_roles_trust_only_sagemaker_for_this_account(stacks, env) -> None:
    stack = stacks[env]
    _, _, account = arn_parts(stack)
    serving = one(stack, "aws_iam_role", "platform/sagemaker/execution-role")
    training = one(stack, "aws_iam_role", "platform/sagemaker-training/execution-role")
    assert serving["name"] == f"mlp-{env}-inference-sagemaker"
    assert training["name"] == f"mlp-{env}-training-sagemaker"
    for role in (serving, training):
        assert policy(role["assume_role_policy"]) == trust(account)
        assert "managed_policy_arns" not in role


@pytest.mark.parametrize("model_published", [False, True], ids=["fresh", "published"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_serving_role_policies_are_exactly_scoped(stacks, published, env, model_published) -> None:
    stack = published[env] if model_published else stacks[env]
    partition, region, account = arn_parts(stack)
    artifacts = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "arn")
    key = ref(stack, "aws_kms_key", "keys/data", "arn")
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/mlp-{env}-inference"
    expected = {
        "read-model-artifacts": doc(
            allow(
                "ModelArtifactsListBucket",
                "s3:ListBucket",
                artifacts,
                StringLike={"s3:prefix": ["models/inference/*"]},
            ),
            allow("ModelArtifactsLocateBucket", "s3:GetBucketLocation", artifacts),
            allow(
                "ModelArtifactsReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], f"{artifacts}/models/inference/*"
            ),
            allow(
                "ModelArtifactsUseBucketKey", "kms:Decrypt", key, StringLike={"kms:ViaService": "s3.*.amazonaws.com"}
            ),
        ),
        "pull-serving-image": ecr_pull(f"arn:{partition}:ecr:{region}:763104351884:repository/pytorch-inference"),
        "write-endpoint-logs": logs(log_group),
        "publish-endpoint-metrics": metrics("/aws/sagemaker/Endpoints"),
    }
    if env in STAGED:
        expected["write-data-capture"] = doc(
            allow("WriteCapturedData", "s3:PutObject", f"{artifacts}/data-capture/inference/*"),
            allow(
                "EncryptCapturedData",
                ["kms:Encrypt", "kms:GenerateDataKey"],
                key,
                StringEquals={"kms:ViaService": f"s3.{region}.amazonaws.com"},
            ),
        )
    if env in STAGED and model_published:
        # Network interfaces may be created only once a model runs in the VPC.
        expected["manage-vpc-network-interfaces"] = doc(*eni_statements(stack, "platform/sagemaker/security-group"))
    # Dev is serverless and staging/prod run ml.g5 (local NVMe): no volume key, so no CreateGrant.
    assert role_policies(stack, "platform/sagemaker/execution-role") == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_training_role_policies_are_exactly_scoped(stacks, env) -> None:
    stack = stacks[env]
    partition, region, account = arn_parts(stack)
    key = ref(stack, "aws_kms_key", "keys/data", "arn")
    data = ref(stack, "aws_s3_bucket", "storage/training-data/bucket", "arn")
    checkpoints = ref(stack, "aws_s3_bucket", "storage/checkpoints/bucket", "arn")
    artifacts = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "arn")
    via_s3 = {"kms:ViaService": "s3.*.amazonaws.com"}
    group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/TrainingJobs"

    def read_write(purpose: str, arn: str, prefix: str) -> dict[str, Any]:
        return doc(
            allow(
                f"{purpose}ListBucket",
                "s3:ListBucket",
                arn,
                StringLike={"s3:prefix": [f"{prefix}*"]},
            ),
            allow(f"{purpose}LocateBucket", "s3:GetBucketLocation", arn),
            allow(f"{purpose}ReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], f"{arn}/{prefix}*"),
            allow(
                f"{purpose}WriteObjects",
                ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                f"{arn}/{prefix}*",
            ),
            allow(f"{purpose}UseBucketKey", ["kms:Decrypt", "kms:GenerateDataKey"], key, StringLike=via_s3),
        )

    image_repository = "pytorch-training"
    expected = {
        "read-training-data": doc(
            allow("TrainingDataListBucket", ["s3:ListBucket", "s3:GetBucketLocation"], data),
            allow("TrainingDataReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], f"{data}/*"),
            allow("TrainingDataUseBucketKey", "kms:Decrypt", key, StringLike=via_s3),
        ),
        "read-write-checkpoints": read_write("Checkpoints", checkpoints, "train/"),
        "read-write-model-artifacts": read_write("ModelArtifacts", artifacts, "training-output/"),
        "use-data-key": doc(
            allow(
                "EncryptTrainingOutput",
                ["kms:Encrypt", "kms:GenerateDataKey"],
                key,
                StringEquals={"kms:ViaService": f"s3.{region}.amazonaws.com"},
            ),
            # ml.m5.xlarge and ml.p3.8xlarge have EBS volumes, encrypted with the data key.
            allow(
                "EncryptStorageVolumes",
                "kms:CreateGrant",
                key,
                StringEquals={"kms:ViaService": f"sagemaker.{region}.amazonaws.com"},
                Bool={"kms:GrantIsForAWSResource": "true"},
            ),
        ),
        "pull-training-image": ecr_pull(f"arn:{partition}:ecr:{region}:763104351884:repository/{image_repository}"),
        "write-training-logs": logs(group),
        "publish-training-metrics": metrics("/aws/sagemaker/TrainingJobs"),
    }
    if env in STAGED:
        expected["manage-vpc-network-interfaces"] = doc(
            *eni_statements(stack, "platform/sagemaker-training/security-group")
        )
    assert role_policies(stack, "platform/sagemaker-training/execution-role") == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sagemaker_policies_grant_no_wildcard_actions_and_star_only_where_unavoidable(stacks, env) -> None:
    stack = stacks[env]
    star_allowed = {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    }
    for suffix in ("platform/sagemaker/execution-role", "platform/sagemaker-training/execution-role"):
        for name, document in role_policies(stack, suffix).items():
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all(not a.endswith("*") for a in actions), (name, actions)
                if statement["Resource"] == "*":
                    assert set(actions) <= star_allowed, (name, actions)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoint_log_group_is_encrypted_with_the_logs_key(stacks, env) -> None:
    stack = stacks[env]
    assert one(stack, "aws_cloudwatch_log_group", "platform/sagemaker/log-group") == {
        "name": f"/aws/sagemaker/Endpoints/mlp-{env}-inference",
        "retention_in_days": {"dev": 14, "staging": 30, "prod": 365}[env],
        "kms_key_id": ref(stack, "aws_kms_key", "keys/logs", "arn"),
    }


@pytest.mark.parametrize("model_published", [False, True], ids=["fresh", "published"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vpc_security_groups_allow_https_egress_only(stacks, published, env, model_published) -> None:
    stack = published[env] if model_published else stacks[env]
    groups = [g for g in resources(stack, "aws_security_group").values() if "sagemaker" in g["//"]["metadata"]["path"]]
    if env == "dev":
        assert groups == []
        return
    # The endpoint's group comes with the model that attaches it; training jobs attach theirs at run time.
    owners = ["sagemaker", "sagemaker-training"] if model_published else ["sagemaker-training"]
    expected_names = [f"mlp-{env}-inference-sagemaker"] if model_published else []
    assert sorted(g["name"] for g in groups) == [*expected_names, f"mlp-{env}-training-sagemaker"]
    for owner in owners:
        group = ref(stack, "aws_security_group", f"platform/{owner}/security-group", "id")
        assert "ingress" not in one(stack, "aws_security_group", f"platform/{owner}/security-group")
        ingress = [
            r
            for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
            if r["security_group_id"] == group
        ]
        egress = [
            r
            for r in resources(stack, "aws_vpc_security_group_egress_rule").values()
            if r["security_group_id"] == group
        ]
        assert ingress == []
        assert [{k: v for k, v in r.items() if k != "//"} for r in egress] == [
            {
                "security_group_id": group,
                "description": "HTTPS to AWS APIs and S3",
                "ip_protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_ipv4": "0.0.0.0/0",
            }
        ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_error_and_latency_alarms_per_variant(stacks, env) -> None:
    stack = stacks[env]
    name = f"mlp-{env}-inference"
    dimensions = {"EndpointName": name, "VariantName": "primary"}
    errors = one(stack, "aws_cloudwatch_metric_alarm", "sagemaker/alarm-primary-5xx")
    latency = one(stack, "aws_cloudwatch_metric_alarm", "sagemaker/alarm-primary-latency")
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
    model = one(stack, "aws_sagemaker_model", "platform/sagemaker/model-v1")
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
    config = one(stack, "aws_sagemaker_endpoint_configuration", "platform/sagemaker/endpoint-configuration")
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
    endpoint = one(stack, "aws_sagemaker_endpoint", "platform/sagemaker/endpoint")
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
    assert one(stack, "aws_appautoscaling_target", "sagemaker/scaling-target-primary") == {
        "service_namespace": "sagemaker",
        "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
        "resource_id": f"endpoint/{endpoint}/variant/primary",
        "min_capacity": low,
        "max_capacity": high,
    }
    target = "sagemaker/scaling-target-primary"
    assert one(stack, "aws_appautoscaling_policy", "sagemaker/scaling-policy-primary") == {
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


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_training_job_spec_output(stacks, env) -> None:
    stack = stacks[env]
    _, region, _ = arn_parts(stack)
    spec = json.loads(outputs(stack, "sagemaker_training_job_spec")["value"])
    bucket = lambda purpose: ref(stack, "aws_s3_bucket", f"storage/{purpose}/bucket", "bucket")  # noqa: E731
    key = ref(stack, "aws_kms_key", "keys/data", "arn")
    gpu = env != "dev"
    runtime, wait = {"dev": (14400, 28800), "staging": (86400, 172800), "prod": (259200, 345600)}[env]
    expected: dict[str, Any] = {
        "AlgorithmSpecification": {
            "TrainingImage": f"763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-training:"
            + ("2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker" if gpu else "2.6.0-cpu-py312-ubuntu22.04-sagemaker"),
            "TrainingInputMode": "File",
        },
        "RoleArn": ref(stack, "aws_iam_role", "platform/sagemaker-training/execution-role", "arn"),
        "InputDataConfig": [
            {
                "ChannelName": "training",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{bucket('training-data')}/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{bucket('model-artifacts')}/training-output/", "KmsKeyId": key},
        "ResourceConfig": {
            "InstanceType": "ml.p3.8xlarge" if gpu else "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 100 if gpu else 50,
            "VolumeKmsKeyId": key,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": runtime, "MaxWaitTimeInSeconds": wait},
        "EnableManagedSpotTraining": True,
        "CheckpointConfig": {"S3Uri": f"s3://{bucket('checkpoints')}/train/", "LocalPath": "/opt/ml/checkpoints"},
        "EnableInterContainerTrafficEncryption": False,
        "Tags": [
            {"Key": "cost_center", "Value": "cc-4711"},
            {"Key": "environment", "Value": env},
            {"Key": "project", "Value": "mlp"},
            {"Key": "team", "Value": "ml-platform"},
        ],
    }
    if gpu:
        expected["VpcConfig"] = {
            "SecurityGroupIds": [ref(stack, "aws_security_group", "platform/sagemaker-training/security-group", "id")],
            "Subnets": [ref(stack, "aws_subnet", f"network/private-{i}", "id") for i in range(3)],
        }
    assert spec == expected
    assert spec["StoppingCondition"]["MaxWaitTimeInSeconds"] >= spec["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert "TrainingJobName" not in spec


@pytest.mark.terraform
def test_published_stacks_validate_with_the_real_terraform(published_dir, published, tmp_path) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    env_vars = terraform_cli_env(tmp_path)
    env_vars["TF_PLUGIN_CACHE_DIR"] = str(tmp_path / "plugin-cache")
    (tmp_path / "plugin-cache").mkdir()
    for env in ENVIRONMENTS:
        workdir = tmp_path / env
        workdir.mkdir()
        (workdir / "cdk.tf.json").write_text(json.dumps(aws_only(published[env]), indent=2))
        run_terraform(["init", "-backend=false", "-input=false", "-no-color"], workdir, env_vars)
        result = run_terraform(["validate", "-no-color", "-json"], workdir, env_vars, ok_returncodes=(0, 1))
        report = json.loads(result.stdout)
        problems = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]]
        assert report["valid"] and problems == [], f"{env}:\n" + "\n".join(problems)


# --- the construct on its own --------------------------------------------------------------------


def _platform(stack: cdktf.TerraformStack) -> dict[str, Any]:
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    key = aws.kms_key.KmsKey(stack, "data-key", enable_key_rotation=True)
    vpc = aws.vpc.Vpc(stack, "vpc", cidr_block="10.0.0.0/16")
    return {
        "account_id": "123456789012",
        "region": "us-east-1",
        "partition": "aws",
        "data_key": key,
        "vpc": vpc,
        "private_subnets": tuple(
            aws.subnet.Subnet(stack, f"private-{i}", vpc_id=vpc.id, cidr_block=f"10.0.{i}.0/24") for i in range(2)
        ),
        "bucket": lambda purpose: SecureBucket(
            stack, purpose, SecureBucketProps(bucket_name=f"test-{purpose}", kms_key=key, prevent_destroy=False)
        ),
    }


def endpoint_stack(settings: SageMakerEndpointSettings, **overrides: Any) -> tuple[dict[str, Any], SageMakerEndpoint]:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "test")
    platform = _platform(stack)
    props: dict[str, Any] = {
        "name_prefix": "mlp-test",
        "settings": settings,
        "account_id": platform["account_id"],
        "region": platform["region"],
        "partition": platform["partition"],
        "model_artifacts": platform["bucket"]("model-artifacts"),
        "data_key": platform["data_key"],
        "logs_key": aws.kms_key.KmsKey(stack, "logs-key", enable_key_rotation=True),
        "vpc": platform["vpc"],
        "private_subnets": platform["private_subnets"],
    }
    props.update(overrides)
    endpoint = SageMakerEndpoint(stack, "sagemaker", SageMakerEndpointProps(**props))
    return json.loads(cdktf.Testing.synth(stack)), endpoint


def training_stack(settings: SageMakerTrainingSettings, **overrides: Any) -> dict[str, Any]:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "test")
    platform = _platform(stack)
    props: dict[str, Any] = {
        "name_prefix": "mlp-test",
        "settings": settings,
        "account_id": platform["account_id"],
        "region": platform["region"],
        "partition": platform["partition"],
        "training_data": platform["bucket"]("training-data"),
        "checkpoints": platform["bucket"]("checkpoints"),
        "model_artifacts": platform["bucket"]("model-artifacts"),
        "data_key": platform["data_key"],
        "tags": {"environment": "test"},
        "vpc": platform["vpc"],
        "private_subnets": platform["private_subnets"],
    }
    props.update(overrides)
    training = SageMakerTraining(stack, "training", SageMakerTrainingProps(**props))
    synthesized = json.loads(cdktf.Testing.synth(stack))
    synthesized["spec"] = json.loads(training.job_spec)
    return synthesized


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
    assert has_instance_storage(instance_type) is local_nvme


def test_ebs_backed_variants_get_the_volume_key_and_the_grant_to_use_it() -> None:
    settings = SageMakerEndpointSettings(
        model_version="v1", variants=(InstanceVariantSettings(instance_type="ml.m5.xlarge"),)
    )
    stack, endpoint = endpoint_stack(settings)
    config = one(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
    assert config["kms_key_arn"] == ref(stack, "aws_kms_key", "data-key", "arn")
    assert endpoint.volume_kms_key_applied
    assert role_policies(stack, "sagemaker/execution-role")["encrypt-endpoint-volumes"] == doc(
        allow(
            "EncryptStorageVolumes",
            "kms:CreateGrant",
            ref(stack, "aws_kms_key", "data-key", "arn"),
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
    config = one(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
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
    config = one(stack, "aws_sagemaker_endpoint_configuration", "sagemaker/endpoint-configuration")
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
    endpoint = one(stack, "aws_sagemaker_endpoint", "sagemaker/endpoint")
    assert len(endpoint["deployment_config"]["auto_rollback_configuration"]["alarms"]) == 4
    assert len(resources(stack, "aws_appautoscaling_target")) == 2


def test_own_repository_image_is_pulled_from_that_repository() -> None:
    settings = SageMakerEndpointSettings(model_version="v1", inference_image="{repository}:1.4.2")
    stack, _ = endpoint_stack(settings)
    model = one(stack, "aws_sagemaker_model", "sagemaker/model-v1")
    repository = "sagemaker/images/repository"
    assert (
        model["primary_container"]["image"] == ref(stack, "aws_ecr_repository", repository, "repository_url") + ":1.4.2"
    )
    assert role_policies(stack, "sagemaker/execution-role")["pull-serving-image"] == ecr_pull(
        ref(stack, "aws_ecr_repository", repository, "arn")
    )


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
    policy_ = one(stack, "aws_sagemaker_endpoint", "sagemaker/endpoint")["deployment_config"][
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
        endpoint_stack(SageMakerEndpointSettings(), name_prefix="a-very-long-project-name-production")
    assert error.value.field == "name_prefix"
    assert "36 characters" in str(error.value)


def test_training_on_nvme_instances_drops_the_volume_key() -> None:
    stack = training_stack(SageMakerTrainingSettings(instance_type="ml.p4d.24xlarge"))
    assert "VolumeKmsKeyId" not in stack["spec"]["ResourceConfig"]
    statements = role_policies(stack, "training/execution-role")["use-data-key"]["Statement"]
    assert [s["Sid"] for s in statements] == ["EncryptTrainingOutput"]


def test_distributed_training_opens_the_group_to_itself_and_encrypts_between_instances() -> None:
    stack = training_stack(SageMakerTrainingSettings(instance_count=2, managed_spot=False))
    group = ref(stack, "aws_security_group", "training/security-group", "id")
    for rule_type in ("aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule"):
        self_rules = [r for r in resources(stack, rule_type).values() if r.get("referenced_security_group_id") == group]
        assert [(r["security_group_id"], r["ip_protocol"]) for r in self_rules] == [(group, "-1")]
    assert stack["spec"]["EnableInterContainerTrafficEncryption"] is True
    assert stack["spec"]["EnableManagedSpotTraining"] is False
    assert stack["spec"]["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}


def test_training_without_vpc_has_no_network_config() -> None:
    stack = training_stack(SageMakerTrainingSettings(vpc=False), vpc=None, private_subnets=())
    assert "VpcConfig" not in stack["spec"]
    assert "manage-vpc-network-interfaces" not in role_policies(stack, "training/execution-role")
    with pytest.raises(ConfigurationError) as error:
        training_stack(SageMakerTrainingSettings(vpc=True), vpc=None)
    assert error.value.field == "vpc"


# --- bad settings fail early and name the field ------------------------------------------------------


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
            "container_environment",
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
