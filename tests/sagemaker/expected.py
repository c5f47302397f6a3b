"""The policy documents SageMaker execution roles are expected to carry, built from a synthesized stack."""

from __future__ import annotations

from typing import Any

from tests.support.synth_json import allow, arn_parts, doc, ref

STAGED = ("staging", "prod")
"""Environments whose SageMaker runs in the VPC, with data capture (dev is serverless, outside the VPC)."""


def ecr_pull(repository_arn: str) -> dict[str, Any]:
    """Pull one repository's images (the registry token has no resource scope)."""
    return doc(
        allow(
            "PullImageLayers",
            ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
            repository_arn,
        ),
        allow("GetRegistryToken", "ecr:GetAuthorizationToken", "*"),
    )


def logs(group_arn: str) -> dict[str, Any]:
    """Create one log group and write its streams."""
    return doc(
        allow("CreateLogGroup", "logs:CreateLogGroup", group_arn),
        allow(
            "WriteLogStreams",
            ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            f"{group_arn}:log-stream:*",
        ),
    )


def metrics(namespace: str) -> dict[str, Any]:
    """Publish metrics into one namespace only."""
    return doc(
        allow(
            "PublishMetrics",
            "cloudwatch:PutMetricData",
            "*",
            StringEquals={"cloudwatch:namespace": namespace},
        )
    )


def eni_statements(stack: dict[str, Any], security_group_suffix: str) -> list[dict[str, Any]]:
    """Network interfaces only in the platform's private subnets with the given group, managed only in its VPC."""
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
