"""What the emulator must hold for the served models' AWS side after an apply, and what must be gone after destroy.

Used by tests/stacks/test_emulator_deploy.py, whose shapes serve the models of examples/model-serving.json. The
AWS side of a model is its IRSA role (trusted by the service account ``model-<name>:server`` through the cluster's
OIDC provider, with one inline policy reading the model's prefix of the model-artifacts bucket), the ACM
certificate of its host name with the DNS validation record in the hosted zone, and, where the environment keeps
access logs, the access-log bucket's statement letting Elastic Load Balancing deliver the load balancer's logs.
The namespace, workload, Ingress and the alias record to the controller's load balancer need a Kubernetes API,
which the emulator does not have. The web ACL of an internet-facing model (prod only, not deployed here) is
checked against WAF's API model in tests/serving/test_environments.py.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID
from stacks.environment import EnvironmentConfig

Client = Callable[[str], Any]
State = dict[str, list[dict[str, Any]]]
LOAD_BALANCER_LOGS = "LoadBalancerAccessLogDelivery"


def create_model_zones(configs: list[EnvironmentConfig], aws: Client) -> list[str]:
    """The public hosted zones the models are named in that do not exist yet (MLflow's may already hold them)."""
    route53 = aws("route53")
    existing = {zone["Name"].rstrip(".") for zone in route53.list_hosted_zones()["HostedZones"]}
    names = sorted({m.ingress.hosted_zone_name for c in configs for m in c.serving} - existing)
    return [
        route53.create_hosted_zone(Name=name, CallerReference=f"ml-platform-models-{name}")["HostedZone"]["Id"]
        for name in names
    ]


def without_models(config: EnvironmentConfig, state: State) -> State:
    """``state`` without the models' certificates: MLflow's checks look for MLflow's one certificate."""
    hosts = {m.ingress.hostname for m in config.serving}
    certificates = [c for c in state.get("aws_acm_certificate", []) if c["domain_name"] not in hosts]
    kept = {kind: bodies for kind, bodies in state.items() if kind != "aws_acm_certificate"}
    return {**kept, "aws_acm_certificate": certificates} if certificates else kept


def _zone_records(aws: Client, zone_name: str) -> set[tuple[str, str, str]]:
    """(name, type, first value) of every record in the public zone ``zone_name``, names without the final dot."""
    route53 = aws("route53")
    (zone,) = [z for z in route53.list_hosted_zones()["HostedZones"] if z["Name"].rstrip(".") == zone_name]
    records = route53.list_resource_record_sets(HostedZoneId=zone["Id"])["ResourceRecordSets"]
    return {
        (r["Name"].rstrip(".").lower(), r["Type"], r["ResourceRecords"][0]["Value"].rstrip(".").lower())
        for r in records
        if r.get("ResourceRecords")
    }


def assert_served(config: EnvironmentConfig, state: State, aws: Client) -> None:
    """Each model's role, policy, certificate and validation record as the environment declares the model."""
    assert config.serving, f"{config.name} serves no model: the deploy test's shapes apply the example's models"
    iam, acm = aws("iam"), aws("acm")
    (oidc_state,) = state["aws_iam_openid_connect_provider"]
    issuer = oidc_state["url"].removeprefix("https://")
    artifacts = f"arn:aws:s3:::{config.name_prefix}-model-artifacts-{ACCOUNT_ID}"
    certificates = {c["domain_name"]: c["arn"] for c in state["aws_acm_certificate"]}
    for spec in config.serving:
        role_name = f"{config.name_prefix}-model-{spec.name}"
        role = iam.get_role(RoleName=role_name)["Role"]
        (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
        assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRoleWithWebIdentity")
        assert trust["Principal"] == {"Federated": oidc_state["arn"]}
        assert trust["Condition"] == {
            "StringEquals": {
                f"{issuer}:sub": f"system:serviceaccount:model-{spec.name}:server",
                f"{issuer}:aud": "sts.amazonaws.com",
            }
        }
        assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["permissions"]
        assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
        statements = iam.get_role_policy(RoleName=role_name, PolicyName="permissions")["PolicyDocument"]["Statement"]
        s3_resources = {
            resource
            for s in statements
            if any(action.startswith("s3:") for action in _listed(s["Action"]))
            for resource in _listed(s["Resource"])
        }
        # The bucket itself (listing, located) and the model's objects: nothing else of it, no other bucket.
        assert s3_resources == {artifacts, f"{artifacts}/{spec.model_prefix}*"}
        assert not any(a.startswith(("s3:Put", "s3:Delete")) for s in statements for a in _listed(s["Action"]))

        arn = certificates[spec.ingress.hostname]
        certificate = acm.describe_certificate(CertificateArn=arn)["Certificate"]
        assert (certificate["DomainName"], certificate["Status"]) == (spec.ingress.hostname, "ISSUED")
        (option,) = certificate["DomainValidationOptions"]
        record = option["ResourceRecord"]
        wanted = (record["Name"].rstrip(".").lower(), record["Type"], record["Value"].rstrip(".").lower())
        assert wanted[1] == "CNAME"
        assert wanted in _zone_records(aws, spec.ingress.hosted_zone_name), f"no validation record {wanted}"
    if config.storage.access_logging:
        _assert_load_balancer_log_delivery(config, aws)


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _assert_load_balancer_log_delivery(config: EnvironmentConfig, aws: Client) -> None:
    """ELB may write each model's load balancer logs into the access-log bucket, under its account's keys only."""
    bucket = f"{config.name_prefix}-access-logs-{ACCOUNT_ID}"
    statements = json.loads(aws("s3").get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
    (statement,) = [s for s in statements if s.get("Sid") == LOAD_BALANCER_LOGS]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}
    assert statement["Action"] == "s3:PutObject"
    assert statement["Resource"] == f"arn:aws:s3:::{bucket}/load-balancers/*/AWSLogs/{ACCOUNT_ID}/*"
    for spec in config.serving:
        key = f"load-balancers/{spec.namespace}/AWSLogs/{ACCOUNT_ID}/elasticloadbalancing/us-east-1/log.gz"
        assert fnmatch.fnmatchcase(f"arn:aws:s3:::{bucket}/{key}", statement["Resource"])


def assert_served_gone(config: EnvironmentConfig, aws: Client) -> None:
    """After destroy, no model's role or certificate is left."""
    iam = aws("iam")
    for spec in config.serving:
        with pytest.raises(ClientError) as error:
            iam.get_role(RoleName=f"{config.name_prefix}-model-{spec.name}")
        assert error.value.response["Error"]["Code"] == "NoSuchEntity"
    hosts = {m.ingress.hostname for m in config.serving}
    left = [c["DomainName"] for c in aws("acm").list_certificates()["CertificateSummaryList"]]
    assert hosts.isdisjoint(left), left
