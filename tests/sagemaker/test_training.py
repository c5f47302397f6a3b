"""SageMaker training: the execution role's exact policies and the ``CreateTrainingJob`` request in every
environment, and the construct alone: NVMe instances, distributed jobs and jobs outside the VPC."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.sagemaker.settings import SageMakerTrainingSettings
from constructs.sagemaker.training import SageMakerTraining, SageMakerTrainingProps

from tests.sagemaker.expected import STAGED, ecr_pull, eni_statements, logs, metrics
from tests.sagemaker.tiny import TinyPlatform
from tests.support.synth_json import ENVIRONMENTS, allow, arn_parts, doc, output, ref, resources, role_policies


def training_stack(settings: SageMakerTrainingSettings, **overrides: Any) -> dict[str, Any]:
    """The training construct ``test/training`` alone (props replaced by ``overrides``); ``spec`` is its request."""
    platform = TinyPlatform()
    props: dict[str, Any] = {
        "context": platform.context,
        "settings": settings,
        "training_data": platform.bucket("training-data"),
        "checkpoints": platform.bucket("checkpoints"),
        "model_artifacts": platform.bucket("model-artifacts"),
        "data_key": platform.key,
        "vpc": platform.vpc,
        "private_subnets": platform.private_subnets,
    }
    props.update(overrides)
    training = SageMakerTraining(platform.stack, "training", SageMakerTrainingProps(**props))
    synthesized = platform.synth_with_paths()
    synthesized["spec"] = json.loads(training.job_spec)
    return synthesized


# --- every environment ----------------------------------------------------------------------------


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
def test_training_job_spec_output(stacks, env) -> None:
    stack = stacks[env]
    _, region, _ = arn_parts(stack)
    spec = json.loads(output(stack, "sagemaker_training_job_spec")["value"])
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


# --- the construct on its own -------------------------------------------------------------------


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
