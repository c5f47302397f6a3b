"""Kubeflow in the environments: the rules tying it to EKS and the GPU node group, through the matrix and the
user's overrides, and what each environment's synthesized stack installs for it.

The in-cluster part cannot run here (no API server, no charts offline), so it is checked structurally on the
session's synthesized JSON: the pinned charts and their namespaces, the order Terraform installs them in, Kueue's
flavors and the training runtimes against the node groups in the same JSON, the ClusterQueues against the matrix's
teams, and each team's IAM role against its data prefix. Expected quotas are read from stacks.matrix.MATRIX, so a
matrix edit is followed; expected pins and names are written out, so a change of what is installed is a deliberate
one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.instance_types import NVIDIA_GPU_INSTANCES
from constructs.eks.manifests import chart_digest
from constructs.eks.settings import EksGpuNodeGroupSettings
from constructs.kubeflow.settings import RESERVED_NAMESPACES, KubeflowSettings
from constructs.kubeflow.trainer import RUNTIME_MAX_RESTARTS

from stacks.matrix import MATRIX
from tests.eks.clusters import issuer_host_local, web_identity_trust
from tests.kubeflow import K8S_EFFECT, runtime_pod, tolerates
from tests.support.overrides import rejected, with_overrides
from tests.support.synth_json import ENVIRONMENTS, address, only, output, ref, resources, role_policies

GPU = "nvidia.com/gpu"
GPU_GROUP = "eks/gpu-nodes/group/node-group"
CPU_GROUP = "eks/cpu-nodes/node-group"
GPU_ENVIRONMENTS = tuple(env for env in ENVIRONMENTS if MATRIX[env].eks and MATRIX[env].eks.gpu_node_group)
# The pinned OCI charts: (repository, chart, version, namespace).
TRAINER = ("oci://ghcr.io/kubeflow/charts", "kubeflow-trainer", "2.3.0", "kubeflow-system")
KUEUE = ("oci://registry.k8s.io/kueue/charts", "kueue", "0.19.2", "kueue-system")


def kubeflow(env: str) -> KubeflowSettings:
    settings = MATRIX[env].kubeflow
    assert settings is not None, env
    return settings


def teams_of(env: str) -> list[dict[str, Any]]:
    """The matrix's teams of ``env`` as an override writes them (JSON objects)."""
    return [team.model_dump() for team in kubeflow(env).teams]


def gpu_group(env: str) -> EksGpuNodeGroupSettings:
    eks = MATRIX[env].eks
    assert eks is not None and eks.gpu_node_group is not None, env
    return eks.gpu_node_group


def gpu_capacity(group: EksGpuNodeGroupSettings) -> int:
    """GPUs the group has at its maximum size: its nodes times the GPUs of its instance type."""
    per_node = {NVIDIA_GPU_INSTANCES[t].gpus for t in group.instance_types}
    assert len(per_node) == 1, group.instance_types
    return group.max_size * per_node.pop()


def gpu_team_index(env: str) -> int:
    return next(i for i, team in enumerate(kubeflow(env).teams) if team.gpu_nodes is not None)


