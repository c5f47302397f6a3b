"""Models served on EKS in the environments: the rules tying them to EKS, the GPU node group and the Kubeflow
teams, through the user's overrides, and what each environment's stack holds with examples/model-serving.json.

The rules are driven through ``ML_PLATFORM_OVERRIDES``, the way a user meets them: each refusal names the
environment and the dotted field. The stacks are synthesized once for this module with
``ML_PLATFORM_OVERRIDES_FILE=examples/model-serving.json`` (the example as a user runs it) and read as JSON:
expected sizes, images, hosts and schemes come from the example file, node labels and taints from the same
stack's node groups, owner tags from its provider block, so neither an edit of the example nor one of the node
groups leaves a test asserting a stale value.
"""

from __future__ import annotations

import fnmatch
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from constructs.core.instance_types import NVIDIA_GPU_INSTANCES
from constructs.eks.settings import EksGpuNodeGroupSettings
from constructs.serving.settings import ModelServingSpec

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from stacks.environment import EnvironmentConfig
from stacks.matrix import MATRIX
from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, load_environments
from tests.eks.clusters import issuer_host_local, web_identity_trust
from tests.kubeflow import K8S_EFFECT, tolerates
from tests.support.overrides import rejected, with_overrides
from tests.support.synth_json import (
    ENVIRONMENTS,
    address,
    allow,
    arn_parts,
    data_ref,
    default_provider,
    doc,
    name_of,
    names_of,
    only,
    output,
    policy,
    ref,
    resources,
    role_policies,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-serving.json"
SERVED: dict[str, Any] = json.loads(EXAMPLE.read_text())
GPU = "nvidia.com/gpu"
CONTROLLER = "eks/components/aws-load-balancer-controller"
CPU_GROUP = "eks/cpu-nodes/node-group"
GPU_GROUP = "eks/gpu-nodes/group/node-group"
ACCESS_LOG_BUCKET = "storage/access-logs/bucket"
GPU_ENVIRONMENTS = tuple(env for env in ENVIRONMENTS if MATRIX[env].eks and MATRIX[env].eks.gpu_node_group)
ZONE = "ml.example.com"


def model(name: str = "x", **changes: Any) -> dict[str, Any]:
    """A valid CPU model as an override writes it (JSON), with ``changes``."""
    values: dict[str, Any] = {
        "name": name,
        "image": "ghcr.io/example/server:1.4.2",
        "model_prefix": f"models/{name}/",
        "ingress": {"hostname": f"{name}.{ZONE}", "hosted_zone_name": ZONE},
    }
    values.update(changes)
    return values


def gpu_group(env: str) -> EksGpuNodeGroupSettings:
    eks = MATRIX[env].eks
    assert eks is not None and eks.gpu_node_group is not None, env
    return eks.gpu_node_group


def gpus_per_node(env: str) -> int:
    """GPUs of one node of the GPU node group, from the instance table (every type of the group alike)."""
    per_node = {NVIDIA_GPU_INSTANCES[t].gpus for t in gpu_group(env).instance_types}
    assert len(per_node) == 1, gpu_group(env).instance_types
    return per_node.pop()


def team_gpus(env: str) -> dict[str, int]:
    """The matrix's GPU quotas of ``env``, keyed as the GPU rule reports them."""
    teams = MATRIX[env].kubeflow.teams if MATRIX[env].kubeflow is not None else ()
    return {f"team {t.name}": t.gpu_nodes.gpus for t in teams if t.gpu_nodes is not None}


# --- the rules, through overrides ------------------------------------------------------------------------------


def test_a_gpu_model_in_dev_which_has_no_gpu_node_group_is_rejected() -> None:
    assert MATRIX["dev"].eks.gpu_node_group is None
    error = rejected({"dev": {"serving": [model(gpus=1)]}}, "dev")
    assert (error.field, error.value) == ("serving[0].gpus", 1)
    assert error.allowed.startswith("0: dev has no GPU node group")
    # The same model on the CPU nodes is fine.
    assert with_overrides({"dev": {"serving": [model()]}})["dev"].serving[0].gpus == 0


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_a_model_asking_for_more_gpus_than_one_node_has_is_rejected(env) -> None:
    per_node = gpus_per_node(env)
    # Room for the model's GPUs in the group as a whole, so only the per-pod limit is at stake.
    grown = gpu_group(env).max_size + 2 * (per_node + 1)
    error = rejected({env: {"eks.gpu_node_group.max_size": grown, "serving": [model(gpus=per_node + 1)]}}, env)
    assert (error.field, error.value) == ("serving[0].gpus", per_node + 1)
    assert error.allowed.startswith(f"at most {per_node} ")


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_a_gpu_model_overcommitting_the_gpu_node_group_with_the_teams_is_rejected_until_it_grows(env) -> None:
    per_node = gpus_per_node(env)
    capacity = gpu_group(env).max_size * per_node
    quotas = team_gpus(env)
    spare = capacity - sum(quotas.values())
    assert spare >= 0, "the matrix itself overcommits"
    # One GPU beyond what the teams leave, at max_replicas.
    chat = model("chat", gpus=1, min_replicas=1, max_replicas=spare + 1)
    # A GPU model keeps its nodes through the night: no off hours (tests/eks/test_off_hours.py).
    always_on = {"eks.gpu_node_group.off_hours": None}
    error = rejected({env: {"serving": [chat], **always_on}}, env)
    assert (error.field, error.value) == ("serving", {**quotas, "model chat": spare + 1})
    assert error.allowed.startswith(f"GPU quotas and models' GPUs (at max_replicas) adding up to at most {capacity} ")
    assert "raise eks.gpu_node_group.max_size" in error.allowed
    # Grown by the nodes the model needs, in the same override, the model fits next to the teams.
    max_size = -(-(sum(quotas.values()) + spare + 1) // per_node)
    configs = with_overrides({env: {"serving": [chat], "eks.gpu_node_group.max_size": max_size, **always_on}})
    assert configs[env].eks.gpu_node_group.max_size == max_size > gpu_group(env).max_size
    assert [(m.name, m.max_gpus) for m in configs[env].serving] == [("chat", spare + 1)]


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_a_cpu_model_takes_nothing_from_the_gpu_node_group(env) -> None:
    # However far it scales, a CPU model is no GPU demand: the matrix's quotas, which fill the group, stay valid.
    configs = with_overrides({env: {"serving": [model(max_replicas=100)]}})
    assert configs[env].serving[0].max_gpus == 0


@pytest.mark.parametrize("image", ["ghcr.io/example/server:latest", "latest-registry.example.com:5000/latest:latest"])
def test_the_latest_tag_is_rejected_in_prod_and_accepted_in_dev(image) -> None:
    assert MATRIX["prod"].protected and not MATRIX["dev"].protected
    error = rejected({"prod": {"serving": [model(image=image)]}}, "prod")
    assert (error.field, error.value) == ("serving[0].image", image)
    assert "a fixed tag or a digest in prod (protected)" in error.allowed
    assert with_overrides({"dev": {"serving": [model(image=image)]}})["dev"].serving[0].image == image


def test_prod_accepts_a_fixed_tag_or_a_digest() -> None:
    digest = "123456789012.dkr.ecr.us-east-1.amazonaws.com/chat@sha256:" + "a" * 64
    configs = with_overrides({"prod": {"serving": [model("a", image="example/latest:v2"), model("b", image=digest)]}})
    assert [(m.image, m.image_tag) for m in configs["prod"].serving] == [("example/latest:v2", "v2"), (digest, None)]


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_two_models_with_one_name_or_one_host_name_are_rejected(env) -> None:
    other_host = model("x", ingress={"hostname": f"y.{ZONE}", "hosted_zone_name": ZONE})
    error = rejected({env: {"serving": [model("x"), other_host]}}, env)
    assert (error.field, error.value) == ("serving[1].name", "x")
    assert error.allowed == "a name no other model has"
    same_host = model("y", ingress={"hostname": f"x.{ZONE}", "hosted_zone_name": ZONE})
    error = rejected({env: {"serving": [model("x"), same_host]}}, env)
    assert (error.field, error.value) == ("serving[1].ingress.hostname", f"x.{ZONE}")
    # Both apart, the two models are served.
    configs = with_overrides({env: {"serving": [model("x"), model("y")]}})
    assert [m.namespace for m in configs[env].serving] == ["model-x", "model-y"]


def test_a_model_on_the_mlflow_host_name_is_rejected() -> None:
    """MLflow's load balancer and alias record hold that name already."""
    hostname = MATRIX["staging"].mlflow.ingress.hostname
    error = rejected(
        {"staging": {"serving": [model(ingress={"hostname": hostname, "hosted_zone_name": ZONE})]}}, "staging"
    )
    assert error.field == "serving[0].ingress.hostname"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_model_whose_namespace_is_a_kubeflow_teams_is_rejected(env) -> None:
    teams = [team.model_dump() for team in MATRIX[env].kubeflow.teams]
    teams.append({"name": "model-x", "cpu_nodes": {"cpu": 1, "memory_gib": 2}})
    error = rejected({env: {"kubeflow.teams": teams, "serving": [model("x")]}}, env)
    assert (error.field, error.value) == ("serving[0].name", "x")
    assert "'model-x' is not a Kubeflow team's" in error.allowed
    # Either alone is valid: the team beside another model, the model beside the matrix's teams.
    beside = with_overrides({env: {"kubeflow.teams": teams, "serving": [model("y")]}})[env]
    assert ([m.namespace for m in beside.serving], beside.kubeflow.teams[-1].name) == (["model-y"], "model-x")
    assert with_overrides({env: {"serving": [model("x")]}})[env].serving[0].namespace == "model-x"


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_serving_without_eks_is_rejected_naming_eks(env) -> None:
    # MLflow and Kubeflow need EKS as well and their rules run first, so they go too: the error left is serving's.
    gone = {"eks": None, "mlflow": None, "kubeflow": None}
    error = rejected({env: {**gone, "serving": [model()]}}, env)
    assert (error.field, error.value) == ("eks", None)
    assert "an EKS cluster while serving lists models" in error.allowed
    assert with_overrides({env: {**gone, "serving": []}})[env].eks is None


@pytest.mark.parametrize(
    ("changes", "field", "value", "fragment"),
    [
        ({"min_replicas": 3, "max_replicas": 2}, "serving[0].min_replicas", 3, "a value <= max_replicas (2)"),
        ({"pod_disruption_budget": True}, "serving[0].min_replicas", 1, "2 or more when pod_disruption_budget"),
        ({"gpus": 9}, "serving[0].gpus", 9, "from 0 to 8"),
        ({"name": "Chat"}, "serving[0].name", "Chat", "it names the namespace 'model-<name>'"),
        ({"image": "ghcr.io/example/server"}, "serving[0].image", "ghcr.io/example/server", "with a tag or a digest"),
        ({"model_prefix": "models/x"}, "serving[0].model_prefix", "models/x", "ending in '/'"),
        ({"model_prefix": "../x/"}, "serving[0].model_prefix", "../x/", "not starting with '.'"),
        ({"args": ["--a\nb"]}, "serving[0].args[0]", "--a\nb", "no newline"),
        ({"port": 80}, "serving[0].port", 80, "1024"),
        ({"health_path": "health"}, "serving[0].health_path", "health", "an absolute URL path"),
        (
            {"ingress": {"hostname": "x.example.org", "hosted_zone_name": ZONE}},
            "serving[0].ingress.hostname",
            "x.example.org",
            f"a name inside hosted_zone_name {ZONE!r}",
        ),
        (
            {"ingress": {"hostname": f"x.{ZONE}", "hosted_zone_name": ZONE, "allowed_cidrs": ["0.0.0.0/0"]}},
            "serving[0].ingress.allowed_cidrs[0]",
            "0.0.0.0/0",
            "never 0.0.0.0/0",
        ),
        (
            {"ingress": {"hostname": f"x.{ZONE}", "hosted_zone_name": ZONE, "scheme": "public"}},
            "serving[0].ingress.scheme",
            "public",
            "'internet-facing'",
        ),
        ({"replicas": 2}, "serving[0].replicas", "replicas", "one of 'name'"),
    ],
)
def test_a_bad_model_is_rejected_naming_the_environment_and_dotted_field(changes, field, value, fragment) -> None:
    error = rejected({"dev": {"serving": [model(**changes)]}}, "dev")
    assert (error.field, error.value) == (field, value)
    assert fragment in error.allowed


def test_the_example_file_loads_and_every_matrix_environment_serves_nothing() -> None:
    assert all(MATRIX[env].serving == () for env in ENVIRONMENTS)
    for env in ENVIRONMENTS:
        assert [m.name for m in example_configs()[env].serving] == [m["name"] for m in SERVED[env]["serving"]]


# --- what the stacks hold with examples/model-serving.json -----------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every environment synthesized with the example's models, once for this module, as ``cdktf synth`` does."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("serving-cdktf.out")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(OVERRIDES_ENV, raising=False)
        patch.setenv(OVERRIDES_FILE_ENV, str(EXAMPLE))
        build_app(str(outdir)).synth()
    return {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in ENVIRONMENTS}


def example_model(env: str) -> dict[str, Any]:
    """The example's one model of ``env`` (as the file writes it)."""
    (found,) = SERVED[env]["serving"]
    return found


@functools.cache
def example_configs() -> dict[str, EnvironmentConfig]:
    return load_environments(environ={OVERRIDES_FILE_ENV: str(EXAMPLE)})


def spec_of(env: str) -> ModelServingSpec:
    """The example's model of ``env`` with its defaults filled in (for values the file leaves out)."""
    (spec,) = example_configs()[env].serving
    return spec


def at(name: str, suffix: str) -> str:
    return f"platform/model-{name}/{suffix}"


def pod_of(stack: dict[str, Any], name: str) -> dict[str, Any]:
    return only(stack, "kubernetes_deployment_v1", at(name, "deployment"))["spec"]["template"]


def attributes(ingress: dict[str, Any]) -> list[str]:
    return ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/load-balancer-attributes"].split(",")


def node_groups(stack: dict[str, Any]) -> list[str]:
    return [f"aws_eks_node_group.{name}" for name in resources(stack, "aws_eks_node_group")]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_model_gets_a_restricted_namespace_created_after_the_load_balancer_controller(served, env) -> None:
    stack, name = served[env], example_model(env)["name"]
    namespace = only(stack, "kubernetes_namespace_v1", at(name, "namespace"))
    assert namespace["metadata"]["name"] == f"model-{name}"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # Created after, so destroyed before, the controller and the nodes: nothing of the model outlives them.
    assert {address(stack, "helm_release", CONTROLLER), *node_groups(stack)} <= set(namespace["depends_on"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_deployment_runs_the_example_model_on_its_node_group(served, env) -> None:
    stack, example, spec = served[env], example_model(env), spec_of(env)
    deployment = only(stack, "kubernetes_deployment_v1", at(spec.name, "deployment"))
    assert deployment["metadata"]["namespace"] == f"model-{spec.name}"
    assert deployment["spec"]["replicas"] == str(example["min_replicas"])
    pod = pod_of(stack, spec.name)["spec"]
    (server,) = pod["container"]
    assert (server["image"], server["args"]) == (example["image"], example["args"])
    requests, limits = server["resources"]["requests"], server["resources"]["limits"]
    assert (requests["cpu"], requests["memory"]) == (f"{example['cpu_millicores']}m", f"{example['memory_mib']}Mi")
    assert limits["memory"] == requests["memory"]
    # The startup probe gives the model the load time the example asks for.
    startup = server["startup_probe"]
    assert startup["period_seconds"] * startup["failure_threshold"] >= spec.startup_seconds
    (fetcher,) = pod["init_container"]
    bucket = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "bucket")
    assert fetcher["command"][:5] == ["aws", "s3", "sync", f"s3://{bucket}/{example['model_prefix']}", "/models"]
    assert pod["service_account_name"] == "server"
    cpu_labels = only(stack, "aws_eks_node_group", CPU_GROUP)["labels"]
    if example.get("gpus", 0):
        group = only(stack, "aws_eks_node_group", GPU_GROUP)
        assert requests[GPU] == limits[GPU] == str(example["gpus"])
        assert pod["node_selector"] == group["labels"] != cpu_labels
        for taint in group["taint"]:
            k8s_taint = {"key": taint["key"], "value": taint["value"], "effect": K8S_EFFECT[taint["effect"]]}
            assert tolerates(pod["toleration"], k8s_taint), (pod["toleration"], k8s_taint)
    else:
        assert GPU not in requests and GPU not in limits
        assert pod["node_selector"] == cpu_labels
        assert "toleration" not in pod


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_service_autoscaler_and_disruption_budget_follow_the_example(served, env) -> None:
    stack, example = served[env], example_model(env)
    name = example["name"]
    labels = pod_of(stack, name)["metadata"]["labels"]
    service = only(stack, "kubernetes_service_v1", at(name, "service"))
    assert service["spec"]["selector"] == labels
    (port,) = service["spec"]["port"]
    # The Service reaches the port the example tells the server to listen on.
    args = example["args"]
    assert port["target_port"] == args[args.index("--port") + 1]
    autoscaler = only(stack, "kubernetes_horizontal_pod_autoscaler_v2", at(name, "autoscaler"))["spec"]
    assert (autoscaler["min_replicas"], autoscaler["max_replicas"]) == (
        example["min_replicas"],
        example["max_replicas"],
    )
    deployment = only(stack, "kubernetes_deployment_v1", at(name, "deployment"))
    assert autoscaler["scale_target_ref"] == {
        "api_version": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    budgets = names_of(stack, "kubernetes_pod_disruption_budget_v1", at(name, "pod-disruption-budget"))
    assert len(budgets) == (1 if example.get("pod_disruption_budget") else 0)
    assert (env == "prod") == bool(budgets)
    for budget in budgets:
        body = resources(stack, "kubernetes_pod_disruption_budget_v1")[budget]
        assert body["spec"] == {"max_unavailable": "1", "selector": {"match_labels": labels}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ingress_is_https_on_the_validated_certificate_with_the_examples_scheme(served, env) -> None:
    stack, example = served[env], example_model(env)
    name, ingress_settings = example["name"], example["ingress"]
    ingress = only(stack, "kubernetes_ingress_v1", at(name, "ingress/ingress"))
    annotations = ingress["metadata"]["annotations"]
    (rule,) = ingress["spec"]["rule"]
    assert (ingress["spec"]["ingress_class_name"], rule["host"]) == ("alb", ingress_settings["hostname"])
    (path,) = rule["http"]["path"]
    service = only(stack, "kubernetes_service_v1", at(name, "service"))
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"number": service["spec"]["port"][0]["port"]},
    }
    validation = only(stack, "aws_acm_certificate_validation", at(name, "ingress/validation"))
    certificate = only(stack, "aws_acm_certificate", at(name, "ingress/certificate"))
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == ref(
        stack, "aws_acm_certificate_validation", at(name, "ingress/validation"), "certificate_arn"
    )
    assert validation["certificate_arn"] == ref(stack, "aws_acm_certificate", at(name, "ingress/certificate"), "arn")
    assert (certificate["domain_name"], certificate["validation_method"]) == (ingress_settings["hostname"], "DNS")
    record_fqdn = ref(stack, "aws_route53_record", at(name, "ingress/validation-record"), "fqdn")
    assert validation["validation_record_fqdns"] == [record_fqdn]
    scheme = ingress_settings.get("scheme", "internal")
    assert annotations["alb.ingress.kubernetes.io/scheme"] == scheme
    assert (env == "prod") == (scheme == "internet-facing")
    acls = names_of(stack, "aws_wafv2_web_acl", at(name, "web-acl/web-acl"))
    if scheme == "internet-facing":
        (acl,) = acls
        assert annotations["alb.ingress.kubernetes.io/wafv2-acl-arn"] == f"${{aws_wafv2_web_acl.{acl}.arn}}"
        assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == "0.0.0.0/0"
    else:
        assert acls == [] and "alb.ingress.kubernetes.io/wafv2-acl-arn" not in annotations
        (vpc,) = resources(stack, "aws_vpc").values()
        cidrs = [vpc["cidr_block"], *MATRIX[env].eks.private_access_cidrs]
        assert annotations["alb.ingress.kubernetes.io/inbound-cidrs"] == ",".join(cidrs)
    # The controller tags the load balancer with the tags every AWS resource of the stack carries.
    (default_tags,) = default_provider(stack)["default_tags"]
    expected_tags = ",".join(f"{key}={value}" for key, value in sorted(default_tags["tags"].items()))
    assert annotations["alb.ingress.kubernetes.io/tags"] == expected_tags
    assert f"environment={env}" in expected_tags


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_load_balancer_logs_where_the_environment_keeps_access_logs(served, env) -> None:
    stack, name = served[env], example_model(env)["name"]
    ingress = only(stack, "kubernetes_ingress_v1", at(name, "ingress/ingress"))
    logged = [a for a in attributes(ingress) if a.startswith("access_logs.")]
    has_bucket = bool(names_of(stack, "aws_s3_bucket", ACCESS_LOG_BUCKET))
    assert has_bucket == MATRIX[env].storage.access_logging == (env != "dev")
    if not has_bucket:
        # The controller changes only the attributes it is given: logging off is said explicitly.
        assert logged == ["access_logs.s3.enabled=false"]
        return
    prefix = f"load-balancers/model-{name}"
    bucket = ref(stack, "aws_s3_bucket", ACCESS_LOG_BUCKET, "bucket")
    assert logged == [
        "access_logs.s3.enabled=true",
        f"access_logs.s3.bucket={bucket}",
        f"access_logs.s3.prefix={prefix}",
    ]
    # ELB checks it may write before the controller turns logging on.
    assert address(stack, "aws_s3_bucket_policy", "storage/access-logs/policy") in ingress["depends_on"]
    document = policy(only(stack, "aws_s3_bucket_policy", "storage/access-logs/policy")["policy"])
    (statement,) = [s for s in document["Statement"] if s.get("Sid") == "LoadBalancerAccessLogDelivery"]
    _, _, account = arn_parts(stack)
    bucket_arn = ref(stack, "aws_s3_bucket", ACCESS_LOG_BUCKET, "arn")
    assert statement == {
        "Sid": "LoadBalancerAccessLogDelivery",
        "Effect": "Allow",
        "Principal": {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": f"{bucket_arn}/load-balancers/*/AWSLogs/{account}/*",
    }
    # Where ELB writes this load balancer's logs is inside what the statement allows.
    log_key = f"{bucket_arn}/{prefix}/AWSLogs/{account}/elasticloadbalancing/us-east-1/2026/01/01/log.gz"
    assert fnmatch.fnmatchcase(log_key, statement["Resource"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_alias_record_names_the_ingress_load_balancer(served, env) -> None:
    stack, example = served[env], example_model(env)
    name, ingress_settings = example["name"], example["ingress"]
    record = only(stack, "aws_route53_record", at(name, "ingress/record"))
    ingress = address(stack, "kubernetes_ingress_v1", at(name, "ingress/ingress"))
    zone = data_ref(stack, "aws_route53_zone", at(name, "ingress/zone"), "zone_id")
    assert (record["name"], record["type"], record["zone_id"]) == (ingress_settings["hostname"], "A", zone)
    # Reading the Ingress's status orders the record after it on create and before it on destroy.
    assert record["alias"] == {
        "name": f"${{{ingress}.status[0].load_balancer[0].ingress[0].hostname}}",
        "zone_id": data_ref(stack, "aws_lb_hosted_zone_id", at(name, "ingress/load-balancer-zone"), "id"),
        "evaluate_target_health": True,
    }
    zone_data = stack["data"]["aws_route53_zone"][name_of(stack, "aws_route53_zone", at(name, "ingress/zone"), "data")]
    assert (zone_data["name"], zone_data["private_zone"]) == (ingress_settings["hosted_zone_name"], False)
    validation_record = only(stack, "aws_route53_record", at(name, "ingress/validation-record"))
    assert validation_record["zone_id"] == zone


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_ingress_goes_before_the_controller_and_the_node_groups_on_destroy(served, env) -> None:
    stack, name = served[env], example_model(env)["name"]
    ingress = only(stack, "kubernetes_ingress_v1", at(name, "ingress/ingress"))
    expected = {
        address(stack, "helm_release", CONTROLLER),
        *node_groups(stack),
        address(stack, "kubernetes_deployment_v1", at(name, "deployment")),
        address(stack, "kubernetes_service_v1", at(name, "service")),
    }
    assert expected <= set(ingress["depends_on"])
    assert ingress["wait_for_load_balancer"] is True


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_model_role_is_the_service_accounts_and_reads_only_its_prefix(served, env) -> None:
    stack, example = served[env], example_model(env)
    name, prefix = example["name"], example["model_prefix"]
    role_path = at(name, "server-irsa/role")
    role = only(stack, "aws_iam_role", role_path)
    provider = ref(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn")
    trust = web_identity_trust(provider, f"${{local.{issuer_host_local(stack)}}}", f"model-{name}", "server")
    assert policy(role["assume_role_policy"]) == trust
    assert role["name"] == f"mlp-{env}-model-{name}"
    bucket = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "arn")
    data_key = ref(stack, "aws_kms_key", "keys/data", "arn")
    assert role_policies(stack, role_path) == {
        "permissions": doc(
            allow("ModelArtifactsListBucket", "s3:ListBucket", bucket, StringLike={"s3:prefix": [f"{prefix}*"]}),
            allow("ModelArtifactsLocateBucket", "s3:GetBucketLocation", bucket),
            allow("ModelArtifactsReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], f"{bucket}/{prefix}*"),
            allow(
                "ModelArtifactsUseBucketKey",
                "kms:Decrypt",
                data_key,
                StringLike={"kms:ViaService": "s3.*.amazonaws.com"},
            ),
        )
    }
    account = only(stack, "kubernetes_service_account_v1", at(name, "server-irsa/service-account"))
    assert account["metadata"]["namespace"] == f"model-{name}"
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ref(
        stack, "aws_iam_role", role_path, "arn"
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_model_urls_output_maps_each_model_to_its_https_address(served, env) -> None:
    expected = {m["name"]: f"https://{m['ingress']['hostname']}" for m in SERVED[env]["serving"]}
    assert output(served[env], "model_urls")["value"] == expected


def test_the_internet_facing_models_web_acl_limits_each_address_and_logs_every_request(served) -> None:
    stack, example = served["prod"], example_model("prod")
    name = example["name"]
    acl_path = at(name, "web-acl/web-acl")
    acl = only(stack, "aws_wafv2_web_acl", acl_path)
    assert (acl["scope"], acl["default_action"]) == ("REGIONAL", {"allow": {}})
    statements = [rule["statement"] for rule in acl["rule"]]
    (rate,) = [s["rate_based_statement"] for s in statements if "rate_based_statement" in s]
    assert rate == {"limit": example["ingress"]["requests_per_5_minutes"], "aggregate_key_type": "IP"}
    managed = [s["managed_rule_group_statement"] for s in statements if "managed_rule_group_statement" in s]
    assert {(m["vendor_name"], m["name"]) for m in managed} == {
        ("AWS", "AWSManagedRulesCommonRuleSet"),
        ("AWS", "AWSManagedRulesKnownBadInputsRuleSet"),
    }
    assert len({rule["priority"] for rule in acl["rule"]}) == len(acl["rule"])
    logging = only(stack, "aws_wafv2_web_acl_logging_configuration", at(name, "web-acl/logging"))
    assert logging["resource_arn"] == ref(stack, "aws_wafv2_web_acl", acl_path, "arn")
    log_group_path = at(name, "web-acl/log-group")
    assert logging["log_destination_configs"] == [ref(stack, "aws_cloudwatch_log_group", log_group_path, "arn")]
    log_group = only(stack, "aws_cloudwatch_log_group", log_group_path)
    # WAF logs only to log groups named aws-waf-logs-*; prod's request logs outlive any destroy.
    assert log_group["name"].startswith("aws-waf-logs-")
    assert log_group["kms_key_id"] == ref(stack, "aws_kms_key", "keys/logs", "arn")
    assert (log_group["lifecycle"], log_group["skip_destroy"]) == ({"prevent_destroy": True}, True)


@pytest.fixture(scope="module")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A terraform environment with an isolated CLI config (the offline mirror) and a plugin cache."""
    home = tmp_path_factory.mktemp("serving-terraform")
    env = terraform_cli_env(home)
    (home / "plugin-cache").mkdir()
    env["TF_PLUGIN_CACHE_DIR"] = str(home / "plugin-cache")
    return env


@pytest.mark.terraform
def test_the_served_stacks_validate_with_the_real_terraform(served, terraform_env, tmp_path) -> None:
    """The models' AWS side (the web ACL's rule blocks included) against the pinned provider's schema."""
    assert resources(aws_only(served["prod"]), "aws_wafv2_web_acl")
    problems = validate_offline({env: aws_only(served[env]) for env in ENVIRONMENTS}, tmp_path, terraform_env)
    assert problems == {env: [] for env in ENVIRONMENTS}, json.dumps(problems, indent=2)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_aws_part_the_emulator_applies_keeps_the_models_aws_side(served, env) -> None:
    """tests/stacks/test_emulator_deploy.py applies ``aws_only`` of these stacks: the role, its policy, the
    certificate and its validation stay; the alias record (it reads the Ingress) goes with the in-cluster part."""
    stack, name = served[env], example_model(env)["name"]
    kept = aws_only(stack)
    for resource_type, suffix in (
        ("aws_iam_role", "server-irsa/role"),
        ("aws_iam_role_policy", "server-irsa/permissions"),
        ("aws_acm_certificate", "ingress/certificate"),
        ("aws_acm_certificate_validation", "ingress/validation"),
        ("aws_route53_record", "ingress/validation-record"),
    ):
        assert names_of(kept, resource_type, at(name, suffix)) == names_of(stack, resource_type, at(name, suffix))
        assert len(names_of(kept, resource_type, at(name, suffix))) == 1
    assert names_of(kept, "aws_route53_record", at(name, "ingress/record")) == []
    assert "model_urls" in kept["output"]


def test_the_plain_matrix_serves_no_model(stacks) -> None:
    for env, stack in stacks.items():
        paths = [
            body["//"]["metadata"]["path"]
            for block in ("resource", "data")
            for bodies in stack.get(block, {}).values()
            for body in bodies.values()
        ]
        assert paths and [p for p in paths if "/platform/model-" in p] == [], env
        assert "aws_wafv2_web_acl" not in stack["resource"], env
        assert "model_urls" not in stack.get("output", {}), env
