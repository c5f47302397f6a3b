"""An ML team's namespace: its quota and defaults, its IAM identity for its data, its LocalQueue and MLflow address,
and its people: their EKS access entries (AWS side) and the RoleBinding that lets them submit jobs (cluster side).

The expected ceilings are added up here from the quotas the test's settings hold (tests/kubeflow/__init__.py),
not read back from the product's helper; the IAM checks read every statement of each team's inline policy and
hold it to the team's own prefix of each bucket, so a grant that widens to a whole bucket or to another team's
data fails here. The members' access is checked from both ends: each role's entry and its namespace-scoped edit
policy, and in each namespace the group bound to Kueue's batch user role, which must be one of exactly the entries
scoped to that namespace.
"""

from __future__ import annotations

from typing import Any

import pytest
from constructs.kubeflow.kueue import BATCH_USER_ROLE, KUEUE_RELEASE

from tests.eks.clusters import issuer_host_local, web_identity_trust
from tests.kubeflow import (
    ALICE,
    BOB,
    GPU_SETTINGS,
    MEMBER_SETTINGS,
    MLFLOW_URI,
    TinyPlatform,
    address_of,
    manifests_of,
    releases,
)
from tests.support.synth_json import address, only, policy, ref, resources, role_policies

TEAMS = ("vision", "nlp", "tabular")
# The ceiling each namespace's ResourceQuota must hold, added up by hand from the settings:
# vision and nlp share the cohort "research": cores 4 + 7 + 2 + 3, GiB 16 + 28 + 8 + 12, GPUs 2 + 1;
# tabular has no cohort and no GPUs: its own 3 cores and 10 GiB.
CEILINGS = {
    "vision": ("16", "64Gi", "3", "500Gi"),
    "nlp": ("16", "64Gi", "3", "200Gi"),
    "tabular": ("3", "10Gi", "0", "200Gi"),
}
WRITES = {"s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
# MEMBER_SETTINGS' people, written out: each role's teams (so its namespaces and its groups).
MEMBERS = {ALICE: {"vision", "nlp"}, BOB: {"vision"}}
RBAC = "rbac.authorization.k8s.io"


def platform_with(settings: Any = GPU_SETTINGS, **overrides: Any) -> dict[str, Any]:
    platform = TinyPlatform()
    platform.training(settings, **overrides)
    return platform.synth()


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    """The teams of GPU_SETTINGS on a cluster with GPU nodes and MLflow."""
    return platform_with(mlflow_tracking_uri=MLFLOW_URI)


@pytest.fixture(scope="module")
def aws_only() -> dict[str, Any]:
    """The same teams with in_cluster_resources False: what a deploy from outside the network creates."""
    return platform_with(mlflow_tracking_uri=MLFLOW_URI, in_cluster_resources=False)


@pytest.fixture(scope="module")
def with_members() -> dict[str, Any]:
    """Teams with people's roles: ALICE in vision and nlp, BOB in vision, nobody in tabular."""
    return platform_with(MEMBER_SETTINGS)


@pytest.fixture(scope="module")
def members_aws_only() -> dict[str, Any]:
    return platform_with(MEMBER_SETTINGS, in_cluster_resources=False)


def in_namespace(stack: dict[str, Any], resource_type: str, namespace: str) -> list[dict[str, Any]]:
    return [r for r in resources(stack, resource_type).values() if r["metadata"].get("namespace") == namespace]


def listed(value: str | list[str]) -> list[str]:
    return value if isinstance(value, list) else [value]


def statements(stack: dict[str, Any], name: str) -> list[dict[str, Any]]:
    policies = role_policies(stack, f"kubeflow/team-{name}/training-irsa/role")
    assert list(policies) == ["permissions"]
    return policies["permissions"]["Statement"]


def bucket_arn(stack: dict[str, Any], purpose: str) -> str:
    return ref(stack, "aws_s3_bucket", f"{purpose}/bucket", "arn")


# --- the namespace and what limits it --------------------------------------------------------------------


@pytest.mark.parametrize("name", TEAMS)
def test_each_team_gets_a_labelled_namespace_with_pod_security(stack, name) -> None:
    (namespace,) = [n for n in resources(stack, "kubernetes_namespace_v1").values() if n["metadata"]["name"] == name]
    assert namespace["metadata"]["labels"] == {
        "ml-platform/team": name,
        # Training images often run as root: baseline is enforced, restricted only reported.
        "pod-security.kubernetes.io/enforce": "baseline",
        "pod-security.kubernetes.io/warn": "restricted",
    }
    assert len(resources(stack, "kubernetes_namespace_v1")) == len(TEAMS)


@pytest.mark.parametrize("name", TEAMS)
def test_the_resource_quota_is_what_kueue_could_admit_at_most(stack, name) -> None:
    (quota,) = in_namespace(stack, "kubernetes_resource_quota_v1", name)
    cpu, memory, gpus, storage = CEILINGS[name]
    assert quota["spec"]["hard"] == {
        "requests.cpu": cpu,
        "requests.memory": memory,
        "requests.nvidia.com/gpu": gpus,
        "requests.storage": storage,
        # No load balancer or node port: a training namespace serves nothing to the network.
        "services.loadbalancers": "0",
        "services.nodeports": "0",
        # Nor an Ingress: the load balancer controller would open an ALB for it.
        "count/ingresses.networking.k8s.io": "0",
    }
    namespace = address(stack, "kubernetes_namespace_v1", f"team-{name}/namespace")
    assert quota["depends_on"] == [namespace]


@pytest.mark.parametrize("name", TEAMS)
def test_the_namespace_comes_after_the_queues_so_it_is_destroyed_before_kueue(stack, name) -> None:
    namespace = only(stack, "kubernetes_namespace_v1", f"team-{name}/namespace")
    # Destroy runs backwards: the namespace and its TrainJobs go while Kueue and the Trainer still run and can
    # clear their finalizers, and while the runtimes exist (a runtime in use keeps a finalizer until its TrainJobs
    # are gone, so uninstalling the runtimes first would hang). The deployer's cluster access first, as for
    # anything in the cluster.
    assert sorted(namespace["depends_on"]) == sorted(
        [
            address_of(stack, "helm_release", "kueue-queues"),
            address_of(stack, "helm_release", "kubeflow-runtimes"),
            address(stack, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin"),
        ]
    )


@pytest.mark.parametrize("name", TEAMS)
def test_the_limit_range_gives_every_quota_counted_resource_a_default_request(stack, name) -> None:
    (quota,) = in_namespace(stack, "kubernetes_resource_quota_v1", name)
    (limits,) = in_namespace(stack, "kubernetes_limit_range_v1", name)
    (container,) = limits["spec"]["limit"]
    assert container["type"] == "Container"
    # A quota on requests.cpu and requests.memory rejects any pod that names none; the defaults fill them in.
    counted = {
        key.removeprefix("requests.") for key in quota["spec"]["hard"] if key in ("requests.cpu", "requests.memory")
    }
    assert set(container["default_request"]) == counted == {"cpu", "memory"}
    # No default limit: one below a container's own request would make the pod invalid.
    assert "default" not in container and "max" not in container


# --- the team's identity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TEAMS)
def test_the_training_account_assumes_the_teams_role_and_nothing_else_does(stack, name) -> None:
    role = only(stack, "aws_iam_role", f"kubeflow/team-{name}/training-irsa/role")
    assert role["name"] == f"p-test-team-{name}"
    provider = ref(stack, "aws_iam_openid_connect_provider", "cluster/oidc-provider", "arn")
    issuer = f"${{local.{issuer_host_local(stack)}}}"
    assert policy(role["assume_role_policy"]) == web_identity_trust(provider, issuer, name, "training")
    (account,) = in_namespace(stack, "kubernetes_service_account_v1", name)
    assert account["metadata"]["name"] == "training"
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": ref(stack, "aws_iam_role", f"kubeflow/team-{name}/training-irsa/role", "arn")
    }
    # Created in the namespace only once it exists.
    assert address(stack, "kubernetes_namespace_v1", f"team-{name}/namespace") in account["depends_on"]


@pytest.mark.parametrize("name", TEAMS)
def test_the_role_reaches_only_the_teams_prefix_of_each_bucket(stack, name) -> None:
    found = statements(stack, name)
    arns = {purpose: bucket_arn(stack, purpose) for purpose in ("training-data", "checkpoints", "model-artifacts")}
    s3 = [s for s in found if any(a.startswith("s3:") for a in listed(s["Action"]))]
    assert s3
    for statement in s3:
        for resource in listed(statement["Resource"]):
            assert resource != "*", statement["Sid"]
            if resource in arns.values():
                continue  # the bucket itself, for listing and locating it
            # Objects: the team's prefix of one of the three buckets, nothing wider.
            assert any(resource == f"{arn}/teams/{name}/*" for arn in arns.values()), (statement["Sid"], resource)
        if "s3:ListBucket" in listed(statement["Action"]):
            assert statement["Condition"] == {"StringLike": {"s3:prefix": [f"teams/{name}/*"]}}
    others = [other for other in TEAMS if other != name]
    text = str(found)
    assert not [other for other in others if f"teams/{other}/" in text]


@pytest.mark.parametrize("name", TEAMS)
def test_training_data_is_read_only_while_checkpoints_and_artifacts_are_writable(stack, name) -> None:
    found = statements(stack, name)

    def actions_on(purpose: str) -> set[str]:
        arn = bucket_arn(stack, purpose)
        return {
            action
            for s in found
            for action in listed(s["Action"])
            if any(r == arn or r.startswith(f"{arn}/") for r in listed(s.get("Resource", [])))
        }

    assert "s3:GetObject" in actions_on("training-data")
    assert not actions_on("training-data") & WRITES
    for purpose in ("checkpoints", "model-artifacts"):
        assert {"s3:GetObject", "s3:PutObject"} <= actions_on(purpose)
    # The buckets' key, through S3 only: decrypt for all three, encrypt (GenerateDataKey) for the writable two.
    kms = [s for s in found if any(a.startswith("kms:") for a in listed(s["Action"]))]
    assert [s["Sid"] for s in kms] == [
        "TrainingDataUseBucketKey",
        "CheckpointsUseBucketKey",
        "ModelArtifactsUseBucketKey",
    ]
    for statement in kms:
        assert statement["Resource"] == ref(stack, "aws_kms_key", "key", "arn")
        assert statement["Condition"] == {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}}
    assert [listed(s["Action"]) for s in kms] == [
        ["kms:Decrypt"],
        ["kms:Decrypt", "kms:GenerateDataKey"],
        ["kms:Decrypt", "kms:GenerateDataKey"],
    ]
    # IAM refuses a policy whose statement ids repeat: each bucket's grant carries its purpose in front.
    sids = [s["Sid"] for s in found]
    assert len(sids) == len(set(sids))


