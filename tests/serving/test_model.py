"""ModelServing: one model's namespace, identity, workload, autoscaling and load balancer, read from the JSON.

Five models share one tiny stack (tests/serving/__init__.py), each showing one side of the construct: ``chat``
(GPU, internet-facing behind the web ACL, access logs, disruption budget), ``embed`` (CPU, internal, no access
logs), ``rank`` and ``search`` (an explicit source list, internal and internet-facing), and ``offline`` (the AWS
side only). Nothing can run a pod here, so the pod is held to what Kubernetes would enforce or do with it: the
restricted Pod Security Standard its namespace enforces, scheduling against the GPU node group's own labels and
taint (read from the node group construct and from its synthesized ``aws_eks_node_group``), the IRSA role against
the service account the pod runs as, and the Service, HPA and Ingress against the names and labels they must
find. The ``depends_on`` chains are checked because they decide the destroy order: the Ingress (whose finalizer
the controller clears) must go before the controller.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError

from tests.eks.clusters import issuer_host_local, web_identity_trust
from tests.serving import (
    CLIENT_CIDRS,
    CONTROLLER,
    CPU_SELECTOR,
    K8S_EFFECT,
    LOG_PREFIX,
    LOG_RETENTION_DAYS,
    TinyServing,
    model_spec,
)
from tests.support.stacks import OWNER_TAGS, context
from tests.support.synth_json import address, data_ref, only, policy, ref, resources, role_policies

ANNOTATION = "alb.ingress.kubernetes.io/"
GPU = model_spec(
    "chat",
    image="vllm/vllm-openai:v0.11.0",
    args=("--model", "/models", "--port", "8000"),
    port=8000,
    health_path="/v1/health",
    startup_seconds=900,
    gpus=1,
    cpu_millicores=3000,
    cpu_limit_millicores=4500,
    memory_mib=12288,
    model_size_gib=40,
    min_replicas=2,
    max_replicas=4,
    target_cpu_utilization=60,
    pod_disruption_budget=True,
    ingress={"scheme": "internet-facing", "requests_per_5_minutes": 1000},
)
CPU = model_spec(
    "embed",
    image="ghcr.io/huggingface/text-embeddings-inference:cpu-1.8",
    startup_seconds=120,
    cpu_millicores=1500,
    memory_mib=3072,
    model_size_gib=2,
    max_replicas=5,
    target_cpu_utilization=75,
)
# Pinned by digest, where the other models name a tag; an image without `sleep` (distroless), so no drain hook.
RANK = model_spec(
    "rank",
    image="ghcr.io/example/ranker@sha256:" + "5e" * 32,
    drain_seconds=0,
    ingress={"allowed_cidrs": ("172.16.0.0/12",)},
)
SEARCH = model_spec("search", ingress={"scheme": "internet-facing", "allowed_cidrs": ("203.0.113.0/24", "10.1.0.0/16")})
OFFLINE = model_spec("offline", ingress={"scheme": "internet-facing"})
SPECS = {model.name: model for model in (GPU, CPU, RANK, SEARCH, OFFLINE)}
IN_CLUSTER = ("chat", "embed", "rank", "search")
INTERNET_FACING = ("chat", "search", "offline")
BOTH = pytest.mark.parametrize("name", ["chat", "embed"])
READ_ACTIONS = {"s3:ListBucket", "s3:GetBucketLocation", "s3:GetObject", "s3:GetObjectVersion", "kms:Decrypt"}


@pytest.fixture(scope="module")
def platform() -> TinyServing:
    platform = TinyServing()
    platform.serve(GPU)
    platform.serve(CPU, access_logs=None)
    platform.serve(RANK)
    platform.serve(SEARCH)
    # In a protected environment: its web ACL's request log must outlive Terraform.
    platform.serve(OFFLINE, in_cluster_resources=False, context=context(protected=True))
    return platform


@pytest.fixture(scope="module")
def stack(platform) -> dict[str, Any]:
    return platform.synth()


# --- queries ------------------------------------------------------------------------------------------------


def of(stack: dict[str, Any], resource_type: str, name: str, suffix: str) -> dict[str, Any]:
    """The one ``resource_type`` at ``model-<name>/<suffix>``."""
    return only(stack, resource_type, f"model-{name}/{suffix}")


def at(stack: dict[str, Any], resource_type: str, name: str, suffix: str) -> str:
    return address(stack, resource_type, f"model-{name}/{suffix}")


def deployment(stack: dict[str, Any], name: str) -> dict[str, Any]:
    return of(stack, "kubernetes_deployment_v1", name, "deployment")


def pod(stack: dict[str, Any], name: str) -> dict[str, Any]:
    return deployment(stack, name)["spec"]["template"]["spec"]


def server(stack: dict[str, Any], name: str) -> dict[str, Any]:
    (container,) = pod(stack, name)["container"]
    assert container["name"] == "server"
    return container


def annotations(stack: dict[str, Any], name: str) -> dict[str, str]:
    found = of(stack, "kubernetes_ingress_v1", name, "ingress/ingress")["metadata"]["annotations"]
    return {key.removeprefix(ANNOTATION): value for key, value in found.items()}


def attributes(stack: dict[str, Any], name: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in annotations(stack, name)["load-balancer-attributes"].split(","))


def own(stack: dict[str, Any], name: str) -> dict[str, list[str]]:
    """The model's resources by type: their paths below ``tiny/model-<name>/``."""
    root = f"tiny/model-{name}/"
    found: dict[str, list[str]] = {}
    for resource_type, by_name in stack["resource"].items():
        for body in by_name.values():
            path = body["//"]["metadata"]["path"]
            if path.startswith(root):
                found.setdefault(resource_type, []).append(path.removeprefix(root))
    return found


