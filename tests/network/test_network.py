"""PlatformNetwork: per-environment network shape, zones pinned by ID, endpoints, flow logs, the default security
group; the zone check of the plan, through the real terraform (offline validate, and a plan against the emulator)."""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.network.network import PlatformNetwork, PlatformNetworkProps
from constructs.network.settings import NetworkSettings

from emulator import start_emulator, terraform_provider_block
from gitops.terraform import TerraformError, emulator_cli_env, run_terraform, validate_offline
from stacks.matrix import MATRIX
from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, data_ref, in_primary_region, name_of, only, policy, resources

SHAPE = {
    # env: (AZs, NAT gateways, interface endpoints)
    "dev": (2, 1, 0),
    "staging": (3, 3, 6),
    "prod": (3, 3, 6),
}


@pytest.fixture
def stacks(stacks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The environments' own region: a serving standby's network is tested in tests/resilience."""
    return {env: in_primary_region(stack) for env, stack in stacks.items()}


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
    assert len(resources(stack, "aws_nat_gateway")) == nats
    assert len(resources(stack, "aws_eip")) == nats
    private_routes = [r for r in resources(stack, "aws_route").values() if "nat_gateway_id" in r]
    assert len(private_routes) == azs
    assert len({r["nat_gateway_id"] for r in private_routes}) == nats


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnets_are_pinned_to_the_matrix_zone_ids_in_order(stacks, stack_json, env) -> None:
    zone_ids = MATRIX[env].network.zone_ids
    for index, zone_id in enumerate(zone_ids):
        for tier in ("public", "private"):
            subnet = only(stacks[env], "aws_subnet", f"network/{tier}-{index}")
            assert subnet["availability_zone_id"] == zone_id
            # No zone name: names are per-account aliases, and an index into a live list shifts.
            assert "availability_zone" not in subnet
    assert len(resources(stacks[env], "aws_subnet")) == 2 * len(zone_ids)
    assert "element(" not in stack_json[env]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_plan_fails_when_a_pinned_zone_is_not_in_the_region(stacks, env) -> None:
    zone_ids = list(MATRIX[env].network.zone_ids)
    (name,) = stacks[env]["data"]["aws_availability_zones"]
    zones = stacks[env]["data"]["aws_availability_zones"][name]
    assert name == name_of(stacks[env], "aws_availability_zones", "network/zones", block="data")
    # An allow-list of the pinned IDs, whatever their state: an impaired zone must not block a plan.
    assert zones["filter"] == [{"name": "zone-id", "values": zone_ids}]
    assert not {"state", "exclude_zone_ids", "exclude_names", "all_availability_zones"} & set(zones)
    (check,) = zones["lifecycle"]["postcondition"]
    missing = f"sort(setsubtract({json.dumps(zone_ids)}, self.zone_ids))"
    assert check["condition"] == f"${{length({missing}) == 0}}"
    region = data_ref(stacks[env], "aws_region", "network/region", "name")
    assert check["error_message"] == (
        f'Availability zone IDs ${{join(", ", {missing})}} are not zones of region {region}. The subnets are '
        f"pinned to network.zone_ids in stacks/matrix.py ({', '.join(zone_ids)}), and every one must exist in the "
        "region: list its zone IDs with `aws ec2 describe-availability-zones --query 'AvailabilityZones[].ZoneId'`."
    )


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
    settings = NetworkSettings(vpc_cidr="10.0.0.0/20", zone_ids=("use1-az4", "use1-az6"), nat_gateways="single")
    synthesized = _network(settings)
    assert "kubernetes.io/cluster/" not in synthesized
    assert cdktf.Testing.to_have_resource_with_properties(
        synthesized, "aws_subnet", {"cidr_block": "10.0.2.0/23", "availability_zone_id": "use1-az6"}
    )
    # A /20 VPC still yields /23 private and /26 public subnets.
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_subnet", {"cidr_block": "10.0.0.0/23"})
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_subnet", {"cidr_block": "10.0.14.0/26"})


def test_network_construct_names_its_resources_and_scopes_flow_logs_by_the_context() -> None:
    settings = NetworkSettings(zone_ids=("use1-az1", "use1-az2"), nat_gateways="single")
    synthesized = _network(settings, eks_cluster_name="acme")
    assert cdktf.Testing.to_have_resource_with_properties(synthesized, "aws_vpc", {"tags": {"Name": "p-test"}})
    assert cdktf.Testing.to_have_resource_with_properties(
        synthesized,
        "aws_subnet",
        {"tags": {"Name": "p-test-private-1", "kubernetes.io/cluster/acme": "shared"}},
    )
    assert cdktf.Testing.to_have_data_source_with_properties(
        synthesized, "aws_availability_zones", {"filter": [{"name": "zone-id", "values": ["use1-az1", "use1-az2"]}]}
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


# --- the zone check, through the real terraform --------------------------------------------------------------

PINNED = ("use1-az1", "use1-az2")


def _zone_check(zone_ids: tuple[str, ...], provider: dict[str, Any]) -> dict[str, Any]:
    """What a plan reads of the network before it creates anything: its region and zone data sources, as the
    construct synthesizes them for ``zone_ids``, under ``provider`` (the AWS provider block)."""
    config = json.loads(_network(NetworkSettings(zone_ids=zone_ids, nat_gateways="single")))
    return {
        "terraform": {"required_providers": config["terraform"]["required_providers"]},
        "provider": {"aws": [provider]},
        "data": {kind: config["data"][kind] for kind in ("aws_region", "aws_availability_zones")},
    }


@pytest.fixture
def terraform_env(tmp_path: Path) -> dict[str, str]:
    """A terraform environment with its own CLI config (the offline provider mirror, when one is set), fit for
    the emulator too."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    return emulator_cli_env(tmp_path)


@pytest.mark.terraform
def test_the_network_validates_with_the_real_terraform(terraform_env: dict[str, str], tmp_path: Path) -> None:
    config = json.loads(_network(NetworkSettings(zone_ids=PINNED, nat_gateways="single"), eks_cluster_name="acme"))
    config["terraform"].pop("backend", None)
    assert validate_offline({"network": config}, tmp_path / "validate", terraform_env) == {"network": []}


@pytest.mark.emulator
@pytest.mark.terraform
def test_a_plan_names_the_pinned_zones_the_region_lacks(terraform_env: dict[str, str], tmp_path: Path) -> None:
    workdir = tmp_path / "plan"
    workdir.mkdir()
    config = workdir / "cdk.tf.json"
    plan = ["plan", "-input=false", "-no-color", "-lock=false"]
    with start_emulator() as emulator:
        provider = terraform_provider_block(emulator.endpoint)
        # The pinned zones pass the same postcondition in every emulator deploy (tests/stacks/test_emulator_deploy.py).
        config.write_text(json.dumps(_zone_check(("use1-az9", "use1-az2", "use1-az7"), provider)))
        run_terraform(["init", "-input=false", "-no-color"], workdir, terraform_env)
        with pytest.raises(TerraformError) as failed:
            run_terraform(plan, workdir, terraform_env)
    output = " ".join(failed.value.output.split())
    assert "Availability zone IDs use1-az7, use1-az9 are not zones of region us-east-1." in output
    assert "pinned to network.zone_ids in stacks/matrix.py (use1-az9, use1-az2, use1-az7)" in output
