"""The serving failover front in the synthesized stacks: prod (with a published model) has it, dev and staging not.

Every environment is synthesized with ``sagemaker.model_version`` set (the ``published`` stacks), since the front
exists only in front of an endpoint. Assertions read the JSON as Terraform receives it: which provider each
resource uses, the references between resources, the integration role's policy, the health checks and records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.resilience.settings import ServingFailoverSettings

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from stacks.matrix import MATRIX
from tests.sagemaker.conftest import published, published_dir, published_json  # noqa: F401  (session fixtures)
from tests.support.mirror import offline_mirror
from tests.support.synth_json import arn_parts, data_ref, names_of, only, policy, ref, resources, role_policies

REGIONS = ("primary", "secondary")
FRONT_TYPES = (
    "aws_api_gateway_rest_api",
    "aws_api_gateway_stage",
    "aws_api_gateway_domain_name",
    "aws_route53_health_check",
)
PROD_FAILOVER = MATRIX["prod"].failover


def api(region: str) -> str:
    return f"platform/failover/{region}/api"


@pytest.fixture(scope="module")
def prod(published: dict[str, dict[str, Any]]) -> dict[str, Any]:  # noqa: F811
    return published["prod"]


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_environments_without_failover_have_no_front(published: dict[str, dict[str, Any]], env: str) -> None:  # noqa: F811
    stack = published[env]
    assert all(not resources(stack, t) for t in FRONT_TYPES)
    assert "serving_failover_url" not in stack["output"]


def test_prod_without_a_published_model_has_no_front(stacks: dict[str, dict[str, Any]]) -> None:
    assert all(not resources(stacks["prod"], t) for t in FRONT_TYPES)
    assert "serving_failover_url" not in stacks["prod"]["output"]


def test_one_regional_api_per_region_the_secondary_with_its_provider(prod: dict[str, Any]) -> None:
    apis = {region: only(prod, "aws_api_gateway_rest_api", f"{api(region)}/api") for region in REGIONS}
    assert apis["primary"].get("provider") is None
    assert apis["secondary"]["provider"] == "aws.secondary"
    for config in apis.values():
        assert config["name"] == "mlp-prod-serving-front"
        assert config["endpoint_configuration"] == {"types": ["REGIONAL"]}
    # Everything of the secondary's invoke path is built in the secondary region.
    secondary = [
        config
        for by_name in prod["resource"].values()
        for config in by_name.values()
        if config["//"]["metadata"]["path"].startswith("prod/platform/failover/secondary/")
    ]
    assert len(secondary) > 20 and all(config["provider"] == "aws.secondary" for config in secondary)


@pytest.mark.parametrize("region", REGIONS)
def test_invocations_need_iam_and_invoke_the_endpoint_of_their_region(prod: dict[str, Any], region: str) -> None:
    method = only(prod, "aws_api_gateway_method", f"{api(region)}/invoke")
    assert (method["http_method"], method["authorization"]) == ("POST", "AWS_IAM")
    integration = only(prod, "aws_api_gateway_integration", f"{api(region)}/invoke-integration")
    partition, region_name, account = arn_parts(prod)
    if region == "secondary":
        region_name = data_ref(prod, "aws_region", "platform/secondary/region", "name")
    # The integration names the endpoint of its own region, which has the same name in both.
    (name,) = {
        config["name"]
        for config in resources(prod, "aws_sagemaker_endpoint").values()
        if (config.get("provider") == "aws.secondary") == (region == "secondary")
    }
    assert integration["type"] == "AWS"
    assert integration["integration_http_method"] == "POST"
    assert integration["uri"] == (
        f"arn:{partition}:apigateway:{region_name}:runtime.sagemaker:path/endpoints/{name}/invocations"
    )
    assert integration["credentials"] == ref(prod, "aws_iam_role", f"{api(region)}/integration-role", "arn")
    assert integration["timeout_milliseconds"] == 29000
    assert integration["request_parameters"] == {
        "integration.request.header.Content-Type": "method.request.header.Content-Type",
        "integration.request.header.Accept": "method.request.header.Accept",
    }
    role = only(prod, "aws_iam_role", f"{api(region)}/integration-role")
    assert role["name"] == f"mlp-prod-front-{region}"
    assert policy(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert role_policies(prod, f"{api(region)}/integration-role") == {
        "invoke-endpoint": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "InvokeServedEndpoint",
                    "Effect": "Allow",
                    "Action": "sagemaker:InvokeEndpoint",
                    "Resource": f"arn:{partition}:sagemaker:{region_name}:{account}:endpoint/{name}",
                }
            ],
        }
    }


@pytest.mark.parametrize("region", REGIONS)
def test_ping_is_an_open_mock_answering_200(prod: dict[str, Any], region: str) -> None:
    method = only(prod, "aws_api_gateway_method", f"{api(region)}/ping")
    assert (method["http_method"], method["authorization"]) == ("GET", "NONE")
    integration = only(prod, "aws_api_gateway_integration", f"{api(region)}/ping-integration")
    assert integration["type"] == "MOCK"
    assert json.loads(integration["request_templates"]["application/json"]) == {"statusCode": 200}
    response = only(prod, "aws_api_gateway_integration_response", f"{api(region)}/ping-integration-response")
    assert response["status_code"] == ref(
        prod, "aws_api_gateway_method_response", f"{api(region)}/ping-response", "status_code"
    )


@pytest.mark.parametrize("region", REGIONS)
def test_stage_logs_to_encrypted_groups_and_throttles(prod: dict[str, Any], region: str) -> None:
    assert PROD_FAILOVER is not None
    stage = only(prod, "aws_api_gateway_stage", f"{api(region)}/stage")
    assert stage["stage_name"] == "serving" and stage["xray_tracing_enabled"] is True
    assert stage["deployment_id"] == ref(prod, "aws_api_gateway_deployment", f"{api(region)}/deployment", "id")
    access = only(prod, "aws_cloudwatch_log_group", f"{api(region)}/access-logs")
    assert stage["access_log_settings"]["destination_arn"] == ref(
        prod, "aws_cloudwatch_log_group", f"{api(region)}/access-logs", "arn"
    )
    assert "$context.requestId" in stage["access_log_settings"]["format"]
    key = "platform/keys/logs" if region == "primary" else "platform/secondary/logs-key"
    execution = only(prod, "aws_cloudwatch_log_group", f"{api(region)}/execution-logs")
    rest_api = ref(prod, "aws_api_gateway_rest_api", f"{api(region)}/api", "id")
    assert execution["name"] == f"API-Gateway-Execution-Logs_{rest_api}/serving"
    for group in (access, execution):
        assert group["kms_key_id"] == ref(prod, "aws_kms_key", key, "arn")
        assert group["retention_in_days"] == MATRIX["prod"].sagemaker.log_retention_days  # type: ignore[union-attr]
        assert group["lifecycle"] == {"prevent_destroy": True}
    settings = only(prod, "aws_api_gateway_method_settings", f"{api(region)}/method-settings")
    assert settings["method_path"] == "*/*"
    assert settings["settings"] == {
        "logging_level": "ERROR",
        "data_trace_enabled": False,
        "metrics_enabled": False,
        "throttling_rate_limit": PROD_FAILOVER.throttling_rate_limit,
        "throttling_burst_limit": PROD_FAILOVER.throttling_burst_limit,
    }


def test_both_certificates_validate_with_one_record_and_serve_the_host_name(prod: dict[str, Any]) -> None:
    assert PROD_FAILOVER is not None
    (record_name,) = [
        name
        for name, config in resources(prod, "aws_route53_record").items()
        if config["//"]["metadata"]["path"].startswith("prod/platform/failover/validation-record")
    ]
    record = resources(prod, "aws_route53_record")[record_name]
    primary_certificate = ref(prod, "aws_acm_certificate", f"{api('primary')}/certificate", "domain_validation_options")
    assert record["name"].startswith("${tolist(" + primary_certificate[2:-1] + ").0.resource_record_name")
    assert record["allow_overwrite"] is True
    for region in REGIONS:
        certificate = only(prod, "aws_acm_certificate", f"{api(region)}/certificate")
        assert (certificate["domain_name"], certificate["validation_method"]) == (PROD_FAILOVER.hostname, "DNS")
        validation = only(prod, "aws_acm_certificate_validation", f"{api(region)}/validation")
        assert validation["certificate_arn"] == ref(prod, "aws_acm_certificate", f"{api(region)}/certificate", "arn")
        assert validation["validation_record_fqdns"] == [f"${{aws_route53_record.{record_name}.fqdn}}"]
        domain = only(prod, "aws_api_gateway_domain_name", f"{api(region)}/domain")
        assert domain["domain_name"] == PROD_FAILOVER.hostname
        assert domain["regional_certificate_arn"] == ref(
            prod, "aws_acm_certificate_validation", f"{api(region)}/validation", "certificate_arn"
        )
        assert domain["security_policy"] == "TLS_1_2"
        mapping = only(prod, "aws_api_gateway_base_path_mapping", f"{api(region)}/mapping")
        assert mapping["api_id"] == ref(prod, "aws_api_gateway_rest_api", f"{api(region)}/api", "id")
        assert "base_path" not in mapping


@pytest.mark.parametrize("region", REGIONS)
def test_health_combines_the_ping_and_the_server_error_alarm(prod: dict[str, Any], region: str) -> None:
    assert PROD_FAILOVER is not None
    ping = only(prod, "aws_route53_health_check", f"{api(region)}/ping-check")
    rest_api = ref(prod, "aws_api_gateway_rest_api", f"{api(region)}/api", "id")
    assert ping["type"] == "HTTPS" and ping["port"] == 443 and ping["enable_sni"] is True
    assert ping["fqdn"].startswith(f"{rest_api}.execute-api.") and ping["fqdn"].endswith(".amazonaws.com")
    assert ping["resource_path"] == "/serving/ping"
    assert ping["request_interval"] == PROD_FAILOVER.health_check_interval_seconds
    assert ping["failure_threshold"] == PROD_FAILOVER.failure_threshold
    alarm = only(prod, "aws_cloudwatch_metric_alarm", f"{api(region)}/errors")
    assert (alarm["namespace"], alarm["metric_name"], alarm["statistic"]) == ("AWS/ApiGateway", "5XXError", "Sum")
    assert alarm["dimensions"] == {
        "ApiName": ref(prod, "aws_api_gateway_rest_api", f"{api(region)}/api", "name"),
        "Stage": "serving",
    }
    assert alarm["threshold"] == MATRIX["prod"].sagemaker.error_5xx_threshold  # type: ignore[union-attr]
    assert alarm["treat_missing_data"] == "missing"
    alarm_check = only(prod, "aws_route53_health_check", f"{api(region)}/alarm-check")
    assert alarm_check["type"] == "CLOUDWATCH_METRIC"
    assert alarm_check["cloudwatch_alarm_name"] == ref(
        prod, "aws_cloudwatch_metric_alarm", f"{api(region)}/errors", "alarm_name"
    )
    assert alarm_check["insufficient_data_health_status"] == "LastKnownStatus"
    calculated = only(prod, "aws_route53_health_check", f"{api(region)}/health-check")
    assert calculated["type"] == "CALCULATED"
    assert calculated["child_health_threshold"] == 2
    assert sorted(calculated["child_healthchecks"]) == sorted(
        ref(prod, "aws_route53_health_check", f"{api(region)}/{check}", "id") for check in ("ping-check", "alarm-check")
    )


def test_failover_records_alias_each_regional_domain_with_its_health(prod: dict[str, Any]) -> None:
    assert PROD_FAILOVER is not None
    zone = "${data.aws_route53_zone." + names_of(prod, "aws_route53_zone", "platform/failover/zone", "data")[0]
    for region, role in (("primary", "PRIMARY"), ("secondary", "SECONDARY")):
        record = only(prod, "aws_route53_record", f"platform/failover/record-{region}")
        assert record["zone_id"] == f"{zone}.zone_id}}"
        assert (record["name"], record["type"], record["set_identifier"]) == (PROD_FAILOVER.hostname, "A", region)
        assert record["failover_routing_policy"] == {"type": role}
        assert record["health_check_id"] == ref(prod, "aws_route53_health_check", f"{api(region)}/health-check", "id")
        domain = f"{api(region)}/domain"
        assert record["alias"] == {
            "name": ref(prod, "aws_api_gateway_domain_name", domain, "regional_domain_name"),
            "zone_id": ref(prod, "aws_api_gateway_domain_name", domain, "regional_zone_id"),
            "evaluate_target_health": True,
        }
    zone_config = prod["data"]["aws_route53_zone"][
        names_of(prod, "aws_route53_zone", "platform/failover/zone", "data")[0]
    ]
    assert (zone_config["name"], zone_config["private_zone"]) == (PROD_FAILOVER.hosted_zone_name, False)
    assert prod["output"]["serving_failover_url"]["value"] == f"https://{PROD_FAILOVER.hostname}/invocations"


@pytest.mark.terraform
def test_published_prod_validates_with_the_real_terraform(prod: dict[str, Any], tmp_path: Path) -> None:
    # The default matrix publishes no model, so tests/stacks/test_terraform_validate.py never sees the front.
    (tmp_path / "home").mkdir()
    env = terraform_cli_env(tmp_path / "home", offline_mirror())
    problems = validate_offline({"prod": aws_only(prod)}, tmp_path / "validate", env)
    assert problems == {"prod": []}, json.dumps(problems, indent=2)


def test_throttling_limits_are_bounded_by_the_account_limits() -> None:
    assert PROD_FAILOVER is not None
    base = PROD_FAILOVER.model_dump()
    ServingFailoverSettings(**{**base, "throttling_rate_limit": 10000, "throttling_burst_limit": 5000})
    for field, value in (
        ("throttling_rate_limit", 0),
        ("throttling_rate_limit", 10001),
        ("throttling_burst_limit", 5001),
    ):
        with pytest.raises(ConfigurationError, match=field):
            ServingFailoverSettings(**{**base, field: value})


@pytest.mark.parametrize(
    ("change", "field"),
    [({"secondary_provider": False}, "secondary.provider"), ({"swap": True}, "primary.name")],
)
def test_the_front_needs_two_named_regions_the_secondary_with_its_provider(change: dict[str, bool], field: str) -> None:
    from constructs.core.bindings import aws
    from constructs.resilience.front import ServingFront, ServingFrontProps
    from constructs.resilience.regional_api import FrontRegion

    from tests.support.stacks import TinyStack

    assert PROD_FAILOVER is not None
    tiny = TinyStack()
    provider = aws.provider.AwsProvider(tiny.stack, "secondary", region="us-west-2", alias="secondary")
    primary = FrontRegion("primary", tiny.context, tiny.key)
    secondary = FrontRegion(
        "secondary", tiny.context, tiny.key, None if change.get("secondary_provider") is False else provider
    )
    if change.get("swap"):
        primary, secondary = secondary, primary
    props = ServingFrontProps(
        settings=PROD_FAILOVER, endpoint_name="p-test-model", primary=primary, secondary=secondary
    )
    with pytest.raises(ConfigurationError, match=f"field '{field}'"):
        ServingFront(tiny.stack, "front", props)