# --- the rules, through overrides --------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1])
def test_a_gpu_quota_in_dev_which_has_no_gpu_node_group_is_rejected(index) -> None:
    assert MATRIX["dev"].eks.gpu_node_group is None
    teams = teams_of("dev")
    teams[index]["gpu_nodes"] = {"gpus": 1, "cpu": 3, "memory_gib": 14}
    error = rejected({"dev": {"kubeflow.teams": teams}}, "dev")
    assert error.field == f"kubeflow.teams[{index}].gpu_nodes"
    assert error.value == teams[index]["gpu_nodes"]
    assert error.allowed.startswith(f"None for team {teams[index]['name']!r}")
    assert "no GPU node group (eks.gpu_node_group)" in error.allowed


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_a_gpu_quota_above_the_gpu_node_groups_capacity_is_rejected_until_the_group_grows(env) -> None:
    group = gpu_group(env)
    capacity = gpu_capacity(group)
    index = gpu_team_index(env)
    teams = teams_of(env)
    teams[index]["gpu_nodes"]["gpus"] = capacity + 1
    error = rejected({env: {"kubeflow.teams": teams}}, env)
    assert (error.field, error.value) == (f"kubeflow.teams[{index}].gpu_nodes.gpus", capacity + 1)
    assert error.allowed.startswith(f"at most {capacity} for team {teams[index]['name']!r}")
    assert f"({group.max_size} nodes of " in error.allowed and "raise eks.gpu_node_group.max_size" in error.allowed
    # The same quota fits once the group may grow, given in the same override (the rules run after both): by
    # enough nodes for every team's GPUs, as the quotas together must fit as well.
    per_node = capacity // group.max_size
    total = sum(t["gpu_nodes"]["gpus"] for t in teams if t["gpu_nodes"] is not None)
    max_size = -(-total // per_node)
    grown = with_overrides({env: {"kubeflow.teams": teams, "eks.gpu_node_group.max_size": max_size}})
    assert grown[env].kubeflow.teams[index].gpu_nodes.gpus == capacity + 1
    assert grown[env].eks.gpu_node_group.max_size == max_size > group.max_size
    # At the capacity itself, the team alone on the GPUs, the quota fits the group as it is.
    teams[index]["gpu_nodes"]["gpus"] = capacity
    alone = [dict(t, gpu_nodes=None) if i != index else t for i, t in enumerate(teams)]
    assert with_overrides({env: {"kubeflow.teams": alone}})[env].kubeflow.teams[index].gpu_nodes.gpus == capacity


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_gpu_quotas_that_together_exceed_the_gpu_node_group_are_rejected(env) -> None:
    """Nominal quotas are guarantees: each may fit the group while together they promise GPUs it cannot hold."""
    capacity = gpu_capacity(gpu_group(env))
    teams = teams_of(env)
    gpu_teams = [t for t in teams if t["gpu_nodes"] is not None]
    assert len(gpu_teams) >= 2, "needs two GPU teams to overcommit"
    for team in gpu_teams:
        team["gpu_nodes"]["gpus"] = capacity
    error = rejected({env: {"kubeflow.teams": teams}}, env)
    assert (error.field, error.value) == ("kubeflow.teams", {f"team {t['name']}": capacity for t in gpu_teams})
    assert error.allowed.startswith(f"GPU quotas and models' GPUs (at max_replicas) adding up to at most {capacity} ")
    # One GPU over, by any team, is enough to be refused; the matrix's own quotas pass (the matrix loads).
    teams = teams_of(env)
    spare = capacity - sum(t["gpu_nodes"]["gpus"] for t in teams if t["gpu_nodes"] is not None)
    teams[gpu_team_index(env)]["gpu_nodes"]["gpus"] += spare + 1
    assert rejected({env: {"kubeflow.teams": teams}}, env).field == "kubeflow.teams"


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_shrinking_the_gpu_node_group_below_a_teams_quota_is_rejected(env) -> None:
    index = gpu_team_index(env)
    gpus = kubeflow(env).teams[index].gpu_nodes.gpus
    per_node = gpu_capacity(gpu_group(env)) // gpu_group(env).max_size
    smaller = (gpus - 1) // per_node  # the largest group that holds fewer GPUs than the team's quota
    assert smaller >= 1, "the matrix's quota is too small to test shrinking below it"
    error = rejected({env: {"eks.gpu_node_group.max_size": smaller}}, env)
    assert error.field == f"kubeflow.teams[{index}].gpu_nodes.gpus"
    assert f"at most {smaller * per_node} " in error.allowed


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_removing_the_gpu_node_group_under_gpu_teams_is_rejected(env) -> None:
    if MATRIX[env].protected:
        # A protected environment keeps its sections: the lock is reported before the Kubeflow rule.
        error = rejected({env: {"eks.gpu_node_group": None}}, env)
        assert error.field == "eks.gpu_node_group"
        assert "the section stacks/matrix.py configures" in error.allowed
        return
    error = rejected({env: {"eks.gpu_node_group": None}}, env)
    assert error.field == f"kubeflow.teams[{gpu_team_index(env)}].gpu_nodes"
    assert "no GPU node group" in error.allowed


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_kubeflow_without_eks_is_rejected_naming_eks(env) -> None:
    # MLflow needs EKS as well and its rule runs first, so it goes too: the error left is Kubeflow's.
    error = rejected({env: {"eks": None, "mlflow": None}}, env)
    assert (error.field, error.value) == ("eks", None)
    assert "an EKS cluster while kubeflow is set" in error.allowed and "set kubeflow to None" in error.allowed
    # Without Kubeflow as well, the environment is valid.
    configs = with_overrides({env: {"eks": None, "mlflow": None, "kubeflow": None}})
    assert (configs[env].eks, configs[env].kubeflow) == (None, None)


def test_production_keeps_its_kubeflow_section() -> None:
    assert MATRIX["prod"].protected
    error = rejected({"prod": {"kubeflow": None}}, "prod")
    assert error.field == "kubeflow"
    assert "the section stacks/matrix.py configures" in error.allowed


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Vision", "a Kubernetes namespace name of 1-20 characters"),
        ("vision-", "ending with a letter or digit"),
        ("a-team-name-over-twenty", "1-20 characters"),
        ("kube-system", "'kube-system'"),
        ("mlflow", "'mlflow'"),
    ],
)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_team_name_that_is_not_a_free_namespace_is_rejected_through_an_override(env, name, fragment) -> None:
    teams = teams_of(env)
    last = len(teams) - 1
    teams[last]["name"] = name
    error = rejected({env: {"kubeflow.teams": teams}}, env)
    assert (error.field, error.value) == (f"kubeflow.teams[{last}].name", name)
    assert fragment in error.allowed


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"kubeflow.wait_for_pods_ready_minutes": 200}, "kubeflow.wait_for_pods_ready_minutes", "from 5 to 120"),
        ({"kubeflow.queueing_strategy": "FIFO"}, "kubeflow.queueing_strategy", "'BestEffortFIFO', 'StrictFIFO'"),
        ({"kubeflow.teams": []}, "kubeflow.teams", "1 to 50 items"),
        ({"kubeflow.gpus": 2}, "kubeflow.gpus", "one of 'teams'"),
    ],
)
def test_bad_kubeflow_overrides_are_rejected_naming_the_field(changes, field, fragment) -> None:
    error = rejected({"staging": changes}, "staging")
    assert error.field == field
    assert fragment in error.allowed


