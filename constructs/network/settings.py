"""Per-environment network shape."""

from __future__ import annotations

from typing import Annotated, Literal

from constructs.core.settings import LogRetentionDays, Settings, choice, cidr_block
from pydantic import Field

# Interface endpoints the private workloads call (short service names after com.amazonaws.<region>.).
KNOWN_INTERFACE_ENDPOINTS = (
    "ecr.api",
    "ecr.dkr",
    "sts",
    "logs",
    "monitoring",
    "sagemaker.api",
    "sagemaker.runtime",
    "ssm",
    "ssmmessages",
    "ec2messages",
    "ec2",
    "autoscaling",
    "eks",
    "elasticloadbalancing",
    "kms",
)

InterfaceEndpoint = Annotated[str, choice(KNOWN_INTERFACE_ENDPOINTS)]


class NetworkSettings(Settings):
    """Per-environment network shape.

    vpc_cidr: the VPC block, /16 to /20; private subnets get 1/8 of it each, public subnets 1/64.
    az_count: availability zones to spread subnets over (2 to 6).
    nat_gateways: ``"single"`` (one shared NAT, cheapest) or ``"per_az"`` (one per AZ, survives an AZ loss).
    interface_endpoints: PrivateLink endpoints so private workloads reach AWS APIs without NAT.
    flow_log_retention_days: retention of the VPC flow log group (a CloudWatch Logs retention value).
    """

    vpc_cidr: Annotated[str, cidr_block(16, 20)] = "10.0.0.0/16"
    az_count: Annotated[int, Field(ge=2, le=6)] = 3
    nat_gateways: Literal["single", "per_az"] = "per_az"
    interface_endpoints: tuple[InterfaceEndpoint, ...] = ()
    flow_log_retention_days: LogRetentionDays = 90
