"""Pieces shared by the SageMaker serving and training constructs.

- Container images: the AWS Deep Learning Container (DLC) PyTorch defaults, the template fields an
  image setting may use, and the ECR repository ARN an execution role needs to pull an image.
- Instance storage: which SageMaker instance types carry local NVMe storage, on which SageMaker
  refuses a customer KMS key for the storage volume.
- The execution role trust policy and the statements every SageMaker execution role needs (ECR
  pull, CloudWatch Logs and metrics, VPC network interfaces), written least-privilege.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.iam_policy import PolicyStatement, service_trust_policy
from constructs.provider_bindings import aws
from constructs.validation import ConfigurationError, is_gpu_instance_type

DLC_ACCOUNT = "763104351884"
"""Account that publishes the AWS Deep Learning Containers in every region this platform supports."""

_DLC_REGISTRY = DLC_ACCOUNT + ".dkr.ecr.{region}.amazonaws.com"
# PyTorch 2.6.0 is the newest release with SageMaker variants of both the inference and the training
# DLC (aws/deep-learning-containers: pytorch/{inference,training}/buildspec-2-6-sm.yml).
DLC_PYTORCH_INFERENCE_CPU = _DLC_REGISTRY + "/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
DLC_PYTORCH_INFERENCE_GPU = _DLC_REGISTRY + "/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
DLC_PYTORCH_TRAINING_CPU = _DLC_REGISTRY + "/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
DLC_PYTORCH_TRAINING_GPU = _DLC_REGISTRY + "/pytorch-training:2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker"

IMAGE_PLACEHOLDERS = ("{region}", "{account}", "{repository}")
_IMAGE_REF = r"(?P<ref>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})"
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12}|\{account\})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d|\{region\})\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)" + _IMAGE_REF + "$"
)
_OWN_REPOSITORY_IMAGE = re.compile(r"^\{repository\}" + _IMAGE_REF + "$")
IMAGE_ALLOWED = (
    "an ECR image URI with a tag or digest, such as "
    "'{account}.dkr.ecr.{region}.amazonaws.com/my-model:1.4.2' or '{repository}:1.4.2' "
    "(template fields: {region}, {account}, and {repository} for the platform's own image repository)"
)

# SageMaker instance families whose storage is local NVMe although their names carry no 'd'
# (the EC2 instance-store families g5, g6, g6e, gr6, p5*, trn*). Families with a 'd' in their
# attributes (c5d, m5d, r5d, m6id, g4dn, p3dn, p4d, p4de, x2iedn, ...) are recognised by name.
_INSTANCE_STORE_FAMILIES = frozenset(
    {"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "p6-b200", "trn1", "trn1n", "trn2"}
)
_INSTANCE_TYPE_PARTS = re.compile(r"^ml\.(?P<family>(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z0-9-]*))\.")


def validate_image(where: str, field: str, value: Any, *, allow_own_repository: bool) -> None:
    """``value`` is an ECR image URI (tag or digest), optionally with the platform's template fields."""
    ok = isinstance(value, str) and (
        bool(_ECR_IMAGE.match(value)) or (allow_own_repository and bool(_OWN_REPOSITORY_IMAGE.match(value)))
    )
    if not ok:
        allowed = IMAGE_ALLOWED if allow_own_repository else IMAGE_ALLOWED.replace(", and {repository}", "")
        raise ConfigurationError(where, field, value, allowed)


@dataclass(frozen=True)
class ResolvedImage:
    """An image setting resolved for one deployment: the URI to run and the repository to pull from."""

    uri: str
    repository_arn: str


def resolve_image(
    template: str, *, region: str, account_id: str, partition: str, own_repository: Any | None = None
) -> ResolvedImage:
    """Substitute the template fields of a validated image setting and derive the ECR repository ARN."""
    own = _OWN_REPOSITORY_IMAGE.match(template)
    if own:
        if own_repository is None:
            raise ValueError(f"image {template!r} refers to {{repository}} but no repository was given")
        return ResolvedImage(uri=own_repository.repository_url + own["ref"], repository_arn=own_repository.arn)
    match = _ECR_IMAGE.match(template)
    if match is None:
        raise ValueError(f"image {template!r} was not validated with validate_image()")
    image_region = region if match["region"] == "{region}" else match["region"]
    image_account = account_id if match["account"] == "{account}" else match["account"]
    uri = template.replace("{region}", region).replace("{account}", account_id)
    arn = f"arn:{partition}:ecr:{image_region}:{image_account}:repository/{match['repository']}"
    return ResolvedImage(uri=uri, repository_arn=arn)


def default_pytorch_image(instance_types: Sequence[str], *, training: bool) -> str:
    """The PyTorch DLC matching the instance types: the GPU build when they are accelerated.

    Raises ``ValueError`` for a mix of GPU and CPU types, which no single image serves well.
    """
    gpu = {is_gpu_instance_type(t) for t in instance_types}
    if len(gpu) > 1:
        raise ValueError("GPU and CPU instance types mixed")
    if gpu == {True}:
        return DLC_PYTORCH_TRAINING_GPU if training else DLC_PYTORCH_INFERENCE_GPU
    return DLC_PYTORCH_TRAINING_CPU if training else DLC_PYTORCH_INFERENCE_CPU