# --- the queue and the MLflow address -----------------------------------------------------------------------


@pytest.mark.parametrize("name", TEAMS)
def test_the_local_queue_points_at_the_teams_cluster_queue_once_both_exist(stack, name) -> None:
    release = releases(stack)[f"{name}-queue"]
    assert release["namespace"] == name
    assert manifests_of(release) == [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            # "default" also receives the namespace's jobs that name no queue.
            "metadata": {"name": "default", "namespace": name},
            "spec": {"clusterQueue": name},
        }
    ]
    # The namespace alone: the ClusterQueue's release comes before it through the namespace.
    assert release["depends_on"] == [address(stack, "kubernetes_namespace_v1", f"team-{name}/namespace")]
    # The ClusterQueue it names exists and admits jobs from exactly this namespace.
    (queue,) = [m for m in manifests_of(releases(stack)["kueue-queues"]) if m["metadata"]["name"] == name]
    assert queue["kind"] == "ClusterQueue"
    assert queue["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": name}}


@pytest.mark.parametrize("name", TEAMS)
def test_each_namespace_learns_the_mlflow_address(stack, name) -> None:
    (config,) = in_namespace(stack, "kubernetes_config_map_v1", name)
    assert config["metadata"]["name"] == "mlflow"
    assert config["data"] == {"MLFLOW_TRACKING_URI": MLFLOW_URI}
    assert address(stack, "kubernetes_namespace_v1", f"team-{name}/namespace") in config["depends_on"]


