"""The platform's VPC: public and private subnets per AZ, NAT, endpoints and encrypted flow logs."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from typing import Any

from cdktf import Postcondition, TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef, SubnetRef, VpcRef
from constructs.network.settings import NetworkSettings


@dataclass(frozen=True)
class PlatformNetworkProps:
    """Props for :class:`PlatformNetwork`.

    context: the environment; its name prefix names every resource and Name tag, and its account and
      partition scope the flow-log delivery role to this account's flow logs.
    settings: the environment's network shape.
    logs_key: the KMS key that encrypts the flow log group.
    eks_cluster_name: cluster whose ``kubernetes.io/cluster/<name>`` tag the subnets carry, if any.
    """

    context: PlatformContext
    settings: NetworkSettings
    logs_key: KmsKeyRef
    eks_cluster_name: str | None = None


class PlatformNetwork(Construct):
    """A VPC with one public and one private subnet in each availability zone of ``settings.zone_ids``.

    Subnets are placed by zone ID, so they stay in the same physical zones in every account and whatever
    AWS does to the region's other zones; a plan fails, naming the missing IDs, when a zone ID does not
    exist in the provider's region. Private subnets route to the internet through NAT (one shared, or one
    per AZ) and reach S3 through a gateway endpoint; interface endpoints are added where the settings ask
    for them. Subnets carry the tags the AWS Load Balancer Controller and EKS discover them by. Flow logs
    of all traffic go to a KMS-encrypted log group.
    """

    def __init__(self, scope: Construct, id: str, props: PlatformNetworkProps) -> None:
        super().__init__(scope, id)
        self.props = props
        s = props.settings
        name = props.context.name_prefix
        vpc_block = ipaddress.IPv4Network(s.vpc_cidr)
        # Private subnets hold EKS pods (VPC CNI gives every pod a VPC address), so they get the room.
        private_blocks = list(vpc_block.subnets(prefixlen_diff=3))[: s.az_count]
        public_blocks = list(list(vpc_block.subnets(prefixlen_diff=3))[-1].subnets(prefixlen_diff=3))[: s.az_count]

        self.region = aws.data_aws_region.DataAwsRegion(self, "region")
        self._require_zones_in_region(s.zone_ids)
        self.vpc: VpcRef = aws.vpc.Vpc(
            self,
            "vpc",
            cidr_block=s.vpc_cidr,
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": name},
            # Everything runs inside the VPC: replacing it (a changed block) would replace the whole environment.
            lifecycle=prevent_destroy(props.context.protected),
        )
        # The default security group is left with no rules so nothing can use it by accident.
        aws.default_security_group.DefaultSecurityGroup(
            self, "default-sg-locked", vpc_id=self.vpc.id, tags={"Name": f"{name}-default-unused"}
        )
        igw = aws.internet_gateway.InternetGateway(self, "igw", vpc_id=self.vpc.id, tags={"Name": name})

        cluster_tags = {f"kubernetes.io/cluster/{props.eks_cluster_name}": "shared"} if props.eks_cluster_name else {}
        self.public_subnets: list[SubnetRef] = []
        self.private_subnets: list[SubnetRef] = []
        for index, zone_id in enumerate(s.zone_ids):
            self.public_subnets.append(
                aws.subnet.Subnet(
                    self,
                    f"public-{index}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(public_blocks[index]),
                    availability_zone_id=zone_id,
                    map_public_ip_on_launch=False,
                    tags={"Name": f"{name}-public-{index}", "kubernetes.io/role/elb": "1", **cluster_tags},
                )
            )
            self.private_subnets.append(
                aws.subnet.Subnet(
                    self,
                    f"private-{index}",
                    vpc_id=self.vpc.id,
                    cidr_block=str(private_blocks[index]),
                    availability_zone_id=zone_id,
                    tags={
                        "Name": f"{name}-private-{index}",
                        "kubernetes.io/role/internal-elb": "1",
                        **cluster_tags,
                    },
                )
            )

        public_rt = aws.route_table.RouteTable(self, "public-rt", vpc_id=self.vpc.id, tags={"Name": f"{name}-public"})
        aws.route.Route(
            self, "public-default", route_table_id=public_rt.id, destination_cidr_block="0.0.0.0/0", gateway_id=igw.id
        )
        for index, subnet in enumerate(self.public_subnets):
            aws.route_table_association.RouteTableAssociation(
                self, f"public-rta-{index}", subnet_id=subnet.id, route_table_id=public_rt.id
            )

        nat_count = s.az_count if s.nat_gateways == "per_az" else 1
        self.nat_gateways: list[Any] = []
        for index in range(nat_count):
            eip = aws.eip.Eip(
                self, f"nat-eip-{index}", domain="vpc", tags={"Name": f"{name}-nat-{index}"}, depends_on=[igw]
            )
            self.nat_gateways.append(
                aws.nat_gateway.NatGateway(
                    self,
                    f"nat-{index}",
                    allocation_id=eip.id,
                    subnet_id=self.public_subnets[index].id,
                    tags={"Name": f"{name}-nat-{index}"},
                )
            )

        self.private_route_tables: list[Any] = []
        for index, subnet in enumerate(self.private_subnets):
            rt = aws.route_table.RouteTable(
                self, f"private-rt-{index}", vpc_id=self.vpc.id, tags={"Name": f"{name}-private-{index}"}
            )
            nat = self.nat_gateways[index % nat_count]
            aws.route.Route(
                self,
                f"private-default-{index}",
                route_table_id=rt.id,
                destination_cidr_block="0.0.0.0/0",
                nat_gateway_id=nat.id,
            )
            aws.route_table_association.RouteTableAssociation(
                self, f"private-rta-{index}", subnet_id=subnet.id, route_table_id=rt.id
            )
            self.private_route_tables.append(rt)

        region = self.region
        self.s3_endpoint = aws.vpc_endpoint.VpcEndpoint(
            self,
            "s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{region.name}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in self.private_route_tables],
            tags={"Name": f"{name}-s3"},
        )
        self.interface_endpoints: dict[str, Any] = {}
        if s.interface_endpoints:
            endpoint_sg = aws.security_group.SecurityGroup(
                self,
                "endpoints-sg",
                name=f"{name}-vpc-endpoints",
                description="HTTPS from inside the VPC to AWS interface endpoints",
                vpc_id=self.vpc.id,
                tags={"Name": f"{name}-vpc-endpoints"},
            )
            aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
                self,
                "endpoints-https-from-vpc",
                security_group_id=endpoint_sg.id,
                description="HTTPS from the VPC",
                ip_protocol="tcp",
                from_port=443,
                to_port=443,
                cidr_ipv4=s.vpc_cidr,
            )
            for service in s.interface_endpoints:
                self.interface_endpoints[service] = aws.vpc_endpoint.VpcEndpoint(
                    self,
                    f"endpoint-{service.replace('.', '-')}",
                    vpc_id=self.vpc.id,
                    service_name=f"com.amazonaws.{region.name}.{service}",
                    vpc_endpoint_type="Interface",
                    private_dns_enabled=True,
                    subnet_ids=[subnet.id for subnet in self.private_subnets],
                    security_group_ids=[endpoint_sg.id],
                    tags={"Name": f"{name}-{service}"},
                )

        self._flow_logs(props, name)

    def _require_zones_in_region(self, zone_ids: tuple[str, ...]) -> None:
        """Fail the plan, before any subnet is created, when a pinned zone ID is not a zone of the region.

        The environment model already checks each ID's region prefix; only AWS knows which zones a region
        has (a region gains zones, and an account sees only the zones it may use). The data source is read
        at plan time, with every zone state accepted: an impaired zone must not block the plan that moves
        workloads away from it. Filtering by zone ID also keeps the result a closed set (checkov CKV_AWS_394).
        """
        wanted = json.dumps(list(zone_ids))
        missing = f"sort(setsubtract({wanted}, self.zone_ids))"
        aws.data_aws_availability_zones.DataAwsAvailabilityZones(
            self,
            "zones",
            filter=[
                aws.data_aws_availability_zones.DataAwsAvailabilityZonesFilter(name="zone-id", values=list(zone_ids))
            ],
            lifecycle=TerraformResourceLifecycle(
                postcondition=[
                    Postcondition(
                        condition=f"${{length({missing}) == 0}}",
                        error_message=(
                            f'Availability zone IDs ${{join(", ", {missing})}} are not zones of region '
                            f"{self.region.name}. The subnets are pinned to network.zone_ids in stacks/matrix.py "
                            f"({', '.join(zone_ids)}), and every one must exist in the region: list its zone IDs "
                            "with `aws ec2 describe-availability-zones --query 'AvailabilityZones[].ZoneId'`."
                        ),
                    )
                ]
            ),
        )

    def _flow_logs(self, props: PlatformNetworkProps, name: str) -> None:
        self.flow_log_group = encrypted_log_group(
            self,
            "flow-log-group",
            name=f"/ml-platform/{name}/vpc-flow-logs",
            retention_days=props.settings.flow_log_retention_days,
            key=props.logs_key,
            protected=props.context.protected,
        )
        region = self.region.name
        context = props.context
        role = service_role(
            self,
            "flow-log-role",
            name=context.global_name(f"{name}-vpc-flow-logs"),
            services=("vpc-flow-logs.amazonaws.com",),
            description="Delivers this VPC's flow logs to its log group",
            # Only flow logs of this account may use the role (confused-deputy protection).
            trust_conditions={
                "StringEquals": {"aws:SourceAccount": context.account_id},
                "ArnLike": {
                    "aws:SourceArn": f"arn:{context.partition}:ec2:{region}:{context.account_id}:vpc-flow-log/*"
                },
            },
        )
        grant(
            self,
            "write-flow-logs",
            role,
            PolicyStatement(
                sid="WriteFlowLogGroup",
                actions=("logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"),
                resources=(self.flow_log_group.arn, f"{self.flow_log_group.arn}:*"),
            ),
            # The delivery service looks its destination up before writing (VPC User Guide's minimum
            # policy); DescribeLogGroups is authorized on the account's log-group:* pattern only.
            PolicyStatement(
                sid="FindFlowLogGroup",
                actions=("logs:DescribeLogGroups",),
                resources=(f"arn:{context.partition}:logs:{region}:{context.account_id}:log-group:*",),
            ),
        )
        aws.flow_log.FlowLog(
            self,
            "flow-log",
            vpc_id=self.vpc.id,
            traffic_type="ALL",
            log_destination_type="cloud-watch-logs",
            log_destination=self.flow_log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=60,
        )

    @property
    def private_subnet_ids(self) -> list[str]:
        """IDs of the private subnets, one per AZ, in the order of ``settings.zone_ids``."""
        return [subnet.id for subnet in self.private_subnets]

    @property
    def public_subnet_ids(self) -> list[str]:
        """IDs of the public subnets, one per AZ, in the order of ``settings.zone_ids``."""
        return [subnet.id for subnet in self.public_subnets]