def depends_transitively(stack: dict[str, Any], body: dict[str, Any], target: str) -> bool:
    """Whether ``body`` waits for the resource ``target`` (``<type>.<name>``), directly or through others."""
    seen: set[str] = set()
    pending = list(body.get("depends_on", []))
    while pending:
        where = pending.pop()
        if where == target:
            return True
        if where in seen:
            continue
        seen.add(where)
        kind, logical = where.split(".", 1)
        pending.extend(stack["resource"][kind][logical].get("depends_on", []))
    return False


def controller(stack: dict[str, Any]) -> str:
    """``helm_release.<name>`` of the controller's stand-in release."""
    (logical,) = [key for key, body in resources(stack, "helm_release").items() if body["name"] == CONTROLLER]
    return f"helm_release.{logical}"


def listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


# --- namespace and identity ---------------------------------------------------------------------------------


@BOTH
def test_the_namespace_enforces_the_restricted_standard_and_comes_after_the_controller(stack, name) -> None:
    namespace = of(stack, "kubernetes_namespace_v1", name, "namespace")
    assert namespace["metadata"] == {
        "name": f"model-{name}",
        "labels": {
            "ml-platform/model": name,
            # The controller holds a new pod's readiness until the ALB reports its target healthy.
            "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled",
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
        },
    }
    # Destroyed before the controller and the deployer's cluster access, created after them.
    admin = address(stack, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin")
    assert sorted(namespace["depends_on"]) == sorted([controller(stack), admin])


def test_each_in_cluster_model_gets_one_namespace_and_the_aws_side_only_model_none(stack) -> None:
    names = sorted(n["metadata"]["name"] for n in resources(stack, "kubernetes_namespace_v1").values())
    assert names == sorted(f"model-{name}" for name in IN_CLUSTER)


@BOTH
def test_the_role_is_trusted_only_by_the_pods_service_account(stack, name) -> None:
    role = of(stack, "aws_iam_role", name, "server-irsa/role")
    assert role["name"] == f"p-test-model-{name}"
    account = of(stack, "kubernetes_service_account_v1", name, "server-irsa/service-account")
    # The account the pod runs as is the one the role trusts, in the model's namespace.
    assert pod(stack, name)["service_account_name"] == account["metadata"]["name"]
    assert account["metadata"]["namespace"] == f"model-{name}"
    provider = ref(stack, "aws_iam_openid_connect_provider", "cluster/oidc-provider", "arn")
    issuer = f"${{local.{issuer_host_local(stack)}}}"
    expected = web_identity_trust(provider, issuer, f"model-{name}", account["metadata"]["name"])
    assert policy(role["assume_role_policy"]) == expected
    assert expected["Statement"][0]["Condition"]["StringEquals"][f"{issuer}:sub"] == (
        f"system:serviceaccount:model-{name}:server"
    )
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": ref(stack, "aws_iam_role", f"model-{name}/server-irsa/role", "arn")
    }
    assert at(stack, "kubernetes_namespace_v1", name, "namespace") in account["depends_on"]


