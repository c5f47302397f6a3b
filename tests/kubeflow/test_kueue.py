"""Kueue: the pinned chart and its configuration, the flavors, one ClusterQueue per team, and the teams' ceilings.

A flavor is where Kueue sends the pods of a job it admits: it adds the flavor's node labels to their node selector.
The GPU flavor declares the GPU nodes' taint (``nodeTaints``) instead of handing out a toleration: Kueue then gives
it only to pods that already tolerate the taint (the GPU runtime's), so a CPU job never spills onto GPU nodes when
the CPU quota runs out. So the GPU flavor is compared with the GPU node group resource in the same JSON, not with
constants: if the two drift apart, admitted GPU jobs stay Pending forever or GPU jobs are never admitted.
ClusterQueues are checked against quotas written out here from the settings the test builds, and against the rules
Kueue's API server enforces.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
import yaml
from constructs.core.errors import ConfigurationError
from constructs.eks.node_group import NodeTaint
from constructs.kubeflow.kueue import (
    CPU_FLAVOR,
    KUEUE_CHART,
    Kueue,
    KueueProps,
    NodeFlavor,
    TeamCeiling,
    team_ceiling,
)
from constructs.kubeflow.settings import KubeflowSettings

from tests.kubeflow import (
    CPU_SELECTOR,
    CPU_SETTINGS,
    GPU_SETTINGS,
    K8S_EFFECT,
    NLP,
    TABULAR,
    VISION,
    TinyPlatform,
    address_of,
    manifests_of,
    releases,
    team,
    tolerates,
    values_of,
)
from tests.support.synth_json import only

EXACT_SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")
# Integrations whose webhook stands in front of every pod (or workload) of the cluster, system pods included.
POD_WIDE_INTEGRATIONS = ("pod", "deployment", "statefulset", "leaderworkerset.x-k8s.io/leaderworkerset")


def built(settings: KubeflowSettings, *, gpu_nodes: bool) -> tuple[dict[str, Any], TinyPlatform]:
    platform = TinyPlatform(gpu_nodes=gpu_nodes)
    platform.training(settings)
    return platform.synth(), platform


@pytest.fixture(scope="module")
def with_gpus() -> tuple[dict[str, Any], TinyPlatform]:
    return built(GPU_SETTINGS, gpu_nodes=True)


@pytest.fixture(scope="module")
def cpu_only() -> tuple[dict[str, Any], TinyPlatform]:
    return built(CPU_SETTINGS, gpu_nodes=False)


def configuration(stack: dict[str, Any]) -> dict[str, Any]:
    """Kueue's configuration file as the chart writes it into its ConfigMap (a YAML document)."""
    text = values_of(releases(stack)["kueue"])["managerConfig"]["controllerManagerConfigYaml"]
    return yaml.safe_load(text)


