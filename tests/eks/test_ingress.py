"""HttpsIngress: an HTTPS-only ALB made by the controller, with its certificate and DNS name.

What the controller builds is decided by annotations, so they are checked one by one against what the platform
promises (internal by default, TLS 1.3 policy, HTTP redirected, only the given networks, invalid headers dropped,
access logs on or explicitly off, the owner tags). An internet-facing load balancer exists only behind a web ACL.
The certificate must be validated through DNS before the listener uses it, and the alias record must read the load
balancer's name from the Ingress's status, so one apply creates everything; the Ingress waits for the access-log
bucket's policy, without which the controller cannot turn logging on. Without in-cluster resources only the AWS
side exists. The AWS part is also validated by the real terraform against the pinned provider.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.eks.ingress import TLS_POLICY, AccessLogs, HttpsIngress, HttpsIngressProps
from constructs.storage.bucket import SecureBucket, SecureBucketProps

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from tests.eks.clusters import eks_cluster
from tests.support.stacks import TinyStack
from tests.support.synth_json import address, data_ref, name_of, names_of, only, ref

ZONE = "dev.example.com"
HOST = f"mlflow.{ZONE}"
CLIENT_CIDRS = ("10.0.0.0/16", "192.168.0.0/24")
ANNOTATION = "alb.ingress.kubernetes.io/"


def _props(tiny: TinyStack, **changes: Any) -> HttpsIngressProps:
    values: dict[str, Any] = {
        "context": tiny.context,
        "name": "mlflow",
        "namespace": "mlflow",
        "hostname": HOST,
        "hosted_zone_name": ZONE,
        "service_name": "mlflow-tracking",
        "service_port": 5000,
        "health_check_path": "/health",
        "client_cidrs": CLIENT_CIDRS,
        "idle_timeout_seconds": 300,
    }
    values.update(changes)
    return HttpsIngressProps(**values)


def _build(in_cluster_resources: bool) -> tuple[TinyStack, dict[str, Any]]:
    """An ingress in a tiny stack with a cluster, after the cluster's admin access (as the platform orders it)."""
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    props = _props(tiny, depends_on=cluster.admin_access, in_cluster_resources=in_cluster_resources)
    HttpsIngress(tiny.stack, "web", props)
    return tiny, tiny.synth_with_paths()


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return _build(in_cluster_resources=True)[1]


@pytest.fixture(scope="module")
def certificate_only() -> dict[str, Any]:
    return _build(in_cluster_resources=False)[1]


# Written out of order: the annotation must list them sorted, whatever order the context holds them in.
PUBLIC_TAGS = {"team": "ml", "cost_center": "cc-1", "environment": "test", "project": "p"}


@pytest.fixture(scope="module")
def public() -> dict[str, Any]:
    """An internet-facing ingress behind a web ACL, logging to an access-log bucket, with owner tags."""
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    acl = aws.wafv2_web_acl
    web_acl = acl.Wafv2WebAcl(
        tiny.stack,
        "acl",
        name="acl",
        scope="REGIONAL",
        default_action=acl.Wafv2WebAclDefaultAction(allow=acl.Wafv2WebAclDefaultActionAllow()),
        visibility_config=acl.Wafv2WebAclVisibilityConfig(
            cloudwatch_metrics_enabled=True, metric_name="acl", sampled_requests_enabled=True
        ),
    )
    bucket = SecureBucket(
        tiny.stack,
        "logs",
        SecureBucketProps(bucket_name="logs-b", kms_key=None, log_delivery_source_account="123456789012"),
    )
    bucket.allow_load_balancer_logs("load-balancers")
    logs = AccessLogs(bucket=bucket.name, prefix="load-balancers", ready=[bucket.policy])
    props = _props(
        tiny,
        scheme="internet-facing",
        web_acl_arn=web_acl.arn,
        access_logs=logs.under("mlflow"),
        tags=PUBLIC_TAGS,
        depends_on=cluster.admin_access,
    )
    HttpsIngress(tiny.stack, "web", props)
    return tiny.synth_with_paths()