def has_instance_storage(instance_type: str) -> bool:
    """True when the SageMaker instance type's storage volume is local NVMe (``ml.g5.xlarge``).

    SageMaker rejects a ``KmsKeyId``/``VolumeKmsKeyId`` for these: the NVMe volumes are encrypted by
    a hardware module on the instance instead.
    """
    match = _INSTANCE_TYPE_PARTS.match(instance_type)
    if match is None:
        return False
    return match["family"] in _INSTANCE_STORE_FAMILIES or "d" in match["attributes"]


def execution_role(scope: Construct, id: str, *, name: str, account_id: str, description: str) -> Any:
    """An IAM role only SageMaker can assume, and only on behalf of this account (confused-deputy guard)."""
    return aws.iam_role.IamRole(
        scope,
        id,
        name=name,
        description=description,
        assume_role_policy=service_trust_policy(
            "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": account_id}}
        ),
        max_session_duration=3600,
    )


def ecr_pull_statements(repository_arn: str) -> list[PolicyStatement]:
    """Pull one ECR repository's images."""
    return [
        PolicyStatement(
            sid="PullImageLayers",
            actions=("ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"),
            resources=(repository_arn,),
        ),
        # GetAuthorizationToken has no resource-level permissions: it returns a registry login token;
        # what can be pulled with it is still limited by the statement above.
        PolicyStatement(sid="GetRegistryToken", actions=("ecr:GetAuthorizationToken",), resources=("*",)),
    ]


def log_group_arn(partition: str, region: str, account_id: str, name: str) -> str:
    """ARN of a CloudWatch Logs group, without the ``:*`` stream suffix."""
    return f"arn:{partition}:logs:{region}:{account_id}:log-group:{name}"


def log_statements(group_arn: str) -> list[PolicyStatement]:
    """Create (if missing) and write one log group's streams."""
    return [
        PolicyStatement(sid="CreateLogGroup", actions=("logs:CreateLogGroup",), resources=(group_arn,)),
        PolicyStatement(
            sid="WriteLogStreams",
            actions=("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
            resources=(f"{group_arn}:log-stream:*",),
        ),
    ]


def metric_statement(namespace: str) -> PolicyStatement:
    """Publish custom metrics, only into ``namespace``."""
    # PutMetricData has no resource-level permissions; the namespace condition is its only scope.
    return PolicyStatement(
        sid="PublishMetrics",
        actions=("cloudwatch:PutMetricData",),
        resources=("*",),
        conditions={"StringEquals": {"cloudwatch:namespace": namespace}},
    )


def volume_key_statement(key_arn: str, region: str) -> PolicyStatement:
    """Let SageMaker attach storage volumes encrypted with ``key_arn`` to the instances it launches."""
    return PolicyStatement(
        sid="EncryptStorageVolumes",
        actions=("kms:CreateGrant",),
        resources=(key_arn,),
        conditions={
            "StringEquals": {"kms:ViaService": f"sagemaker.{region}.amazonaws.com"},
            "Bool": {"kms:GrantIsForAWSResource": "true"},
        },
    )


def network_interface_statements(
    *,
    partition: str,
    region: str,
    account_id: str,
    vpc_arn: str,
    subnet_arns: Sequence[str],
    security_group_arns: Sequence[str],
) -> list[PolicyStatement]:
    """The EC2 actions SageMaker documents for VPC mode, scoped as far as each action allows.

    CreateNetworkInterface is authorised against the new interface, its subnet and its security
    groups: naming the exact subnets and groups confines new interfaces to them. The interface
    permission and delete actions act on existing interfaces and carry ``ec2:Vpc``, which confines
    them to this VPC. The Describe actions have no resource-level permissions at all.
    """
    interfaces = f"arn:{partition}:ec2:{region}:{account_id}:network-interface/*"
    return [
        PolicyStatement(
            sid="CreateInterfacesInPlatformSubnets",
            actions=("ec2:CreateNetworkInterface",),
            resources=(interfaces, *subnet_arns, *security_group_arns),
        ),
        PolicyStatement(
            sid="ManageInterfacesInPlatformVpc",
            actions=(
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ),
            resources=(interfaces,),
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}},
        ),
        # Describe* calls have no resource-level permissions in EC2.
        PolicyStatement(
            sid="DescribeNetwork",
            actions=(
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
            ),
            resources=("*",),
        ),
    ]


def https_only_security_group(scope: Construct, id: str, *, name: str, vpc_id: str, description: str) -> Any:
    """A security group with no ingress and HTTPS-only egress (AWS APIs, S3 through the gateway endpoint)."""
    group = aws.security_group.SecurityGroup(
        scope, id, name=name, description=description, vpc_id=vpc_id, tags={"Name": name}
    )
    aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
        scope,
        f"{id}-https-egress",
        security_group_id=group.id,
        description="HTTPS to AWS APIs and S3",
        ip_protocol="tcp",
        from_port=443,
        to_port=443,
        cidr_ipv4="0.0.0.0/0",
    )
    return group
