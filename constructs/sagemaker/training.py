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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement
from constructs.core.instance_types import has_instance_storage
from constructs.core.refs import KmsKeyRef, SecurityGroupRef, SubnetRef, VpcRef
from constructs.sagemaker.execution_role import (
    SageMakerExecutionRole,
    https_only_security_group,
    require_vpc_network,
)
from constructs.sagemaker.images import ResolvedImage, default_pytorch_image, resolve_image
from constructs.sagemaker.settings import SageMakerTrainingSettings
from constructs.storage.bucket import SecureBucket

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"


@dataclass(frozen=True)
class SageMakerTrainingProps:
    """Props for :class:`SageMakerTraining`.

    context: the environment (names start with its prefix; its owner tags go on every job, which provider
      default_tags do not reach because jobs are created through the API).
    settings: the environment's training settings.
    training_data: bucket the jobs read; checkpoints: bucket for spot checkpoints;
    model_artifacts: bucket receiving ``training-output/<job name>/output/model.tar.gz``.
    data_key: KMS key for the output and the training volumes.
    vpc, private_subnets: the network for VPC mode (required when ``settings.vpc``).
    """

    context: PlatformContext
    settings: SageMakerTrainingSettings
    training_data: SecureBucket
    checkpoints: SecureBucket
    model_artifacts: SecureBucket
    data_key: KmsKeyRef
    vpc: VpcRef | None = None
    private_subnets: Sequence[SubnetRef] = ()


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
        c = props.context
        if s.vpc:
            require_vpc_network(where, props.vpc, props.private_subnets)
        self.props = props
        self.name = f"{c.name_prefix}-training"
        self.checkpoint_prefix = f"{s.job_name_prefix}/"
        # SageMaker refuses a VolumeKmsKeyId for instance types with local NVMe storage.
        self.volume_kms_key_applied = not has_instance_storage(s.instance_type)
        self.image: ResolvedImage = resolve_image(
            s.training_image or default_pytorch_image([s.instance_type], training=True),
            region=c.region,
            account_id=c.account_id,
            partition=c.partition,
        )
        self.security_group: SecurityGroupRef | None = None
        if s.vpc and props.vpc is not None:
            self.security_group = https_only_security_group(
                self,
                "security-group",
                name=f"{self.name}-sagemaker",
                description=f"SageMaker training jobs of {c.name_prefix}: HTTPS egress only",
                vpc_id=props.vpc.id,
            )
            if s.instance_count > 1:
                self._allow_traffic_between_instances(self.security_group)
        self.execution_role = SageMakerExecutionRole(
            self,
            "execution-role",
            name=f"{self.name}-sagemaker",
            description=f"Execution role of the SageMaker training jobs of {c.name_prefix}",
            context=c,
        )
        self.role = self.execution_role.role
        self._grants()
        self.role_policies = self.execution_role.policies
        self.job_spec = json.dumps(self.job_request(), indent=2)

    def _allow_traffic_between_instances(self, group: SecurityGroupRef) -> None:
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

    def _grants(self) -> None:
        p = self.props
        s = p.settings
        role = self.execution_role
        key_statements = [
            PolicyStatement(
                sid="EncryptTrainingOutput",
                actions=("kms:Encrypt", "kms:GenerateDataKey"),
                resources=(p.data_key.arn,),
                conditions={"StringEquals": {"kms:ViaService": p.context.via_service("s3")}},
            )
        ]
        if self.volume_kms_key_applied:
            key_statements.append(role.volume_key_statement(p.data_key))
        role.grant_read(p.training_data, prefix=s.training_data_prefix)
        role.grant_read_write(p.checkpoints, prefix=self.checkpoint_prefix)
        role.grant_read_write(p.model_artifacts, prefix=self.OUTPUT_PREFIX)
        role.grant("use-data-key", *key_statements)
        role.grant_pull("pull-training-image", self.image.repository_arn)
        role.grant_logs("write-training-logs", TRAINING_LOG_GROUP)
        role.grant_metrics("publish-training-metrics", METRICS_NAMESPACE)
        if s.vpc and self.security_group is not None:
            assert p.vpc is not None
            role.grant_vpc_access(
                "manage-vpc-network-interfaces",
                vpc=p.vpc,
                subnets=p.private_subnets,
                security_group=self.security_group,
            )

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
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(p.context.owner_tags.items())],
        }
        if s.vpc and self.security_group is not None:
            request["VpcConfig"] = {
                "SecurityGroupIds": [self.security_group.id],
                "Subnets": [subnet.id for subnet in p.private_subnets],
            }
        return request
