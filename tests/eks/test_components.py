"""In-cluster system components: pinned Helm charts, their values, their IRSA permissions, the providers' auth."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from constructs.eks.components import (
    EksClusterComponents,
    EksClusterComponentsProps,
    cluster_autoscaler_statements,
    load_balancer_controller_statements,
)

from tests.eks.clusters import GPU_ENVIRONMENTS, eks_cluster
from tests.support.stacks import TinyStack, context
from tests.support.synth_json import ENVIRONMENTS, address, arn_parts, data_ref, ref, resources, role_policies


def releases(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The system components' releases (kube-system), by name."""
    return {r["name"]: r for r in resources(stack, "helm_release").values() if r["namespace"] == "kube-system"}


def values_of(release: dict[str, Any]) -> dict[str, Any]:
    (values,) = release["values"]
    return json.loads(values)


def permissions(stack: dict[str, Any], irsa: str) -> list[dict[str, Any]]:
    """The statements of the one inline policy of the components' IRSA role ``irsa``."""
    policies = role_policies(stack, f"eks/components/{irsa}/role")
    assert list(policies) == ["permissions"]
    return policies["permissions"]["Statement"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_releases_are_pinned_charts_from_their_upstream_repositories(stacks, env) -> None:
    charts = {
        name: (r["repository"], r["chart"], r["version"], r["namespace"]) for name, r in releases(stacks[env]).items()
    }
    expected = {
        "metrics-server": ("https://kubernetes-sigs.github.io/metrics-server/", "metrics-server", "3.13.0"),
        "cluster-autoscaler": ("https://kubernetes.github.io/autoscaler", "cluster-autoscaler", "9.59.0"),
        "aws-load-balancer-controller": ("https://aws.github.io/eks-charts", "aws-load-balancer-controller", "1.14.1"),
    }
    if env in GPU_ENVIRONMENTS:
        expected["nvidia-device-plugin"] = (
            "https://nvidia.github.io/k8s-device-plugin",
            "nvidia-device-plugin",
            "0.17.4",
        )
    assert charts == {name: (*chart, "kube-system") for name, chart in expected.items()}
    for release in releases(stacks[env]).values():
        assert release["atomic"] is True and release["wait"] is True
    assert values_of(releases(stacks[env])["metrics-server"]) == {
        "replicas": 2,
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": 1},
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_autoscaler_discovers_this_cluster_with_its_irsa_account(stacks, env) -> None:
    stack = stacks[env]
    release = releases(stack)["cluster-autoscaler"]
    assert values_of(release) == {
        "cloudProvider": "aws",
        "awsRegion": data_ref(stack, "aws_region", "platform/region", "name"),
        "autoDiscovery": {"clusterName": f"mlp-{env}"},
        "image": {"tag": "v1.36.1"},
        "rbac": {"serviceAccount": {"create": False, "name": "cluster-autoscaler"}},
        "extraArgs": {
            "balance-similar-node-groups": True,
            "skip-nodes-with-system-pods": False,
            "expander": "least-waste",
        },
    }
    service_account = address(stack, "kubernetes_service_account_v1", "cluster-autoscaler-irsa/service-account")
    assert service_account in release["depends_on"]
    for group in ["cpu-nodes/node-group"] + (["gpu-nodes/group/node-group"] if env in GPU_ENVIRONMENTS else []):
        assert address(stack, "aws_eks_node_group", f"eks/{group}") in release["depends_on"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_autoscaler_may_scale_only_this_clusters_groups(stacks, env) -> None:
    stack = stacks[env]
    partition, region, account = arn_parts(stack)
    assert permissions(stack, "cluster-autoscaler-irsa") == [
        {
            "Sid": "DescribeScalingInputs",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
            ],
            "Resource": "*",
        },
        {
            "Sid": "DescribeThisClustersNodegroups",
            "Effect": "Allow",
            "Action": "eks:DescribeNodegroup",
            "Resource": f"arn:{partition}:eks:{region}:{account}:nodegroup/mlp-{env}/*/*",
        },
        {
            "Sid": "ScaleThisClustersNodegroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/mlp-{env}": "owned"}},
        },
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_load_balancer_controller_values_and_scoped_policy(stacks, env) -> None:
    stack = stacks[env]
    release = releases(stack)["aws-load-balancer-controller"]
    assert values_of(release) == {
        "clusterName": f"mlp-{env}",
        "region": data_ref(stack, "aws_region", "platform/region", "name"),
        "vpcId": ref(stack, "aws_vpc", "network/vpc", "id"),
        "serviceAccount": {"create": False, "name": "aws-load-balancer-controller"},
        "enableWaf": False,
        "enableShield": False,
        "enableWafv2": True,
    }
    service_account = address(stack, "kubernetes_service_account_v1", "load-balancer-controller-irsa/service-account")
    assert service_account in release["depends_on"]
    statements = permissions(stack, "load-balancer-controller-irsa")
    assert len(statements) == 17
    unscoped = [s["Sid"] for s in statements if s["Resource"] == "*"]
    assert unscoped == ["DescribeWithoutResourceLevelPermissions"]
    describe = next(s for s in statements if s["Sid"] == "DescribeWithoutResourceLevelPermissions")
    assert all(":Describe" in a or ":Get" in a or ":List" in a for a in describe["Action"])
    partition, _, account = arn_parts(stack)
    scoped_to_cluster = 0
    for statement in statements:
        for resource in statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]:
            assert resource == "*" or f":{account}:" in resource, (statement["Sid"], resource)
        tag_values = [
            value
            for test in statement.get("Condition", {}).values()
            for key, value in test.items()
            if key.endswith("/elbv2.k8s.aws/cluster") and test is not statement["Condition"].get("Null")
        ]
        assert all(value == f"mlp-{env}" for value in tag_values), statement["Sid"]
        scoped_to_cluster += bool(tag_values)
    # Every create, modify, delete and register statement is held to this cluster's own resources.
    assert scoped_to_cluster == 8
    in_vpc = next(s for s in statements if s["Sid"] == "ManageIngressOnSecurityGroupsOfThisVpc")
    assert in_vpc["Condition"]["ArnEquals"]["ec2:Vpc"].startswith(f"arn:{partition}:ec2:")
    assert in_vpc["Condition"]["ArnEquals"]["ec2:Vpc"].endswith(f":vpc/{ref(stack, 'aws_vpc', 'network/vpc', 'id')}")
    actions = {a for s in statements for a in s["Action"]}
    assert actions
    assert not {a for a in actions if a.startswith(("waf-regional:", "shield:"))}


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_device_plugin_runs_only_on_gpu_nodes_and_tolerates_their_taint(stacks, env) -> None:
    assert values_of(releases(stacks[env])["nvidia-device-plugin"]) == {
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
        ],
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_and_kubernetes_providers_authenticate_with_aws_eks_get_token(stacks, env) -> None:
    stack = stacks[env]
    connection = {
        "host": ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "endpoint"),
        "cluster_ca_certificate": "${base64decode("
        + address(stack, "aws_eks_cluster", "eks/cluster/cluster")
        + ".certificate_authority[0].data)}",
    }
    exec_block = {
        "api_version": "client.authentication.k8s.io/v1beta1",
        "command": "aws",
        "args": [
            "eks",
            "get-token",
            "--cluster-name",
            ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "name"),
            "--region",
            data_ref(stack, "aws_region", "platform/region", "name"),
        ],
    }
    assert stack["provider"]["kubernetes"] == [{**connection, "exec": [exec_block]}]
    assert stack["provider"]["helm"] == [{"kubernetes": {**connection, "exec": exec_block}}]
    # No kubernetes_manifest: every in-cluster resource can be planned before the cluster exists.
    assert "kubernetes_manifest" not in stack["resource"]