def objects(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The ``kind`` objects of the kueue-queues release, by name."""
    return {m["metadata"]["name"]: m for m in manifests_of(releases(stack)["kueue-queues"]) if m["kind"] == kind}


def go_duration(text: str) -> timedelta:
    """A Go duration of hours, minutes and seconds (``1h30m``), as Kueue parses it."""
    parts = re.findall(r"(\d+)(h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text!r}"
    return timedelta(seconds=sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts))


def resources_(cpu: int, memory_gib: int, gpus: int | None = None) -> list[dict[str, str]]:
    """A flavor's quotas as a ClusterQueue spells them."""
    quotas = [{"name": "cpu", "nominalQuota": str(cpu)}, {"name": "memory", "nominalQuota": f"{memory_gib}Gi"}]
    if gpus is not None:
        quotas.append({"name": "nvidia.com/gpu", "nominalQuota": str(gpus)})
    return quotas


# --- the chart and its configuration ---------------------------------------------------------------------


def test_kueue_is_the_pinned_oci_chart_installed_after_the_trainer(with_gpus) -> None:
    stack, _ = with_gpus
    release = releases(stack)["kueue"]
    assert (release["repository"], release["chart"]) == ("oci://registry.k8s.io/kueue/charts", "kueue")
    assert release["version"] == KUEUE_CHART.version
    assert EXACT_SEMVER.fullmatch(release["version"]), f"not an exact version: {release['version']!r}"
    assert (release["namespace"], release["create_namespace"]) == ("kueue-system", True)
    # Kueue enables its TrainJob integration only if the Trainer's CRDs exist when it starts.
    assert address_of(stack, "helm_release", "kubeflow-trainer") in release["depends_on"]
    # Its controller stays on the CPU nodes it is given.
    assert values_of(release)["controllerManager"]["nodeSelector"] == dict(CPU_SELECTOR)


def test_kueue_manages_training_jobs_and_nothing_pod_wide(with_gpus) -> None:
    config = configuration(with_gpus[0])
    assert (config["apiVersion"], config["kind"]) == ("config.kueue.x-k8s.io/v1beta2", "Configuration")
    frameworks = config["integrations"]["frameworks"]
    assert {"trainer.kubeflow.org/trainjob", "jobset.x-k8s.io/jobset", "batch/job"} <= set(frameworks)
    assert not set(frameworks) & set(POD_WIDE_INTEGRATIONS)
    assert len(frameworks) == len(set(frameworks))
    # Jobs without a queue label run unmanaged unless their namespace's LocalQueue "default" picks them up.
    assert config["manageJobsWithoutQueueName"] is False


@pytest.mark.parametrize("minutes", [5, 25, 120])
def test_wait_for_pods_ready_uses_the_settings_timeout(minutes) -> None:
    settings = KubeflowSettings(teams=(TABULAR,), wait_for_pods_ready_minutes=minutes)
    stack, _ = built(settings, gpu_nodes=False)
    ready = configuration(stack)["waitForPodsReady"]
    assert go_duration(ready["timeout"]) == timedelta(minutes=minutes)
    # Re-admitted jobs get the same time again after a pod fails; evicted ones queue by eviction time.
    assert go_duration(ready["recoveryTimeout"]) == timedelta(minutes=minutes)
    assert ready["requeuingStrategy"]["timestamp"] == "Eviction"
    # config v1beta2 removed waitForPodsReady.enable (the block's presence enables it); Kueue decodes its
    # configuration strictly, so a leftover "enable" would stop the controller from starting.
    assert "enable" not in ready


# --- the flavors ---------------------------------------------------------------------------------------------


def test_queues_are_applied_once_kueue_serves_and_name_no_namespace(with_gpus) -> None:
    stack, _ = with_gpus
    release = releases(stack)["kueue-queues"]
    assert release["chart"].startswith("assets/") and "version" not in release
    assert release["namespace"] == "kueue-system"
    assert address_of(stack, "helm_release", "kueue") in release["depends_on"]
    manifests = manifests_of(release)
    assert {m["apiVersion"] for m in manifests} == {"kueue.x-k8s.io/v1beta2"}
    # ResourceFlavors and ClusterQueues are cluster-scoped.
    assert [m for m in manifests if "namespace" in m["metadata"]] == []


def test_the_cpu_flavor_selects_the_cpu_nodes_and_declares_no_taint(with_gpus) -> None:
    flavor = objects(with_gpus[0], "ResourceFlavor")["cpu-nodes"]
    assert flavor["spec"] == {"nodeLabels": dict(CPU_SELECTOR)}


def test_the_gpu_flavor_is_the_gpu_node_groups_labels_and_taint(with_gpus) -> None:
    stack, platform = with_gpus
    group = platform.gpu_nodes
    assert group is not None
    spec = objects(stack, "ResourceFlavor")["gpu-nodes"]["spec"]
    # What Terraform gives the node group: admitted pods must select exactly these nodes, and only pods that
    # tolerate exactly its taint may be given the flavor.
    node_group = only(stack, "aws_eks_node_group", "gpu-nodes/group/node-group")
    assert node_group["taint"], "the GPU node group is tainted"
    assert spec["nodeLabels"] == node_group["labels"] == group.labels
    assert spec["nodeTaints"] == [
        {"key": taint["key"], "value": taint["value"], "effect": K8S_EFFECT[taint["effect"]]}
        for taint in node_group["taint"]
    ]
    assert spec["nodeTaints"] == [{"key": group.taint.key, "value": group.taint.value, "effect": "NoSchedule"}]
    # A flavor handing out the toleration would give it to CPU-only jobs too, once the CPU quota is used up.
    assert "tolerations" not in spec


@pytest.mark.parametrize("fixture", ["with_gpus", "cpu_only"])
def test_no_flavor_hands_out_a_toleration(fixture, request) -> None:
    flavors = objects(request.getfixturevalue(fixture)[0], "ResourceFlavor")
    assert flavors
    # Kueue adds a flavor's tolerations to every pod it puts on it: then any job could land on the tainted nodes.
    assert {name: sorted(flavor["spec"]) for name, flavor in flavors.items() if "tolerations" in flavor["spec"]} == {}


def test_a_flavor_declares_each_taint_with_its_kubernetes_effect() -> None:
    taints = (NodeTaint("example.com/a", "x", "NO_EXECUTE"), NodeTaint("example.com/b", "y", "PREFER_NO_SCHEDULE"))
    spec = NodeFlavor("special", {"pool": "special"}, taints).manifest()["spec"]
    assert spec == {
        "nodeLabels": {"pool": "special"},
        "nodeTaints": [
            {"key": "example.com/a", "value": "x", "effect": "NoExecute"},
            {"key": "example.com/b", "value": "y", "effect": "PreferNoSchedule"},
        ],
    }
    # Untainted nodes: no nodeTaints at all (an empty list is not what Kueue's defaulting writes back).
    assert NodeFlavor("plain", {"pool": "plain"}).manifest()["spec"] == {"nodeLabels": {"pool": "plain"}}


@pytest.mark.parametrize(("effect", "spelled"), sorted(K8S_EFFECT.items()))
def test_the_toleration_of_a_taint_tolerates_it_and_nothing_else(effect, spelled) -> None:
    taint = NodeTaint("example.com/gpu", "true", effect)
    given = taint.toleration()
    assert given == {"key": "example.com/gpu", "operator": "Equal", "value": "true", "effect": spelled}
    declared = NodeFlavor("f", {"pool": "f"}, (taint,)).manifest()["spec"]["nodeTaints"][0]
    assert tolerates([given], declared)
    # Not a wildcard: another value, key or effect of taint stays untolerated.
    assert not tolerates([given], {**declared, "value": "false"})
    assert not tolerates([given], {**declared, "key": "example.com/other"})
    other = next(e for e in K8S_EFFECT.values() if e != spelled)
    assert not tolerates([given], {**declared, "effect": other})


def test_tolerates_follows_kubernetes_matching_rules() -> None:
    # The helper the runtime tests rely on must be able to say no, and must accept what Kubernetes accepts.
    taint = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    assert not tolerates([], taint)
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], taint)
    assert tolerates([{"key": "nvidia.com/gpu", "value": "true"}], taint)  # no effect: every effect
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert not tolerates([{"key": "other", "operator": "Exists"}], taint)


