"""Network address rules: the VPC block is private (RFC 1918 or RFC 6598) and clear of Docker's bridge; the EKS
endpoint's public-access sources are public and narrow, its private-access sources private.

The expected answers come from the RFCs and the IANA special-purpose address registry, written out here as
literal blocks, not from the constants the validators use. Hypothesis draws blocks from each class of address
space; the explicit tables name one example per class, so a failure says which class broke.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.settings import PRIVATE_ACCESS_CIDRS_ALLOWED, PUBLIC_ACCESS_CIDRS_ALLOWED, EksClusterSettings
from constructs.network.settings import VPC_CIDR_ALLOWED, NetworkSettings
from hypothesis import assume, given, settings
from hypothesis import strategies as st

Network = ipaddress.IPv4Network
ZONES = ("use1-az1", "use1-az2")


def blocks(*cidrs: str) -> tuple[Network, ...]:
    return tuple(Network(cidr) for cidr in cidrs)


RFC1918 = blocks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
RFC6598 = blocks("100.64.0.0/10")
DOCKER_BRIDGE = Network("172.17.0.0/16")
DOCUMENTATION = blocks("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
# IANA IPv4 special-purpose ranges that are not globally reachable (besides the private and documentation
# ones above), multicast, and the deprecated 6to4 relay anycast block (left out of random public draws).
NOT_GLOBAL = blocks(
    "0.0.0.0/8",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "192.0.0.0/24",
    "198.18.0.0/15",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
SIX_TO_FOUR_RELAY = Network("192.88.99.0/24")
NON_PUBLIC = (*RFC1918, *RFC6598, *NOT_GLOBAL)
SPECIAL = (*NON_PUBLIC, *DOCUMENTATION, SIX_TO_FOUR_RELAY)
ANY_EXAMPLES = settings(max_examples=200, deadline=None)


@st.composite
def networks(draw: st.DrawFn, within: Network, min_prefix: int, max_prefix: int) -> Network:
    """A CIDR block inside ``within`` with a prefix from ``min_prefix`` to ``max_prefix`` (clipped to ``within``)."""
    prefix = draw(st.integers(max(min_prefix, within.prefixlen), max_prefix))
    index = draw(st.integers(0, 2 ** (prefix - within.prefixlen) - 1))
    return Network((int(within.network_address) + (index << (32 - prefix)), prefix))


def anywhere(min_prefix: int, max_prefix: int) -> st.SearchStrategy[Network]:
    return networks(Network("0.0.0.0/0"), min_prefix, max_prefix)


@st.composite
def public_networks(draw: st.DrawFn, min_prefix: int, max_prefix: int) -> Network:
    """A block of globally routable unicast space (drawn by octet: Hypothesis favours 0 and the edges)."""
    first = draw(st.integers(1, 223).filter(lambda octet: octet not in (10, 127)))
    prefix = draw(st.integers(min_prefix, max_prefix))
    network = Network(((first << 24) + draw(st.integers(0, 2**24 - 1)), prefix), strict=False)
    assume(not overlaps_any(network, SPECIAL))
    return network


def overlaps_any(network: Network, ranges: tuple[Network, ...]) -> bool:
    return any(network.overlaps(other) for other in ranges)


def rejected(build: Callable[[], object], field: str, value: str) -> ConfigurationError:
    """The error ``build`` raises, once it is known to name ``field`` and ``value``."""
    with pytest.raises(ConfigurationError) as caught:
        build()
    assert (caught.value.field, caught.value.value) == (field, value)
    return caught.value


# --- the VPC block -------------------------------------------------------------------------------------------


@ANY_EXAMPLES
@given(st.sampled_from((*RFC1918, *RFC6598)).flatmap(lambda block: networks(block, 16, 20)))
def test_any_private_vpc_block_clear_of_docker_is_accepted(block: Network) -> None:
    assume(not block.overlaps(DOCKER_BRIDGE))
    assert NetworkSettings(vpc_cidr=str(block), zone_ids=ZONES).vpc_cidr == str(block)


@ANY_EXAMPLES
@given(anywhere(16, 20))
def test_any_vpc_block_outside_private_space_is_rejected(block: Network) -> None:
    assume(not any(block.subnet_of(private) for private in (*RFC1918, *RFC6598)))
    error = rejected(lambda: NetworkSettings(vpc_cidr=str(block), zone_ids=ZONES), "vpc_cidr", str(block))
    assert error.allowed == VPC_CIDR_ALLOWED


# Link-local, multicast, loopback, "this network", reserved and benchmarking space, Docker's bridge, and public
# space (AWS's own included): every class big enough to hold a VPC block.
VPC_REJECTED_CLASSES = tuple(
    space
    for space in (*NOT_GLOBAL, DOCKER_BRIDGE, Network("8.0.0.0/8"), Network("52.0.0.0/8"))
    if space.prefixlen <= 20
)


@ANY_EXAMPLES
@given(st.sampled_from(VPC_REJECTED_CLASSES).flatmap(lambda space: networks(space, 16, 20)))
def test_every_reserved_class_and_the_docker_bridge_are_rejected_as_vpc_blocks(block: Network) -> None:
    rejected(lambda: NetworkSettings(vpc_cidr=str(block), zone_ids=ZONES), "vpc_cidr", str(block))


# --- EKS endpoint sources ------------------------------------------------------------------------------------


@ANY_EXAMPLES
@given(public_networks(24, 32))
def test_any_narrow_public_block_may_reach_the_public_endpoint(block: Network) -> None:
    settings_ = EksClusterSettings(public_access_cidrs=(str(block),))
    assert settings_.public_access_cidrs == (str(block),)


@ANY_EXAMPLES
@given(st.sampled_from(NON_PUBLIC).flatmap(lambda space: networks(space, 24, 32)))
def test_no_private_shared_or_reserved_block_may_reach_the_public_endpoint(block: Network) -> None:
    error = rejected(
        lambda: EksClusterSettings(public_access_cidrs=("203.0.113.0/24", str(block))),
        "public_access_cidrs[1]",
        str(block),
    )
    assert error.allowed == PUBLIC_ACCESS_CIDRS_ALLOWED


@ANY_EXAMPLES
@given(anywhere(0, 23))
def test_public_endpoint_sources_are_at_most_a_slash_24(block: Network) -> None:
    rejected(lambda: EksClusterSettings(public_access_cidrs=(str(block),)), "public_access_cidrs[0]", str(block))


@ANY_EXAMPLES
@given(st.sampled_from(DOCUMENTATION).flatmap(lambda space: networks(space, 24, 32)))
def test_documentation_ranges_are_accepted_so_examples_work(block: Network) -> None:
    assert EksClusterSettings(public_access_cidrs=(str(block),)).public_access_cidrs == (str(block),)


@ANY_EXAMPLES
@given(st.sampled_from((*RFC1918, *RFC6598)).flatmap(lambda space: networks(space, 8, 32)))
def test_any_private_block_may_reach_the_private_endpoint(block: Network) -> None:
    assert EksClusterSettings(private_access_cidrs=(str(block),)).private_access_cidrs == (str(block),)


@ANY_EXAMPLES
@given(anywhere(8, 32))
def test_no_block_outside_private_space_may_reach_the_private_endpoint(block: Network) -> None:
    assume(not any(block.subnet_of(private) for private in (*RFC1918, *RFC6598)))
    error = rejected(
        lambda: EksClusterSettings(private_access_cidrs=(str(block),)), "private_access_cidrs[0]", str(block)
    )
    assert error.allowed == PRIVATE_ACCESS_CIDRS_ALLOWED


@pytest.mark.parametrize(
    ("cidr", "space"),
    [
        ("10.1.2.0/24", "RFC 1918"),
        ("172.16.5.0/24", "RFC 1918"),
        ("192.168.1.7/32", "RFC 1918"),
        ("100.64.1.0/24", "RFC 6598 shared (carrier-grade NAT)"),
        ("127.0.0.1/32", "loopback"),
        ("169.254.169.254/32", "link-local (the instance metadata service)"),
        ("224.0.0.0/24", "multicast"),
        ("239.1.1.1/32", "multicast"),
        ("240.0.0.0/24", "reserved"),
        ("255.255.255.255/32", "limited broadcast"),
        ("0.0.0.0/32", "this network"),
        ("198.18.0.0/24", "benchmarking"),
        ("192.0.0.8/29", "IETF protocol assignments"),
        ("0.0.0.0/0", "everything"),
        ("52.0.0.0/8", "a /8 of AWS's own space"),
        ("8.8.0.0/16", "a public /16"),
        ("203.0.112.0/23", "a public /23"),
    ],
)
def test_public_access_classes_are_rejected(cidr, space) -> None:
    error = rejected(lambda: EksClusterSettings(public_access_cidrs=(cidr,)), "public_access_cidrs[0]", cidr)
    assert error.allowed == PUBLIC_ACCESS_CIDRS_ALLOWED, space


@pytest.mark.parametrize(
    "cidr", ["203.0.113.7/32", "198.51.100.0/24", "192.0.2.1/32", "8.8.8.8/32", "52.95.110.0/24", "1.1.1.0/28"]
)
def test_public_access_accepts_narrow_public_and_documentation_blocks(cidr) -> None:
    assert EksClusterSettings(public_access_cidrs=(cidr,)).public_access_cidrs == (cidr,)
