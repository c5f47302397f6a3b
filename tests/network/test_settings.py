"""NetworkSettings: the limits of each field of the network section, zone IDs and the VPC block's address space."""

from __future__ import annotations

import re

import pytest
from constructs.core.errors import ConfigurationError
from constructs.network.settings import KNOWN_INTERFACE_ENDPOINTS, VPC_CIDR_ALLOWED, NetworkSettings

ZONES = ("use1-az1", "use1-az2", "use1-az4")
ZONE_IDS_ALLOWED = "a list of availability zone IDs such as 'use1-az1'"
ZONE_ID_ALLOWED = "availability zone IDs such as 'use1-az1'"


def test_defaults_are_a_highly_available_network() -> None:
    settings = NetworkSettings(zone_ids=ZONES)
    assert (settings.vpc_cidr, settings.zone_ids, settings.nat_gateways) == ("10.0.0.0/16", ZONES, "per_az")
    assert settings.interface_endpoints == () and settings.flow_log_retention_days == 90


def test_az_count_is_read_from_the_zone_ids_and_is_not_a_field() -> None:
    assert NetworkSettings(zone_ids=ZONES).az_count == 3
    assert NetworkSettings(zone_ids=ZONES[:2]).az_count == 2
    with pytest.raises(ConfigurationError) as caught:
        NetworkSettings(zone_ids=ZONES, az_count=3)
    assert (caught.value.field, caught.value.value) == ("az_count", "az_count")
    assert "'zone_ids'" in caught.value.allowed


def test_zone_ids_have_no_default_because_they_belong_to_one_region() -> None:
    with pytest.raises(ConfigurationError) as caught:
        NetworkSettings()
    assert caught.value.field == "zone_ids"
    assert caught.value.allowed.startswith(f"a value: {ZONE_IDS_ALLOWED}") and "(the field is required)" in (
        caught.value.allowed
    )


@pytest.mark.parametrize(
    "zone_ids",
    [
        ("use1-az1", "use1-az6"),
        ("apne1-az4", "apne1-az1", "apne1-az2"),
        ("usgw1-az1", "usgw1-az2"),
        ("cnnw1-az1", "cnnw1-az2", "cnnw1-az3"),
        ("use1-az1", "use1-az2", "use1-az3", "use1-az4", "use1-az5", "use1-az6"),
        ("euc1-az10", "euc1-az2"),
    ],
)
def test_zone_ids_of_any_region_are_accepted_in_the_given_order(zone_ids) -> None:
    assert NetworkSettings(zone_ids=zone_ids).zone_ids == zone_ids