ADMIN = "arn:aws:iam::123456789012:role/PlatformAdmins"
MEMBER = "arn:aws:iam::123456789012:role/ml-alice"


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_a_cluster_admin_listed_as_a_team_member_is_rejected_naming_its_position(env) -> None:
    """EKS keeps one access entry per role: an admin's cluster-wide entry and a member's namespaced one would
    collide, and the admin already works in every namespace."""
    teams = teams_of(env)
    last = len(teams) - 1
    teams[last]["member_role_arns"] = [MEMBER, ADMIN]
    error = rejected({env: {"kubeflow.teams": teams, "eks.admin_role_arns": [ADMIN]}}, env)
    assert (error.field, error.value) == (f"kubeflow.teams[{last}].member_role_arns[1]", ADMIN)
    assert "not in eks.admin_role_arns" in error.allowed
    # The member alone passes, next to the same admin, and becomes the team's member.
    teams[last]["member_role_arns"] = [MEMBER]
    configs = with_overrides({env: {"kubeflow.teams": teams, "eks.admin_role_arns": [ADMIN]}})
    assert configs[env].kubeflow.members == {MEMBER: (teams[last]["name"],)}
    assert configs[env].eks.admin_role_arns == (ADMIN,)


def test_a_wildcard_member_is_rejected_through_an_override() -> None:
    teams = teams_of("staging")
    teams[0]["member_role_arns"] = ["arn:aws:iam::123456789012:role/*"]
    error = rejected({"staging": {"kubeflow.teams": teams}}, "staging")
    assert (error.field, error.value) == ("kubeflow.teams[0].member_role_arns[0]", "arn:aws:iam::123456789012:role/*")


def test_overrides_rejecting_duplicate_names_and_text_counts() -> None:
    teams = teams_of("staging")
    teams[1]["name"] = teams[0]["name"]
    error = rejected({"staging": {"kubeflow.teams": teams}}, "staging")
    assert error.field == "kubeflow.teams" and "each team name at most once" in error.allowed
    teams = teams_of("staging")
    teams[0]["cpu_nodes"]["cpu"] = "4"  # JSON text is not a count
    error = rejected({"staging": {"kubeflow.teams": teams}}, "staging")
    assert (error.field, error.value) == ("kubeflow.teams[0].cpu_nodes.cpu", "4")


