"""An HTTPS load balancer in front of one in-cluster Service, with its certificate, DNS name and access logs."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws, kubernetes
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.eks.irsa import require_dns1123_label

ALB_INGRESS_CLASS = "alb"
# The post-quantum TLS 1.3/1.2 policy with restricted ciphers (forward secrecy only): the console's default.
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09"
_ANNOTATION = "alb.ingress.kubernetes.io/"


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.IPv4Network(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AccessLogs:
    """Where load balancers write their access logs: an SSE-S3 bucket (the only encryption ELB delivers to).

    bucket: the bucket's name.
    prefix: the key prefix of this load balancer's logs.
    ready: what must exist before logging is turned on (the bucket policy letting ELB write there).
    """

    bucket: str
    prefix: str
    ready: Sequence[ITerraformDependable] = ()

    def under(self, name: str) -> AccessLogs:
        """The same bucket, with the logs of load balancer ``name`` under ``<prefix>/<name>``."""
        return AccessLogs(self.bucket, f"{self.prefix}/{name}", self.ready)


@dataclass(frozen=True)
class HttpsIngressProps:
    """Props for :class:`HttpsIngress`.

    context: the environment.
    name: the Ingress's name (a DNS-1123 label), in ``namespace``.
    hostname: the DNS name clients use, inside ``hosted_zone_name``.
    hosted_zone_name: an existing public Route53 hosted zone: it validates the certificate and holds the record.
    service_name, service_port: the Service the load balancer forwards to.
    health_check_path: the path the load balancer probes on each pod.
    client_cidrs: the only source ranges the load balancer accepts (for an internal one: the VPC and the networks
      routed into it).
    idle_timeout_seconds: how long an idle connection stays open (large artifact uploads need minutes).
    scheme: ``"internal"`` or ``"internet-facing"`` (which requires ``web_acl_arn``).
    web_acl_arn: a regional WAF web ACL the load balancer is associated with, or None.
    access_logs: where the load balancer's access logs go, or None for none.
    tags: tags the controller puts on the load balancer, its listeners, target groups and security groups (the
      owner tags, for cost attribution).
    depends_on: the AWS Load Balancer Controller's release and the backend's release: the Ingress is created
      after them and deleted before them, so the controller is still running to delete the load balancer; and
      the access-log bucket's policy, which must let ELB write before the controller turns logging on.
    in_cluster_resources: create the Ingress and the DNS record (they need the cluster's API); without it only
      the certificate exists, ready for a later run from inside the network.
    """

    context: PlatformContext
    name: str
    namespace: str
    hostname: str
    hosted_zone_name: str
    service_name: str
    service_port: int
    health_check_path: str
    client_cidrs: Sequence[str]
    idle_timeout_seconds: int = 60
    scheme: Literal["internal", "internet-facing"] = "internal"
    web_acl_arn: str | None = None
    access_logs: AccessLogs | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class HttpsIngress(Construct):
    """An ALB made by the AWS Load Balancer Controller, HTTPS only, named in Route53.

    - An ACM certificate for ``hostname``, validated with a DNS record in the hosted zone and renewed by ACM.
    - A ``kubernetes_ingress_v1`` of class ``alb``: IP targets, HTTP redirected to HTTPS with a TLS 1.3 policy,
      invalid header fields dropped, a listener that only ``client_cidrs`` may reach, the web ACL and access
      logs when given, and the owner tags on everything the controller creates.
    - The ALB is the controller's, not Terraform's. Terraform waits for it (``wait_for_load_balancer``) and reads
      its DNS name from the Ingress's status, so the alias record is created in the same apply.
    - On destroy, the record and then the Ingress go first. Deleting the Ingress waits until the object is gone,
      and the controller's finalizer keeps it until the ALB, its listeners, target groups and security groups
      are deleted: only then do the controller's release, the node groups and the VPC go, so nothing holds the
      VPC.
    """

    def __init__(self, scope: Construct, id: str, props: HttpsIngressProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require_dns1123_label(where, "name", props.name)
        require_dns1123_label(where, "namespace", props.namespace)
        for index, cidr in enumerate(props.client_cidrs):
            require(_is_cidr(cidr), where, f"client_cidrs[{index}]", cidr, "an IPv4 CIDR block such as '10.20.0.0/16'")
        require(1 <= props.service_port <= 65535, where, "service_port", props.service_port, "a port from 1 to 65535")
        require(
            props.health_check_path.startswith("/"),
            where,
            "health_check_path",
            props.health_check_path,
            "an absolute path such as '/health'",
        )
        require(
            1 <= props.idle_timeout_seconds <= 4000,
            where,
            "idle_timeout_seconds",
            props.idle_timeout_seconds,
            "1 to 4000 seconds (the ALB's range)",
        )
        require(
            props.hostname.endswith(f".{props.hosted_zone_name}"),
            where,
            "hostname",
            props.hostname,
            f"a name inside hosted_zone_name {props.hosted_zone_name!r}",
        )
        require(bool(props.client_cidrs), where, "client_cidrs", props.client_cidrs, "at least one CIDR block")
        require(
            props.scheme == "internal" or props.web_acl_arn is not None,
            where,
            "web_acl_arn",
            props.web_acl_arn,
            "a web ACL ARN for an internet-facing load balancer",
        )
        self.props = props
        self.zone = aws.data_aws_route53_zone.DataAwsRoute53Zone(
            self, "zone", name=props.hosted_zone_name, private_zone=False
        )
        self.certificate = aws.acm_certificate.AcmCertificate(
            self,
            "certificate",
            domain_name=props.hostname,
            validation_method="DNS",
            tags={"Name": props.hostname},
            # A renamed host gets its new certificate before the listener lets go of the old one.
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )
        # One domain, so one validation option: the CNAME that proves control of the name.
        option = self.certificate.domain_validation_options.get(0)
        validation_record = aws.route53_record.Route53Record(
            self,
            "validation-record",
            zone_id=self.zone.zone_id,
            name=option.resource_record_name,
            type=option.resource_record_type,
            records=[option.resource_record_value],
            ttl=300,
            allow_overwrite=True,
        )
        self.validation = aws.acm_certificate_validation.AcmCertificateValidation(
            self,
            "validation",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=[validation_record.fqdn],
        )
        # The hosted zone of the region's ALBs, which an alias record to one of them names.
        self.load_balancer_zone = aws.data_aws_lb_hosted_zone_id.DataAwsLbHostedZoneId(
            self, "load-balancer-zone", load_balancer_type="application"
        )
        self.ingress: Any | None = None
        self.record: Any | None = None
        if props.in_cluster_resources:
            self._ingress()

    def annotations(self) -> dict[str, str]:
        """The controller's instructions for the load balancer (its ``alb.ingress.kubernetes.io/`` annotations)."""
        p = self.props
        attributes = [
            "routing.http.drop_invalid_header_fields.enabled=true",
            f"idle_timeout.timeout_seconds={p.idle_timeout_seconds}",
        ]
        # Only the attributes named are changed, so logging off is said explicitly.
        if p.access_logs is not None:
            attributes += [
                "access_logs.s3.enabled=true",
                f"access_logs.s3.bucket={p.access_logs.bucket}",
                f"access_logs.s3.prefix={p.access_logs.prefix}",
            ]
        else:
            attributes.append("access_logs.s3.enabled=false")
        values = {
            "scheme": p.scheme,
            "target-type": "ip",
            "listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
            "ssl-redirect": "443",
            "certificate-arn": self.validation.certificate_arn,
            "ssl-policy": TLS_POLICY,
            "healthcheck-path": p.health_check_path,
            "inbound-cidrs": ",".join(p.client_cidrs),
            "load-balancer-attributes": ",".join(attributes),
        }
        if p.web_acl_arn is not None:
            values["wafv2-acl-arn"] = p.web_acl_arn
        if p.tags:
            values["tags"] = ",".join(f"{key}={value}" for key, value in sorted(p.tags.items()))
        return {f"{_ANNOTATION}{key}": value for key, value in values.items()}

    def _ingress(self) -> None:
        p = self.props
        ingress = kubernetes.ingress_v1
        self.ingress = ingress.IngressV1(
            self,
            "ingress",
            metadata=ingress.IngressV1Metadata(name=p.name, namespace=p.namespace, annotations=self.annotations()),
            spec=ingress.IngressV1Spec(
                ingress_class_name=ALB_INGRESS_CLASS,
                rule=[
                    ingress.IngressV1SpecRule(
                        host=p.hostname,
                        http=ingress.IngressV1SpecRuleHttp(
                            path=[
                                ingress.IngressV1SpecRuleHttpPath(
                                    path="/",
                                    path_type="Prefix",
                                    backend=ingress.IngressV1SpecRuleHttpPathBackend(
                                        service=ingress.IngressV1SpecRuleHttpPathBackendService(
                                            name=p.service_name,
                                            port=ingress.IngressV1SpecRuleHttpPathBackendServicePort(
                                                number=p.service_port
                                            ),
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            wait_for_load_balancer=True,
            depends_on=[*p.depends_on, *(p.access_logs.ready if p.access_logs is not None else ())] or None,
        )
        self.record = aws.route53_record.Route53Record(
            self,
            "record",
            zone_id=self.zone.zone_id,
            name=p.hostname,
            type="A",
            alias=aws.route53_record.Route53RecordAlias(
                name=self.ingress.status.get(0).load_balancer.get(0).ingress.get(0).hostname,
                zone_id=self.load_balancer_zone.id,
                evaluate_target_health=True,
            ),
        )

    @property
    def url(self) -> str:
        """``https://<hostname>``."""
        return f"https://{self.props.hostname}"