@BOTH
def test_the_role_reads_the_models_prefix_and_nothing_else(stack, name) -> None:
    prefix = SPECS[name].model_prefix
    (document,) = role_policies(stack, f"model-{name}/server-irsa/role").values()
    statements = document["Statement"]
    bucket = ref(stack, "aws_s3_bucket", "model-artifacts/bucket", "arn")
    key = ref(stack, "aws_kms_key", "key", "arn")
    granted = {action for s in statements for action in listed(s["Action"])}
    # Reading only: no put, delete or wildcard action anywhere.
    assert granted <= READ_ACTIONS, granted - READ_ACTIONS
    assert {"s3:GetObject", "s3:ListBucket", "kms:Decrypt"} <= granted
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = listed(statement["Action"])
        for resource in listed(statement["Resource"]):
            if actions == ["kms:Decrypt"]:
                assert resource == key
            else:
                # The bucket itself (listing, locating) or the model's own objects.
                assert resource in (bucket, f"{bucket}/{prefix}*"), (statement["Sid"], resource)
        if "s3:GetObject" in actions:
            assert listed(statement["Resource"]) == [f"{bucket}/{prefix}*"]
        if "s3:ListBucket" in actions:
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"{prefix}*"]}}
        if "kms:Decrypt" in actions:
            # The key only through S3: the role cannot decrypt anything else the data key protects.
            assert statement["Condition"] == {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}


# --- the Deployment and its pod -----------------------------------------------------------------------------


@BOTH
def test_the_deployment_starts_at_min_replicas_and_leaves_scaling_to_the_autoscaler(stack, name) -> None:
    model = SPECS[name]
    body = deployment(stack, name)
    assert (body["metadata"]["name"], body["metadata"]["namespace"]) == (name, f"model-{name}")
    assert body["spec"]["replicas"] == str(model.min_replicas)
    assert body["lifecycle"] == {"ignore_changes": ["spec[0].replicas"]}
    # Terraform waits for the rollout, longer than a model may take to load (and an image to be pulled).
    assert body["wait_for_rollout"] is True
    timeouts = body["timeouts"]
    assert timeouts["create"] == timeouts["update"]
    minutes = re.fullmatch(r"(\d+)m", timeouts["create"])
    assert minutes is not None and int(minutes.group(1)) * 60 > model.startup_seconds
    assert sorted(body["depends_on"]) == sorted(
        [
            at(stack, "kubernetes_namespace_v1", name, "namespace"),
            at(stack, "kubernetes_service_account_v1", name, "server-irsa/service-account"),
        ]
    )


def test_the_rollout_timeout_grows_with_the_startup_time(stack) -> None:
    created = {name: int(deployment(stack, name)["timeouts"]["create"].removesuffix("m")) for name in ("chat", "embed")}
    assert SPECS["chat"].startup_seconds > SPECS["embed"].startup_seconds
    assert created["chat"] > created["embed"]


@BOTH
def test_the_pod_runs_as_a_non_root_user_without_an_api_token(stack, name) -> None:
    spec = pod(stack, name)
    assert spec["service_account_name"] == "server"
    # IRSA's web identity token is a projected volume of its own; the Kubernetes API token is not needed.
    assert spec["automount_service_account_token"] is False
    context = spec["security_context"]
    assert context["run_as_non_root"] is True
    assert context["run_as_user"] == "1000" and context["run_as_group"] == "1000"
    assert context["seccomp_profile"] == {"type": "RuntimeDefault"}


