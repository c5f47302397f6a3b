"""The SageMaker execution role shared by serving and training, with intent-named, least-privilege grants.

:class:`SageMakerExecutionRole` is deliberately a plain class rather than a Construct of its own: the role and
each grant's inline policy are created in the owning construct's scope, under the ids they always had, so their
Terraform addresses (and the live roles and policies behind them) do not change. A nested construct would
rename every one of them and make Terraform replace the policies of running endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement, grant, service_trust_policy
from constructs.core.refs import KmsKeyRef, RoleRef, SecurityGroupRef, SubnetRef, VpcRef
from constructs.storage.bucket import SecureBucket


class SageMakerExecutionRole:
    """An IAM role only SageMaker can assume, and only on behalf of this account (confused-deputy guard).

    Every ``grant_*`` method writes one inline policy named after its intent (the ``id``) and records it in
    :attr:`policies`, which resources that need the permissions in place first (a model, an endpoint) depend on.
    """

    def __init__(self, scope: Construct, id: str, *, name: str, description: str, context: PlatformContext) -> None:
        self._scope = scope
        self.context = context
        self.role: RoleRef = aws.iam_role.IamRole(
            scope,
            id,
            name=name,
            description=description,
            assume_role_policy=service_trust_policy(
                "sagemaker.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": context.account_id}}
            ),
            max_session_duration=3600,
        )
        self.policies: list[Any] = []

    @property
    def arn(self) -> str:
        """ARN of the role (what SageMaker models and training jobs name as their execution role)."""
        return self.role.arn

    def grant(self, id: str, *statements: PolicyStatement) -> Any:
        """Attach ``statements`` as one inline policy named ``id``."""
        policy = grant(self._scope, id, self.role, *statements)
        self.policies.append(policy)
        return policy

    def grant_read(self, bucket: SecureBucket, *, prefix: str = "") -> Any:
        """Read ``bucket`` (under ``prefix``)."""
        policy = bucket.grant_read(self.role, prefix=prefix)
        self.policies.append(policy)
        return policy

    def grant_read_write(self, bucket: SecureBucket, *, prefix: str = "") -> Any:
        """Read and write ``bucket`` (under ``prefix``)."""
        policy = bucket.grant_read_write(self.role, prefix=prefix)
        self.policies.append(policy)
        return policy

    def grant_pull(self, id: str, repository_arn: str) -> Any:
        """Pull one ECR repository's images."""
        return self.grant(id, *ecr_pull_statements(repository_arn))

    def grant_logs(self, id: str, log_group_name: str) -> Any:
        """Create (if missing) and write one log group's streams."""
        return self.grant(id, *log_statements(self.context.arn("logs", f"log-group:{log_group_name}")))

    def grant_metrics(self, id: str, namespace: str) -> Any:
        """Publish custom metrics, only into ``namespace``."""
        return self.grant(id, metric_statement(namespace))

    def grant_vpc_access(
        self, id: str, *, vpc: VpcRef, subnets: Sequence[SubnetRef], security_group: SecurityGroupRef
    ) -> Any:
        """Create and manage network interfaces in ``subnets`` with ``security_group`` (VPC mode)."""
        return self.grant(
            id,
            *network_interface_statements(
                self.context,
                vpc_arn=vpc.arn,
                subnet_arns=[subnet.arn for subnet in subnets],
                security_group_arns=[security_group.arn],
            ),
        )

    def volume_key_statement(self, key: KmsKeyRef) -> PolicyStatement:
        """Let SageMaker attach storage volumes encrypted with ``key`` to the instances it launches."""
        return PolicyStatement(
            sid="EncryptStorageVolumes",
            actions=("kms:CreateGrant",),
            resources=(key.arn,),
            conditions={
                "StringEquals": {"kms:ViaService": self.context.via_service("sagemaker")},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
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


def log_statements(group_arn: str) -> list[PolicyStatement]:
    """Create (if missing) and write one log group's streams (``group_arn`` without the ``:*`` suffix)."""
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


def network_interface_statements(
    context: PlatformContext, *, vpc_arn: str, subnet_arns: Sequence[str], security_group_arns: Sequence[str]
) -> list[PolicyStatement]:
    """The EC2 actions SageMaker documents for VPC mode, scoped as far as each action allows.

    CreateNetworkInterface is authorised against the new interface, its subnet and its security
    groups: naming the exact subnets and groups confines new interfaces to them. The interface
    permission and delete actions act on existing interfaces and carry ``ec2:Vpc``, which confines
    them to this VPC. The Describe actions have no resource-level permissions at all.
    """
    interfaces = context.arn("ec2", "network-interface/*")
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


def require_vpc_network(where: str, vpc: VpcRef | None, subnets: Sequence[SubnetRef]) -> None:
    """VPC mode needs the platform VPC and at least one private subnet (one per AZ spreads instances over AZs)."""
    require(vpc is not None, where, "vpc", vpc, "the platform VPC when settings.vpc is True")
    require(
        len(subnets) >= 1,
        where,
        "private_subnets",
        list(subnets),
        "at least one private subnet (one per AZ spreads instances over AZs) when settings.vpc is True",
    )


def https_only_security_group(
    scope: Construct, id: str, *, name: str, vpc_id: str, description: str
) -> SecurityGroupRef:
    """A security group with no ingress and HTTPS-only egress (AWS APIs, S3 through the gateway endpoint)."""
    group: SecurityGroupRef = aws.security_group.SecurityGroup(
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