def test_without_mlflow_there_is_no_config_map() -> None:
    stack = platform_with()
    assert resources(stack, "kubernetes_config_map_v1") == {}
    # Everything else of the teams is still there.
    assert len(resources(stack, "kubernetes_namespace_v1")) == len(TEAMS)


# --- only the AWS side ---------------------------------------------------------------------------------------


def test_without_in_cluster_resources_only_the_team_roles_are_created(aws_only) -> None:
    kinds = set(aws_only["resource"])
    assert "helm_release" not in kinds
    assert not [kind for kind in kinds if kind.startswith("kubernetes_")]
    roles = {r["name"] for r in resources(aws_only, "aws_iam_role").values()}
    assert {f"p-test-team-{name}" for name in TEAMS} <= roles
    for name in TEAMS:
        assert statements(aws_only, name)


def test_a_later_deploy_from_inside_changes_nothing_on_the_aws_side(stack, aws_only) -> None:
    # Same construct paths, same IAM: the in-cluster deploy only adds Kubernetes and Helm resources.
    for kind in ("aws_iam_role", "aws_iam_role_policy"):
        assert {k: v for k, v in resources(aws_only, kind).items() if "kubeflow" in k} == {
            k: v for k, v in resources(stack, kind).items() if "kubeflow" in k
        }


# --- the teams' people -----------------------------------------------------------------------------------


