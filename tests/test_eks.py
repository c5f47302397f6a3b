"""EKS for ML workloads, as synthesized for each environment: cluster, IRSA, node groups, add-ons, Helm releases."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cdktf
import pytest

from stacks.environments import load_environments
from stacks.ml_platform_stack import DeploymentSettings, MlPlatformStack
from tests.conftest import ENVIRONMENTS, only, policy, resources
from tests.test_terraform_validate import aws_only

GPU_ENVIRONMENTS = ("staging", "prod")
LOG_RETENTION = {"dev": 14, "staging": 30, "prod": 365}
VPC_CIDR = {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}
CPU_GROUP = {
    # env: (instance types, min, max, desired)
    "dev": (["t3.large", "m6i.large"], 1, 3, 1),
    "staging": (["m6i.xlarge"], 2, 6, 2),
    "prod": (["m6i.xlarge"], 2, 6, 3),
}
GPU_GROUP = {"staging": ("SPOT", 4), "prod": ("ON_DEMAND", 10)}
OWNER_TAGS = {"team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}
# (namespace, service account) of every IRSA role, by the role construct's path.
IRSA = {
    "eks/addons/ebs-csi-irsa/role": ("kube-system", "ebs-csi-controller-sa"),
    "eks/components/cluster-autoscaler-irsa/role": ("kube-system", "cluster-autoscaler"),
    "eks/components/load-balancer-controller-irsa/role": ("kube-system", "aws-load-balancer-controller"),
}


def address(stack: dict[str, Any], resource_type: str, path_suffix: str) -> str:
    """``type.name`` (or ``data.type.name``) of the one resource whose construct path ends with ``path_suffix``."""
    block = "data" if resource_type.startswith("data.") else "resource"
    kind = resource_type.removeprefix("data.")
    names = [
        name
        for name, config in stack[block].get(kind, {}).items()
        if config["//"]["metadata"]["path"].endswith(path_suffix)
    ]
    assert len(names) == 1, (resource_type, path_suffix, names)
    return f"{'data.' if block == 'data' else ''}{kind}.{names[0]}"


def ref(stack: dict[str, Any], resource_type: str, path_suffix: str, attribute: str) -> str:
    """``${<address>.<attribute>}``: how the synthesized JSON refers to that resource's attribute."""
    return f"${{{address(stack, resource_type, path_suffix)}.{attribute}}}"


def cluster_of(stack: dict[str, Any]) -> dict[str, Any]:
    return only(stack, "aws_eks_cluster", "platform/eks/cluster/cluster")


def role_policy(stack: dict[str, Any], path_suffix: str) -> dict[str, Any]:
    return policy(only(stack, "aws_iam_role_policy", path_suffix)["policy"])


