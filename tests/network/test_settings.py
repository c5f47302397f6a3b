"""NetworkSettings: the limits of each field of the network section."""

from __future__ import annotations

import re

import pytest
from constructs.core.errors import ConfigurationError
from constructs.network.settings import KNOWN_INTERFACE_ENDPOINTS, NetworkSettings

CIDR_ALLOWED = "an IPv4 CIDR block such as '10.20.0.0/16' with a prefix from /16 to /20"


def test_defaults_are_a_highly_available_network() -> None:
    settings = NetworkSettings()
    assert (settings.vpc_cidr, settings.az_count, settings.nat_gateways) == ("10.0.0.0/16", 3, "per_az")
    assert settings.interface_endpoints == () and settings.flow_log_retention_days == 90


def test_every_known_interface_endpoint_is_accepted() -> None:
    assert NetworkSettings(interface_endpoints=KNOWN_INTERFACE_ENDPOINTS).interface_endpoints == (
        KNOWN_INTERFACE_ENDPOINTS
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"vpc_cidr": "10.0.0.1/16"}, "vpc_cidr", CIDR_ALLOWED),
        ({"vpc_cidr": "10.0.0.0/24"}, "vpc_cidr", CIDR_ALLOWED),
        ({"vpc_cidr": "10.0.0.0/15"}, "vpc_cidr", CIDR_ALLOWED),
        ({"vpc_cidr": "not-a-cidr"}, "vpc_cidr", CIDR_ALLOWED),
        ({"az_count": 1}, "az_count", "a whole number from 2 to 6"),
        ({"az_count": 7}, "az_count", "a whole number from 2 to 6"),
        ({"az_count": True}, "az_count", "a whole number from 2 to 6"),
        ({"nat_gateways": "none"}, "nat_gateways", "one of 'single', 'per_az'"),
        # A list is not a tuple: the settings are immutable.
        ({"interface_endpoints": ["sts"]}, "interface_endpoints", "a list of one of 'ecr.api'"),
        ({"interface_endpoints": ("sts", "s3")}, "interface_endpoints[1]", "one of 'ecr.api'"),
        ({"flow_log_retention_days": 0}, "flow_log_retention_days", "a CloudWatch Logs retention, one of 1, 3"),
        ({"flow_log_retention_days": 10}, "flow_log_retention_days", "a CloudWatch Logs retention"),
        ({"subnet_count": 3}, "subnet_count", "one of 'vpc_cidr', 'az_count'"),
    ],
)
def test_bad_network_settings_are_rejected(kwargs, field, allowed) -> None:
    with pytest.raises(
        ConfigurationError, match=rf"^NetworkSettings: field '{re.escape(field)}' = .* allowed: {re.escape(allowed)}"
    ):
        NetworkSettings(**kwargs)