# --- the ClusterQueues ---------------------------------------------------------------------------------------


def test_each_team_gets_its_own_cluster_queue_with_its_quotas(with_gpus) -> None:
    queues = objects(with_gpus[0], "ClusterQueue")
    assert sorted(queues) == ["nlp", "tabular", "vision"]
    specs = {name: queue["spec"] for name, queue in queues.items()}
    gpu_covered = ["cpu", "memory", "nvidia.com/gpu"]
    # CPU nodes first with no GPUs: a job asking for a GPU goes on to the GPU flavor.
    assert specs["vision"]["resourceGroups"] == [
        {
            "coveredResources": gpu_covered,
            "flavors": [
                {"name": "cpu-nodes", "resources": resources_(4, 16, 0)},
                {"name": "gpu-nodes", "resources": resources_(7, 28, 2)},
            ],
        }
    ]
    assert specs["nlp"]["resourceGroups"] == [
        {
            "coveredResources": gpu_covered,
            "flavors": [
                {"name": "cpu-nodes", "resources": resources_(2, 8, 0)},
                {"name": "gpu-nodes", "resources": resources_(3, 12, 1)},
            ],
        }
    ]
    # Without a GPU quota the GPU is not covered at all, so a job asking for one is never admitted.
    assert specs["tabular"]["resourceGroups"] == [
        {"coveredResources": ["cpu", "memory"], "flavors": [{"name": "cpu-nodes", "resources": resources_(3, 10)}]}
    ]
    for name, spec in specs.items():
        assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": name}}
        assert spec["queueingStrategy"] == "BestEffortFIFO"