# --- components built alone ------------------------------------------------------------------------------


def components(tiny: TinyStack, **overrides: Any) -> EksClusterComponents:
    props: dict[str, Any] = {"vpc_id": "vpc-1", "gpu_nodes": True, **overrides}
    if "cluster" not in props:
        props["cluster"] = eks_cluster(tiny)
    return EksClusterComponents(tiny.stack, "components", EksClusterComponentsProps(**props))


def test_components_with_in_cluster_resources_install_the_charts_into_the_accounts() -> None:
    tiny = TinyStack()
    built = components(tiny)
    assert sorted(built.releases) == [
        "aws-load-balancer-controller",
        "cluster-autoscaler",
        "metrics-server",
        "nvidia-device-plugin",
    ]
    stack = tiny.synth()
    accounts = sorted(a["metadata"]["name"] for a in stack["resource"]["kubernetes_service_account_v1"].values())
    assert accounts == ["aws-load-balancer-controller", "cluster-autoscaler"]
    assert len(stack["resource"]["helm_release"]) == 4
    # The context's literal region reaches the charts; the cluster's release pins the autoscaler image.
    values = {r["name"]: values_of(r) for r in stack["resource"]["helm_release"].values()}
    assert values["cluster-autoscaler"]["awsRegion"] == "us-east-1"
    assert values["cluster-autoscaler"]["image"] == {"tag": "v1.36.1"}
    assert (values["aws-load-balancer-controller"]["region"], values["aws-load-balancer-controller"]["vpcId"]) == (
        "us-east-1",
        "vpc-1",
    )