def test_overrides_within_the_rules_apply() -> None:
    teams = teams_of("dev")
    teams.append({"name": "speech", "cpu_nodes": {"cpu": 1, "memory_gib": 2}})
    configs = with_overrides(
        {
            "dev": {"kubeflow.teams": teams},
            "staging": {"kubeflow.queueing_strategy": "StrictFIFO", "kubeflow.wait_for_pods_ready_minutes": 30},
        }
    )
    assert [t.name for t in configs["dev"].kubeflow.teams] == [*(t.name for t in kubeflow("dev").teams), "speech"]
    assert configs["staging"].kubeflow.queueing_strategy == "StrictFIFO"
    assert configs["staging"].kubeflow.wait_for_pods_ready_minutes == 30
    assert configs["staging"].kubeflow.teams == kubeflow("staging").teams


# --- the matrix itself -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_matrixs_gpu_quotas_fit_their_environments_gpu_node_group(env) -> None:
    settings = kubeflow(env)
    group = MATRIX[env].eks.gpu_node_group
    if group is None:
        # dev: CPU quotas only, a team rehearses its jobs on CPU nodes.
        assert settings.gpu_teams == () and env not in GPU_ENVIRONMENTS
        return
    capacity = gpu_capacity(group)
    assert settings.gpu_teams, f"{env} has GPU nodes but no team may use them"
    for team in settings.gpu_teams:
        assert team.gpu_nodes.gpus <= capacity, team.name
    # Guaranteed shares: what the teams are promised at once, the group can hold at once.
    assert sum(t.gpu_nodes.gpus for t in settings.gpu_teams) <= capacity


def test_dev_has_no_gpu_quota() -> None:
    assert "dev" not in GPU_ENVIRONMENTS
    assert [t.gpu_nodes for t in kubeflow("dev").teams] == [None] * len(kubeflow("dev").teams)


# --- the synthesized stacks: releases and their order -------------------------------------------------------