def test_only_cohort_members_borrow_and_reclaim(with_gpus) -> None:
    specs = {name: queue["spec"] for name, queue in objects(with_gpus[0], "ClusterQueue").items()}
    for name in ("vision", "nlp"):
        assert specs[name]["cohortName"] == "research"
        assert specs[name]["preemption"] == {"withinClusterQueue": "LowerPriority", "reclaimWithinCohort": "Any"}
    # v1beta2 spells it cohortName; the v1beta1 "cohort" would be an unknown field.
    assert "cohortName" not in specs["tabular"] and "cohort" not in specs["tabular"]
    assert specs["tabular"]["preemption"]["reclaimWithinCohort"] == "Never"


@pytest.mark.parametrize("fixture", ["with_gpus", "cpu_only"])
def test_cluster_queues_pass_kueues_own_admission_rules(fixture, request) -> None:
    stack, _ = request.getfixturevalue(fixture)
    flavors = set(objects(stack, "ResourceFlavor"))
    for name, queue in objects(stack, "ClusterQueue").items():
        for group in queue["spec"]["resourceGroups"]:
            covered = group["coveredResources"]
            for flavor in group["flavors"]:
                # Kueue's CRD: every flavor lists the covered resources, in their order; the flavor must exist.
                assert [r["name"] for r in flavor["resources"]] == covered, (name, flavor["name"])
                assert flavor["name"] in flavors, (name, flavor["name"])
                for quota in flavor["resources"]:
                    assert re.fullmatch(r"\d+(Gi)?", quota["nominalQuota"]), (name, quota)
        # A team's queue admits only its own namespace's jobs.
        assert queue["spec"]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": name}


def test_the_queueing_strategy_comes_from_the_settings() -> None:
    settings = KubeflowSettings(teams=(TABULAR, team("audio", 1, 2)), queueing_strategy="StrictFIFO")
    stack, _ = built(settings, gpu_nodes=False)
    strategies = {name: q["spec"]["queueingStrategy"] for name, q in objects(stack, "ClusterQueue").items()}
    assert strategies == {"tabular": "StrictFIFO", "audio": "StrictFIFO"}


def test_without_a_gpu_group_there_is_no_gpu_anywhere(cpu_only) -> None:
    stack, _ = cpu_only
    assert list(objects(stack, "ResourceFlavor")) == ["cpu-nodes"]
    for queue in objects(stack, "ClusterQueue").values():
        assert queue["spec"]["resourceGroups"][0]["coveredResources"] == ["cpu", "memory"]
    text = json.dumps(manifests_of(releases(stack)["kueue-queues"]))
    assert "nvidia.com/gpu" not in text and "gpu-nodes" not in text


# --- bad wiring ----------------------------------------------------------------------------------------------


