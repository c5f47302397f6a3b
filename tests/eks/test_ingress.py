"""InternalHttpsIngress: an internal, HTTPS-only ALB made by the controller, with its certificate and DNS name.

What the controller builds is decided by annotations, so they are checked one by one against what the platform
promises (internal, TLS 1.3 policy, HTTP redirected, only the given networks, invalid headers dropped). The
certificate must be validated through DNS before the listener uses it, and the alias record must read the load
balancer's name from the Ingress's status, so one apply creates everything. Without in-cluster resources only the
AWS side exists. The AWS part is also validated by the real terraform against the pinned provider.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.ingress import TLS_POLICY, InternalHttpsIngress, InternalHttpsIngressProps

from tests.eks.clusters import eks_cluster
from tests.support.stacks import TinyStack
from tests.support.synth_json import address, data_ref, name_of, names_of, only, ref
from tests.support.terraform import aws_only, terraform_cli_env, validate_offline

ZONE = "dev.example.com"
HOST = f"mlflow.{ZONE}"
CLIENT_CIDRS = ("10.0.0.0/16", "192.168.0.0/24")
ANNOTATION = "alb.ingress.kubernetes.io/"


def _props(tiny: TinyStack, **changes: Any) -> InternalHttpsIngressProps:
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
    return InternalHttpsIngressProps(**values)


def _build(in_cluster_resources: bool) -> tuple[TinyStack, dict[str, Any]]:
    """An ingress in a tiny stack with a cluster, after the cluster's admin access (as the platform orders it)."""
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    props = _props(tiny, depends_on=cluster.admin_access, in_cluster_resources=in_cluster_resources)
    InternalHttpsIngress(tiny.stack, "web", props)
    return tiny, tiny.synth_with_paths()


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    return _build(in_cluster_resources=True)[1]


@pytest.fixture(scope="module")
def certificate_only() -> dict[str, Any]:
    return _build(in_cluster_resources=False)[1]


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
    ],
)
def test_bad_props_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        InternalHttpsIngress(tiny.stack, "web", _props(tiny, **changes))
    assert (error.value.where, error.value.field) == ("tiny/web", field)


def test_good_props_build_and_name_the_url() -> None:
    tiny = TinyStack()
    ingress = InternalHttpsIngress(tiny.stack, "web", _props(tiny, hostname=f"a.b.{ZONE}", client_cidrs=["10.0.0.0/8"]))
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
