"""Per-environment network shape."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from constructs.core.formats import LogRetentionDays, private_cidr_block
from constructs.core.settings import IDENTITY, Settings, choice, matches
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

# Zones where EKS cannot place a cluster's control-plane network interfaces (EKS user guide, "VPC and subnet
# requirements"); a cluster with a subnet there fails to create with UnsupportedAvailabilityZoneException.
EKS_UNSUPPORTED_ZONE_IDS = ("use1-az3", "usw1-az2", "cac1-az3")

# Docker's default bridge network. The Amazon VPC User Guide ("VPC CIDR blocks") warns against it: hosts that run
# Docker (SageMaker notebooks and jobs, CI runners, EKS nodes' build tooling) route it to their local bridge, so
# VPC addresses in it are unreachable from their containers.
DOCKER_BRIDGE = ipaddress.IPv4Network("172.17.0.0/16")

VPC_CIDR_ALLOWED = (
    "a private IPv4 CIDR block such as '10.20.0.0/16' with a prefix from /16 to /20, inside 10.0.0.0/8, "
    "172.16.0.0/12 or 192.168.0.0/16 (RFC 1918) or 100.64.0.0/10 (RFC 6598), not overlapping 172.17.0.0/16 "
    "(Docker's default bridge)"
)

ZoneId = Annotated[
    str,
    matches(
        r"[a-z]{3,6}[1-9]-az[1-9][0-9]?",
        "availability zone IDs such as 'use1-az1' (a region prefix, '-az', a number), as "
        "`aws ec2 describe-availability-zones --query 'AvailabilityZones[].ZoneId'` lists them",
    ),
]
"""An availability zone's ID: the same physical zone in every account, unlike a zone name such as us-east-1a."""


class NetworkSettings(Settings):
    """Per-environment network shape.

    vpc_cidr: the VPC block, /16 to /20, in RFC 1918 or RFC 6598 space and clear of Docker's 172.17.0.0/16;
      private subnets get 1/8 of it each, public subnets 1/64.
    zone_ids: the availability zones, by zone ID, that get one public and one private subnet each (2 to 6, each
      once), in this order: subnet ``private-0`` lies in the first. Zone IDs are fixed per physical zone, so the
      subnets never move when AWS adds a zone or changes one's state; every ID must belong to the environment's
      region (checked by the environment model) and exist there (checked when Terraform plans).
    nat_gateways: ``"single"`` (one shared NAT, cheapest) or ``"per_az"`` (one per AZ, survives an AZ loss).
    interface_endpoints: PrivateLink endpoints so private workloads reach AWS APIs without NAT.
    flow_log_retention_days: retention of the VPC flow log group (a CloudWatch Logs retention value).
    """

    # Both place every subnet: changing either replaces the network, so a protected environment changes them
    # in stacks/matrix.py, through review, never by an override.
    vpc_cidr: Annotated[str, private_cidr_block(16, 20, VPC_CIDR_ALLOWED, avoid=(DOCKER_BRIDGE,)), IDENTITY] = (
        "10.0.0.0/16"
    )
    zone_ids: Annotated[tuple[ZoneId, ...], Field(min_length=2, max_length=6), IDENTITY]
    nat_gateways: Literal["single", "per_az"] = "per_az"
    interface_endpoints: tuple[InterfaceEndpoint, ...] = ()
    flow_log_retention_days: LogRetentionDays = 90

    @property
    def az_count(self) -> int:
        """How many availability zones the network spans (one per zone ID)."""
        return len(self.zone_ids)