def _alb(stack: dict[str, Any]) -> dict[str, str]:
    annotations = only(stack, "kubernetes_ingress_v1", "web/ingress")["metadata"]["annotations"]
    return {key.removeprefix(ANNOTATION): value for key, value in annotations.items()}


def _options(stack: dict[str, Any], attribute: str) -> str:
    """The certificate's first domain validation option's ``attribute``, as cdktf writes the reference."""
    certificate = address(stack, "aws_acm_certificate", "web/certificate")
    return f"${{tolist({certificate}.domain_validation_options).0.{attribute}}}"


def test_the_certificate_is_dns_validated_through_the_zone(built) -> None:
    certificate = only(built, "aws_acm_certificate", "web/certificate")
    assert (certificate["domain_name"], certificate["validation_method"]) == (HOST, "DNS")
    # A renamed host gets its new certificate before the old one is let go.
    assert certificate["lifecycle"] == {"create_before_destroy": True}
    zone = built["data"]["aws_route53_zone"][name_of(built, "aws_route53_zone", "web/zone", block="data")]
    assert (zone["name"], zone["private_zone"]) == (ZONE, False)
    record = only(built, "aws_route53_record", "web/validation-record")
    assert record["zone_id"] == data_ref(built, "aws_route53_zone", "web/zone", "zone_id")
    assert record["name"] == _options(built, "resource_record_name")
    assert record["type"] == _options(built, "resource_record_type")
    assert record["records"] == [_options(built, "resource_record_value")]
    validation = only(built, "aws_acm_certificate_validation", "web/validation")
    assert validation["certificate_arn"] == ref(built, "aws_acm_certificate", "web/certificate", "arn")
    assert validation["validation_record_fqdns"] == [ref(built, "aws_route53_record", "web/validation-record", "fqdn")]


def test_the_annotations_make_an_internal_https_only_load_balancer(built) -> None:
    annotations = only(built, "kubernetes_ingress_v1", "web/ingress")["metadata"]["annotations"]
    assert all(key.startswith(ANNOTATION) for key in annotations), annotations
    alb = {key.removeprefix(ANNOTATION): value for key, value in annotations.items()}
    assert alb.pop("scheme") == "internal"
    assert alb.pop("target-type") == "ip"
    # Both listeners exist; plain HTTP only answers with a redirect to 443.
    assert json.loads(alb.pop("listen-ports")) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert alb.pop("ssl-redirect") == "443"
    assert alb.pop("ssl-policy") == TLS_POLICY
    assert TLS_POLICY.startswith("ELBSecurityPolicy-TLS13-")
    # The validated certificate: the listener is not created before ACM has issued it.
    assert alb.pop("certificate-arn") == ref(
        built, "aws_acm_certificate_validation", "web/validation", "certificate_arn"
    )
    assert alb.pop("healthcheck-path") == "/health"
    assert alb.pop("inbound-cidrs").split(",") == list(CLIENT_CIDRS)
    attributes = dict(item.split("=", 1) for item in alb.pop("load-balancer-attributes").split(","))
    assert attributes == {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "idle_timeout.timeout_seconds": "300",
        # The controller changes only the attributes named: logging off must be said, not left out.
        "access_logs.s3.enabled": "false",
    }
    assert alb == {}, "an annotation nobody checked"


