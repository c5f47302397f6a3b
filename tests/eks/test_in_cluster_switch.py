"""eks.in_cluster_components: on by default; off, the stack is exactly the AWS side (the first deploy)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.eks.addons import EksAddons, EksAddonsProps
from constructs.eks.components import EksClusterComponents, EksClusterComponentsProps
from constructs.eks.settings import EksClusterSettings

from gitops.terraform import IN_CLUSTER_REFERENCE, aws_only
from stacks.deployment import DeploymentSettings
from stacks.matrix import MATRIX
from stacks.ml_platform_stack import MlPlatformStack
from stacks.overrides import load_environments
from tests.eks.clusters import (
    GPU_ENVIRONMENTS,
    IRSA,
    eks_cluster,
    expected_irsa_trust,
    issuer_host_local,
    web_identity_trust,
)
from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, address, only, policy, ref, resources

AWS_SIDE_ONLY = {env: {"eks.in_cluster_components": False} for env in ENVIRONMENTS}


@pytest.fixture(scope="module")
def aws_side_stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every environment synthesized the way main.py does, with ``eks.in_cluster_components`` overridden to false."""
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(AWS_SIDE_ONLY)})
    outdir: Path = tmp_path_factory.mktemp("aws-side")
    app = cdktf.App(outdir=str(outdir))
    # The suite runs without ML_PLATFORM_* variables (tests/conftest.py), as the default stacks were built.
    deployment = DeploymentSettings()
    for env in ENVIRONMENTS:
        MlPlatformStack(app, configs[env], deployment)
    app.synth()
    return {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in ENVIRONMENTS}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_by_default_every_environment_manages_its_in_cluster_part(stacks, env) -> None:
    assert load_environments(environ={})[env].eks.in_cluster_components is True
    stack = stacks[env]
    assert set(stack["provider"]) == {"aws", "helm", "kubernetes"}
    assert stack["terraform"]["required_providers"] == {
        "aws": {"source": "aws", "version": "5.100.0"},
        "helm": {"source": "helm", "version": "3.1.1"},
        "kubernetes": {"source": "kubernetes", "version": "2.38.0"},
    }
    in_cluster = {kind: len(r) for kind, r in stack["resource"].items() if kind.startswith(("helm_", "kubernetes_"))}
    mlflow = MATRIX[env].mlflow
    assert mlflow is not None
    # The system components, then MLflow's: the operator, its objects, Reloader and MLflow itself, in one namespace
    # with two service accounts (server, secrets), behind an Ingress and a disruption budget where the matrix asks.
    expected = {
        "helm_release": (4 if env in GPU_ENVIRONMENTS else 3) + 4,
        "kubernetes_service_account_v1": 2 + 2,
        "kubernetes_storage_class_v1": 1,
        "kubernetes_namespace_v1": 1,
    }
    if mlflow.ingress is not None:
        expected["kubernetes_ingress_v1"] = 1
    if mlflow.pod_disruption_budget:
        expected["kubernetes_pod_disruption_budget_v1"] = 1
    kubeflow = MATRIX[env].kubeflow
    if kubeflow is not None:
        # Kubeflow: the Trainer and its runtimes, Kueue and its queues, then per team a namespace with its LocalQueue
        # release, 'training' service account, ResourceQuota, LimitRange and ConfigMap with MLflow's address (MLflow
        # runs in every environment, asserted above).
        teams = len(kubeflow.teams)
        expected["helm_release"] += 4 + teams
        expected["kubernetes_namespace_v1"] += teams
        expected["kubernetes_service_account_v1"] += teams
        expected["kubernetes_resource_quota_v1"] = teams
        expected["kubernetes_limit_range_v1"] = teams
        expected["kubernetes_config_map_v1"] = teams
    assert in_cluster == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_in_cluster_components_there_is_no_helm_or_kubernetes_provider_or_resource(
    stacks, aws_side_stacks, env
) -> None:
    stack = aws_side_stacks[env]
    # Kubeflow's team roles are AWS resources: they stay exactly as the default has them, for the second deploy.
    teams = [team.name for team in MATRIX[env].kubeflow.teams]
    for team in teams:
        role = f"kubeflow/team-{team}/training-irsa/role"
        assert only(stack, "aws_iam_role", role) == only(stacks[env], "aws_iam_role", role), team
    assert sorted(stack["output"]["kubeflow_team_role_arns"]["value"]) == sorted(teams)
    assert set(stack["provider"]) == {"aws"}
    assert stack["terraform"]["required_providers"] == {"aws": {"source": "aws", "version": "5.100.0"}}
    for block in ("resource", "data"):
        assert [kind for kind in stack.get(block, {}) if not kind.startswith("aws_")] == [], block
    # Nothing points at what is left out: no depends_on, value or output names an in-cluster resource.
    assert IN_CLUSTER_REFERENCE.findall(json.dumps(stack)) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_in_cluster_components_the_stack_is_exactly_the_aws_side_of_the_default(
    stacks, aws_side_stacks, env
) -> None:
    first_deploy, default = aws_side_stacks[env], stacks[env]
    # Same state: the second deploy (with the default, from inside the network) adds to what the first created.
    assert first_deploy["terraform"]["backend"] == default["terraform"]["backend"]
    # Every AWS resource, data source, local and output, with the same addresses and arguments.
    assert aws_only(first_deploy) == aws_only(default)
    assert set(first_deploy["resource"]) == {kind for kind in default["resource"] if kind.startswith("aws_")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role_path", sorted(IRSA))
def test_without_in_cluster_components_every_irsa_role_keeps_its_exact_trust_and_permissions(
    stacks, aws_side_stacks, env, role_path
) -> None:
    stack = aws_side_stacks[env]
    role = only(stack, "aws_iam_role", role_path)
    assert policy(role["assume_role_policy"]) == expected_irsa_trust(stack, role_path)
    assert role == only(stacks[env], "aws_iam_role", role_path)
    permissions = role_path.removesuffix("/role") + "/permissions"
    assert policy(only(stack, "aws_iam_role_policy", permissions)["policy"])["Statement"]
    assert only(stack, "aws_iam_role_policy", permissions) == only(stacks[env], "aws_iam_role_policy", permissions)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_in_cluster_components_the_cluster_nodes_and_addons_are_all_there(aws_side_stacks, env) -> None:
    stack = aws_side_stacks[env]
    assert (
        only(stack, "aws_eks_cluster", "platform/eks/cluster/cluster")["vpc_config"]["endpoint_public_access"] is False
    )
    groups = ["eks/cpu-nodes/node-group"] + (["eks/gpu-nodes/group/node-group"] if env in GPU_ENVIRONMENTS else [])
    assert len(resources(stack, "aws_eks_node_group")) == len(groups)
    addons = {a["addon_name"]: a for a in resources(stack, "aws_eks_addon").values()}
    # Monitoring's CloudWatch observability add-on is AWS-side too: EKS installs it, not our Kubernetes provider.
    assert sorted(addons) == [
        "amazon-cloudwatch-observability",
        "aws-ebs-csi-driver",
        "coredns",
        "kube-proxy",
        "vpc-cni",
    ]
    for group in groups:
        assert all(address(stack, "aws_eks_node_group", group) in a["depends_on"] for a in addons.values())
    # The add-on creates its own service account and binds it to the role: no Kubernetes API call of ours.
    assert addons["aws-ebs-csi-driver"]["service_account_role_arn"] == ref(
        stack, "aws_iam_role", "eks/addons/ebs-csi-irsa/role", "arn"
    )
    only(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider")
    only(stack, "aws_eks_access_policy_association", "eks/cluster/deployer-cluster-admin")
    assert {"eks_cluster_name", "eks_cluster_endpoint", "eks_oidc_provider_arn"} <= set(stack["output"])


# --- the switch on the constructs, built alone ------------------------------------------------------------


def test_addons_without_in_cluster_resources_keep_the_addons_and_role_but_no_storage_class() -> None:
    tiny = TinyStack()
    cluster = eks_cluster(tiny, EksClusterSettings(in_cluster_components=False))
    addons = EksAddons(
        tiny.stack, "addons", EksAddonsProps(cluster=cluster, volume_key=tiny.key, in_cluster_resources=False)
    )
    assert addons.storage_class is None
    stack = tiny.synth()
    assert not [kind for kind in stack["resource"] if kind.startswith("kubernetes_")]
    assert sorted(a["addon_name"] for a in stack["resource"]["aws_eks_addon"].values()) == [
        "aws-ebs-csi-driver",
        "coredns",
        "kube-proxy",
        "vpc-cni",
    ]
    ebs = next(a for a in stack["resource"]["aws_eks_addon"].values() if a["addon_name"] == "aws-ebs-csi-driver")
    role = next(name for name, r in stack["resource"]["aws_iam_role"].items() if r["name"] == "tiny-ebs-csi")
    assert ebs["service_account_role_arn"] == f"${{aws_iam_role.{role}.arn}}"
    assert "kubernetes" not in stack["terraform"]["required_providers"]


def test_components_without_in_cluster_resources_are_the_two_irsa_roles_only() -> None:
    tiny = TinyStack()
    built = EksClusterComponents(
        tiny.stack,
        "components",
        EksClusterComponentsProps(
            cluster=eks_cluster(tiny, EksClusterSettings(in_cluster_components=False)),
            vpc_id="vpc-1",
            gpu_nodes=True,
            in_cluster_resources=False,
        ),
    )
    assert built.releases == {}
    assert built.autoscaler_role.service_account is None
    assert built.load_balancer_controller_role.service_account is None
    stack = tiny.synth()
    assert not [kind for block in ("resource", "data") for kind in stack.get(block, {}) if not kind.startswith("aws_")]
    assert set(stack["terraform"]["required_providers"]) == {"aws"}
    roles = {r["name"]: policy(r["assume_role_policy"]) for r in stack["resource"]["aws_iam_role"].values()}
    host = f"${{local.{issuer_host_local(stack)}}}"
    (provider,) = stack["resource"]["aws_iam_openid_connect_provider"]
    for role_name, account in (
        ("tiny-cluster-autoscaler", "cluster-autoscaler"),
        ("tiny-aws-load-balancer-controller", "aws-load-balancer-controller"),
    ):
        assert roles[role_name] == web_identity_trust(
            f"${{aws_iam_openid_connect_provider.{provider}.arn}}", host, "kube-system", account
        )
    # Each role keeps its permissions (the cluster role's secrets grant is the third inline policy).
    irsa_policies = [p for p in stack["resource"]["aws_iam_role_policy"].values() if "-irsa_role_" in p["role"]]
    assert sorted(p["name"] for p in irsa_policies) == ["permissions", "permissions"]
