"""The failover front alone, applied to the local AWS emulator in two regions, and read back with boto3.

A small stack holds the front, an AWS provider per region (both sent to the emulator, which keeps each region's
resources apart) and a KMS key per region for the log groups; the hosted zone is the account's, created through
the emulator's API first, as it exists before the platform in AWS. ``terraform apply`` creates everything,
including both certificates' validation (the emulator issues a certificate only once its validation record is in
the zone, emulator/patches/acm.py), and boto3 reads back what each region's API Gateway, CloudWatch and IAM, and
Route53, now hold. The SageMaker endpoint itself is not needed: the integration names it, and nothing invokes it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import cdktf
import pytest

from emulator import Emulator
from gitops.terraform import run_terraform
from stacks.emulator import emulator_provider_arguments
from stacks.matrix import MATRIX
from tests.support.mirror import emulator_terraform_env
from tests.support.stacks import context

pytestmark = [pytest.mark.emulator, pytest.mark.terraform]

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
ENDPOINT_NAME = "p-test-model"
SETTINGS = MATRIX["prod"].failover
TIMEOUT = 600.0


def synthesize(endpoint: str, outdir: Path) -> Path:
    """The front in a stack of its own with both regions' providers pointed at the emulator."""
    from constructs.core.bindings import aws
    from constructs.resilience.front import ServingFront, ServingFrontProps
    from constructs.resilience.regional_api import FrontRegion

    assert SETTINGS is not None
    app = cdktf.App(outdir=str(outdir))
    stack = cdktf.TerraformStack(app, "front")
    arguments = emulator_provider_arguments(endpoint)
    aws.provider.AwsProvider(stack, "aws", region=PRIMARY, **arguments)
    secondary = aws.provider.AwsProvider(stack, "aws-secondary", region=SECONDARY, alias="secondary", **arguments)
    primary_context = context(region=PRIMARY)
    ServingFront(
        stack,
        "front",
        ServingFrontProps(
            settings=SETTINGS,
            endpoint_name=ENDPOINT_NAME,
            primary=FrontRegion("primary", primary_context, aws.kms_key.KmsKey(stack, "logs-primary")),
            secondary=FrontRegion(
                "secondary",
                dataclasses.replace(primary_context, region=SECONDARY),
                aws.kms_key.KmsKey(stack, "logs-secondary", provider=secondary),
                secondary,
            ),
        ),
    )
    app.synth()
    return outdir / "stacks" / "front"


@pytest.fixture(scope="module")
def applied(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    assert SETTINGS is not None
    emulator.client("route53").create_hosted_zone(Name=SETTINGS.hosted_zone_name, CallerReference="front-test")
    workdir = synthesize(emulator.endpoint, tmp_path_factory.mktemp("front"))
    env = emulator_terraform_env(tmp_path_factory.mktemp("front-terraform"))
    run_terraform(["init", "-input=false", "-no-color"], workdir, env, timeout=TIMEOUT)
    run_terraform(["apply", "-auto-approve", "-input=false", "-no-color"], workdir, env, timeout=TIMEOUT)
    return emulator


def the_api(emulator: Emulator, region: str) -> tuple[Any, dict[str, Any]]:
    client = emulator.client("apigateway", region=region)
    (api,) = client.get_rest_apis()["items"]
    return client, api


def resources_by_path(client: Any, api_id: str) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in client.get_resources(restApiId=api_id, embed=["methods"])["items"]}


@pytest.mark.parametrize("region", [PRIMARY, SECONDARY])
def test_each_region_has_its_api_invoking_its_own_endpoint(applied: Emulator, region: str) -> None:
    client, api = the_api(applied, region)
    assert api["name"] == "p-test-serving-front"
    assert api["endpointConfiguration"]["types"] == ["REGIONAL"]
    paths = resources_by_path(client, api["id"])
    assert sorted(paths) == ["/", "/invocations", "/ping"]

    invoke = client.get_method(restApiId=api["id"], resourceId=paths["/invocations"]["id"], httpMethod="POST")
    assert invoke["authorizationType"] == "AWS_IAM"
    integration = invoke["methodIntegration"]
    assert integration["type"] == "AWS"
    assert integration["uri"] == (
        f"arn:aws:apigateway:{region}:runtime.sagemaker:path/endpoints/{ENDPOINT_NAME}/invocations"
    )
    role = integration["credentials"].rsplit("/", 1)[1]
    iam = applied.client("iam")
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    statement = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]["Statement"]
    assert statement == [
        {
            "Sid": "InvokeServedEndpoint",
            "Effect": "Allow",
            "Action": "sagemaker:InvokeEndpoint",
            "Resource": f"arn:aws:sagemaker:{region}:123456789012:endpoint/{ENDPOINT_NAME}",
        }
    ]

    ping = client.get_method(restApiId=api["id"], resourceId=paths["/ping"]["id"], httpMethod="GET")
    assert ping["authorizationType"] == "NONE"
    assert ping["methodIntegration"]["type"] == "MOCK"