def test_every_known_interface_endpoint_is_accepted() -> None:
    settings = NetworkSettings(zone_ids=ZONES, interface_endpoints=KNOWN_INTERFACE_ENDPOINTS)
    assert settings.interface_endpoints == KNOWN_INTERFACE_ENDPOINTS


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"vpc_cidr": "10.0.0.1/16"}, "vpc_cidr", VPC_CIDR_ALLOWED),
        ({"vpc_cidr": "10.0.0.0/24"}, "vpc_cidr", VPC_CIDR_ALLOWED),
        ({"vpc_cidr": "10.0.0.0/15"}, "vpc_cidr", VPC_CIDR_ALLOWED),
        ({"vpc_cidr": "not-a-cidr"}, "vpc_cidr", VPC_CIDR_ALLOWED),
        # Zone names are per-account aliases of physical zones; only zone IDs are accepted.
        ({"zone_ids": ("us-east-1a", "use1-az2")}, "zone_ids[0]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", "USE1-AZ2")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", "use1-az0")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", "use1-az")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", " use1-az2")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        # Local Zones and Wavelength Zones have IDs of another shape: the network spans Availability Zones.
        ({"zone_ids": ("use1-az1", "use1-bos1-az1")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", "use1-wl1-bos-wlz1")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", "")}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1", 1)}, "zone_ids[1]", ZONE_ID_ALLOWED),
        ({"zone_ids": ("use1-az1",)}, "zone_ids", f"{ZONE_IDS_ALLOWED}"),
        ({"zone_ids": ()}, "zone_ids", "(2 to 6 items)"),
        ({"zone_ids": tuple(f"use1-az{n}" for n in range(1, 8))}, "zone_ids", "(2 to 6 items)"),
        # The same zone twice would be two subnet pairs in one zone: no more availability than one.
        ({"zone_ids": ("use1-az1", "use1-az2", "use1-az1")}, "zone_ids", "each item at most once"),
        # A list is not a tuple: the settings are immutable.
        ({"zone_ids": ["use1-az1", "use1-az2"]}, "zone_ids", ZONE_IDS_ALLOWED),
        ({"zone_ids": "use1-az1,use1-az2"}, "zone_ids", ZONE_IDS_ALLOWED),
        ({"nat_gateways": "none"}, "nat_gateways", "one of 'single', 'per_az'"),
        ({"interface_endpoints": ["sts"]}, "interface_endpoints", "a list of one of 'ecr.api'"),
        ({"interface_endpoints": ("sts", "s3")}, "interface_endpoints[1]", "one of 'ecr.api'"),
        ({"flow_log_retention_days": 0}, "flow_log_retention_days", "a CloudWatch Logs retention, one of 1, 3"),
        ({"flow_log_retention_days": 10}, "flow_log_retention_days", "a CloudWatch Logs retention"),
        ({"subnet_count": 3}, "subnet_count", "one of 'vpc_cidr', 'zone_ids'"),
    ],
)
def test_bad_network_settings_are_rejected(kwargs, field, allowed) -> None:
    values = {"zone_ids": ZONES, **kwargs}
    with pytest.raises(
        ConfigurationError, match=rf"^NetworkSettings: field '{re.escape(field)}' = .* allowed: .*{re.escape(allowed)}"
    ):
        NetworkSettings(**values)


@pytest.mark.parametrize(
    "vpc_cidr",
    [
        "10.0.0.0/16",
        "10.255.240.0/20",
        "172.16.0.0/16",
        "172.18.0.0/16",
        "172.31.240.0/20",
        "192.168.0.0/16",
        "192.168.240.0/20",
        "100.64.0.0/16",
        "100.127.240.0/20",
    ],
)
def test_private_vpc_blocks_are_accepted(vpc_cidr) -> None:
    assert NetworkSettings(vpc_cidr=vpc_cidr, zone_ids=ZONES).vpc_cidr == vpc_cidr


@pytest.mark.parametrize(
    "vpc_cidr",
    [
        pytest.param("172.17.0.0/16", id="docker-bridge"),
        pytest.param("172.17.128.0/17", id="inside-docker-bridge"),
        pytest.param("172.16.0.0/15", id="wider-than-allowed"),
        pytest.param("169.254.0.0/16", id="link-local"),
        pytest.param("224.0.0.0/16", id="multicast"),
        pytest.param("239.255.0.0/16", id="multicast-admin-scoped"),
        pytest.param("127.0.0.0/16", id="loopback"),
        pytest.param("0.0.0.0/16", id="this-network"),
        pytest.param("240.0.0.0/16", id="reserved"),
        pytest.param("255.255.0.0/16", id="broadcast"),
        pytest.param("198.18.0.0/16", id="benchmarking"),
        pytest.param("192.0.0.0/20", id="ietf-protocol-assignments"),
        pytest.param("192.0.0.0/16", id="public-around-documentation"),
        pytest.param("8.8.0.0/16", id="public"),
        pytest.param("52.95.0.0/16", id="public-aws"),
        pytest.param("100.128.0.0/16", id="public-next-to-shared"),
        pytest.param("11.0.0.0/16", id="public-next-to-rfc1918"),
        pytest.param("172.32.0.0/16", id="public-after-172-16-12"),
        pytest.param("192.169.0.0/16", id="public-after-192-168"),
    ],
)
def test_reserved_and_public_vpc_blocks_are_rejected(vpc_cidr) -> None:
    with pytest.raises(ConfigurationError) as caught:
        NetworkSettings(vpc_cidr=vpc_cidr, zone_ids=ZONES)
    assert (caught.value.field, caught.value.value, caught.value.allowed) == ("vpc_cidr", vpc_cidr, VPC_CIDR_ALLOWED)
