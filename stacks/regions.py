"""The regions the platform supports, each with the prefix of its availability zone IDs."""

from __future__ import annotations

from collections.abc import Mapping

# Regions the platform is tested against, each with the prefix of its availability zone IDs (use1-az1 is a zone of
# us-east-1; `aws ec2 describe-availability-zones --region <region> --query 'AvailabilityZones[].ZoneId'` lists
# them). Extend deliberately (each needs g5/p-family capacity).
ZONE_ID_PREFIXES: Mapping[str, str] = {
    "us-east-1": "use1",
    "us-east-2": "use2",
    "us-west-2": "usw2",
    "eu-west-1": "euw1",
    "eu-central-1": "euc1",
    "eu-north-1": "eun1",
    "ap-northeast-1": "apne1",
    "ap-southeast-2": "apse2",
}
SUPPORTED_REGIONS: tuple[str, ...] = tuple(ZONE_ID_PREFIXES)
