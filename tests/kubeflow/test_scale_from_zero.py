"""Kueue's flavors and cluster-autoscaler agree, so an admitted GPU job brings GPU nodes up from zero.

Kueue admits a TrainJob on quota alone and then lets its pods be created with the flavor's node labels and
tolerations. Nothing runs on an empty GPU group, so cluster-autoscaler decides whether those pending pods fit the
group from the group's node-template tags (labels, taints, extended resources). These tests read both sides from
each environment's synthesized JSON: every flavor must describe a node group the autoscaler can grow, exactly.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.synth_json import ENVIRONMENTS, resources

TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
GPU = "nvidia.com/gpu"


def _release(stack: dict[str, Any], name: str) -> dict[str, Any]:
    (release,) = [r for r in resources(stack, "helm_release").values() if r["name"] == name]
    return release


def _flavors(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    manifests = json.loads(_release(stack, "kueue-queues")["values"][0])["manifests"]
    return {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "ResourceFlavor"}


def _group_for(stack: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    """The one managed node group whose labels are exactly the flavor's."""
    groups = [g for g in resources(stack, "aws_eks_node_group").values() if g.get("labels") == labels]
    assert len(groups) == 1, f"flavor labels {labels} select {len(groups)} node groups"
    return groups[0]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_flavor_selects_exactly_one_node_group(stacks: dict[str, dict[str, Any]], env: str) -> None:
    for spec in _flavors(stacks[env]).values():
        _group_for(stacks[env], spec["nodeLabels"])


EFFECTS = {"NO_SCHEDULE": "NoSchedule", "NO_EXECUTE": "NoExecute", "PREFER_NO_SCHEDULE": "PreferNoSchedule"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_autoscaler_knows_each_flavor_s_labels_and_taints_before_any_node_exists(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    for name, spec in _flavors(stacks[env]).items():
        group = _group_for(stacks[env], spec["nodeLabels"])
        tags = group["tags"]
        for key, value in spec["nodeLabels"].items():
            assert tags[f"{TEMPLATE}/label/{key}"] == value, (name, key)
        # The flavor declares the group's taints exactly (so Kueue gives it only to pods that tolerate them), and
        # the autoscaler's node template announces the same taints, so such a pod fits the template.
        taints = [(t["key"], t["value"], EFFECTS[t["effect"]]) for t in group.get("taint", [])]
        assert [(t["key"], t["value"], t["effect"]) for t in spec.get("nodeTaints", [])] == taints, name
        for key, value, effect in taints:
            assert tags[f"{TEMPLATE}/taint/{key}"] == f"{value}:{effect}"


def _runtime_tolerations(stack: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    manifests = json.loads(_release(stack, "kubeflow-runtimes")["values"][0])["manifests"]
    return {
        m["metadata"]["name"]: m["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"][
            "spec"
        ].get("tolerations", [])
        for m in manifests
    }


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """Kubernetes' matching of a toleration to a taint (Equal on key and value, or Exists on key; same effect)."""
    return any(
        t.get("key") == taint["key"]
        and t.get("effect") in (None, "", taint["effect"])
        and (t.get("operator") == "Exists" or t.get("value") == taint["value"])
        for t in tolerations
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_gpu_runtime_s_pods_can_be_admitted_onto_a_tainted_flavor(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    """Kueue gives a flavor with nodeTaints only to pods tolerating them: CPU jobs never get GPU nodes."""
    runtimes = _runtime_tolerations(stacks[env])
    tainted = {name: spec["nodeTaints"] for name, spec in _flavors(stacks[env]).items() if spec.get("nodeTaints")}
    assert not any("tolerations" in spec for spec in _flavors(stacks[env]).values())
    assert all(not _tolerates(runtimes["torch-distributed"], t) for taints in tainted.values() for t in taints)
    if env == "dev":
        assert set(runtimes) == {"torch-distributed"} and not tainted
    else:
        assert set(tainted) == {"gpu-nodes"}
        assert all(_tolerates(runtimes["torch-distributed-gpu"], t) for t in tainted["gpu-nodes"])


@pytest.mark.parametrize("env", [e for e in ENVIRONMENTS if e != "dev"])
def test_the_gpu_flavor_s_group_scales_from_zero_and_announces_its_gpus(
    stacks: dict[str, dict[str, Any]], env: str
) -> None:
    stack = stacks[env]
    group = _group_for(stack, _flavors(stack)["gpu-nodes"]["nodeLabels"])
    assert group["scaling_config"]["min_size"] == 0
    announced = int(group["tags"][f"{TEMPLATE}/resources/{GPU}"])
    assert announced >= 1
    # Every team's GPU quota fits in what the group can grow to, counted with the announced GPUs per node.
    queues = json.loads(_release(stack, "kueue-queues")["values"][0])["manifests"]
    gpu_quotas = [
        int(resource["nominalQuota"])
        for queue in queues
        if queue["kind"] == "ClusterQueue"
        for group_spec in queue["spec"]["resourceGroups"]
        for flavor in group_spec["flavors"]
        if flavor["name"] == "gpu-nodes"
        for resource in flavor["resources"]
        if resource["name"] == GPU
    ]
    assert gpu_quotas and sum(gpu_quotas) <= group["scaling_config"]["max_size"] * announced
    # The autoscaler discovers the group by its cluster's tags, so it is the one that grows it.
    cluster = json.loads(_release(stack, "cluster-autoscaler")["values"][0])["autoDiscovery"]["clusterName"]
    assert group["tags"]["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert group["tags"][f"k8s.io/cluster-autoscaler/{cluster}"] == "owned"


def test_dev_admits_on_cpu_nodes_only(stacks: dict[str, dict[str, Any]]) -> None:
    """Dev has no GPU group: its only flavor is the CPU nodes, and no queue covers GPUs."""
    stack = stacks["dev"]
    assert set(_flavors(stack)) == {"cpu-nodes"}
    queues = json.loads(_release(stack, "kueue-queues")["values"][0])["manifests"]
    covered = {
        r
        for q in queues
        if q["kind"] == "ClusterQueue"
        for g in q["spec"]["resourceGroups"]
        for r in g["coveredResources"]
    }
    assert covered == {"cpu", "memory"}