def test_gpu_quotas_without_a_gpu_flavor_are_rejected_naming_it() -> None:
    platform = TinyPlatform(gpu_nodes=False)
    props = KueueProps(
        cluster=platform.cluster,
        settings=GPU_SETTINGS,
        cpu_flavor=NodeFlavor(CPU_FLAVOR, dict(CPU_SELECTOR)),
        gpu_flavor=None,
        node_selector=CPU_SELECTOR,
    )
    with pytest.raises(ConfigurationError) as error:
        Kueue(platform.tiny.stack, "kueue", props)
    assert (error.value.where, error.value.field) == ("tiny/kueue", "gpu_flavor")
    # The message names the teams whose GPU quotas have nowhere to go.
    assert "vision" in error.value.allowed and "nlp" in error.value.allowed
    assert "tabular" not in error.value.allowed


def test_the_assembled_feature_rejects_gpu_quotas_on_a_cluster_without_gpu_nodes() -> None:
    platform = TinyPlatform(gpu_nodes=False)
    with pytest.raises(ConfigurationError) as error:
        platform.training(GPU_SETTINGS)
    assert (error.value.where, error.value.field) == ("tiny/kubeflow/kueue", "gpu_flavor")


def test_cpu_only_teams_need_no_gpu_flavor() -> None:
    platform = TinyPlatform(gpu_nodes=False)
    props = KueueProps(
        cluster=platform.cluster,
        settings=CPU_SETTINGS,
        cpu_flavor=NodeFlavor(CPU_FLAVOR, dict(CPU_SELECTOR)),
        gpu_flavor=None,
        node_selector=CPU_SELECTOR,
    )
    kueue = Kueue(platform.tiny.stack, "kueue", props)
    assert [m["kind"] for m in kueue.manifests] == ["ResourceFlavor", "ClusterQueue", "ClusterQueue"]


# --- team_ceiling --------------------------------------------------------------------------------------------


def test_a_cohort_members_ceiling_is_the_whole_cohorts_quota() -> None:
    # vision: 4 + 7 cores, 16 + 28 GiB, 2 GPUs; nlp: 2 + 3 cores, 8 + 12 GiB, 1 GPU.
    expected = TeamCeiling(cpu=16, memory_gib=64, gpus=3)
    assert team_ceiling(VISION, GPU_SETTINGS.teams) == expected
    assert team_ceiling(NLP, GPU_SETTINGS.teams) == expected


def test_a_team_outside_any_cohort_gets_its_own_quota() -> None:
    assert team_ceiling(TABULAR, GPU_SETTINGS.teams) == TeamCeiling(cpu=3, memory_gib=10, gpus=0)
    solo_gpu = team("solo", 1, 2, gpu=(4, 12, 48))
    assert team_ceiling(solo_gpu, (*GPU_SETTINGS.teams, solo_gpu)) == TeamCeiling(cpu=13, memory_gib=50, gpus=4)


def test_a_team_without_gpus_gets_none_even_in_a_cohort_with_gpus() -> None:
    cpu_member = team("tabular", 3, 10, cohort="research")
    teams = (VISION, NLP, cpu_member)
    # Its queue covers only the CPU flavor, so it can borrow only CPU-node quota: 4 + 2 + 3 cores, 16 + 8 + 10 GiB.
    assert team_ceiling(cpu_member, teams) == TeamCeiling(cpu=9, memory_gib=34, gpus=0)
    # The GPU members may borrow its CPU-node quota in turn.
    assert team_ceiling(VISION, teams) == TeamCeiling(cpu=19, memory_gib=74, gpus=3)


def test_cohorts_do_not_mix() -> None:
    other = team("speech", 5, 20, gpu=(2, 6, 24), cohort="product")
    teams = (VISION, NLP, other)
    assert team_ceiling(other, teams) == TeamCeiling(cpu=11, memory_gib=44, gpus=2)
    assert team_ceiling(VISION, teams) == TeamCeiling(cpu=16, memory_gib=64, gpus=3)