def test_a_cluster_without_gpu_nodes_gets_no_device_plugin() -> None:
    tiny = TinyStack()
    built = components(tiny, gpu_nodes=False)
    assert sorted(built.releases) == ["aws-load-balancer-controller", "cluster-autoscaler", "metrics-server"]
    assert "nvidia-device-plugin" not in {r["name"] for r in tiny.synth()["resource"]["helm_release"].values()}


def test_component_roles_are_in_the_clusters_account_region_and_partition() -> None:
    tiny = TinyStack()
    where = context(account_id="210987654321", region="eu-west-1", partition="aws-us-gov")
    components(tiny, cluster=eks_cluster(tiny, context=where))
    stack = tiny.synth()
    roles = {f"${{aws_iam_role.{name}.name}}": r["name"] for name, r in stack["resource"]["aws_iam_role"].items()}
    statements = {
        roles[p["role"]]: json.loads(p["policy"])["Statement"]
        for p in stack["resource"]["aws_iam_role_policy"].values()
        if p["name"] == "permissions"
    }
    assert sorted(statements) == ["tiny-aws-load-balancer-controller", "tiny-cluster-autoscaler"]
    assert statements["tiny-cluster-autoscaler"][1]["Resource"] == (
        "arn:aws-us-gov:eks:eu-west-1:210987654321:nodegroup/tiny/*/*"
    )
    controller = statements["tiny-aws-load-balancer-controller"]
    in_vpc = next(s for s in controller if s["Sid"] == "ManageIngressOnSecurityGroupsOfThisVpc")
    assert in_vpc["Condition"]["ArnEquals"]["ec2:Vpc"] == "arn:aws-us-gov:ec2:eu-west-1:210987654321:vpc/vpc-1"


# --- the policies, on their own ---------------------------------------------------------------------------


def test_cluster_autoscaler_statements_name_only_the_given_cluster() -> None:
    where = context(account_id="210987654321", region="eu-west-1")
    statements = [s.to_json() for s in cluster_autoscaler_statements(where, cluster_name="c1")]
    assert statements[1]["Resource"] == "arn:aws:eks:eu-west-1:210987654321:nodegroup/c1/*/*"
    assert (
        statements[2]["Resource"]
        == "arn:aws:autoscaling:eu-west-1:210987654321:autoScalingGroup:*:autoScalingGroupName/*"
    )
    assert statements[2]["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/c1": "owned"}}


def test_controller_policy_asset_is_filled_in_completely() -> None:
    statements = load_balancer_controller_statements(
        context(region="eu-west-1", account_id="123456789012", partition="aws"), cluster_name="c1", vpc_arn="arn:vpc"
    )
    text = json.dumps([s.to_json() for s in statements])
    assert not re.search(r"\{\{\w+\}\}", text)
    assert "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/*/*" in text
    assert '"aws:ResourceTag/elbv2.k8s.aws/cluster": "c1"' in text
    assert '"ec2:Vpc": "arn:vpc"' in text
    assert not [a for s in statements for a in s.actions if a == "*" or a.endswith(":*")]


def test_controller_policy_fits_the_inline_policy_quota() -> None:
    # IAM allows 10,240 characters (whitespace excluded) of inline policies per role.
    statements = load_balancer_controller_statements(
        context(partition="aws-us-gov", region="ap-southeast-2", account_id="123456789012"),
        cluster_name="a-long-project-name-staging",
        vpc_arn="arn:aws-us-gov:ec2:ap-southeast-2:123456789012:vpc/vpc-0123456789abcdef0",
    )
    document = json.dumps({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]})
    assert len(re.sub(r"\s", "", document)) < 10_240