def test_the_ingress_routes_the_host_to_the_service_and_waits_for_its_load_balancer(built) -> None:
    ingress = only(built, "kubernetes_ingress_v1", "web/ingress")
    assert (ingress["metadata"]["name"], ingress["metadata"]["namespace"]) == ("mlflow", "mlflow")
    assert ingress["spec"]["ingress_class_name"] == "alb"
    assert ingress["spec"]["rule"] == [
        {
            "host": HOST,
            "http": {
                "path": [
                    {
                        "path": "/",
                        "path_type": "Prefix",
                        "backend": {"service": {"name": "mlflow-tracking", "port": {"number": 5000}}},
                    }
                ]
            },
        }
    ]
    assert ingress["wait_for_load_balancer"] is True
    admin = address(built, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin")
    assert ingress["depends_on"] == [admin]


def test_the_alias_record_names_the_load_balancer_from_the_ingress_status(built) -> None:
    record = only(built, "aws_route53_record", "web/record")
    assert (record["name"], record["type"]) == (HOST, "A")
    assert record["zone_id"] == data_ref(built, "aws_route53_zone", "web/zone", "zone_id")
    ingress = address(built, "kubernetes_ingress_v1", "web/ingress")
    assert record["alias"] == {
        "name": f"${{{ingress}.status[0].load_balancer[0].ingress[0].hostname}}",
        "zone_id": data_ref(built, "aws_lb_hosted_zone_id", "web/load-balancer-zone", "id"),
        "evaluate_target_health": True,
    }
    zone = name_of(built, "aws_lb_hosted_zone_id", "web/load-balancer-zone", block="data")
    assert built["data"]["aws_lb_hosted_zone_id"][zone]["load_balancer_type"] == "application"


def _own(stack: dict[str, Any], block: str = "resource") -> dict[str, list[str]]:
    """The construct's resources (or data sources), by type: their paths below ``tiny/web/``."""
    found: dict[str, list[str]] = {}
    for resource_type, by_name in stack.get(block, {}).items():
        for config in by_name.values():
            path = config["//"]["metadata"]["path"]
            if path.startswith("tiny/web/"):
                found.setdefault(resource_type, []).append(path.removeprefix("tiny/web/"))
    return found


def test_without_in_cluster_resources_only_the_certificate_side_exists(built, certificate_only) -> None:
    expected = {
        "aws_acm_certificate": ["certificate"],
        "aws_route53_record": ["validation-record"],
        "aws_acm_certificate_validation": ["validation"],
    }
    assert _own(certificate_only) == expected
    assert not [t for t in certificate_only["resource"] if t.startswith(("kubernetes_", "helm_"))]
    assert _own(certificate_only, "data")["aws_route53_zone"] == ["zone"]
    # With them, the Ingress and the alias record come on top of the same certificate side.
    assert _own(built) == {
        **expected,
        "aws_route53_record": ["validation-record", "record"],
        "kubernetes_ingress_v1": ["ingress"],
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"hostname": "mlflow.example.org"}, "hostname", id="host-in-another-domain"),
        pytest.param({"hostname": f"mlflow-{ZONE}"}, "hostname", id="host-only-ending-like-the-zone"),
        pytest.param({"hostname": ZONE}, "hostname", id="the-zone-apex"),
        pytest.param({"client_cidrs": ()}, "client_cidrs", id="no-client-cidrs"),
        pytest.param({"name": "MLflow"}, "name", id="upper-case-name"),
        pytest.param({"name": "m" * 64}, "name", id="name-over-63"),
        pytest.param(
            {"namespace": "ML_flow"},
            "namespace",
            id="bad-namespace",
        ),
        pytest.param(
            {"client_cidrs": ("10.0.0.0/16", "office")},
            "client_cidrs[1]",
            id="not-a-cidr",
        ),
        pytest.param(
            {"idle_timeout_seconds": 0},
            "idle_timeout_seconds",
            id="idle-timeout-out-of-range",
        ),
        # Nothing reaches the internet without a web ACL in front of it.
        pytest.param({"scheme": "internet-facing"}, "web_acl_arn", id="internet-facing-without-web-acl"),
    ],
)
def test_bad_props_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        HttpsIngress(tiny.stack, "web", _props(tiny, **changes))
    assert (error.value.where, error.value.field) == ("tiny/web", field)