@pytest.mark.parametrize("region", [PRIMARY, SECONDARY])
def test_each_region_serves_the_host_name_on_its_stage_with_logs(applied: Emulator, region: str) -> None:
    assert SETTINGS is not None
    client, api = the_api(applied, region)
    (stage,) = client.get_stages(restApiId=api["id"])["item"]
    assert stage["stageName"] == "serving"
    assert stage["accessLogSettings"]["destinationArn"].endswith(":log-group:/aws/apigateway/p-test-serving-front")
    domain = client.get_domain_name(domainName=SETTINGS.hostname)
    assert domain["endpointConfiguration"]["types"] == ["REGIONAL"]
    assert f":{region}:" in domain["regionalCertificateArn"]
    (mapping,) = client.get_base_path_mappings(domainName=SETTINGS.hostname)["items"]
    assert (mapping["restApiId"], mapping["stage"]) == (api["id"], "serving")
    logs = applied.client("logs", region=region)
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for name in ("/aws/apigateway/p-test-serving-front", f"API-Gateway-Execution-Logs_{api['id']}/serving"):
        assert groups[name]["retentionInDays"] == 90 and groups[name]["kmsKeyId"]


def test_both_certificates_are_issued_from_one_validation_record(applied: Emulator) -> None:
    assert SETTINGS is not None
    for region in (PRIMARY, SECONDARY):
        acm = applied.client("acm", region=region)
        (summary,) = acm.list_certificates()["CertificateSummaryList"]
        assert summary["DomainName"] == SETTINGS.hostname
        assert acm.describe_certificate(CertificateArn=summary["CertificateArn"])["Certificate"]["Status"] == "ISSUED"


def test_route53_fails_over_between_the_regional_domains_on_their_health(applied: Emulator) -> None:
    assert SETTINGS is not None
    route53 = applied.client("route53")
    checks = {c["Id"]: c["HealthCheckConfig"] for c in route53.list_health_checks()["HealthChecks"]}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for config in checks.values():
        by_type.setdefault(config["Type"], []).append(config)
    assert sorted((t, len(c)) for t, c in by_type.items()) == [
        ("CALCULATED", 2),
        ("CLOUDWATCH_METRIC", 2),
        ("HTTPS", 2),
    ]
    hosts = sorted(c["FullyQualifiedDomainName"] for c in by_type["HTTPS"])
    apis = sorted(f"{the_api(applied, r)[1]['id']}.execute-api.{r}.amazonaws.com" for r in (PRIMARY, SECONDARY))
    assert hosts == apis
    assert {c["ResourcePath"] for c in by_type["HTTPS"]} == {"/serving/ping"}

    (zone,) = route53.list_hosted_zones_by_name(DNSName=SETTINGS.hosted_zone_name)["HostedZones"]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    failover = {r["Failover"]: r for r in records if r["Name"].rstrip(".") == SETTINGS.hostname}
    assert sorted(failover) == ["PRIMARY", "SECONDARY"]
    for role, region in (("PRIMARY", PRIMARY), ("SECONDARY", SECONDARY)):
        domain = applied.client("apigateway", region=region).get_domain_name(domainName=SETTINGS.hostname)
        record = failover[role]
        assert record["AliasTarget"]["DNSName"].rstrip(".") == domain["regionalDomainName"]
        assert record["AliasTarget"]["EvaluateTargetHealth"] is True
        assert checks[record["HealthCheckId"]]["Type"] == "CALCULATED"
        assert len(checks[record["HealthCheckId"]]["ChildHealthChecks"]) == 2
    cnames = [r for r in records if r["Type"] == "CNAME"]
    assert len(cnames) == 1
    alarms = applied.client("cloudwatch", region=SECONDARY).describe_alarms()["MetricAlarms"]
    assert [(a["MetricName"], a["Namespace"]) for a in alarms] == [("5XXError", "AWS/ApiGateway")]
    assert json.dumps(alarms[0]["Dimensions"]).count("p-test-serving-front") == 1