def member_entries(stack: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """The access entries of the teams' member roles, by principal: (address, body)."""
    found = {
        name: body
        for name, body in resources(stack, "aws_eks_access_entry").items()
        if "/kubeflow/" in body["//"]["metadata"]["path"]
    }
    by_principal = {body["principal_arn"]: (f"aws_eks_access_entry.{name}", body) for name, body in found.items()}
    # EKS keeps one access entry per role and cluster: a second one for the same role fails to apply.
    assert len(by_principal) == len(found), "two access entries for one role"
    return by_principal


def associations_of(stack: dict[str, Any], entry_address: str) -> list[dict[str, Any]]:
    return [
        body
        for body in resources(stack, "aws_eks_access_policy_association").values()
        if body["principal_arn"] == f"${{{entry_address}.principal_arn}}"
    ]


def bindings(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The teams' RoleBindings, by namespace."""
    found = list(resources(stack, "kubernetes_role_binding_v1").values())
    by_namespace = {body["metadata"]["namespace"]: body for body in found}
    assert len(by_namespace) == len(found)
    return by_namespace


def test_each_member_role_gets_one_access_entry_naming_the_groups_of_all_its_teams(with_members) -> None:
    entries = member_entries(with_members)
    assert set(entries) == set(MEMBERS)
    cluster = ref(with_members, "aws_eks_cluster", "cluster/cluster", "name")
    for arn, (_, entry) in entries.items():
        assert (entry["cluster_name"], entry["type"]) == (cluster, "STANDARD"), arn
        # ALICE, in two teams, is in both groups through her one entry.
        assert sorted(entry["kubernetes_groups"]) == sorted(f"ml-team-{t}" for t in MEMBERS[arn]), arn


def test_each_member_role_edits_exactly_its_teams_namespaces(with_members) -> None:
    namespaces = {n["metadata"]["name"] for n in resources(with_members, "kubernetes_namespace_v1").values()}
    for arn, (entry_address, _) in member_entries(with_members).items():
        (association,) = associations_of(with_members, entry_address)
        # Kubernetes' edit role, only in the role's namespaces: nothing cluster-wide, no other team's namespace.
        assert association["policy_arn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy", arn
        scope = association["access_scope"]
        assert scope["type"] == "namespace", arn
        assert sorted(scope["namespaces"]) == sorted(MEMBERS[arn]), arn
        assert set(scope["namespaces"]) <= namespaces, arn
    # No member association beyond the two: the cluster's only cluster-wide grant is the deployer's.
    kubeflow = [
        body
        for body in resources(with_members, "aws_eks_access_policy_association").values()
        if "/kubeflow/" in body["//"]["metadata"]["path"]
    ]
    assert len(kubeflow) == len(MEMBERS)


def test_members_may_submit_jobs_in_exactly_their_teams_namespaces(with_members) -> None:
    by_namespace = bindings(with_members)
    # tabular has no members, so nobody is bound there.
    assert set(by_namespace) == {"vision", "nlp"}
    for namespace, binding in by_namespace.items():
        assert binding["role_ref"] == {"api_group": RBAC, "kind": "ClusterRole", "name": BATCH_USER_ROLE}
        assert binding["subject"] == [{"api_group": RBAC, "kind": "Group", "name": f"ml-team-{namespace}"}]
        assert binding["depends_on"] == [
            address(with_members, "kubernetes_namespace_v1", f"team-{namespace}/namespace")
        ]
    # Both ends agree: a role's groups are exactly the groups bound in the namespaces its edit policy covers, so
    # it submits jobs wherever it may edit, and nowhere else.
    for arn, (entry_address, entry) in member_entries(with_members).items():
        (association,) = associations_of(with_members, entry_address)
        bound = {by_namespace[n]["subject"][0]["name"] for n in association["access_scope"]["namespaces"]}
        assert set(entry["kubernetes_groups"]) == bound, arn


def test_the_binding_names_the_role_the_kueue_release_creates(with_members) -> None:
    # The chart names its ClusterRoles after the release: renaming the release without the binding would bind a
    # role that does not exist, and members could no longer submit TrainJobs.
    (kueue,) = [body for body in releases(with_members).values() if body["chart"] == "kueue"]
    assert kueue["name"] == KUEUE_RELEASE
    assert f"{KUEUE_RELEASE}-batch-user-role" == BATCH_USER_ROLE
    for binding in bindings(with_members).values():
        assert binding["role_ref"]["name"] == f"{kueue['name']}-batch-user-role"


def test_without_in_cluster_resources_members_keep_their_entries_but_get_no_binding(
    with_members, members_aws_only
) -> None:
    # Access entries are AWS resources: the same ones whether or not the cluster side is deployed.
    for kind in ("aws_eks_access_entry", "aws_eks_access_policy_association"):
        assert {k: v for k, v in resources(members_aws_only, kind).items() if "kubeflow" in k} == {
            k: v for k, v in resources(with_members, kind).items() if "kubeflow" in k
        }
    assert set(member_entries(members_aws_only)) == set(MEMBERS)
    assert resources(members_aws_only, "kubernetes_role_binding_v1") == {}


def test_teams_without_members_get_no_access_entry_and_no_binding(stack) -> None:
    assert member_entries(stack) == {}
    assert resources(stack, "kubernetes_role_binding_v1") == {}
    # The deployer's entry is still the cluster's own.
    assert len(resources(stack, "aws_eks_access_entry")) == 1
