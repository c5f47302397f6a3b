"""One region's invoke path of the failover front: a regional REST API in front of the SageMaker endpoint there.

Clients sign requests with SigV4 (IAM authorization) exactly as they would sign a SageMaker runtime call, and the API
calls ``InvokeEndpoint`` of the region's endpoint with its own integration role. An unauthenticated ``GET /ping``
answers 200 from API Gateway itself, which is what Route53's health checkers probe. docs/disaster-recovery.md
explains the choice of a REST API, its latency and its cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformProvider, TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.refs import KmsKeyRef, RoleRef
from constructs.resilience.settings import ServingFailoverSettings

STAGE = "serving"
"""The stage every regional API serves; the custom domain maps its root to it."""
INVOKE_PATH = "invocations"
PING_PATH = "ping"
# API Gateway ends a REST integration after at most 29 s; a slower model is called on SageMaker directly.
INTEGRATION_TIMEOUT_MS = 29000
# Model inputs and outputs that are bytes: API Gateway passes them through unchanged instead of as UTF-8 text.
BINARY_MEDIA_TYPES = ("application/octet-stream", "application/x-image", "application/x-npy", "image/jpeg", "image/png")
# The SageMaker runtime needs the payload's type and returns the one asked for.
FORWARDED_HEADERS = ("Content-Type", "Accept")
# SageMaker's error answers, grouped into what a client can act on: its own request (400) or the server (500).
ERROR_RESPONSES = (("4\\d{2}", "400"), ("5\\d{2}", "500"))
# One JSON object per request; requestId and extendedRequestId are what AWS support asks for.
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "extendedRequestId": "$context.extendedRequestId",
        "requestTime": "$context.requestTime",
        "caller": "$context.identity.userArn",
        "sourceIp": "$context.identity.sourceIp",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "responseLatency": "$context.responseLatency",
        "integrationStatus": "$context.integration.status",
        "integrationLatency": "$context.integration.latency",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class FrontRegion:
    """One region the front serves from.

    name: the region's role, ``primary`` or ``secondary``: it names the integration role (IAM is global) and the
      failover record's set identifier.
    context: the environment in that region (its region is that region's name).
    logs_key: a KMS key of that region that CloudWatch Logs may use for the API's log groups.
    provider: the AWS provider of that region; None for the stack's default provider (the primary region).
    """

    name: str
    context: PlatformContext
    logs_key: KmsKeyRef
    provider: TerraformProvider | None = None


@dataclass(frozen=True)
class RegionalServingApiProps:
    """Props for :class:`RegionalServingApi`.

    region: where the API runs and whose endpoint it calls.
    settings: the environment's failover settings (host name, throttling, health check interval and threshold).
    endpoint_name: the SageMaker endpoint's name, the same in both regions.
    log_retention_days: retention of the API's access and execution log groups.
    error_5xx_threshold: server errors per minute, for 2 of 3 minutes, that make the region unhealthy.
    """

    region: FrontRegion
    settings: ServingFailoverSettings
    endpoint_name: str
    log_retention_days: int
    error_5xx_threshold: int


class RegionalServingApi(Construct):
    """A regional REST API that invokes one region's SageMaker endpoint, with its domain, logs and health checks.

    - ``POST /invocations``: IAM authorization; an AWS integration to ``runtime.sagemaker``'s InvokeEndpoint with
      an integration role allowed ``sagemaker:InvokeEndpoint`` on that endpoint only; the payload, its
      ``Content-Type`` and ``Accept`` pass through; SageMaker's 4xx answer 400 and its 5xx answer 500.
    - ``GET /ping``: no authorization, a mock integration answering 200: the front itself is up.
    - Stage ``serving``: X-Ray tracing, JSON access logs and ERROR execution logs in KMS-encrypted log groups,
      throttling of every method; a new deployment whenever a method or integration changes.
    - An ACM certificate for the host name (validated by :meth:`serve_on`) and a regional custom domain name,
      TLS 1.2 at least, whose root maps to the stage.
    - Health: an HTTPS check of ``/serving/ping`` on the API's execute-api host, a CloudWatch alarm health check on
      the stage's 5XXError count (unhealthy stays unhealthy while the alarm has no data), and a calculated check
      that is healthy only while both are.
    """

    def __init__(self, scope: Construct, id: str, props: RegionalServingApiProps) -> None:
        super().__init__(scope, id)
        self.props = props
        c = props.region.context
        s = props.settings
        self.api = aws.api_gateway_rest_api.ApiGatewayRestApi(
            self,
            "api",
            name=f"{c.name_prefix}-serving-front",
            description=f"Failover front of the SageMaker endpoint {props.endpoint_name} ({props.region.name} region)",
            endpoint_configuration=aws.api_gateway_rest_api.ApiGatewayRestApiEndpointConfiguration(types=["REGIONAL"]),
            binary_media_types=list(BINARY_MEDIA_TYPES),
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.integration_role = self._integration_role()
        invoke = self._invoke_method()
        ping = self._ping_method()
        self.deployment = aws.api_gateway_deployment.ApiGatewayDeployment(
            self,
            "deployment",
            rest_api_id=self.api.id,
            description=f"{c.name_prefix} serving front",
            # A deployment is a snapshot: it must be replaced whenever what it snapshots changes.
            triggers={"redeployment": Fn.sha1(Fn.jsonencode([r.id for r in (*invoke, *ping)]))},
            depends_on=[*invoke, *ping],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.access_logs = self._log_group("access-logs", f"/aws/apigateway/{c.name_prefix}-serving-front")
        # API Gateway would create the execution log group itself, unencrypted and kept forever.
        self.execution_logs = self._log_group("execution-logs", f"API-Gateway-Execution-Logs_{self.api.id}/{STAGE}")
        self.stage = aws.api_gateway_stage.ApiGatewayStage(
            self,
            "stage",
            rest_api_id=self.api.id,
            stage_name=STAGE,
            deployment_id=self.deployment.id,
            xray_tracing_enabled=True,
            access_log_settings=aws.api_gateway_stage.ApiGatewayStageAccessLogSettings(
                destination_arn=self.access_logs.arn, format=ACCESS_LOG_FORMAT
            ),
            depends_on=[self.execution_logs],
        )
        aws.api_gateway_method_settings.ApiGatewayMethodSettings(
            self,
            "method-settings",
            rest_api_id=self.api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings=aws.api_gateway_method_settings.ApiGatewayMethodSettingsSettings(
                logging_level="ERROR",
                # Request and response bodies are model inputs and predictions: never logged.
                data_trace_enabled=False,
                metrics_enabled=False,
                throttling_rate_limit=s.throttling_rate_limit,
                throttling_burst_limit=s.throttling_burst_limit,
            ),
        )
        self.certificate = aws.acm_certificate.AcmCertificate(
            self,
            "certificate",
            domain_name=s.hostname,
            validation_method="DNS",
            tags={"Name": s.hostname},
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        self.alarm = self._alarm()
        self._health_checks()
        self.domain_name: Any | None = None

    @property
    def execute_api_host(self) -> str:
        """The API's own host name in its region (``<id>.execute-api.<region>.amazonaws.com``)."""
        return f"{self.api.id}.execute-api.{self.props.region.context.region}.amazonaws.com"

    def serve_on(self, validation_record_fqdn: str) -> Any:
        """Serve the API on the host name once the certificate is validated by ``validation_record_fqdn``.

        Returns the custom domain name, whose regional domain name and zone ID a failover record aliases.
        """
        validation = aws.acm_certificate_validation.AcmCertificateValidation(
            self, "validation", certificate_arn=self.certificate.arn, validation_record_fqdns=[validation_record_fqdn]
        )
        domain = aws.api_gateway_domain_name.ApiGatewayDomainName
        self.domain_name = domain(
            self,
            "domain",
            domain_name=self.props.settings.hostname,
            regional_certificate_arn=validation.certificate_arn,
            endpoint_configuration=aws.api_gateway_domain_name.ApiGatewayDomainNameEndpointConfiguration(
                types=["REGIONAL"]
            ),
            security_policy="TLS_1_2",
        )
        aws.api_gateway_base_path_mapping.ApiGatewayBasePathMapping(
            self,
            "mapping",
            api_id=self.api.id,
            stage_name=self.stage.stage_name,
            domain_name=self.domain_name.domain_name,
        )
        return self.domain_name

    def _integration_role(self) -> RoleRef:
        p = self.props
        c = p.region.context
        role = service_role(
            self,
            "integration-role",
            name=f"{c.name_prefix}-front-{p.region.name}",
            services=("apigateway.amazonaws.com",),
            description=f"The {p.region.name} serving front invokes the SageMaker endpoint {p.endpoint_name} there",
        )
        grant(
            self,
            "invoke-endpoint",
            role,
            PolicyStatement(
                sid="InvokeServedEndpoint",
                actions=("sagemaker:InvokeEndpoint",),
                resources=(c.arn("sagemaker", f"endpoint/{p.endpoint_name}"),),
            ),
        )
        return role

    def _resource(self, path_part: str) -> Any:
        return aws.api_gateway_resource.ApiGatewayResource(
            self,
            f"resource-{path_part}",
            rest_api_id=self.api.id,
            parent_id=self.api.root_resource_id,
            path_part=path_part,
        )

    def _invoke_method(self) -> list[Any]:
        p = self.props
        c = p.region.context
        resource = self._resource(INVOKE_PATH)
        where = {"rest_api_id": self.api.id, "resource_id": resource.id}
        method = aws.api_gateway_method.ApiGatewayMethod(
            self,
            "invoke",
            http_method="POST",
            authorization="AWS_IAM",
            request_parameters={f"method.request.header.{h}": False for h in FORWARDED_HEADERS},
            **where,
        )
        integration = aws.api_gateway_integration.ApiGatewayIntegration(
            self,
            "invoke-integration",
            http_method=method.http_method,
            type="AWS",
            integration_http_method="POST",
            uri=f"arn:{c.partition}:apigateway:{c.region}:runtime.sagemaker:path/endpoints/{p.endpoint_name}/invocations",
            credentials=self.integration_role.arn,
            request_parameters={
                f"integration.request.header.{h}": f"method.request.header.{h}" for h in FORWARDED_HEADERS
            },
            passthrough_behavior="WHEN_NO_TEMPLATES",
            timeout_milliseconds=INTEGRATION_TIMEOUT_MS,
            **where,
        )
        made: list[Any] = [resource, method, integration]
        content_type = "method.response.header.Content-Type"
        for status, pattern in (("200", None), *((code, rule) for rule, code in ERROR_RESPONSES)):
            response = aws.api_gateway_method_response.ApiGatewayMethodResponse(
                self,
                f"invoke-response-{status}",
                http_method=method.http_method,
                status_code=status,
                response_parameters={content_type: False},
                **where,
            )
            made += [
                response,
                aws.api_gateway_integration_response.ApiGatewayIntegrationResponse(
                    self,
                    f"invoke-integration-response-{status}",
                    http_method=method.http_method,
                    status_code=response.status_code,
                    selection_pattern=pattern,
                    response_parameters={content_type: "integration.response.header.Content-Type"},
                    depends_on=[integration],
                    **where,
                ),
            ]
        return made

    def _ping_method(self) -> list[Any]:
        resource = self._resource(PING_PATH)
        where = {"rest_api_id": self.api.id, "resource_id": resource.id}
        method = aws.api_gateway_method.ApiGatewayMethod(self, "ping", http_method="GET", authorization="NONE", **where)
        integration = aws.api_gateway_integration.ApiGatewayIntegration(
            self,
            "ping-integration",
            http_method=method.http_method,
            type="MOCK",
            request_templates={"application/json": json.dumps({"statusCode": 200})},
            **where,
        )
        response = aws.api_gateway_method_response.ApiGatewayMethodResponse(
            self, "ping-response", http_method=method.http_method, status_code="200", **where
        )
        integration_response = aws.api_gateway_integration_response.ApiGatewayIntegrationResponse(
            self,
            "ping-integration-response",
            http_method=method.http_method,
            status_code=response.status_code,
            response_templates={"application/json": json.dumps({"status": "ok"})},
            depends_on=[integration],
            **where,
        )
        return [resource, method, integration, response, integration_response]

    def _log_group(self, id: str, name: str) -> Any:
        protected = self.props.region.context.protected
        return encrypted_log_group(
            self,
            id,
            name=name,
            retention_days=self.props.log_retention_days,
            key=self.props.region.logs_key,
            # Access logs are the record of who called the model; they outlive the API in a protected environment.
            protected=protected,
        )

    def _alarm(self) -> Any:
        p = self.props
        c = p.region.context
        return aws.cloudwatch_metric_alarm.CloudwatchMetricAlarm(
            self,
            "errors",
            alarm_name=f"{c.name_prefix}-serving-front-5xx",
            alarm_description=(
                f"The {p.region.name} serving front answers server errors (its own or the SageMaker endpoint's "
                f"{p.endpoint_name}); Route53 answers with the other region while it is in alarm"
            ),
            namespace="AWS/ApiGateway",
            metric_name="5XXError",
            dimensions={"ApiName": self.api.name, "Stage": STAGE},
            # Route53 reads alarms on standard statistics only (no percentiles, no metric math).
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=p.error_5xx_threshold,
            comparison_operator="GreaterThanOrEqualToThreshold",
            # No traffic is no evidence: the health check keeps its last status (see the alarm health check).
            treat_missing_data="missing",
        )

    def _health_checks(self) -> None:
        p = self.props
        s = p.settings
        c = p.region.context
        check = aws.route53_health_check.Route53HealthCheck
        label = f"{s.hostname} {p.region.name}"
        self.ping_check = check(
            self,
            "ping-check",
            type="HTTPS",
            fqdn=self.execute_api_host,
            port=443,
            resource_path=f"/{STAGE}/{PING_PATH}",
            request_interval=s.health_check_interval_seconds,
            failure_threshold=s.failure_threshold,
            enable_sni=True,
            tags={"Name": f"{label} ping"},
        )
        self.alarm_check = check(
            self,
            "alarm-check",
            type="CLOUDWATCH_METRIC",
            cloudwatch_alarm_name=self.alarm.alarm_name,
            cloudwatch_alarm_region=c.region,
            # A region that failed over gets no traffic, hence no data: it stays unhealthy until an operator
            # fails back (docs/disaster-recovery.md); a new check with no history starts healthy.
            insufficient_data_health_status="LastKnownStatus",
            tags={"Name": f"{label} server errors"},
        )
        self.health_check = check(
            self,
            "health-check",
            type="CALCULATED",
            child_healthchecks=[self.ping_check.id, self.alarm_check.id],
            child_health_threshold=2,
            tags={"Name": label},
        )