def kubeflow_releases(stack: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The Helm releases of the Kubeflow feature by release name: (address, body)."""
    return {
        body["name"]: (f"helm_release.{name}", body)
        for name, body in resources(stack, "helm_release").items()
        if "/kubeflow/" in body["//"]["metadata"]["path"]
    }


def values_of(body: dict[str, Any]) -> dict[str, Any]:
    (values,) = body["values"]
    return json.loads(values)


def namespace_address(stack: dict[str, Any], namespace: str) -> str:
    (name,) = [n for n, b in resources(stack, "kubernetes_namespace_v1").items() if b["metadata"]["name"] == namespace]
    return f"kubernetes_namespace_v1.{name}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_releases_are_the_pinned_charts_in_their_namespaces(stacks, env) -> None:
    releases = kubeflow_releases(stacks[env])
    teams = [t.name for t in kubeflow(env).teams]
    assert set(releases) == {"kubeflow-trainer", "kubeflow-runtimes", "kueue", "kueue-queues"} | {
        f"{t}-queue" for t in teams
    }
    for name, pinned in (("kubeflow-trainer", TRAINER), ("kueue", KUEUE)):
        body = releases[name][1]
        assert (body["repository"], body["chart"], body["version"], body["namespace"]) == pinned
        assert body["create_namespace"] is True
    # The custom resources come from the repository's own chart, shipped as an asset: nothing to pull.
    for name, namespace in (
        ("kubeflow-runtimes", TRAINER[3]),
        ("kueue-queues", KUEUE[3]),
        *((f"{t}-queue", t) for t in teams),
    ):
        body = releases[name][1]
        assert ("repository" in body, "version" in body, body["namespace"]) == (False, False, namespace), name
        assert body["chart"].startswith("assets/") and body["chart"].endswith(chart_digest()), name
    for _, body in releases.values():
        # A failed install is rolled back, and the next release waits for this one's pods.
        assert (body["atomic"], body["wait"]) == (True, True), body["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_releases_install_in_dependency_order(stacks, env) -> None:
    stack = stacks[env]
    releases = kubeflow_releases(stack)
    trainer, _ = releases["kubeflow-trainer"]
    kueue, _ = releases["kueue"]
    queues, _ = releases["kueue-queues"]
    # Runtimes need the Trainer's CRDs and webhook; Kueue's TrainJob integration needs the Trainer's CRDs.
    assert releases["kubeflow-runtimes"][1]["depends_on"] == [trainer]
    assert trainer in releases["kueue"][1]["depends_on"]
    # Flavors and ClusterQueues need Kueue's CRDs and webhooks.
    assert releases["kueue-queues"][1]["depends_on"] == [kueue]
    namespaces = resources(stack, "kubernetes_namespace_v1")
    for team in kubeflow(env).teams:
        # The namespace waits for the flavors and ClusterQueues, so on destroy it goes (with its TrainJobs) while
        # Kueue and the Trainer still run; its LocalQueue waits for the namespace alone, so for the queues too.
        namespace = namespace_address(stack, team.name)
        assert queues in namespaces[namespace.split(".", 1)[1]]["depends_on"], team.name
        assert releases[f"{team.name}-queue"][1]["depends_on"] == [namespace], team.name
    # The controllers run on the CPU nodes, so the charts wait for them.
    cpu_nodes = address(stack, "aws_eks_node_group", CPU_GROUP)
    for name in ("kubeflow-trainer", "kueue"):
        assert cpu_nodes in releases[name][1]["depends_on"], name
    # The Trainer comes first: it waits for nothing of Kubeflow's own.
    assert not set(releases["kubeflow-trainer"][1]["depends_on"]) & {where for where, _ in releases.values()}


# --- Kueue: flavors and ClusterQueues ----------------------------------------------------------------------


def queue_objects(stack: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of ``kind`` in the ``kueue-queues`` release, by name."""
    manifests = values_of(kubeflow_releases(stack)["kueue-queues"][1])["manifests"]
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def node_group(stack: dict[str, Any], suffix: str) -> dict[str, Any]:
    return only(stack, "aws_eks_node_group", suffix)


def test_dev_has_no_gpu_flavor_and_no_gpu_in_any_cluster_queue(stacks) -> None:
    stack = stacks["dev"]
    assert set(queue_objects(stack, "ResourceFlavor")) == {"cpu-nodes"}
    cluster_queues = queue_objects(stack, "ClusterQueue")
    assert set(cluster_queues) == {t.name for t in kubeflow("dev").teams}
    # Not covering the GPU resource at all means Kueue admits no job that asks for one.
    assert GPU not in json.dumps(cluster_queues)
    assert GPU not in json.dumps(values_of(kubeflow_releases(stack)["kueue-queues"][1]))


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_the_gpu_flavor_selects_the_gpu_node_group_and_declares_its_taint(stacks, env) -> None:
    stack = stacks[env]
    flavors = queue_objects(stack, "ResourceFlavor")
    assert set(flavors) == {"cpu-nodes", "gpu-nodes"}
    gpu, cpu = node_group(stack, GPU_GROUP), node_group(stack, CPU_GROUP)
    assert gpu["taint"], "the GPU node group is tainted, so only pods tolerating it land there"
    spec = flavors["gpu-nodes"]["spec"]
    assert spec["nodeLabels"] == gpu["labels"]
    # Declared, not handed out: Kueue gives the flavor only to pods already tolerating the taint.
    assert spec["nodeTaints"] == [
        {"key": t["key"], "value": t["value"], "effect": K8S_EFFECT[t["effect"]]} for t in gpu["taint"]
    ]
    assert [name for name, flavor in flavors.items() if "tolerations" in flavor["spec"]] == []
    # The CPU flavor selects the CPU nodes, which no GPU node matches, and declares no taint.
    assert flavors["cpu-nodes"]["spec"] == {"nodeLabels": cpu["labels"]}
    assert not set(cpu["labels"].items()) <= set(gpu["labels"].items())


def runtimes_of(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ClusterTrainingRuntimes of the ``kubeflow-runtimes`` release, by name."""
    return {m["metadata"]["name"]: m for m in values_of(kubeflow_releases(stack)["kubeflow-runtimes"][1])["manifests"]}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_gpu_runtime_tolerating_the_gpu_taint_exists_only_with_gpu_nodes(stacks, env) -> None:
    stack = stacks[env]
    runtimes = runtimes_of(stack)
    failure_policy = {"maxRestarts": RUNTIME_MAX_RESTARTS, "restartStrategy": "Recreate"}
    for runtime in runtimes.values():
        assert runtime["spec"]["template"]["spec"]["failurePolicy"] == failure_policy, runtime["metadata"]["name"]
    assert "tolerations" not in runtime_pod(runtimes["torch-distributed"])
    if env not in GPU_ENVIRONMENTS:
        assert list(runtimes) == ["torch-distributed"]
        return
    assert sorted(runtimes) == ["torch-distributed", "torch-distributed-gpu"]
    taints = node_group(stack, GPU_GROUP)["taint"]
    assert runtime_pod(runtimes["torch-distributed-gpu"])["tolerations"] == [
        {"key": t["key"], "operator": "Equal", "value": t["value"], "effect": K8S_EFFECT[t["effect"]]} for t in taints
    ]
    # Tied to the flavor Kueue admits onto: the GPU runtime's pods tolerate all of its taints (the CPU runtime's
    # tolerate nothing, above), so only GPU jobs are admitted onto GPU nodes.
    declared = queue_objects(stack, "ResourceFlavor")["gpu-nodes"]["spec"]["nodeTaints"]
    assert declared
    assert [
        t for t in declared if not tolerates(runtime_pod(runtimes["torch-distributed-gpu"])["tolerations"], t)
    ] == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_queues_carry_the_matrixs_quotas(stacks, env) -> None:
    settings = kubeflow(env)
    cluster_queues = queue_objects(stacks[env], "ClusterQueue")
    assert set(cluster_queues) == {t.name for t in settings.teams}
    for team in settings.teams:
        spec = cluster_queues[team.name]["spec"]
        # Only the team's own namespace submits to it, and borrowing happens within the team's cohort.
        assert spec["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": team.name}}
        assert spec.get("cohortName") == team.cohort
        assert spec["queueingStrategy"] == settings.queueing_strategy
        (group,) = spec["resourceGroups"]
        quotas = {f["name"]: {r["name"]: r["nominalQuota"] for r in f["resources"]} for f in group["flavors"]}
        expected = {"cpu-nodes": {"cpu": str(team.cpu_nodes.cpu), "memory": f"{team.cpu_nodes.memory_gib}Gi"}}
        if team.gpu_nodes is not None:
            # CPU nodes first with no GPU there, so a GPU pod moves on to the GPU flavor.
            expected["cpu-nodes"][GPU] = "0"
            gpu = team.gpu_nodes
            expected["gpu-nodes"] = {"cpu": str(gpu.cpu), "memory": f"{gpu.memory_gib}Gi", GPU: str(gpu.gpus)}
        assert quotas == expected, team.name
        assert [f["name"] for f in group["flavors"]] == list(expected)
        # Kueue requires every flavor to list exactly the covered resources, in their order.
        for flavor in group["flavors"]:
            assert [r["name"] for r in flavor["resources"]] == group["coveredResources"], team.name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_team_namespace_has_its_default_local_queue(stacks, env) -> None:
    releases = kubeflow_releases(stacks[env])
    for team in kubeflow(env).teams:
        (queue,) = values_of(releases[f"{team.name}-queue"][1])["manifests"]
        assert (queue["kind"], queue["metadata"], queue["spec"]) == (
            "LocalQueue",
            {"name": "default", "namespace": team.name},
            {"clusterQueue": team.name},
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kueue_waits_for_pods_ready_as_long_as_the_matrix_says(stacks, env) -> None:
    values = values_of(kubeflow_releases(stacks[env])["kueue"][1])
    configuration = json.loads(values["managerConfig"]["controllerManagerConfigYaml"])
    minutes = f"{kubeflow(env).wait_for_pods_ready_minutes}m"
    assert (configuration["waitForPodsReady"]["timeout"], configuration["waitForPodsReady"]["recoveryTimeout"]) == (
        minutes,
        minutes,
    )
    assert "trainer.kubeflow.org/trainjob" in configuration["integrations"]["frameworks"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_team_resource_quota_caps_gpus_at_what_the_cohort_can_admit(stacks, env) -> None:
    teams = kubeflow(env).teams
    quotas = {q["metadata"]["namespace"]: q for q in resources(stacks[env], "kubernetes_resource_quota_v1").values()}
    for team in teams:
        cohort = [t for t in teams if t.cohort is not None and t.cohort == team.cohort] or [team]
        gpus = sum(t.gpu_nodes.gpus for t in cohort if t.gpu_nodes) if team.gpu_nodes else 0
        hard = quotas[team.name]["spec"]["hard"]
        assert (hard[f"requests.{GPU}"], hard["requests.storage"]) == (str(gpus), f"{team.storage_gib}Gi"), team.name


# --- identity, namespaces and outputs ---------------------------------------------------------------------


def role_suffix(team: str) -> str:
    return f"kubeflow/team-{team}/training-irsa/role"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_team_role_reaches_only_its_own_prefix(stacks, env) -> None:
    stack = stacks[env]
    teams = [t.name for t in kubeflow(env).teams]
    training_data = ref(stack, "aws_s3_bucket", "storage/training-data/bucket", "arn")
    for team in teams:
        prefix = kubeflow(env).teams[teams.index(team)].data_prefix
        assert prefix == f"teams/{team}/"
        (document,) = role_policies(stack, role_suffix(team)).values()
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            targets = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert statement["Effect"] == "Allow" and "*" not in targets, statement["Sid"]
            if actions == ["s3:ListBucket"]:
                assert statement["Condition"]["StringLike"]["s3:prefix"] == [f"{prefix}*"], statement["Sid"]
            elif any(a.startswith("kms:") for a in actions):
                assert statement["Condition"] == {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
            elif actions != ["s3:GetBucketLocation"]:
                # Object actions: on the team's prefix of a bucket, never on a whole bucket.
                assert all(target.endswith(f"/{prefix}*") for target in targets), statement["Sid"]
                if any(a.startswith(("s3:Put", "s3:Delete")) for a in actions):
                    assert not any(target.startswith(training_data) for target in targets), "training data is read-only"
        text = json.dumps(document)
        assert [other for other in teams if other != team and f"teams/{other}/" in text] == []
        # Only the team's 'training' service account, through the cluster's OIDC provider, assumes the role.
        role = only(stack, "aws_iam_role", role_suffix(team))
        assert json.loads(role["assume_role_policy"]) == web_identity_trust(
            ref(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn"),
            f"${{local.{issuer_host_local(stack)}}}",
            team,
            "training",
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_output_lists_each_teams_role(stacks, env) -> None:
    stack = stacks[env]
    value = output(stack, "kubeflow_team_role_arns")["value"]
    assert value == {t.name: ref(stack, "aws_iam_role", role_suffix(t.name), "arn") for t in kubeflow(env).teams}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_namespace_the_platform_uses_besides_the_teams_is_reserved(stacks, env) -> None:
    """A team named after one of these would share (and on destroy delete) the platform's objects there."""
    stack = stacks[env]
    used = {b["namespace"] for b in resources(stack, "helm_release").values()}
    for kind, bodies in stack["resource"].items():
        if kind.startswith("kubernetes_"):
            for body in bodies.values():
                metadata = body.get("metadata") or {}
                used.add(metadata.get("name") if kind == "kubernetes_namespace_v1" else metadata.get("namespace"))
    teams = {t.name for t in kubeflow(env).teams}
    assert teams <= used
    assert used - teams - {None} <= set(RESERVED_NAMESPACES)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_kueue_manages_jobs_in_the_team_namespaces_and_nowhere_else(stacks, env) -> None:
    """Kueue's Job and JobSet webhooks fail closed: outside the teams' namespaces they must not apply at all."""
    stack = stacks[env]
    (kueue,) = [body for body in resources(stack, "helm_release").values() if body["name"] == "kueue"]
    config = json.loads(values_of(kueue)["managerConfig"]["controllerManagerConfigYaml"])
    (expression,) = config["managedJobsNamespaceSelector"]["matchExpressions"]
    assert expression["operator"] == "Exists"
    selected = {
        body["metadata"]["name"]
        for body in resources(stack, "kubernetes_namespace_v1").values()
        if expression["key"] in body["metadata"].get("labels", {})
    }
    # Exactly the team namespaces: MLflow's namespace (and those Helm creates, which carry no labels of ours) not.
    assert selected == {team["name"] for team in teams_of(env)}
