"""PlatformNetwork: per-environment network shape, endpoints, flow logs, the default security group."""

from __future__ import annotations

import ipaddress
import json
import re

import cdktf
import pytest
from constructs.network.network import EKS_UNSUPPORTED_ZONE_IDS, PlatformNetwork, PlatformNetworkProps
from constructs.network.settings import NetworkSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, only, policy, resources

SHAPE = {
    # env: (AZs, NAT gateways, interface endpoints)
    "dev": (2, 1, 0),
    "staging": (3, 3, 6),
    "prod": (3, 3, 6),
}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_nat_and_routes_match_the_environment(stacks, env) -> None:
    azs, nats, _ = SHAPE[env]
    stack = stacks[env]
    subnets = resources(stack, "aws_subnet").values()
    public = [s for s in subnets if "kubernetes.io/role/elb" in s["tags"]]
    private = [s for s in subnets if "kubernetes.io/role/internal-elb" in s["tags"]]
    assert len(public) == len(private) == azs
    assert all(s["map_public_ip_on_launch"] is False for s in public)
    assert all(s["tags"][f"kubernetes.io/cluster/mlp-{env}"] == "shared" for s in public + private)
    # Each AZ index gets its own zone from the data source.
    zones = re.compile(r"^\$\{element\(data\.aws_availability_zones\.platform_network_zones_\w+\.names, (\d)\)\}$")
    assert sorted(int(zones.match(s["availability_zone"]).group(1)) for s in private) == list(range(azs))
    assert len(resources(stack, "aws_nat_gateway")) == nats
    assert len(resources(stack, "aws_eip")) == nats
    private_routes = [r for r in resources(stack, "aws_route").values() if "nat_gateway_id" in r]
    assert len(private_routes) == azs
    assert len({r["nat_gateway_id"] for r in private_routes}) == nats


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_zones_exclude_those_eks_cannot_use(stacks, env) -> None:
    (zones,) = stacks[env]["data"]["aws_availability_zones"].values()
    assert zones["exclude_zone_ids"] == ["use1-az3", "usw1-az2", "cac1-az3"]
    assert zones["state"] == "available"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnet_blocks_are_carved_from_the_vpc_without_overlap(stacks, env) -> None:
    vpc = only(stacks[env], "aws_vpc")
    block = ipaddress.IPv4Network(vpc["cidr_block"])
    cidrs = [ipaddress.IPv4Network(s["cidr_block"]) for s in resources(stacks[env], "aws_subnet").values()]
    assert all(c.subnet_of(block) for c in cidrs)
    assert not any(a.overlaps(b) for i, a in enumerate(cidrs) for b in cidrs[i + 1 :])
    assert vpc["enable_dns_hostnames"] is True and vpc["enable_dns_support"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoints_s3_gateway_everywhere_interface_only_where_intended(stacks, env) -> None:
    endpoints = resources(stacks[env], "aws_vpc_endpoint").values()
    gateways = [e for e in endpoints if e["vpc_endpoint_type"] == "Gateway"]
    interfaces = [e for e in endpoints if e["vpc_endpoint_type"] == "Interface"]
    assert len(gateways) == 1 and gateways[0]["service_name"].endswith(".s3")
    assert len(gateways[0]["route_table_ids"]) == SHAPE[env][0]
    assert len(interfaces) == SHAPE[env][2]
    if interfaces:
        services = sorted(e["service_name"].rsplit("}.", 1)[1] for e in interfaces)
        assert services == sorted(["ecr.api", "ecr.dkr", "sts", "logs", "sagemaker.api", "sagemaker.runtime"])
        assert all(e["private_dns_enabled"] is True for e in interfaces)
        ingress = only(stacks[env], "aws_vpc_security_group_ingress_rule", "endpoints-https-from-vpc")
        assert (ingress["from_port"], ingress["to_port"], ingress["cidr_ipv4"]) == (
            443,
            443,
            only(stacks[env], "aws_vpc")["cidr_block"],
        )


@pytest.mark.parametrize(("env", "retention"), [("dev", 14), ("staging", 30), ("prod", 365)])
def test_flow_logs_go_to_an_encrypted_group_with_matrix_retention(stacks, stack_json, env, retention) -> None:
    group = only(stacks[env], "aws_cloudwatch_log_group", "network/flow-log-group")
    assert group["retention_in_days"] == retention
    assert group["kms_key_id"].startswith("${aws_kms_key.platform_keys_logs_")
    assert cdktf.Testing.to_have_resource_with_properties(
        stack_json[env], "aws_flow_log", {"traffic_type": "ALL", "log_destination_type": "cloud-watch-logs"}
    )
    role_policy = policy(only(stacks[env], "aws_iam_role_policy", "network/write-flow-logs")["policy"])
    write, find = role_policy["Statement"]
    assert write["Action"] == ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    assert all(r.startswith("${aws_cloudwatch_log_group.platform_network_flow-log-group") for r in write["Resource"])
    assert find["Action"] == "logs:DescribeLogGroups"
    assert re.fullmatch(
        r"arn:\$\{data\.aws_partition\.\w+\.partition\}:logs:\$\{data\.aws_region\.\w+\.name\}:"
        r"\$\{data\.aws_caller_identity\.\w+\.account_id\}:log-group:\*",
        find["Resource"],
    )
    trust = policy(only(stacks[env], "aws_iam_role", "network/flow-log-role")["assume_role_policy"])
    (assume,) = trust["Statement"]
    assert assume["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert list(assume["Condition"]["StringEquals"]) == ["aws:SourceAccount"]
    assert assume["Condition"]["ArnLike"]["aws:SourceArn"].endswith(":vpc-flow-log/*")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_default_security_group_is_locked_down(stacks, env) -> None:
    default_sg = only(stacks[env], "aws_default_security_group")
    assert "ingress" not in default_sg and "egress" not in default_sg


def _network(settings: NetworkSettings, eks_cluster_name: str | None = None) -> str:
    """The synthesized JSON of a PlatformNetwork alone, in a stack with literal account, region and partition."""
    tiny = TinyStack("net")
    PlatformNetwork(
        tiny.stack,
        "network",
        PlatformNetworkProps(
            context=tiny.context, settings=settings, logs_key=tiny.key, eks_cluster_name=eks_cluster_name
        ),
    )
    return cdktf.Testing.synth(tiny.stack)


def test_network_construct_without_cluster_name_has_no_cluster_tag() -> None:
    synthesized = _network(NetworkSettings(vpc_cidr="10.0.0.0/20", az_count=2, nat_gateways="single"))
    assert "kubernetes.io/cluster/" not in synthesized
    assert "exclude_zone_ids" not in synthesized
    # A /20 VPC still yields /23 private and /26 public subnets.
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_subnet", {"cidr_block": "10.0.0.0/23"})
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_subnet", {"cidr_block": "10.0.14.0/26"})


def test_network_construct_names_its_resources_and_scopes_flow_logs_by_the_context() -> None:
    synthesized = _network(NetworkSettings(az_count=2, nat_gateways="single"), eks_cluster_name="acme")
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_vpc", {"tags": {"Name": "p-test"}})
    assert cdktf.Testing.to_have_resource_with_properties(
        synthesized,
        "aws_subnet",
        {"tags": {"Name": "p-test-private-1", "kubernetes.io/cluster/acme": "shared"}},
    )
    assert cdktf.Testing.to_have_data_source_with_properties(
        synthesized, "aws_availability_zones", {"exclude_zone_ids": list(EKS_UNSUPPORTED_ZONE_IDS)}
    )
    assert cdktf.Testing.to_have_resource_with_properties(
        synthesized, "aws_cloudwatch_log_group", {"name": "/ml-platform/p-test/vpc-flow-logs"}
    )
    (role,) = resources(json.loads(synthesized), "aws_iam_role").values()
    (assume,) = policy(role["assume_role_policy"])["Statement"]
    assert role["name"] == "p-test-vpc-flow-logs"
    assert assume["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert re.fullmatch(
        r"arn:aws:ec2:\$\{data\.aws_region\.\w+\.name\}:123456789012:vpc-flow-log/\*",
        assume["Condition"]["ArnLike"]["aws:SourceArn"],
    )