def _restricted(container: dict[str, Any], pod_context: dict[str, Any]) -> list[str]:
    """What the restricted Pod Security Standard would reject in ``container`` (written out from the standard)."""
    context = container.get("security_context", {})
    problems = []
    if context.get("allow_privilege_escalation") is not False:
        problems.append("allowPrivilegeEscalation must be false")
    if context.get("capabilities", {}).get("drop") != ["ALL"] or context.get("capabilities", {}).get("add"):
        problems.append("capabilities must drop ALL and add none")
    if not (context.get("run_as_non_root") or pod_context.get("run_as_non_root")):
        problems.append("runAsNonRoot must be true")
    if context.get("run_as_user", pod_context.get("run_as_user")) == "0":
        problems.append("runAsUser must not be 0")
    seccomp = context.get("seccomp_profile", pod_context.get("seccomp_profile", {}))
    if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append("seccompProfile must be RuntimeDefault or Localhost")
    if context.get("privileged"):
        problems.append("privileged")
    return problems


@BOTH
def test_every_container_passes_the_restricted_pod_security_standard(stack, name) -> None:
    spec = pod(stack, name)
    containers = [*spec["init_container"], *spec["container"]]
    assert [c["name"] for c in containers] == ["fetch-model", "server"]
    assert {c["name"]: _restricted(c, spec["security_context"]) for c in containers} == {
        "fetch-model": [],
        "server": [],
    }
    # Only emptyDir volumes: no host path, which the standard forbids.
    assert all(set(volume) == {"name", "empty_dir"} for volume in spec["volume"])
    # Beyond the standard: a read-only root file system for both.
    assert all(c["security_context"]["read_only_root_filesystem"] is True for c in containers)


def test_the_restricted_check_can_fail() -> None:
    assert _restricted({"security_context": {"allow_privilege_escalation": True}}, {}) == [
        "allowPrivilegeEscalation must be false",
        "capabilities must drop ALL and add none",
        "runAsNonRoot must be true",
        "seccompProfile must be RuntimeDefault or Localhost",
    ]


@BOTH
def test_the_init_container_copies_the_models_prefix_with_a_pinned_cli(stack, name) -> None:
    (fetcher,) = pod(stack, name)["init_container"]
    assert fetcher["name"] == "fetch-model"
    bucket = ref(stack, "aws_s3_bucket", "model-artifacts/bucket", "bucket")
    assert fetcher["command"][:5] == ["aws", "s3", "sync", f"s3://{bucket}/{SPECS[name].model_prefix}", "/models"]
    # A tag, not 'latest' and not none: every restart runs the same CLI.
    image, _, tag = fetcher["image"].rpartition(":")
    assert image and tag and "/" not in tag and tag != "latest", fetcher["image"]
    assert re.search(r"\d", tag), tag
    # It writes the model where the server reads it.
    assert {"name": "models", "mount_path": "/models"} in fetcher["volume_mount"]


@BOTH
def test_the_server_runs_the_specs_image_arguments_and_port(stack, name) -> None:
    model = SPECS[name]
    container = server(stack, name)
    assert container["image"] == model.image
    assert container.get("args", []) == list(model.args)
    assert container["port"] == [{"name": "http", "container_port": model.port}]
    assert container["security_context"] == {
        "allow_privilege_escalation": False,
        "privileged": False,
        "read_only_root_filesystem": True,
        "run_as_group": "1000",
        "run_as_non_root": True,
        "run_as_user": "1000",
        "capabilities": {"drop": ["ALL"]},
        "seccomp_profile": {"type": "RuntimeDefault"},
    }
    # The model is mounted read-only: the server cannot change what the next pod would also load.
    (models,) = [mount for mount in container["volume_mount"] if mount["mount_path"] == "/models"]
    assert models["read_only"] is True
    (volume,) = [v for v in pod(stack, name)["volume"] if v["name"] == models["name"]]
    assert volume["empty_dir"] == {"size_limit": f"{model.model_size_gib}Gi"}