# --- control plane ------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_encrypts_secrets_logs_and_keeps_the_endpoint_private(stacks, env) -> None:
    stack = stacks[env]
    cluster = cluster_of(stack)
    assert cluster["name"] == f"mlp-{env}"
    assert cluster["version"] == "1.36"
    assert cluster["encryption_config"] == {
        "provider": {"key_arn": ref(stack, "aws_kms_key", "platform/keys/eks-secrets", "arn")},
        "resources": ["secrets"],
    }
    everything = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
    assert cluster["enabled_cluster_log_types"] == (everything if env == "prod" else everything[:3])
    vpc_config = cluster["vpc_config"]
    assert vpc_config["endpoint_private_access"] is True
    assert vpc_config["endpoint_public_access"] is False
    assert "public_access_cidrs" not in vpc_config
    assert vpc_config["subnet_ids"] == [
        ref(stack, "aws_subnet", f"network/private-{i}", "id") for i in range(len(vpc_config["subnet_ids"]))
    ]
    assert vpc_config["security_group_ids"] == [ref(stack, "aws_security_group", "eks/cluster/api-sg", "id")]
    assert cluster["access_config"] == {
        "authentication_mode": "API",
        "bootstrap_cluster_creator_admin_permissions": False,
    }
    assert cluster["upgrade_policy"] == {"support_type": "EXTENDED" if env == "prod" else "STANDARD"}
    # The log group exists before the cluster, so EKS never creates an unencrypted one of its own.
    assert address(stack, "aws_cloudwatch_log_group", "eks/cluster/log-group") in cluster["depends_on"]
    assert cdktf.Testing.to_have_resource_with_properties(
        json.dumps(stack),
        "aws_cloudwatch_log_group",
        {
            "name": f"/aws/eks/mlp-{env}/cluster",
            "retention_in_days": LOG_RETENTION[env],
            "kms_key_id": ref(stack, "aws_kms_key", "platform/keys/logs", "arn"),
        },
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_role_can_use_only_the_secrets_key(stacks, env) -> None:
    stack = stacks[env]
    role = only(stack, "aws_iam_role", "eks/cluster/cluster-role")
    assert policy(role["assume_role_policy"])["Statement"] == [
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "eks.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    attachment = only(stack, "aws_iam_role_policy_attachment", "eks/cluster/cluster-policy")
    assert attachment["policy_arn"].endswith(":iam::aws:policy/AmazonEKSClusterPolicy")
    assert role_policy(stack, "eks/cluster/encrypt-secrets")["Statement"] == [
        {
            "Sid": "EnvelopeEncryptSecrets",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
            "Resource": ref(stack, "aws_kms_key", "platform/keys/eks-secrets", "arn"),
        }
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_security_group_admits_only_https_from_the_vpc(stacks, env) -> None:
    stack = stacks[env]
    group = ref(stack, "aws_security_group", "eks/cluster/api-sg", "id")
    rules = [
        r for r in resources(stack, "aws_vpc_security_group_ingress_rule").values() if r["security_group_id"] == group
    ]
    assert [(r["ip_protocol"], r["from_port"], r["to_port"], r["cidr_ipv4"]) for r in rules] == [
        ("tcp", 443, 443, VPC_CIDR[env])
    ]
    egress = resources(stack, "aws_vpc_security_group_egress_rule").values()
    assert not [r for r in egress if r["security_group_id"] == group]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploying_principal_is_cluster_admin_through_an_access_entry(stacks, env) -> None:
    stack = stacks[env]
    entry = only(stack, "aws_eks_access_entry", "eks/cluster/deployer-access")
    assert entry == {
        "//": entry["//"],
        "cluster_name": ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "name"),
        "principal_arn": ref(stack, "data.aws_iam_session_context", "eks/cluster/deployer-role", "issuer_arn"),
        "type": "STANDARD",
    }
    association = only(stack, "aws_eks_access_policy_association", "eks/cluster/deployer-cluster-admin")
    assert association["policy_arn"].endswith(":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert association["access_scope"] == {"type": "cluster"}
    assert association["principal_arn"] == ref(stack, "aws_eks_access_entry", "deployer-access", "principal_arn")
    # No other admins unless the matrix (or an override) names them.
    assert len(resources(stack, "aws_eks_access_entry")) == 1


# --- IRSA ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_oidc_provider_trusts_the_cluster_issuer_for_sts(stacks, env) -> None:
    stack = stacks[env]
    provider = only(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider")
    issuer = f"{address(stack, 'aws_eks_cluster', 'eks/cluster/cluster')}.identity[0].oidc[0].issuer"
    assert provider["url"] == f"${{{issuer}}}"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    # AWS provider 5.x computes the thumbprint; none is pinned.
    assert "thumbprint_list" not in provider
    (local_name,) = [name for name in stack["locals"] if "oidc-issuer-host" in name]
    assert stack["locals"][local_name] == f'${{replace({issuer}, "https://", "")}}'


def expected_irsa_trust(stack: dict[str, Any], role_path: str) -> dict[str, Any]:
    """The trust policy of the IRSA role at ``role_path``: its one service account, through the cluster's issuer."""
    namespace, account = IRSA[role_path]
    (local_name,) = [name for name in stack["locals"] if "oidc-issuer-host" in name]
    issuer_host = f"${{local.{local_name}}}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {
                    "Federated": ref(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn")
                },
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{account}",
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("role_path", sorted(IRSA))
def test_each_irsa_role_trusts_exactly_one_service_account(stacks, env, role_path) -> None:
    stack = stacks[env]
    trust = policy(only(stack, "aws_iam_role", role_path)["assume_role_policy"])
    assert trust == expected_irsa_trust(stack, role_path)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_service_accounts_carry_their_role_arn(stacks, env) -> None:
    stack = stacks[env]
    accounts = {
        (sa["metadata"]["namespace"], sa["metadata"]["name"]): sa
        for sa in resources(stack, "kubernetes_service_account_v1").values()
    }
    # The EBS CSI add-on creates and annotates its own account; the other two are Terraform's.
    assert set(accounts) == {("kube-system", "cluster-autoscaler"), ("kube-system", "aws-load-balancer-controller")}
    for role_path, key in (
        ("eks/components/cluster-autoscaler-irsa/role", ("kube-system", "cluster-autoscaler")),
        ("eks/components/load-balancer-controller-irsa/role", ("kube-system", "aws-load-balancer-controller")),
    ):
        assert accounts[key]["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": ref(stack, "aws_iam_role", role_path, "arn")
        }
        assert accounts[key]["automount_service_account_token"] is True


# --- node groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cpu_node_group_shape_labels_and_autoscaler_tags(stacks, env) -> None:
    stack = stacks[env]
    types, low, high, desired = CPU_GROUP[env]
    group = only(stack, "aws_eks_node_group", "eks/cpu-nodes/node-group")
    assert group["node_group_name_prefix"] == f"mlp-{env}-cpu-"
    assert group["ami_type"] == "AL2023_x86_64_STANDARD"
    assert group["capacity_type"] == "ON_DEMAND"
    assert group["instance_types"] == types
    assert group["scaling_config"] == {"min_size": low, "max_size": high, "desired_size": desired}
    assert group["labels"] == {"ml-platform/node-type": "cpu"}
    assert "taint" not in group
    assert group["tags"] == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/mlp-{env}": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/ml-platform/node-type": "cpu",
    }
    assert group["lifecycle"] == {"create_before_destroy": True, "ignore_changes": ["scaling_config[0].desired_size"]}
    assert group["version"] == ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "version")


@pytest.mark.parametrize("env", GPU_ENVIRONMENTS)
def test_gpu_node_group_is_tainted_labelled_and_scales_from_zero(stacks, env) -> None:
    stack = stacks[env]
    capacity, high = GPU_GROUP[env]
    group = only(stack, "aws_eks_node_group", "eks/gpu-nodes/group/node-group")
    assert group["node_group_name_prefix"] == f"mlp-{env}-gpu-"
    assert group["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert group["capacity_type"] == capacity
    assert group["instance_types"] == ["g5.xlarge", "g5.2xlarge"]
    assert group["scaling_config"] == {"min_size": 0, "max_size": high, "desired_size": 0}
    assert group["taint"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert group["labels"] == {"ml-platform/node-type": "gpu", "nvidia.com/gpu.present": "true"}
    assert group["tags"] == {
        "k8s.io/cluster-autoscaler/enabled": "true",
        f"k8s.io/cluster-autoscaler/mlp-{env}": "owned",
        "k8s.io/cluster-autoscaler/node-template/label/ml-platform/node-type": "gpu",
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.present": "true",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "1",
    }


def test_dev_has_no_gpu_node_group_and_no_device_plugin(stacks) -> None:
    dev = stacks["dev"]
    assert [g["ami_type"] for g in resources(dev, "aws_eks_node_group").values()] == ["AL2023_x86_64_STANDARD"]
    assert "nvidia-device-plugin" not in {r["name"] for r in resources(dev, "helm_release").values()}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_node_launch_templates_are_hardened_encrypted_and_tagged(stacks, env) -> None:
    stack = stacks[env]
    groups = ["cpu-nodes"] + (["gpu-nodes/group"] if env in GPU_ENVIRONMENTS else [])
    for group_path in groups:
        template = only(stack, "aws_launch_template", f"eks/{group_path}/launch-template")
        group = only(stack, "aws_eks_node_group", f"eks/{group_path}/node-group")
        assert group["launch_template"] == {
            "id": ref(stack, "aws_launch_template", f"eks/{group_path}/launch-template", "id"),
            "version": ref(stack, "aws_launch_template", f"eks/{group_path}/launch-template", "latest_version"),
        }
        assert template["metadata_options"] == {
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": 1,
            "instance_metadata_tags": "disabled",
        }
        (device,) = template["block_device_mappings"]
        assert device["device_name"] == "/dev/xvda"
        assert device["ebs"] == {
            "volume_size": 100 if "gpu" in group_path else 50,
            "volume_type": "gp3",
            "encrypted": "true",
            "kms_key_id": ref(stack, "aws_kms_key", "platform/keys/data", "arn"),
            "delete_on_termination": "true",
        }
        expected_tags = {**OWNER_TAGS, "environment": env, "Name": f"mlp-{env}-{group_path.split('-')[0]}"}
        assert {spec["resource_type"]: spec["tags"] for spec in template["tag_specifications"]} == {
            "instance": expected_tags,
            "volume": expected_tags,
        }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_node_roles_have_exactly_the_three_node_policies(stacks, env) -> None:
    stack = stacks[env]
    for group_path in ["cpu-nodes"] + (["gpu-nodes/group"] if env in GPU_ENVIRONMENTS else []):
        role = ref(stack, "aws_iam_role", f"eks/{group_path}/node-role", "name")
        attached = sorted(
            a["policy_arn"].rsplit("/", 1)[1]
            for a in resources(stack, "aws_iam_role_policy_attachment").values()
            if a["role"] == role
        )
        assert attached == ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
        assert not [p for p in resources(stack, "aws_iam_role_policy").values() if p["role"] == role]


# --- add-ons ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_core_addons_are_pinned_and_wait_for_nodes(stacks, env) -> None:
    stack = stacks[env]
    addons = {a["addon_name"]: a for a in resources(stack, "aws_eks_addon").values()}
    assert {name: a["addon_version"] for name, a in addons.items()} == {
        "vpc-cni": "v1.22.4-eksbuild.3",
        "kube-proxy": "v1.36.0-eksbuild.25",
        "coredns": "v1.14.3-eksbuild.23",
        "aws-ebs-csi-driver": "v1.66.0-eksbuild.1",
    }
    cpu_group = address(stack, "aws_eks_node_group", "eks/cpu-nodes/node-group")
    for addon in addons.values():
        assert addon["resolve_conflicts_on_create"] == "OVERWRITE"
        assert addon["resolve_conflicts_on_update"] == "OVERWRITE"
        assert cpu_group in addon["depends_on"]
    assert addons["aws-ebs-csi-driver"]["service_account_role_arn"] == ref(
        stack, "aws_iam_role", "eks/addons/ebs-csi-irsa/role", "arn"
    )
    assert not [a for name, a in addons.items() if name != "aws-ebs-csi-driver" and "service_account_role_arn" in a]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ebs_csi_role_uses_the_managed_policy_and_the_data_key_through_ec2(stacks, env) -> None:
    stack = stacks[env]
    role = ref(stack, "aws_iam_role", "eks/addons/ebs-csi-irsa/role", "name")
    attached = [
        a["policy_arn"] for a in resources(stack, "aws_iam_role_policy_attachment").values() if a["role"] == role
    ]
    assert [arn.split(":", 2)[2] for arn in attached] == ["iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    data_key = ref(stack, "aws_kms_key", "platform/keys/data", "arn")
    region = ref(stack, "data.aws_region", "platform/region", "name")
    assert role_policy(stack, "eks/addons/ebs-csi-irsa/permissions")["Statement"] == [
        {
            "Sid": "EncryptVolumesWithDataKey",
            "Effect": "Allow",
            "Action": [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            "Resource": data_key,
            "Condition": {"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}},
        },
        {
            "Sid": "AttachEncryptedVolumes",
            "Effect": "Allow",
            "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
            "Resource": data_key,
            "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_default_storage_class_is_encrypted_gp3_with_the_data_key(stacks, env) -> None:
    stack = stacks[env]
    (storage_class,) = resources(stack, "kubernetes_storage_class_v1").values()
    assert storage_class["metadata"] == {
        "name": "gp3-encrypted",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    }
    assert storage_class["storage_provisioner"] == "ebs.csi.aws.com"
    assert storage_class["volume_binding_mode"] == "WaitForFirstConsumer"
    assert storage_class["reclaim_policy"] == ("Retain" if env == "prod" else "Delete")
    assert storage_class["parameters"] == {
        "type": "gp3",
        "csi.storage.k8s.io/fstype": "ext4",
        "encrypted": "true",
        "kmsKeyId": ref(stack, "aws_kms_key", "platform/keys/data", "arn"),
        "tagSpecification_1": "cost_center=cc-4711",
        "tagSpecification_2": f"environment={env}",
        "tagSpecification_3": "project=mlp",
        "tagSpecification_4": "team=ml-platform",
    }


# --- Helm releases and providers ------------------------------------------------------------------------


def releases(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in resources(stack, "helm_release").values()}


def values_of(release: dict[str, Any]) -> dict[str, Any]:
    (values,) = release["values"]
    return json.loads(values)


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
        "awsRegion": ref(stack, "data.aws_region", "platform/region", "name"),
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
    partition = ref(stack, "data.aws_partition", "platform/partition", "partition")
    region = ref(stack, "data.aws_region", "platform/region", "name")
    account = ref(stack, "data.aws_caller_identity", "platform/account", "account_id")
    assert role_policy(stack, "cluster-autoscaler-irsa/permissions")["Statement"] == [
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
        "region": ref(stack, "data.aws_region", "platform/region", "name"),
        "vpcId": ref(stack, "aws_vpc", "network/vpc", "id"),
        "serviceAccount": {"create": False, "name": "aws-load-balancer-controller"},
        "enableWaf": False,
        "enableShield": False,
        "enableWafv2": True,
    }
    statements = role_policy(stack, "load-balancer-controller-irsa/permissions")["Statement"]
    assert len(statements) == 17
    unscoped = [s["Sid"] for s in statements if s["Resource"] == "*"]
    assert unscoped == ["DescribeWithoutResourceLevelPermissions"]
    describe = next(s for s in statements if s["Sid"] == "DescribeWithoutResourceLevelPermissions")
    assert all(":Describe" in a or ":Get" in a or ":List" in a for a in describe["Action"])
    account = ref(stack, "data.aws_caller_identity", "platform/account", "account_id")
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
    vpc_arn = f"arn:{ref(stack, 'data.aws_partition', 'platform/partition', 'partition')}:ec2:"
    in_vpc = next(s for s in statements if s["Sid"] == "ManageIngressOnSecurityGroupsOfThisVpc")
    assert in_vpc["Condition"]["ArnEquals"]["ec2:Vpc"].startswith(vpc_arn)
    assert in_vpc["Condition"]["ArnEquals"]["ec2:Vpc"].endswith(f":vpc/{ref(stack, 'aws_vpc', 'network/vpc', 'id')}")
    actions = {a for s in statements for a in s["Action"]} if statements else set()
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
            ref(stack, "data.aws_region", "platform/region", "name"),
        ],
    }
    assert stack["provider"]["kubernetes"] == [{**connection, "exec": [exec_block]}]
    assert stack["provider"]["helm"] == [{"kubernetes": {**connection, "exec": exec_block}}]
    # No kubernetes_manifest: every in-cluster resource can be planned before the cluster exists.
    assert "kubernetes_manifest" not in stack["resource"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_name_endpoint_and_oidc_provider_are_outputs(stacks, env) -> None:
    stack = stacks[env]
    outputs = {name: o["value"] for name, o in stack["output"].items()}
    assert outputs["eks_cluster_name"] == ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "name")
    assert outputs["eks_cluster_endpoint"] == ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "endpoint")
    assert outputs["eks_oidc_provider_arn"] == ref(
        stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn"
    )


# --- first deploy: the AWS side only (eks.in_cluster_components false) ------------------------------------

AWS_SIDE_ONLY = {env: {"eks.in_cluster_components": False} for env in ENVIRONMENTS}
# A reference to a helm or kubernetes resource or data source (in depends_on, an expression or an output).
IN_CLUSTER_REFERENCE = re.compile(r"(?<![\w.])(?:data\.)?(?:helm|kubernetes)_\w+\.[\w-]+")


@pytest.fixture(scope="module")
def aws_side_stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Every environment synthesized the way main.py does, with ``eks.in_cluster_components`` overridden to false."""
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(AWS_SIDE_ONLY)})
    outdir: Path = tmp_path_factory.mktemp("aws-side")
    app = cdktf.App(outdir=str(outdir))
    for env in ENVIRONMENTS:
        MlPlatformStack(app, configs[env], DeploymentSettings.from_environ({}))
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
    assert in_cluster == {
        "helm_release": 4 if env in GPU_ENVIRONMENTS else 3,
        "kubernetes_service_account_v1": 2,
        "kubernetes_storage_class_v1": 1,
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_without_in_cluster_components_there_is_no_helm_or_kubernetes_provider_or_resource(
    aws_side_stacks, env
) -> None:
    stack = aws_side_stacks[env]
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
    assert cluster_of(stack)["vpc_config"]["endpoint_public_access"] is False
    groups = ["eks/cpu-nodes/node-group"] + (["eks/gpu-nodes/group/node-group"] if env in GPU_ENVIRONMENTS else [])
    assert len(resources(stack, "aws_eks_node_group")) == len(groups)
    addons = {a["addon_name"]: a for a in resources(stack, "aws_eks_addon").values()}
    assert sorted(addons) == ["aws-ebs-csi-driver", "coredns", "kube-proxy", "vpc-cni"]
    for group in groups:
        assert all(address(stack, "aws_eks_node_group", group) in a["depends_on"] for a in addons.values())
    # The add-on creates its own service account and binds it to the role: no Kubernetes API call of ours.
    assert addons["aws-ebs-csi-driver"]["service_account_role_arn"] == ref(
        stack, "aws_iam_role", "eks/addons/ebs-csi-irsa/role", "arn"
    )
    only(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider")
    only(stack, "aws_eks_access_policy_association", "eks/cluster/deployer-cluster-admin")
    assert {"eks_cluster_name", "eks_cluster_endpoint", "eks_oidc_provider_arn"} <= set(stack["output"])