def test_an_internet_facing_load_balancer_without_a_web_acl_says_it_needs_one() -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        HttpsIngress(tiny.stack, "web", _props(tiny, scheme="internet-facing", web_acl_arn=None))
    assert error.value.field == "web_acl_arn"
    assert "a web ACL ARN for an internet-facing load balancer" in error.value.allowed


def test_an_internet_facing_load_balancer_is_associated_with_its_web_acl(built, public) -> None:
    alb = _alb(public)
    assert alb["scheme"] == "internet-facing"
    assert alb["wafv2-acl-arn"] == ref(public, "aws_wafv2_web_acl", "acl", "arn")
    # Apart from the scheme, the access logs, the ACL and the tags, it promises what the internal one does.
    internal = _alb(built)
    assert set(alb) == set(internal) | {"wafv2-acl-arn", "tags"}
    for key in ("target-type", "listen-ports", "ssl-redirect", "ssl-policy", "healthcheck-path", "inbound-cidrs"):
        assert alb[key] == internal[key], key


def test_access_logs_are_turned_on_in_the_given_bucket_under_the_given_prefix(public) -> None:
    attributes = dict(item.split("=", 1) for item in _alb(public)["load-balancer-attributes"].split(","))
    assert attributes == {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "idle_timeout.timeout_seconds": "300",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": ref(public, "aws_s3_bucket", "logs/bucket", "bucket"),
        # under("mlflow") of the platform's prefix: each load balancer logs below a prefix of its own.
        "access_logs.s3.prefix": "load-balancers/mlflow",
    }


def test_the_ingress_waits_for_the_policy_that_lets_elb_write_the_logs(public) -> None:
    # The controller turns logging on when it creates the ALB; ELB refuses a bucket whose policy does not yet
    # let it write (and on destroy the Ingress goes first, while the policy still admits the last logs).
    ingress = only(public, "kubernetes_ingress_v1", "web/ingress")
    admin = address(public, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin")
    assert ingress["depends_on"] == [admin, address(public, "aws_s3_bucket_policy", "logs/policy")]


def test_the_tags_annotation_lists_the_tags_sorted(public) -> None:
    assert _alb(public)["tags"] == "cost_center=cc-1,environment=test,project=p,team=ml"


def test_access_logs_under_a_name_keep_the_bucket_and_what_they_wait_for() -> None:
    ready = cast(Any, ["the bucket policy"])
    logs = AccessLogs(bucket="logs-b", prefix="load-balancers", ready=ready)
    assert logs.under("model-chat") == AccessLogs("logs-b", "load-balancers/model-chat", ready)
    assert logs.under("a").under("b").prefix == "load-balancers/a/b"
    # The original is unchanged: one platform-wide AccessLogs serves every load balancer.
    assert logs.prefix == "load-balancers"


def test_good_props_build_and_name_the_url() -> None:
    tiny = TinyStack()
    ingress = HttpsIngress(tiny.stack, "web", _props(tiny, hostname=f"a.b.{ZONE}", client_cidrs=["10.0.0.0/8"]))
    assert ingress.url == f"https://a.b.{ZONE}"
    assert names_of(tiny.synth_with_paths(), "kubernetes_ingress_v1", "web/ingress")


@pytest.mark.terraform
def test_the_aws_side_validates_with_the_real_terraform(tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    configs = {
        "with-ingress": aws_only(_build(in_cluster_resources=True)[0].synth()),
        "certificate-only": aws_only(_build(in_cluster_resources=False)[0].synth()),
    }
    # What is validated still holds the certificate side (the alias record reads the Ingress, so it goes too).
    for config in configs.values():
        assert {"aws_acm_certificate", "aws_acm_certificate_validation", "aws_route53_record"} <= set(
            config["resource"]
        )
    problems = validate_offline(configs, tmp_path / "validate", terraform_cli_env(tmp_path))
    assert problems == {"with-ingress": [], "certificate-only": []}