@pytest.mark.parametrize(("name", "policy_"), [("chat", "Always"), ("embed", "Always"), ("rank", "IfNotPresent")])
def test_a_tag_is_pulled_again_at_every_start_and_a_digest_only_once(stack, name, policy_) -> None:
    # A tag can be pushed again: a node that has the image must still ask the registry what the tag names now.
    assert (SPECS[name].image_tag is None) is (policy_ == "IfNotPresent")
    assert server(stack, name)["image_pull_policy"] == policy_
    # The fetcher's tag, too.
    (fetcher,) = pod(stack, name)["init_container"]
    assert fetcher["image_pull_policy"] == "Always"


@BOTH
def test_requests_come_from_the_spec_and_memory_is_also_the_limit(stack, name) -> None:
    model = SPECS[name]
    resources_ = server(stack, name)["resources"]
    requests, limits = resources_["requests"], resources_["limits"]
    assert requests["cpu"] == f"{model.cpu_millicores}m"
    assert requests["memory"] == f"{model.memory_mib}Mi"
    # Memory over the request would be taken from a neighbour; a limit equal to it keeps the node honest.
    assert limits["memory"] == requests["memory"]
    # CPU may burst above the request, up to the spec's limit (twice the request unless the spec says).
    expected_cpu_limit = model.cpu_limit_millicores or 2 * model.cpu_millicores
    assert limits["cpu"] == f"{expected_cpu_limit}m"
    if model.gpus:
        # Extended resources must be requested and limited alike.
        assert requests["nvidia.com/gpu"] == limits["nvidia.com/gpu"] == str(model.gpus)
    else:
        assert "nvidia.com/gpu" not in requests and "nvidia.com/gpu" not in limits


@BOTH
def test_every_probe_calls_the_health_path_and_startup_allows_the_load_time(stack, name) -> None:
    model = SPECS[name]
    container = server(stack, name)
    for probe in ("startup_probe", "readiness_probe", "liveness_probe"):
        assert container[probe]["http_get"] == {"path": model.health_path, "port": str(model.port)}, probe
    startup = container["startup_probe"]
    # Readiness and liveness only start once the startup probe passed: it must wait the whole loading time.
    assert startup["failure_threshold"] * startup["period_seconds"] >= model.startup_seconds
    # ... and not much longer: a hung load is restarted within one period of the limit.
    assert (startup["failure_threshold"] - 1) * startup["period_seconds"] < model.startup_seconds


def test_a_gpu_model_selects_and_tolerates_the_gpu_node_group(platform, stack) -> None:
    spec = pod(stack, "chat")
    nodes = platform.gpu_nodes
    assert nodes is not None
    group = only(stack, "aws_eks_node_group", "gpu-nodes/group/node-group")
    # The labels the nodes are started with, by the construct and in the JSON.
    assert spec["node_selector"] == dict(nodes.labels) == group["labels"]
    # The toleration of exactly the taint the nodes carry, spelled the Kubernetes way.
    (taint,) = group["taint"]
    expected = {
        "key": taint["key"],
        "operator": "Equal",
        "value": taint["value"],
        "effect": K8S_EFFECT[taint["effect"]],
    }
    assert spec["toleration"] == [expected] == [nodes.taint.toleration()]
    assert nodes.taint.kubernetes_effect == K8S_EFFECT[nodes.taint.effect]
    # Tensors pass between the server's processes through /dev/shm: memory-backed and mounted.
    (shm,) = [v for v in spec["volume"] if v["name"] == "shm"]
    assert shm["empty_dir"]["medium"] == "Memory"
    assert {"name": "shm", "mount_path": "/dev/shm"} in server(stack, "chat")["volume_mount"]


def test_a_cpu_model_stays_on_the_cpu_nodes(stack) -> None:
    spec = pod(stack, "embed")
    assert spec["node_selector"] == dict(CPU_SELECTOR)
    # No toleration: the tainted GPU nodes stay out of reach.
    assert "toleration" not in spec
    assert [v["name"] for v in spec["volume"] if v.get("empty_dir", {}).get("medium") == "Memory"] == []
    assert "/dev/shm" not in [mount["mount_path"] for mount in server(stack, "embed")["volume_mount"]]


