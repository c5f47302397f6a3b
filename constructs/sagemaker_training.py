"""Infrastructure for SageMaker training jobs, which are API calls rather than Terraform resources.

Terraform provisions what a job needs (an execution role, a security group in VPC mode) and renders
a ready ``CreateTrainingJob`` request, exposed as a Terraform output. Starting a job is then::

    aws sagemaker create-training-job \\
        --cli-input-json "$(terraform output -raw <spec output>)" --training-job-name mlp-prod-train-0001

The request trains on managed spot capacity with checkpoints in S3, so an interrupted job resumes
where it stopped; it writes the model to the artifacts bucket encrypted with the platform's key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.iam_policy import PolicyStatement, grant
from constructs.provider_bindings import aws
from constructs.sagemaker_common import (
    ResolvedImage,
    default_pytorch_image,
    ecr_pull_statements,
    execution_role,
    has_instance_storage,
    https_only_security_group,
    log_group_arn,
    log_statements,
    metric_statement,
    network_interface_statements,
    resolve_image,
    validate_image,
    volume_key_statement,
)
from constructs.secure_bucket import SecureBucket
from constructs.validation import (
    require,
    require_field_types,
    require_int_range,
    require_one_of,
    require_sagemaker_instance_type,
)

# SageMaker's limit for MaxRuntimeInSeconds and MaxWaitTimeInSeconds: 28 days.
MAX_JOB_SECONDS = 28 * 24 * 3600
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
INPUT_MODES = ("File", "FastFile", "Pipe")
_JOB_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_PREFIX = re.compile(r"^(?:[A-Za-z0-9!_.*'()-]+/)*$")


@dataclass(frozen=True)
class SageMakerTrainingSettings:
    """Per-environment SageMaker training.

    instance_type: training instance type with the ``ml.`` prefix (``ml.p3.8xlarge``: 4 V100 GPUs).
    instance_count: instances per job (distributed training above 1).
    volume_size_gb: storage volume per instance (ignored by SageMaker on NVMe instance types).
    training_image: training image; None picks the AWS PyTorch training DLC for the region (the GPU
      build for accelerated instance types). Placeholders: ``{region}`` and ``{account}``.
    input_mode: how the ``training`` channel reaches the container (``File``, ``FastFile``, ``Pipe``).
    training_data_prefix: prefix of the training data bucket the job reads (``""``: the whole bucket).
    job_name_prefix: base of job names; checkpoints go under ``s3://<checkpoints>/<job_name_prefix>/``.
    managed_spot: train on spare capacity (typically 60-90% cheaper); jobs resume from checkpoints.
    max_runtime_seconds: the job is stopped after this much training time.
    max_wait_seconds: with spot, the total time including waiting for capacity (>= max_runtime_seconds).
    vpc: run the job's network interfaces in the private subnets (HTTPS-only egress; traffic
      between the job's instances is allowed when instance_count > 1).
    """

    instance_type: str = "ml.p3.8xlarge"
    instance_count: int = 1
    volume_size_gb: int = 100
    training_image: str | None = None
    input_mode: str = "File"
    training_data_prefix: str = ""
    job_name_prefix: str = "train"
    managed_spot: bool = True
    max_runtime_seconds: int = 24 * 3600
    max_wait_seconds: int = 48 * 3600
    vpc: bool = True

    def __post_init__(self) -> None:
        where = "SageMakerTrainingSettings"
        require_field_types(self, where)
        require_sagemaker_instance_type(where, "instance_type", self.instance_type)
        require_int_range(where, "instance_count", self.instance_count, 1, 100)
        require_int_range(where, "volume_size_gb", self.volume_size_gb, 1, 16384)
        if self.training_image is not None:
            validate_image(where, "training_image", self.training_image, allow_own_repository=False)
        require_one_of(where, "input_mode", self.input_mode, INPUT_MODES)
        require(
            isinstance(self.training_data_prefix, str) and bool(_PREFIX.match(self.training_data_prefix)),
            where,
            "training_data_prefix",
            self.training_data_prefix,
            "'' (the whole bucket) or an S3 key prefix ending in '/', such as 'datasets/images/'",
        )
        require(
            isinstance(self.job_name_prefix, str)
            and len(self.job_name_prefix) <= 40
            and bool(_JOB_NAME.match(self.job_name_prefix)),
            where,
            "job_name_prefix",
            self.job_name_prefix,
            "1-40 lowercase letters and digits with single hyphens",
        )
        for name in ("managed_spot", "vpc"):
            require(isinstance(getattr(self, name), bool), where, name, getattr(self, name), "True or False")
        require_int_range(where, "max_runtime_seconds", self.max_runtime_seconds, 60, MAX_JOB_SECONDS)
        if self.managed_spot:
            require_int_range(
                where, "max_wait_seconds", self.max_wait_seconds, self.max_runtime_seconds, MAX_JOB_SECONDS
            )


@dataclass(frozen=True)
class SageMakerTrainingProps:
    """Props for :class:`SageMakerTraining`.

    name_prefix: prefix of every name (``<project>-<environment>``).
    settings: the environment's training settings.
    account_id, region, partition: where jobs run; usually data-source tokens.
    training_data: bucket the jobs read; checkpoints: bucket for spot checkpoints;
    model_artifacts: bucket receiving ``training-output/<job name>/output/model.tar.gz``.
    data_key: KMS key for the output and the training volumes.
    tags: owner tags put on every job (provider default_tags do not reach API-created jobs).
    vpc, private_subnets: the network for VPC mode (required when ``settings.vpc``).
    """

    name_prefix: str
    settings: SageMakerTrainingSettings
    account_id: str
    region: str
    partition: str
    training_data: SecureBucket
    checkpoints: SecureBucket
    model_artifacts: SecureBucket
    data_key: Any
    tags: Mapping[str, str]
    vpc: Any | None = None
    private_subnets: Sequence[Any] = ()


class SageMakerTraining(Construct):
    """A training execution role, a VPC security group and a ready ``CreateTrainingJob`` request.

    The role reads the training data, reads and writes the checkpoints under the job prefix, writes
    the training output, pulls the training image, writes the training job logs and metrics, and
    uses the data key only through S3 and SageMaker. :attr:`job_spec` is the request as JSON.
    """

    OUTPUT_PREFIX = "training-output/"

    def __init__(self, scope: Construct, id: str, props: SageMakerTrainingProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        s = props.settings
        require(bool(props.name_prefix), where, "name_prefix", props.name_prefix, "a non-empty name prefix")
        if s.vpc:
            require(props.vpc is not None, where, "vpc", props.vpc, "the platform VPC when settings.vpc is True")
            require(
                len(props.private_subnets) >= 1,
                where,
                "private_subnets",
                list(props.private_subnets),
                "at least one private subnet when settings.vpc is True",
            )
        self.props = props
        self.name = f"{props.name_prefix}-training"
        self.checkpoint_prefix = f"{s.job_name_prefix}/"
        # SageMaker refuses a VolumeKmsKeyId for instance types with local NVMe storage.
        self.volume_kms_key_applied = not has_instance_storage(s.instance_type)
        self.image: ResolvedImage = resolve_image(
            s.training_image or default_pytorch_image([s.instance_type], training=True),
            region=props.region,
            account_id=props.account_id,
            partition=props.partition,
        )
        self.security_group: Any | None = None
        if s.vpc:
            self.security_group = https_only_security_group(
                self,
                "security-group",
                name=f"{self.name}-sagemaker",
                description=f"SageMaker training jobs of {props.name_prefix}: HTTPS egress only",
                vpc_id=props.vpc.id,
            )
            if s.instance_count > 1:
                self._allow_traffic_between_instances(self.security_group)
        self.role = execution_role(
            self,
            "execution-role",
            name=f"{self.name}-sagemaker",
            account_id=props.account_id,
            description=f"Execution role of the SageMaker training jobs of {props.name_prefix}",
        )
        self.role_policies = self._grants()
        self.job_spec = json.dumps(self.job_request(), indent=2)

    def _allow_traffic_between_instances(self, group: Any) -> None:
        # Distributed training needs every instance of a job to reach every other one.
        for direction, rule in (
            ("ingress", aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule),
            ("egress", aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule),
        ):
            rule(
                self,
                f"security-group-{direction}-between-instances",
                security_group_id=group.id,
                description="All traffic between the instances of a distributed training job",
                ip_protocol="-1",
                referenced_security_group_id=group.id,
            )

    def _grants(self) -> list[Any]:
        p = self.props
        s = p.settings
        key_statements = [
            PolicyStatement(
                sid="EncryptTrainingOutput",
                actions=("kms:Encrypt", "kms:GenerateDataKey"),
                resources=(p.data_key.arn,),
                conditions={"StringEquals": {"kms:ViaService": f"s3.{p.region}.amazonaws.com"}},
            )
        ]
        if self.volume_kms_key_applied:
            key_statements.append(volume_key_statement(p.data_key.arn, p.region))
        policies = [
            p.training_data.grant_read(self.role, prefix=s.training_data_prefix),
            p.checkpoints.grant_read_write(self.role, prefix=self.checkpoint_prefix),
            p.model_artifacts.grant_read_write(self.role, prefix=self.OUTPUT_PREFIX),
            grant(self, "use-data-key", self.role, *key_statements),
            grant(self, "pull-training-image", self.role, *ecr_pull_statements(self.image.repository_arn)),
            grant(
                self,
                "write-training-logs",
                self.role,
                *log_statements(log_group_arn(p.partition, p.region, p.account_id, TRAINING_LOG_GROUP)),
            ),
            grant(self, "publish-training-metrics", self.role, metric_statement(METRICS_NAMESPACE)),
        ]
        if s.vpc and self.security_group is not None:
            policies.append(
                grant(
                    self,
                    "manage-vpc-network-interfaces",
                    self.role,
                    *network_interface_statements(
                        partition=p.partition,
                        region=p.region,
                        account_id=p.account_id,
                        vpc_arn=p.vpc.arn,
                        subnet_arns=[subnet.arn for subnet in p.private_subnets],
                        security_group_arns=[self.security_group.arn],
                    ),
                )
            )
        return policies

    def job_request(self) -> dict[str, Any]:
        """The ``CreateTrainingJob`` request without ``TrainingJobName`` (given when a job starts)."""
        p = self.props
        s = p.settings
        resource_config: dict[str, Any] = {
            "InstanceType": s.instance_type,
            "InstanceCount": s.instance_count,
            "VolumeSizeInGB": s.volume_size_gb,
        }
        if self.volume_kms_key_applied:
            resource_config["VolumeKmsKeyId"] = p.data_key.arn
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": s.max_runtime_seconds}
        if s.managed_spot:
            stopping["MaxWaitTimeInSeconds"] = s.max_wait_seconds
        request: dict[str, Any] = {
            "AlgorithmSpecification": {"TrainingImage": self.image.uri, "TrainingInputMode": s.input_mode},
            "RoleArn": self.role.arn,
            "InputDataConfig": [
                {
                    "ChannelName": "training",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3Uri": p.training_data.s3_uri(s.training_data_prefix),
                            "S3DataDistributionType": "FullyReplicated",
                        }
                    },
                }
            ],
            "OutputDataConfig": {
                "S3OutputPath": p.model_artifacts.s3_uri(self.OUTPUT_PREFIX),
                "KmsKeyId": p.data_key.arn,
            },
            "ResourceConfig": resource_config,
            "StoppingCondition": stopping,
            "EnableManagedSpotTraining": s.managed_spot,
            "CheckpointConfig": {
                "S3Uri": p.checkpoints.s3_uri(self.checkpoint_prefix),
                "LocalPath": CHECKPOINT_LOCAL_PATH,
            },
            "EnableInterContainerTrafficEncryption": s.instance_count > 1,
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(p.tags.items())],
        }
        if s.vpc and self.security_group is not None:
            request["VpcConfig"] = {
                "SecurityGroupIds": [self.security_group.id],
                "Subnets": [subnet.id for subnet in p.private_subnets],
            }
        return request
