"""The ACM patch: a DNS-validated certificate is issued when, and only when, its validation record exists."""

from __future__ import annotations

from typing import Any

import boto3
from moto import mock_aws

from emulator.server import apply_patches


def _clients() -> tuple[Any, Any]:
    return boto3.client("acm", region_name="us-east-1"), boto3.client("route53", region_name="us-east-1")


def _validation_record(acm: Any, arn: str) -> dict[str, str]:
    (option,) = acm.describe_certificate(CertificateArn=arn)["Certificate"]["DomainValidationOptions"]
    return option["ResourceRecord"]  # type: ignore[no-any-return]


@mock_aws
def test_a_certificate_stays_pending_without_its_validation_record() -> None:
    apply_patches()
    acm, route53 = _clients()
    route53.create_hosted_zone(Name="ml.example.com", CallerReference="zone")
    arn = acm.request_certificate(DomainName="mlflow.ml.example.com", ValidationMethod="DNS")["CertificateArn"]
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"
    # Another record of the zone does not validate it.
    zone_id = route53.list_hosted_zones()["HostedZones"][0]["Id"]
    other = {"Name": "www.ml.example.com", "Type": "CNAME", "TTL": 60, "ResourceRecords": [{"Value": "x.example"}]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": other}]}
    )
    assert acm.describe_certificate(CertificateArn=arn)["Certificate"]["Status"] == "PENDING_VALIDATION"


@mock_aws
def test_a_certificate_is_issued_once_its_validation_record_exists() -> None:
    apply_patches()
    acm, route53 = _clients()
    zone_id = route53.create_hosted_zone(Name="ml.example.com", CallerReference="zone")["HostedZone"]["Id"]
    arn = acm.request_certificate(DomainName="mlflow.ml.example.com", ValidationMethod="DNS")["CertificateArn"]
    record = _validation_record(acm, arn)
    change = {
        "Action": "CREATE",
        "ResourceRecordSet": {
            "Name": record["Name"],
            "Type": record["Type"],
            "TTL": 300,
            "ResourceRecords": [{"Value": record["Value"]}],
        },
    }
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [change]})
    certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    assert certificate["Status"] == "ISSUED"
    assert certificate["DomainValidationOptions"][0]["ValidationStatus"] == "SUCCESS"