@pytest.mark.parametrize("name", ["chat", "embed", "rank"])
def test_a_stopping_pod_drains_before_sigterm_and_may_finish_a_streaming_answer(stack, name) -> None:
    drain = SPECS[name].drain_seconds
    hook = server(stack, name).get("lifecycle")
    # The load balancer deregisters the pod meanwhile; an image without `sleep` gets no hook at all.
    assert hook == ({"pre_stop": [{"exec": {"command": ["sleep", str(drain)]}}]} if drain else None)
    idle = int(attributes(stack, name)["idle_timeout.timeout_seconds"])
    assert pod(stack, name)["termination_grace_period_seconds"] == drain + idle


@BOTH
def test_the_pods_spread_over_the_zones(stack, name) -> None:
    labels = deployment(stack, name)["spec"]["template"]["metadata"]["labels"]
    (constraint,) = pod(stack, name)["topology_spread_constraint"]
    assert constraint["topology_key"] == "topology.kubernetes.io/zone"
    assert constraint["max_skew"] == 1
    # The constraint counts this model's pods: its selector is the pod template's labels.
    assert constraint["label_selector"] == [{"match_labels": labels}]


# --- Service, autoscaler, disruption budget -----------------------------------------------------------------


@BOTH
def test_the_service_forwards_port_80_to_the_servers_port_and_selects_its_pods(stack, name) -> None:
    body = deployment(stack, name)
    service = of(stack, "kubernetes_service_v1", name, "service")
    assert service["metadata"]["namespace"] == f"model-{name}"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["port"] == [{"name": "http", "port": 80, "target_port": str(SPECS[name].port)}]
    labels = body["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"] == labels == body["spec"]["selector"]["match_labels"]
    assert labels


@BOTH
def test_the_autoscaler_scales_the_deployment_within_the_specs_bounds(stack, name) -> None:
    model = SPECS[name]
    hpa = of(stack, "kubernetes_horizontal_pod_autoscaler_v2", name, "autoscaler")
    assert hpa["metadata"]["namespace"] == f"model-{name}"
    spec = hpa["spec"]
    assert (spec["min_replicas"], spec["max_replicas"]) == (model.min_replicas, model.max_replicas)
    assert spec["scale_target_ref"] == {
        "api_version": "apps/v1",
        "kind": "Deployment",
        "name": deployment(stack, name)["metadata"]["name"],
    }
    (metric,) = spec["metric"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"] == {"type": "Utilization", "average_utilization": model.target_cpu_utilization}
    # Scaling down waits five quiet minutes: a short lull must not throw away loaded models.
    (down,) = spec["behavior"]["scale_down"]
    assert down["stabilization_window_seconds"] == 300
    assert hpa["depends_on"] == [at(stack, "kubernetes_deployment_v1", name, "deployment")]


def test_a_disruption_budget_exists_only_where_the_spec_asks(stack) -> None:
    budgets = resources(stack, "kubernetes_pod_disruption_budget_v1").values()
    assert [b["metadata"]["namespace"] for b in budgets] == ["model-chat"]
    (budget,) = budgets
    assert budget["spec"]["max_unavailable"] == "1"
    labels = deployment(stack, "chat")["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"] == {"match_labels": labels}


# --- the load balancer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", IN_CLUSTER)
def test_the_ingress_routes_the_hostname_to_the_service(stack, name) -> None:
    model = SPECS[name]
    ingress = of(stack, "kubernetes_ingress_v1", name, "ingress/ingress")
    service = of(stack, "kubernetes_service_v1", name, "service")
    assert ingress["metadata"]["namespace"] == f"model-{name}"
    (rule,) = ingress["spec"]["rule"]
    assert rule["host"] == model.ingress.hostname
    (path,) = rule["http"]["path"]
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"number": service["spec"]["port"][0]["port"]},
    }
    alb = annotations(stack, name)
    assert alb["scheme"] == model.ingress.scheme
    assert alb["healthcheck-path"] == model.health_path
    # The owner tags on everything the controller creates, sorted, for cost attribution.
    assert alb["tags"] == ",".join(f"{key}={value}" for key, value in sorted(OWNER_TAGS.items()))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("embed", list(CLIENT_CIDRS), id="internal-the-vpc"),
        pytest.param("chat", ["0.0.0.0/0"], id="internet-facing-everyone-behind-the-acl"),
        pytest.param("rank", list(RANK.ingress.allowed_cidrs), id="internal-the-specs-list"),
        pytest.param("search", list(SEARCH.ingress.allowed_cidrs), id="internet-facing-the-specs-list"),
    ],
)
def test_the_load_balancer_accepts_the_specs_sources_else_the_schemes_default(stack, name, expected) -> None:
    assert annotations(stack, name)["inbound-cidrs"].split(",") == expected


