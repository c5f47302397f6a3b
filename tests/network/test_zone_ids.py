"""Zone IDs across sections and environments: each belongs to the environment's region, EKS environments avoid the
zones EKS cannot use, multi-AZ means three zones; and the matrix's zones exist where the emulator deploys them.

The emulator deploy (tests/stacks/test_emulator_deploy.py) creates subnets by zone ID in moto's us-east-1, so the
moto calls it relies on are checked here directly, in moto's in-process mock, in a fraction of a second.
"""

from __future__ import annotations

import json
import re

import boto3
import pytest
from constructs.core.errors import ConfigurationError
from constructs.network.settings import EKS_UNSUPPORTED_ZONE_IDS, NetworkSettings
from moto import mock_aws

from stacks.environment import SUPPORTED_REGIONS, ZONE_ID_PREFIXES, EnvironmentConfig
from stacks.matrix import MATRIX
from stacks.overrides import load_environments

# Zone IDs of the supported regions, as `aws ec2 describe-availability-zones` reports them (one per region).
KNOWN_ZONES = {
    "us-east-1": "use1-az1",
    "us-east-2": "use2-az1",
    "us-west-2": "usw2-az1",
    "eu-west-1": "euw1-az1",
    "eu-central-1": "euc1-az1",
    "eu-north-1": "eun1-az1",
    "ap-northeast-1": "apne1-az1",
    "ap-southeast-2": "apse2-az1",
}


def load(overrides: dict[str, dict[str, object]]) -> dict[str, EnvironmentConfig]:
    return load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})


def rejected(overrides: dict[str, dict[str, object]]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        load(overrides)
    return caught.value


def test_every_supported_region_has_the_zone_id_prefix_aws_gives_it() -> None:
    assert set(ZONE_ID_PREFIXES) == set(SUPPORTED_REGIONS) == set(KNOWN_ZONES)
    for region, zone_id in KNOWN_ZONES.items():
        assert zone_id == f"{ZONE_ID_PREFIXES[region]}-az1"
        # And the settings accept that shape of ID.
        assert NetworkSettings(zone_ids=(zone_id, zone_id[:-1] + "2")).az_count == 2


@pytest.mark.parametrize("region", SUPPORTED_REGIONS)
def test_an_environment_takes_the_zones_of_its_own_region(region) -> None:
    prefix = ZONE_ID_PREFIXES[region]
    zones = [f"{prefix}-az1", f"{prefix}-az2"]
    config = load({"dev": {"region": region, "network.zone_ids": zones}})["dev"]
    assert (config.region, config.network.zone_ids) == (region, tuple(zones))


@pytest.mark.parametrize("region", SUPPORTED_REGIONS)
def test_a_zone_of_any_other_region_is_rejected_naming_the_expected_prefix(region) -> None:
    prefix = ZONE_ID_PREFIXES[region]
    for other, other_zone in KNOWN_ZONES.items():
        if other == region:
            continue
        error = rejected({"dev": {"region": region, "network.zone_ids": [f"{prefix}-az1", other_zone]}})
        assert (error.where, error.field, error.value) == ("environment 'dev'", "network.zone_ids[1]", other_zone)
        assert error.allowed == f"a zone ID of {region} ('{prefix}-az<n>', such as '{prefix}-az1')"


def test_changing_the_region_alone_names_the_zones_left_behind() -> None:
    error = rejected({"staging": {"region": "us-west-2"}})
    assert (error.field, error.value) == ("network.zone_ids[0]", MATRIX["staging"].network.zone_ids[0])
    assert "a zone ID of us-west-2 ('usw2-az<n>'" in error.allowed


def test_a_prefix_that_merely_starts_like_the_regions_is_rejected() -> None:
    # use11-az1 starts with "use1" but is not a zone of us-east-1.
    error = rejected({"dev": {"network.zone_ids": ["use1-az1", "use11-az1"]}})
    assert (error.field, error.value) == ("network.zone_ids[1]", "use11-az1")


def test_use1_az3_is_rejected_with_eks_and_accepted_without() -> None:
    zones = ["use1-az1", "use1-az3"]
    error = rejected({"dev": {"network.zone_ids": zones}})
    assert (error.where, error.field, error.value) == ("environment 'dev'", "network.zone_ids[1]", "use1-az3")
    assert error.allowed == (
        "a zone where EKS can place its control plane when eks is enabled (not use1-az3, usw1-az2, cac1-az3)"
    )
    # MLflow and Kubeflow run on EKS, so they go with it.
    without_eks = {"eks": None, "mlflow": None, "kubeflow": None, "network.zone_ids": zones}
    assert load({"dev": without_eks})["dev"].network.zone_ids == tuple(zones)


def test_multi_az_needs_three_zone_ids_and_says_so_on_zone_ids() -> None:
    two = ("use1-az1", "use1-az2")
    error = rejected({"staging": {"network.zone_ids": list(two)}})
    assert (error.where, error.field, error.value) == ("environment 'staging'", "network.zone_ids", two)
    assert error.allowed == "3 or more zone IDs when multi_az is True"
    # A single-AZ-tolerant environment may use two.
    assert load({"dev": {"network.zone_ids": ["use1-az4", "use1-az6"]}})["dev"].network.az_count == 2


def test_the_matrix_pins_two_zones_in_dev_and_three_in_staging_and_prod() -> None:
    zone_ids = {env: config.network.zone_ids for env, config in MATRIX.items()}
    assert zone_ids == {
        "dev": ("use1-az1", "use1-az2"),
        "staging": ("use1-az1", "use1-az2", "use1-az4"),
        "prod": ("use1-az1", "use1-az2", "use1-az4"),
    }
    for env, config in MATRIX.items():
        assert config.eks is not None, env
        assert not set(config.network.zone_ids) & set(EKS_UNSUPPORTED_ZONE_IDS), env


# --- what the emulator's moto does with zone IDs -------------------------------------------------------------


@pytest.fixture
def moto_ec2():
    """An EC2 client against moto's in-process mock (no server: the calls the emulator passes to moto)."""
    with mock_aws():
        yield boto3.client("ec2", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.mark.slow
def test_moto_knows_every_zone_the_matrix_pins(moto_ec2) -> None:
    for env, config in MATRIX.items():
        assert config.region == "us-east-1", env
        wanted = list(config.network.zone_ids)
        found = moto_ec2.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": wanted}])
        assert sorted(zone["ZoneId"] for zone in found["AvailabilityZones"]) == sorted(wanted), env


@pytest.mark.slow
def test_moto_filters_zones_by_id_and_places_subnets_by_zone_id(moto_ec2) -> None:
    wanted = ["use1-az1", "use1-az2", "use1-az9"]
    found = moto_ec2.describe_availability_zones(Filters=[{"Name": "zone-id", "Values": wanted}])
    assert sorted(zone["ZoneId"] for zone in found["AvailabilityZones"]) == ["use1-az1", "use1-az2"]
    assert all(re.fullmatch(r"us-east-1[a-f]", zone["ZoneName"]) for zone in found["AvailabilityZones"])

    vpc_id = moto_ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    created = moto_ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.0.0/19", AvailabilityZoneId="use1-az4")["Subnet"]
    (described,) = moto_ec2.describe_subnets(SubnetIds=[created["SubnetId"]])["Subnets"]
    names = {zone["ZoneId"]: zone["ZoneName"] for zone in moto_ec2.describe_availability_zones()["AvailabilityZones"]}
    assert (described["AvailabilityZoneId"], described["AvailabilityZone"]) == ("use1-az4", names["use1-az4"])
