"""Kubeflow Trainer v2: the pinned chart, its values, the platform's runtimes, and the whole feature's install order.

Nothing of it can be installed offline, so the releases are checked on the synthesized JSON: the chart and version
Terraform asks Helm for, the values the chart receives (parsed back from the JSON string), the objects the runtimes
release applies, and the ``depends_on`` edges that decide what Terraform creates first and destroys last.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from constructs.core.bindings import aws
from constructs.eks.node_group import NodeTaint
from constructs.kubeflow.trainer import RUNTIME_MAX_RESTARTS, TRAINER_CHART, KubeflowTrainer, KubeflowTrainerProps

from tests.kubeflow import (
    CPU_SELECTOR,
    CPU_SETTINGS,
    GPU_SETTINGS,
    K8S_EFFECT,
    TinyPlatform,
    address_of,
    manifests_of,
    releases,
    runtime_pod,
    tolerates,
    values_of,
)
from tests.support.synth_json import address, only

# An exact version: Helm takes a constraint (``^2.3``, ``~2.3.0``, ``2.x``) too, and would then install whatever
# the registry serves on the day of the deploy.
EXACT_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
# A taint unlike the platform's GPU taint in key, value and effect: a runtime tolerating it got it from the props.
ODD_TAINT = NodeTaint("example.com/accelerator", "a100", "NO_EXECUTE")
# JobSet recreates all of a job's pods when one fails (a reclaimed Spot node), a bounded number of times.
FAILURE_POLICY = {"maxRestarts": RUNTIME_MAX_RESTARTS, "restartStrategy": "Recreate"}


def trainer_alone(
    node_selector: dict[str, str] | None = None, *, with_dependency: bool = False, gpu_taint: NodeTaint | None = None
) -> tuple[dict[str, Any], KubeflowTrainer]:
    """KubeflowTrainer alone in a tiny platform (after an SNS topic standing in for the node groups when asked)."""
    platform = TinyPlatform(gpu_nodes=False)
    depends_on = [aws.sns_topic.SnsTopic(platform.tiny.stack, "node-groups")] if with_dependency else []
    trainer = KubeflowTrainer(
        platform.tiny.stack,
        "trainer",
        KubeflowTrainerProps(
            cluster=platform.cluster,
            node_selector=node_selector or dict(CPU_SELECTOR),
            gpu_taint=gpu_taint,
            depends_on=depends_on,
        ),
    )
    return platform.synth(), trainer


@pytest.fixture(scope="module")
def trainer_stack() -> dict[str, Any]:
    stack, _ = trainer_alone(with_dependency=True)
    return stack


def enabled_paths(values: Any, path: str = "") -> Iterator[str]:
    """Dotted paths of every ``enabled: true`` in a values tree (``runtimes.torchDistributed.enabled``)."""
    if isinstance(values, dict):
        for key, value in values.items():
            here = f"{path}.{key}" if path else key
            if key in ("enabled", "defaultEnabled") and value is True:
                yield here
            yield from enabled_paths(value, here)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            yield from enabled_paths(item, f"{path}[{index}]")


# --- the trainer's release -------------------------------------------------------------------------------


def test_the_trainer_is_the_pinned_oci_chart_in_its_own_namespace(trainer_stack) -> None:
    release = releases(trainer_stack)["kubeflow-trainer"]
    assert (release["repository"], release["chart"]) == ("oci://ghcr.io/kubeflow/charts", "kubeflow-trainer")
    assert release["version"] == TRAINER_CHART.version
    assert EXACT_SEMVER.fullmatch(release["version"]), f"not an exact version: {release['version']!r}"
    # Helm creates kubeflow-system; nothing else of the platform lives there.
    assert (release["namespace"], release["create_namespace"]) == ("kubeflow-system", True)
    # A failed install rolls back rather than leaving half a controller and its webhooks behind.
    assert release["atomic"] is True and release["wait"] is True


def test_the_trainer_waits_for_the_nodes_and_the_deployers_cluster_access(trainer_stack) -> None:
    release = releases(trainer_stack)["kubeflow-trainer"]
    assert set(release["depends_on"]) == {
        address(trainer_stack, "aws_sns_topic", "node-groups"),
        address(trainer_stack, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin"),
    }


@pytest.mark.parametrize(
    "selector",
    [dict(CPU_SELECTOR), {"node.kubernetes.io/instance-type": "m6i.large"}],
    ids=["two-labels", "instance-type"],
)
def test_both_controllers_run_on_the_cpu_nodes_they_are_given(selector) -> None:
    stack, _ = trainer_alone(selector)
    values = values_of(releases(stack)["kubeflow-trainer"])
    # The Trainer's manager and the bundled JobSet controller: neither may land on (and keep awake) a GPU node.
    assert values["manager"]["nodeSelector"] == selector
    assert values["jobset"]["install"] is True
    assert values["jobset"]["controller"]["nodeSelector"] == selector


def test_the_jobset_controller_asks_for_a_tenth_of_a_core(trainer_stack) -> None:
    # The subchart's default request is half a core: more than an idle controller uses, on a small CPU node.
    controller = values_of(releases(trainer_stack)["kubeflow-trainer"])["jobset"]["controller"]
    assert controller["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}


def test_no_runtime_installer_and_no_data_cache(trainer_stack) -> None:
    values = values_of(releases(trainer_stack)["kubeflow-trainer"])
    # Any enabled runtime starts the chart's post-install Job that downloads kubectl from the internet; the data
    # cache pulls in LeaderWorkerSet. A private cluster can have neither.
    assert values["runtimes"]["defaultEnabled"] is False
    assert values["dataCache"]["enabled"] is False
    assert list(enabled_paths(values)) == []


def test_enabled_paths_finds_a_nested_runtime_switch() -> None:
    # The walk above must be able to fail: a runtime switched on deep in the tree is reported by its path.
    values = {"runtimes": {"defaultEnabled": False, "torchtune": {"llama": {"enabled": True}}}, "x": [{"enabled": 1}]}
    assert list(enabled_paths(values)) == ["runtimes.torchtune.llama.enabled"]


# --- the platform's runtimes -------------------------------------------------------------------------------


def test_the_runtimes_are_a_local_chart_applied_after_the_trainer(trainer_stack) -> None:
    release = releases(trainer_stack)["kubeflow-runtimes"]
    # The repository's own manifests chart, shipped as an asset: nothing to pull, no version to pin.
    assert release["chart"].startswith("assets/")
    assert "repository" not in release and "version" not in release
    assert release["namespace"] == "kubeflow-system"
    # The ClusterTrainingRuntime CRD and its validating webhook come with the trainer's release.
    assert address_of(trainer_stack, "helm_release", "kubeflow-trainer") in release["depends_on"]


def test_the_torch_distributed_runtime_is_cluster_wide_and_names_the_node_step(trainer_stack) -> None:
    (runtime,) = manifests_of(releases(trainer_stack)["kubeflow-runtimes"])
    assert (runtime["apiVersion"], runtime["kind"]) == ("trainer.kubeflow.org/v1alpha1", "ClusterTrainingRuntime")
    assert runtime["metadata"]["name"] == "torch-distributed"
    # Cluster-scoped: every team's TrainJob can name it; a namespace here would make the API server refuse it.
    assert "namespace" not in runtime["metadata"]
    spec = runtime["spec"]
    assert isinstance(spec["mlPolicy"]["torch"], dict)
    assert spec["mlPolicy"]["numNodes"] >= 1
    jobs = spec["template"]["spec"]["replicatedJobs"]
    # The Trainer fills in torchrun's environment on the replicated job and container called "node".
    assert [job["name"] for job in jobs] == ["node"]
    (node,) = jobs
    assert node["template"]["metadata"]["labels"] == {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}
    containers = node["template"]["spec"]["template"]["spec"]["containers"]
    assert [container["name"] for container in containers] == ["node"]
    # A CPU runtime says nothing about nodes and tolerates no taint: Kueue's CPU flavor places its pods, and the
    # GPU flavor (which only pods tolerating the GPU taint get) never does.
    pod = node["template"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    # A lost node restarts the whole job from its checkpoint, a bounded number of times, instead of failing it.
    assert spec["template"]["spec"]["failurePolicy"] == FAILURE_POLICY


def test_a_gpu_taint_adds_a_gpu_runtime_tolerating_exactly_that_taint() -> None:
    stack, _ = trainer_alone(gpu_taint=ODD_TAINT)
    runtimes = {m["metadata"]["name"]: m for m in manifests_of(releases(stack)["kubeflow-runtimes"])}
    assert sorted(runtimes) == ["torch-distributed", "torch-distributed-gpu"]
    gpu, cpu = runtimes["torch-distributed-gpu"], runtimes["torch-distributed"]
    # The taint the props name, in Kubernetes spelling: nothing of the platform's own GPU taint is assumed.
    assert runtime_pod(gpu)["tolerations"] == [
        {"key": "example.com/accelerator", "operator": "Equal", "value": "a100", "effect": "NoExecute"}
    ]
    assert "tolerations" not in runtime_pod(cpu)
    for runtime in (gpu, cpu):
        assert runtime["kind"] == "ClusterTrainingRuntime" and "namespace" not in runtime["metadata"]
        assert runtime["spec"]["template"]["spec"]["failurePolicy"] == FAILURE_POLICY
        assert runtime["metadata"]["labels"] == {"trainer.kubeflow.org/framework": "torch"}
    # Apart from its name and the toleration, the GPU runtime is the CPU one: the same torch policy and image.
    assert gpu["spec"]["mlPolicy"] == cpu["spec"]["mlPolicy"]
    assert runtime_pod(gpu)["containers"] == runtime_pod(cpu)["containers"]


# --- the whole feature, assembled --------------------------------------------------------------------------


def assembled(*, gpu_nodes: bool) -> tuple[dict[str, Any], Any]:
    platform = TinyPlatform(gpu_nodes=gpu_nodes)
    topic = aws.sns_topic.SnsTopic(platform.tiny.stack, "node-groups")
    training = platform.training(GPU_SETTINGS if gpu_nodes else CPU_SETTINGS, depends_on=[topic])
    return platform.synth(), training


@pytest.fixture(scope="module", params=[True, False], ids=["with-gpu-group", "without-gpu-group"])
def whole(request) -> tuple[bool, dict[str, Any], Any]:
    stack, training = assembled(gpu_nodes=request.param)
    return request.param, stack, training


def test_the_feature_installs_trainer_then_kueue_then_queues_then_each_teams_queue(whole) -> None:
    gpu, stack, training = whole
    by_name = releases(stack)
    teams = [t.name for t in (GPU_SETTINGS if gpu else CPU_SETTINGS).teams]
    assert sorted(by_name) == sorted(
        ["kubeflow-trainer", "kubeflow-runtimes", "kueue", "kueue-queues", *(f"{t}-queue" for t in teams)]
    )

    def first(name: str) -> str:
        return address_of(stack, "helm_release", name)

    # Trainer first (its CRDs, so Kueue's TrainJob integration starts at once), then Kueue and the runtimes;
    # the flavors and ClusterQueues once Kueue's webhooks serve, and each team's LocalQueue last.
    assert first("kubeflow-trainer") in by_name["kubeflow-runtimes"]["depends_on"]
    assert first("kubeflow-trainer") in by_name["kueue"]["depends_on"]
    assert first("kueue") in by_name["kueue-queues"]["depends_on"]
    for name in teams:
        # The namespace waits for the queues (so on destroy it goes, with its TrainJobs, while Kueue and the
        # Trainer still run), and the team's LocalQueue for the namespace alone, so for the queues through it.
        namespace = address(stack, "kubernetes_namespace_v1", f"kubeflow/team-{name}/namespace")
        assert first("kueue-queues") in only(stack, "kubernetes_namespace_v1", f"team-{name}/namespace")["depends_on"]
        assert by_name[f"{name}-queue"]["depends_on"] == [namespace]
    # The node groups (here a topic standing in for them) before any controller is scheduled.
    topic = address(stack, "aws_sns_topic", "node-groups")
    assert topic in by_name["kubeflow-trainer"]["depends_on"]
    assert topic in by_name["kueue"]["depends_on"]
    assert sorted(training.teams) == sorted(teams)


def test_the_gpu_flavor_exists_exactly_when_the_cluster_has_a_gpu_group(whole) -> None:
    gpu, stack, training = whole
    kinds = [(m["kind"], m["metadata"]["name"]) for m in manifests_of(releases(stack)["kueue-queues"])]
    flavors = [name for kind, name in kinds if kind == "ResourceFlavor"]
    assert flavors == (["cpu-nodes", "gpu-nodes"] if gpu else ["cpu-nodes"])
    assert (training.gpu_flavor is not None) is gpu
    # The CPU flavor is the selector the controllers were given, in both cases.
    assert training.cpu_flavor.node_labels == dict(CPU_SELECTOR)


def test_gpu_runtime_exactly_where_the_cluster_has_a_gpu_group(whole) -> None:
    gpu, stack, _ = whole
    runtimes = {m["metadata"]["name"]: m for m in manifests_of(releases(stack)["kubeflow-runtimes"])}
    assert sorted(runtimes) == (["torch-distributed", "torch-distributed-gpu"] if gpu else ["torch-distributed"])
    for runtime in runtimes.values():
        assert runtime["spec"]["template"]["spec"]["failurePolicy"] == FAILURE_POLICY
    assert "tolerations" not in runtime_pod(runtimes["torch-distributed"])
    if gpu:
        # Its pods tolerate the taint Terraform gives the GPU node group, in Kubernetes spelling.
        node_group = only(stack, "aws_eks_node_group", "gpu-nodes/group/node-group")
        assert node_group["taint"]
        assert runtime_pod(runtimes["torch-distributed-gpu"])["tolerations"] == [
            {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": K8S_EFFECT[t["effect"]]}
            for t in node_group["taint"]
        ]


def test_kueue_can_put_only_the_gpu_runtimes_jobs_on_the_gpu_flavor() -> None:
    """Kueue gives a flavor with nodeTaints only to pods tolerating all of them: the GPU runtime's pods must, and
    the CPU runtime's must tolerate none, or a CPU job could be admitted onto GPU nodes once CPU quota runs out."""
    stack, _ = assembled(gpu_nodes=True)
    flavors = {
        m["metadata"]["name"]: m["spec"]
        for m in manifests_of(releases(stack)["kueue-queues"])
        if m["kind"] == "ResourceFlavor"
    }
    taints = flavors["gpu-nodes"]["nodeTaints"]
    assert taints
    runtimes = {m["metadata"]["name"]: m for m in manifests_of(releases(stack)["kubeflow-runtimes"])}
    gpu_pod = runtime_pod(runtimes["torch-distributed-gpu"])["tolerations"]
    cpu_pod = runtime_pod(runtimes["torch-distributed"]).get("tolerations", [])
    assert [t for t in taints if not tolerates(gpu_pod, t)] == []
    assert [t for t in taints if tolerates(cpu_pod, t)] == []
    # The CPU flavor declares no taint, so both runtimes' jobs fit it.
    assert "nodeTaints" not in flavors["cpu-nodes"]