@pytest.mark.parametrize("name", IN_CLUSTER)
def test_an_internet_facing_model_is_behind_its_web_acl_and_an_internal_one_has_none(stack, name) -> None:
    alb = annotations(stack, name)
    acls = own(stack, name).get("aws_wafv2_web_acl", [])
    if name in INTERNET_FACING:
        assert acls == ["web-acl/web-acl"]
        assert alb["wafv2-acl-arn"] == ref(stack, "aws_wafv2_web_acl", f"model-{name}/web-acl/web-acl", "arn")
    else:
        assert acls == []
        assert "wafv2-acl-arn" not in alb


def test_the_web_acl_limits_each_address_to_the_specs_rate_and_runs_the_managed_rules(stack) -> None:
    acl = of(stack, "aws_wafv2_web_acl", "chat", "web-acl/web-acl")
    assert (acl["scope"], acl["default_action"]) == ("REGIONAL", {"allow": {}})
    assert acl["name"] == "p-test-model-chat"
    rules = sorted(acl["rule"], key=lambda rule: rule["priority"])
    assert rules[0]["statement"]["rate_based_statement"]["limit"] == GPU.ingress.requests_per_5_minutes
    assert rules[0]["action"] == {"block": {}}
    groups = {
        r["statement"]["managed_rule_group_statement"]["name"]: r["statement"]["managed_rule_group_statement"]
        for r in rules[1:]
    }
    assert set(groups) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    assert groups["AWSManagedRulesCommonRuleSet"]["rule_action_override"] == [
        {"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}
    ]
    # Each internet-facing model's ACL has its own limit: search keeps the default.
    search = of(stack, "aws_wafv2_web_acl", "search", "web-acl/web-acl")
    (search_rate,) = [r for r in search["rule"] if "rate_based_statement" in r["statement"]]
    assert search_rate["statement"]["rate_based_statement"]["limit"] == SEARCH.ingress.requests_per_5_minutes


@pytest.mark.parametrize("name", INTERNET_FACING)
def test_the_web_acl_logs_requests_with_the_given_key_and_retention(stack, name) -> None:
    group = of(stack, "aws_cloudwatch_log_group", name, "web-acl/log-group")
    assert group["kms_key_id"] == ref(stack, "aws_kms_key", "key", "arn")
    assert group["retention_in_days"] == LOG_RETENTION_DAYS
    logging = of(stack, "aws_wafv2_web_acl_logging_configuration", name, "web-acl/logging")
    assert logging["resource_arn"] == ref(stack, "aws_wafv2_web_acl", f"model-{name}/web-acl/web-acl", "arn")
    assert logging["log_destination_configs"] == [
        ref(stack, "aws_cloudwatch_log_group", f"model-{name}/web-acl/log-group", "arn")
    ]
    # The environment's protection reaches the log group: only offline's context is protected.
    assert ("skip_destroy" in group) is (name == "offline")


def test_access_logs_go_under_the_models_namespace_and_are_off_without_a_bucket(stack) -> None:
    logged = attributes(stack, "chat")
    assert logged["access_logs.s3.enabled"] == "true"
    assert logged["access_logs.s3.bucket"] == ref(stack, "aws_s3_bucket", "access-logs/bucket", "bucket")
    # Where the bucket policy lets ELB write: <prefix>/<load balancer>/AWSLogs/<account>/.
    assert logged["access_logs.s3.prefix"] == f"{LOG_PREFIX}/model-chat"
    # Without access logs the attribute is written as off, not left to whatever the load balancer had.
    unlogged = attributes(stack, "embed")
    assert unlogged["access_logs.s3.enabled"] == "false"
    assert not [key for key in unlogged if key.startswith("access_logs.s3.") and key != "access_logs.s3.enabled"]


def test_the_ingress_goes_before_the_workload_and_the_controller_on_destroy(stack) -> None:
    release = controller(stack)
    workload = [
        at(stack, "kubernetes_deployment_v1", "chat", "deployment"),
        at(stack, "kubernetes_service_v1", "chat", "service"),
    ]
    logs_policy = address(stack, "aws_s3_bucket_policy", "access-logs/policy")
    assert sorted(of(stack, "kubernetes_ingress_v1", "chat", "ingress/ingress")["depends_on"]) == sorted(
        [release, *workload, logs_policy]
    )
    # Without access logs there is no bucket policy to wait for.
    embed_workload = [
        at(stack, "kubernetes_deployment_v1", "embed", "deployment"),
        at(stack, "kubernetes_service_v1", "embed", "service"),
    ]
    assert sorted(of(stack, "kubernetes_ingress_v1", "embed", "ingress/ingress")["depends_on"]) == sorted(
        [release, *embed_workload]
    )


@BOTH
def test_everything_in_the_cluster_waits_for_the_controller(stack, name) -> None:
    # So the whole model is destroyed while the controller still runs to clear the Ingress's finalizer.
    release = controller(stack)
    found = own(stack, name)
    in_cluster = [(kind, path) for kind, paths in found.items() if kind.startswith("kubernetes_") for path in paths]
    assert len(in_cluster) >= 6
    for kind, path in in_cluster:
        body = of(stack, kind, name, path)
        assert depends_transitively(stack, body, release), (kind, path)
    # The walk can say no: the namespace does not wait for the Deployment that lives in it.
    namespace = of(stack, "kubernetes_namespace_v1", name, "namespace")
    assert not depends_transitively(stack, namespace, at(stack, "kubernetes_deployment_v1", name, "deployment"))


@BOTH
def test_the_alias_record_reads_the_load_balancer_from_the_ingress_status(stack, name) -> None:
    record = of(stack, "aws_route53_record", name, "ingress/record")
    assert (record["name"], record["type"]) == (SPECS[name].ingress.hostname, "A")
    ingress = at(stack, "kubernetes_ingress_v1", name, "ingress/ingress")
    # The controller makes the ALB; its DNS name is known from the Ingress's status once it exists.
    assert record["alias"]["name"] == f"${{{ingress}.status[0].load_balancer[0].ingress[0].hostname}}"
    assert record["alias"]["zone_id"] == data_ref(
        stack, "aws_lb_hosted_zone_id", f"model-{name}/ingress/load-balancer-zone", "id"
    )


def test_the_url_is_the_https_hostname() -> None:
    model = TinyServing(gpu_nodes=False).serve(model_spec("url-check"))
    assert model.url == "https://url-check.ml.example.com"


# --- the AWS side alone, and the GPU requirement ------------------------------------------------------------


def test_without_in_cluster_resources_only_the_role_certificate_and_web_acl_exist(stack) -> None:
    assert own(stack, "offline") == {
        "aws_iam_role": ["server-irsa/role"],
        "aws_iam_role_policy": ["server-irsa/permissions"],
        "aws_wafv2_web_acl": ["web-acl/web-acl"],
        "aws_cloudwatch_log_group": ["web-acl/log-group"],
        "aws_wafv2_web_acl_logging_configuration": ["web-acl/logging"],
        "aws_acm_certificate": ["ingress/certificate"],
        "aws_route53_record": ["ingress/validation-record"],
        "aws_acm_certificate_validation": ["ingress/validation"],
    }


def test_a_gpu_model_without_gpu_nodes_is_rejected_naming_gpu_nodes() -> None:
    platform = TinyServing(gpu_nodes=False)
    with pytest.raises(ConfigurationError) as error:
        platform.serve(model_spec("vision", gpus=2))
    assert (error.value.where, error.value.field) == ("tiny/model-vision", "gpu_nodes")
    assert "the GPU node group" in error.value.allowed and "2 GPUs" in error.value.allowed
    # A CPU model needs none.
    assert platform.serve(model_spec("text")).props.gpu_nodes is None
