"""The failover front of model serving: one host name, answered by Route53 with the healthy region's API.

Each region has a :class:`~constructs.resilience.regional_api.RegionalServingApi` in front of its SageMaker
endpoint; Route53 failover records point the host name at the primary region's API while its calculated health
check is healthy, else at the secondary's (docs/disaster-recovery.md, "The front" and "Failover").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require
from constructs.core.regions import RegionScope
from constructs.resilience.regional_api import INVOKE_PATH, FrontRegion, RegionalServingApi, RegionalServingApiProps
from constructs.resilience.settings import ServingFailoverSettings

FAILOVER_ROLES = {"primary": "PRIMARY", "secondary": "SECONDARY"}
"""The Route53 failover role of each front region, by region name."""
# The certificate's validation CNAME; ACM renews with it as long as it exists.
VALIDATION_TTL = 300


@dataclass(frozen=True)
class ServingFrontProps:
    """Props for :class:`ServingFront`.

    settings: the environment's failover settings: the host name and its zone, the health checks' interval and
      failure threshold, the APIs' throttling.
    endpoint_name: the SageMaker endpoint's name, the same in both regions.
    primary, secondary: the two regions (named ``primary`` and ``secondary``); the secondary's provider is required.
    log_retention_days: retention of each API's access and execution logs (the endpoint's own retention).
    error_5xx_threshold: server errors per minute, for 2 of 3 minutes, that make a region unhealthy (the endpoint's
      rollback alarm threshold).
    """

    settings: ServingFailoverSettings
    endpoint_name: str
    primary: FrontRegion
    secondary: FrontRegion
    log_retention_days: int = 90
    error_5xx_threshold: int = 5


class ServingFront(Construct):
    """``https://<hostname>/invocations`` served by the primary region's endpoint, or by the secondary's when the
    primary is unhealthy.

    - A :class:`RegionalServingApi` per region, the secondary's under a :class:`RegionScope` of its provider.
    - One DNS validation record in the hosted zone for both certificates: ACM gives one domain name the same
      validation CNAME in every region of an account, so a record per region would be two owners of one record.
    - Two failover alias records of the host name (``A``): PRIMARY to the primary API's regional domain name,
      SECONDARY to the secondary's, each with its region's calculated health check and target health evaluation.
    """

    def __init__(self, scope: Construct, id: str, props: ServingFrontProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        for field, region in (("primary", props.primary), ("secondary", props.secondary)):
            require(region.name == field, where, f"{field}.name", region.name, repr(field))
        require(
            props.secondary.provider is not None,
            where,
            "secondary.provider",
            None,
            "the AWS provider of the secondary region",
        )
        assert props.secondary.provider is not None
        self.props = props
        s = props.settings
        self.zone = aws.data_aws_route53_zone.DataAwsRoute53Zone(
            self, "zone", name=s.hosted_zone_name, private_zone=False
        )
        primary_scope = Construct(self, "primary")
        secondary_scope = RegionScope(self, "secondary", props.secondary.provider)
        self.apis = {
            region.name: RegionalServingApi(
                region_scope,
                "api",
                RegionalServingApiProps(
                    region=region,
                    settings=s,
                    endpoint_name=props.endpoint_name,
                    log_retention_days=props.log_retention_days,
                    error_5xx_threshold=props.error_5xx_threshold,
                ),
            )
            for region, region_scope in ((props.primary, primary_scope), (props.secondary, secondary_scope))
        }
        option = self.apis["primary"].certificate.domain_validation_options.get(0)
        self.validation_record = aws.route53_record.Route53Record(
            self,
            "validation-record",
            zone_id=self.zone.zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=VALIDATION_TTL,
            # Another certificate of this host name (an earlier front, a load balancer) wrote the same record.
            allow_overwrite=True,
        )
        self.records: dict[str, Any] = {}
        for name, api in self.apis.items():
            domain = api.serve_on(self.validation_record.fqdn)
            self.records[name] = aws.route53_record.Route53Record(
                self,
                f"record-{name}",
                zone_id=self.zone.zone_id,
                name=s.hostname,
                type="A",
                set_identifier=name,
                failover_routing_policy=aws.route53_record.Route53RecordFailoverRoutingPolicy(
                    type=FAILOVER_ROLES[name]
                ),
                health_check_id=api.health_check.id,
                alias=aws.route53_record.Route53RecordAlias(
                    name=domain.regional_domain_name,
                    zone_id=domain.regional_zone_id,
                    evaluate_target_health=True,
                ),
            )

    @property
    def url(self) -> str:
        """``https://<hostname>/invocations``: where clients send SigV4-signed inference requests."""
        return f"https://{self.props.settings.hostname}/{INVOKE_PATH}"
