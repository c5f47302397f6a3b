"""EKS settings, matrix rules and construct props: bad values fail early and name the field."""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import date
from typing import Any

import cdktf
import constructs.eks_cluster as eks_cluster
import pytest
from constructs.eks_addons import EksAddons, EksAddonsProps
from constructs.eks_cluster import (
    KUBERNETES_RELEASES,
    EksCluster,
    EksClusterProps,
    EksClusterSettings,
    supported_versions,
)
from constructs.eks_cluster_components import (
    EksClusterComponents,
    EksClusterComponentsProps,
    load_balancer_controller_statements,
)
from constructs.eks_gpu_node_group import EksGpuNodeGroup, EksGpuNodeGroupProps, EksGpuNodeGroupSettings
from constructs.eks_node_group import EksNodeGroup, EksNodeGroupProps, EksNodeGroupSettings, NodeTaint
from constructs.iam_policy import PolicyStatement
from constructs.irsa_role import IrsaRole, IrsaRoleProps
from constructs.provider_bindings import aws
from constructs.validation import ConfigurationError

from stacks.environments import BASE_MATRIX, apply_overrides, load_environments, validate_environment
from tests.conftest import policy

OWNER_TAGS = {"environment": "test", "team": "t", "cost_center": "c", "project": "p"}
STATEMENT = PolicyStatement(sid="Read", actions=("s3:GetObject",), resources=("arn:aws:s3:::b/*",))


class TinyStack:
    """A stack with an AWS provider, two KMS keys and (optionally) an EKS cluster, for construct tests."""

    def __init__(self) -> None:
        self.app = cdktf.Testing.app()
        self.stack = cdktf.TerraformStack(self.app, "tiny")
        aws.provider.AwsProvider(self.stack, "aws", region="us-east-1")
        self.key = aws.kms_key.KmsKey(self.stack, "key")

    def cluster(self, settings: EksClusterSettings | None = None, **overrides: Any) -> EksCluster:
        props = {
            "name": "tiny",
            "settings": settings or EksClusterSettings(),
            "vpc_id": "vpc-1",
            "vpc_cidr": "10.0.0.0/16",
            "subnet_ids": ["subnet-1", "subnet-2"],
            "secrets_key": self.key,
            "logs_key": self.key,
        }
        props.update(overrides)
        return EksCluster(self.stack, "cluster", EksClusterProps(**props))

    def synth(self) -> dict[str, Any]:
        return json.loads(cdktf.Testing.synth(self.stack))


def irsa_props(**overrides: Any) -> IrsaRoleProps:
    props: dict[str, Any] = {
        "role_name": "tiny-reader",
        "description": "reads",
        "namespace": "ml-jobs",
        "service_account_name": "reader",
        "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC",
        "oidc_issuer_host": "oidc.eks.us-east-1.amazonaws.com/id/ABC",
        "statements": (STATEMENT,),
    }
    props.update(overrides)
    return IrsaRoleProps(**props)


# --- IRSA -----------------------------------------------------------------------------------------------


def test_irsa_role_trusts_one_account_and_annotates_it() -> None:
    tiny = TinyStack()
    IrsaRole(tiny.stack, "reader", irsa_props())
    stack = tiny.synth()
    (role,) = stack["resource"]["aws_iam_role"].values()
    assert policy(role["assume_role_policy"])["Statement"][0]["Condition"] == {
        "StringEquals": {
            "oidc.eks.us-east-1.amazonaws.com/id/ABC:sub": "system:serviceaccount:ml-jobs:reader",
            "oidc.eks.us-east-1.amazonaws.com/id/ABC:aud": "sts.amazonaws.com",
        }
    }
    (account,) = stack["resource"]["kubernetes_service_account_v1"].values()
    assert account["metadata"]["name"] == "reader" and account["metadata"]["namespace"] == "ml-jobs"
    (role_name,) = stack["resource"]["aws_iam_role"]
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": f"${{aws_iam_role.{role_name}.arn}}"}
    (inline,) = stack["resource"]["aws_iam_role_policy"].values()
    assert policy(inline["policy"])["Statement"] == [STATEMENT.to_json()]


def test_irsa_role_without_a_service_account_for_add_ons() -> None:
    tiny = TinyStack()
    IrsaRole(tiny.stack, "reader", irsa_props(create_service_account=False))
    assert "kubernetes_service_account_v1" not in tiny.synth()["resource"]


@pytest.mark.parametrize(
    "field, value",
    [
        ("service_account_name", "Bad_Name"),
        ("service_account_name", "-leading-dash"),
        ("service_account_name", "x" * 64),
        ("service_account_name", ""),
        ("namespace", "kube.system"),
        ("role_name", "r" * 65),
    ],
)
def test_irsa_role_rejects_names_kubernetes_or_iam_would_refuse(field, value) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        IrsaRole(tiny.stack, "reader", irsa_props(**{field: value}))
    assert error.value.field == field
    assert error.value.where == "tiny/reader"
    if "service_account" in field or field == "namespace":
        assert "DNS-1123 label" in str(error.value)


def test_irsa_role_rejects_full_access_policies_and_roles_without_permissions() -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError, match=r"managed_policy_arns.*FullAccess"):
        IrsaRole(tiny.stack, "a", irsa_props(managed_policy_arns=("arn:aws:iam::aws:policy/AmazonS3FullAccess",)))
    with pytest.raises(ConfigurationError, match="'statements'"):
        IrsaRole(tiny.stack, "b", irsa_props(statements=()))


# --- cluster settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field, fragment",
    [
        ({"public_access_cidrs": ("0.0.0.0/0",)}, "public_access_cidrs", "never 0.0.0.0/0"),
        ({"public_access_cidrs": ("203.0.113.0/24", "0.0.0.0/0")}, "public_access_cidrs", "never 0.0.0.0/0"),
        ({"public_access_cidrs": ("0.0.0.0/1",)}, "public_access_cidrs", "prefix /8 or longer"),
        ({"public_access_cidrs": ("10.0.0.1/8",)}, "public_access_cidrs", "CIDR"),
        ({"public_access_cidrs": ["203.0.113.0/24"]}, "public_access_cidrs", "list"),
        ({"private_access_cidrs": ("0.0.0.0/0",)}, "private_access_cidrs", "never 0.0.0.0/0"),
        ({"kubernetes_version": "1.29"}, "kubernetes_version", "'1.35', '1.36'"),
        ({"kubernetes_version": "1.32"}, "kubernetes_version", "'1.35', '1.36'"),
        ({"log_types": ("api", "authenticator")}, "log_types", "includes"),
        ({"log_types": ("api", "audit", "authenticator", "kubelet")}, "log_types", "controllerManager"),
        ({"log_retention_days": 10}, "log_retention_days", "one of"),
        ({"admin_role_arns": ("arn:aws:iam::123:user/me",)}, "admin_role_arns", "IAM role ARNs"),
        ({"support_type": "FOREVER"}, "support_type", "STANDARD"),
        ({"storage_reclaim_policy": "Recycle"}, "storage_reclaim_policy", "Retain"),
        ({"cpu_node_group": EksNodeGroupSettings(min_size=0, desired_size=0)}, "cpu_node_group.min_size", "1 to"),
        (
            {"cpu_node_group": EksNodeGroupSettings(instance_types=("g5.xlarge",))},
            "cpu_node_group.instance_types",
            "non-GPU",
        ),
        ({"cpu_node_group": EksGpuNodeGroupSettings(min_size=1, desired_size=1)}, "cpu_node_group", "EksNodeGroup"),
        ({"deployer_admin_access": "yes"}, "deployer_admin_access", "boolean"),
        ({"deployer_admin_access": False}, "deployer_admin_access", "admin_role_arns listing the deploying role"),
        ({"in_cluster_components": "false"}, "in_cluster_components", "boolean"),
        ({"in_cluster_components": 0}, "in_cluster_components", "boolean"),
        ({"in_cluster_components": None}, "in_cluster_components", "boolean"),
    ],
)
def test_cluster_settings_reject_unsafe_or_unknown_values(changes, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings(**changes)
    assert error.value.where == "EksClusterSettings"
    assert error.value.field == field
    assert fragment in error.value.allowed


def test_public_endpoint_with_named_cidrs_is_allowed_and_synthesized() -> None:
    settings = EksClusterSettings(public_access_cidrs=("203.0.113.0/24",))
    assert settings.endpoint_public_access is True
    tiny = TinyStack()
    tiny.cluster(settings)
    (cluster,) = tiny.synth()["resource"]["aws_eks_cluster"].values()
    assert cluster["vpc_config"]["endpoint_public_access"] is True
    assert cluster["vpc_config"]["endpoint_private_access"] is True
    assert cluster["vpc_config"]["public_access_cidrs"] == ["203.0.113.0/24"]


def test_admin_roles_get_access_entries_and_the_deployer_entry_can_be_left_out() -> None:
    admin = "arn:aws:iam::123456789012:role/PlatformAdmins"
    tiny = TinyStack()
    tiny.cluster(EksClusterSettings(admin_role_arns=(admin,), deployer_admin_access=False))
    stack = tiny.synth()
    (entry,) = stack["resource"]["aws_eks_access_entry"].values()
    assert entry["principal_arn"] == admin and entry["type"] == "STANDARD"
    (association,) = stack["resource"]["aws_eks_access_policy_association"].values()
    assert association["policy_arn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert "aws_iam_session_context" not in stack.get("data", {})


def test_private_access_cidrs_add_https_rules_to_the_api_group() -> None:
    tiny = TinyStack()
    tiny.cluster(EksClusterSettings(private_access_cidrs=("172.16.0.0/12",)))
    rules = tiny.synth()["resource"]["aws_vpc_security_group_ingress_rule"].values()
    assert sorted((r["cidr_ipv4"], r["from_port"], r["to_port"]) for r in rules) == [
        ("10.0.0.0/16", 443, 443),
        ("172.16.0.0/12", 443, 443),
    ]


# --- Kubernetes releases and the EKS support calendar ------------------------------------------------------


def test_every_release_pins_builds_for_its_own_minor_and_the_eks_support_windows() -> None:
    build = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
    for minor, release in KUBERNETES_RELEASES.items():
        for addon in ("vpc_cni", "coredns", "kube_proxy", "ebs_csi_driver"):
            assert build.match(getattr(release, addon)), (minor, addon)
        # kube-proxy and cluster-autoscaler are released per Kubernetes minor and must match the cluster's.
        assert release.kube_proxy.startswith(f"v{minor}."), minor
        assert re.fullmatch(rf"v{re.escape(minor)}\.\d+", release.cluster_autoscaler_image), minor
        # Extended support is the 12 months after standard support.
        end = release.end_of_standard_support
        assert release.end_of_extended_support == end.replace(year=end.year + 1), minor


def test_the_default_is_the_newest_minor_which_has_the_longest_standard_support() -> None:
    newest = max(KUBERNETES_RELEASES, key=lambda minor: tuple(int(part) for part in minor.split(".")))
    assert EksClusterSettings().kubernetes_version == newest == "1.36"
    assert KUBERNETES_RELEASES[newest].end_of_standard_support == max(
        release.end_of_standard_support for release in KUBERNETES_RELEASES.values()
    )


@pytest.mark.parametrize(
    "day, support_type, versions",
    [
        (date(2026, 11, 28), "STANDARD", ("1.35", "1.36")),
        (date(2027, 3, 26), "STANDARD", ("1.35", "1.36")),
        (date(2027, 3, 27), "STANDARD", ("1.36",)),
        (date(2027, 8, 1), "STANDARD", ("1.36",)),
        (date(2027, 8, 2), "STANDARD", ()),
        (date(2027, 8, 2), "EXTENDED", ("1.35", "1.36")),
        (date(2028, 3, 27), "EXTENDED", ("1.36",)),
        (date(2028, 8, 2), "EXTENDED", ()),
    ],
)
def test_supported_versions_follow_the_eks_calendar(day, support_type, versions) -> None:
    assert supported_versions(day, support_type) == versions


def test_standard_support_type_rejects_a_version_once_its_standard_support_ended() -> None:
    settings = EksClusterSettings(kubernetes_version="1.35")
    settings.require_supported_on(date(2027, 3, 26), "here")
    with pytest.raises(ConfigurationError) as error:
        settings.require_supported_on(date(2027, 3, 27), "here")
    assert (error.value.where, error.value.field, error.value.value) == ("here", "kubernetes_version", "1.35")
    assert "('1.36',)" in error.value.allowed
    assert "support_type 'EXTENDED'" in error.value.allowed


def test_extended_support_type_keeps_a_version_until_extended_support_ends() -> None:
    settings = EksClusterSettings(kubernetes_version="1.35", support_type="EXTENDED")
    settings.require_supported_on(date(2027, 3, 27), "here")
    with pytest.raises(ConfigurationError) as error:
        settings.require_supported_on(date(2028, 3, 27), "here")
    assert (error.value.field, error.value.value) == ("kubernetes_version", "1.35")
    assert "('1.36',)" in error.value.allowed


def test_a_table_without_any_supported_minor_asks_for_the_next_one() -> None:
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings().require_supported_on(date(2027, 8, 2), "here")
    assert "add the next Kubernetes minor" in error.value.allowed


def test_cluster_refuses_a_version_eks_would_upgrade_by_itself_on_the_day_of_synthesis(monkeypatch) -> None:
    monkeypatch.setattr(eks_cluster, "synthesis_date", lambda: date(2027, 3, 27))
    with pytest.raises(ConfigurationError) as error:
        TinyStack().cluster(EksClusterSettings(kubernetes_version="1.35"))
    assert (error.value.where, error.value.field) == ("tiny/cluster", "kubernetes_version")
    tiny = TinyStack()
    tiny.cluster(EksClusterSettings(kubernetes_version="1.35", support_type="EXTENDED"))
    (cluster,) = tiny.synth()["resource"]["aws_eks_cluster"].values()
    assert (cluster["version"], cluster["upgrade_policy"]) == ("1.35", {"support_type": "EXTENDED"})


def test_an_override_to_the_other_minor_brings_its_own_addon_builds(monkeypatch) -> None:
    monkeypatch.setattr(eks_cluster, "synthesis_date", lambda: date(2026, 11, 28))
    overrides = {"staging": {"eks.kubernetes_version": "1.35"}}
    settings = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})["staging"].eks
    tiny = TinyStack()
    cluster = tiny.cluster(settings)
    EksAddons(
        tiny.stack,
        "addons",
        EksAddonsProps(cluster=cluster, region="us-east-1", volume_key=tiny.key, owner_tags=OWNER_TAGS),
    )
    stack = tiny.synth()
    (synthesized,) = stack["resource"]["aws_eks_cluster"].values()
    assert synthesized["version"] == "1.35"
    assert {a["addon_name"]: a["addon_version"] for a in stack["resource"]["aws_eks_addon"].values()} == {
        "vpc-cni": "v1.21.1-eksbuild.7",
        "kube-proxy": "v1.35.3-eksbuild.2",
        "coredns": "v1.13.2-eksbuild.4",
        "aws-ebs-csi-driver": "v1.66.0-eksbuild.1",
    }


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "bad name"}, "name"),
        ({"subnet_ids": ["subnet-1"]}, "subnet_ids"),
    ],
)
def test_cluster_construct_rejects_bad_props(overrides, field) -> None:
    with pytest.raises(ConfigurationError) as error:
        TinyStack().cluster(**overrides)
    assert (error.value.where, error.value.field) == ("tiny/cluster", field)


# --- node groups ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"min_size": 5, "max_size": 2, "desired_size": 2}, "min_size"),
        ({"desired_size": 9}, "desired_size"),
        ({"max_size": 0, "min_size": 0, "desired_size": 0}, "max_size"),
        ({"capacity_type": "RESERVED"}, "capacity_type"),
        ({"instance_types": ()}, "instance_types"),
        ({"instance_types": ("ml.m5.large",)}, "instance_types"),
        ({"disk_size_gib": 10}, "disk_size_gib"),
        ({"min_size": "2"}, "min_size"),
    ],
)
def test_node_group_settings_reject_bad_shapes(changes, field) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksNodeGroupSettings(**changes)
    assert (error.value.where, error.value.field) == ("EksNodeGroupSettings", field)


def test_min_greater_than_max_names_both_fields() -> None:
    with pytest.raises(ConfigurationError, match=r"'min_size' = 5 .* <= max_size \(2\)"):
        EksNodeGroupSettings(min_size=5, max_size=2, desired_size=2)


@pytest.mark.parametrize(
    "instance_types, fragment",
    [
        (("m6i.xlarge",), "NVIDIA GPU instance type"),
        (("inf2.xlarge",), "NVIDIA GPU instance type"),
        (("g5g.xlarge",), "NVIDIA GPU instance type"),
        (("g5.xlarge", "g5.12xlarge"), "same number of GPUs"),
    ],
)
def test_gpu_group_accepts_only_nvidia_types_of_one_shape(instance_types, fragment) -> None:
    with pytest.raises(ConfigurationError) as error:
        EksGpuNodeGroupSettings(instance_types=instance_types)
    assert (error.value.where, error.value.field) == ("EksGpuNodeGroupSettings", "instance_types")
    assert fragment in error.value.allowed


def test_gpu_group_construct_rejects_plain_settings_and_counts_gpus() -> None:
    tiny = TinyStack()
    cluster = tiny.cluster()
    props = {
        "name": "tiny-gpu",
        "cluster": cluster,
        "subnet_ids": ["subnet-1"],
        "volume_key": tiny.key,
        "owner_tags": OWNER_TAGS,
    }
    with pytest.raises(ConfigurationError) as error:
        EksGpuNodeGroup(tiny.stack, "plain", EksGpuNodeGroupProps(settings=EksNodeGroupSettings(), **props))
    assert (error.value.where, error.value.field) == ("tiny/plain", "settings")
    EksGpuNodeGroup(
        tiny.stack,
        "quad",
        EksGpuNodeGroupProps(settings=EksGpuNodeGroupSettings(instance_types=("g5.12xlarge", "g6.12xlarge")), **props),
    )
    (group,) = tiny.synth()["resource"]["aws_eks_node_group"].values()
    assert group["tags"]["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert group["tags"]["k8s.io/cluster-autoscaler/tiny"] == "owned"


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "Tiny_CPU"}, "name"),
        ({"name": "a-node-group-name-that-is-far-too-long"}, "name"),
        ({"ami_type": "AL2_x86_64"}, "ami_type"),
        ({"subnet_ids": []}, "subnet_ids"),
        ({"labels": {"bad key!": "x"}}, "labels"),
        ({"taints": (NodeTaint(key="dedicated", value="x", effect="NoSchedule"),)}, "taints"),
        ({"autoscaler_resources": {"nvidia.com/gpu": "one"}}, "autoscaler_resources"),
        ({"owner_tags": {"team": "t"}}, "owner_tags"),
    ],
)
def test_node_group_construct_rejects_bad_props(overrides, field) -> None:
    tiny = TinyStack()
    props: dict[str, Any] = {
        "name": "tiny-cpu",
        "cluster": tiny.cluster(),
        "subnet_ids": ["subnet-1"],
        "settings": EksNodeGroupSettings(),
        "ami_type": "AL2023_x86_64_STANDARD",
        "volume_key": tiny.key,
        "owner_tags": OWNER_TAGS,
    }
    props.update(overrides)
    with pytest.raises(ConfigurationError) as error:
        EksNodeGroup(tiny.stack, "nodes", EksNodeGroupProps(**props))
    assert (error.value.where, error.value.field) == ("tiny/nodes", field)


def test_addons_without_in_cluster_resources_keep_the_addons_and_role_but_no_storage_class() -> None:
    tiny = TinyStack()
    cluster = tiny.cluster(EksClusterSettings(in_cluster_components=False))
    addons = EksAddons(
        tiny.stack,
        "addons",
        EksAddonsProps(
            cluster=cluster, region="us-east-1", volume_key=tiny.key, owner_tags=OWNER_TAGS, in_cluster_resources=False
        ),
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


def components(tiny: TinyStack, cluster: EksCluster, **overrides: Any) -> EksClusterComponents:
    props: dict[str, Any] = {
        "cluster": cluster,
        "region": "us-east-1",
        "account_id": "123456789012",
        "vpc_id": "vpc-1",
        "gpu_nodes": True,
    }
    props.update(overrides)
    return EksClusterComponents(tiny.stack, "components", EksClusterComponentsProps(**props))


def test_components_without_in_cluster_resources_are_the_two_irsa_roles_only() -> None:
    tiny = TinyStack()
    built = components(tiny, tiny.cluster(EksClusterSettings(in_cluster_components=False)), in_cluster_resources=False)
    assert built.releases == {}
    assert built.autoscaler_role.service_account is None
    assert built.load_balancer_controller_role.service_account is None
    stack = tiny.synth()
    assert not [kind for block in ("resource", "data") for kind in stack.get(block, {}) if not kind.startswith("aws_")]
    assert set(stack["terraform"]["required_providers"]) == {"aws"}
    roles = {r["name"]: policy(r["assume_role_policy"]) for r in stack["resource"]["aws_iam_role"].values()}
    (local_name,) = stack["locals"]
    host = f"${{local.{local_name}}}"
    (provider,) = stack["resource"]["aws_iam_openid_connect_provider"]
    for role_name, account in (
        ("tiny-cluster-autoscaler", "cluster-autoscaler"),
        ("tiny-aws-load-balancer-controller", "aws-load-balancer-controller"),
    ):
        assert roles[role_name]["Statement"] == [
            {
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": f"${{aws_iam_openid_connect_provider.{provider}.arn}}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host}:sub": f"system:serviceaccount:kube-system:{account}",
                        f"{host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ]
    # Each role keeps its permissions (the cluster role's secrets grant is the third inline policy).
    irsa_policies = [p for p in stack["resource"]["aws_iam_role_policy"].values() if "-irsa_role_" in p["role"]]
    assert sorted(p["name"] for p in irsa_policies) == ["permissions", "permissions"]


def test_components_with_in_cluster_resources_install_the_charts_into_the_accounts() -> None:
    tiny = TinyStack()
    built = components(tiny, tiny.cluster())
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


def test_addons_and_components_reject_a_non_boolean_in_cluster_resources() -> None:
    tiny = TinyStack()
    cluster = tiny.cluster()
    with pytest.raises(ConfigurationError) as error:
        EksAddons(
            tiny.stack,
            "addons",
            EksAddonsProps(
                cluster=cluster, region="us-east-1", volume_key=tiny.key, owner_tags=OWNER_TAGS, in_cluster_resources=1
            ),
        )
    assert (error.value.where, error.value.field) == ("tiny/addons", "in_cluster_resources")
    with pytest.raises(ConfigurationError) as error:
        components(tiny, cluster, in_cluster_resources="no")
    assert (error.value.where, error.value.field) == ("tiny/components", "in_cluster_resources")


def test_in_cluster_components_is_overridable_per_environment_and_type_checked() -> None:
    overrides = {"prod": {"eks.in_cluster_components": False}}
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    assert {name: config.eks.in_cluster_components for name, config in configs.items()} == {
        "dev": True,
        "staging": True,
        "prod": False,
    }
    wrong = {"staging": {"eks.in_cluster_components": "false"}}
    with pytest.raises(ConfigurationError) as error:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(wrong)})
    assert (error.value.where, error.value.field) == ("environment 'staging'", "eks.in_cluster_components")
    assert "boolean" in error.value.allowed


def test_addons_construct_rejects_bad_reclaim_policy_and_missing_tags() -> None:
    tiny = TinyStack()
    cluster = tiny.cluster()
    base = {"cluster": cluster, "region": "us-east-1", "volume_key": tiny.key, "owner_tags": OWNER_TAGS}
    with pytest.raises(ConfigurationError, match="storage_reclaim_policy"):
        EksAddons(tiny.stack, "a", EksAddonsProps(**{**base, "storage_reclaim_policy": "Recycle"}))
    with pytest.raises(ConfigurationError, match="owner_tags"):
        EksAddons(tiny.stack, "b", EksAddonsProps(**{**base, "owner_tags": {"team": "t"}}))


# --- the environment matrix -------------------------------------------------------------------------------


def test_a_gpu_group_in_dev_is_rejected_by_the_matrix() -> None:
    dev = BASE_MATRIX["dev"]
    with_gpus = dataclasses.replace(
        dev, eks=dataclasses.replace(dev.eks, gpu_node_group=BASE_MATRIX["staging"].eks.gpu_node_group)
    )
    with pytest.raises(ConfigurationError) as error:
        validate_environment(with_gpus)
    assert error.value.where == "environment 'dev'"
    assert error.value.field == "eks.gpu_node_group.instance_types"
    assert "gpu_enabled is False" in error.value.allowed


def test_dev_gpu_group_cannot_be_switched_on_by_override_either() -> None:
    with pytest.raises(ConfigurationError, match=r"eks\.gpu_node_group\.max_size.*enabled section"):
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps({"dev": {"eks.gpu_node_group.max_size": 2}})})
    with pytest.raises(ConfigurationError, match=r"eks\.cpu_node_group\.instance_types.*non-GPU"):
        load_environments(
            environ={"ML_PLATFORM_OVERRIDES": json.dumps({"dev": {"eks.cpu_node_group.instance_types": ["g5.xlarge"]}})}
        )


def test_node_group_min_above_max_via_override_names_environment_and_field() -> None:
    with pytest.raises(ConfigurationError) as error:
        apply_overrides(BASE_MATRIX, {"staging": {"eks.gpu_node_group.min_size": 5}})
    assert error.value.where == "environment 'staging'"
    assert error.value.field == "eks.gpu_node_group.min_size"


def test_public_endpoint_overrides() -> None:
    open_dev = {"dev": {"eks.public_access_cidrs": ["203.0.113.0/24"]}}
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(open_dev)})
    assert configs["dev"].eks.public_access_cidrs == ("203.0.113.0/24",)
    assert configs["dev"].eks.endpoint_public_access is True
    assert configs["prod"].eks.endpoint_public_access is False
    world = {"dev": {"eks.public_access_cidrs": ["0.0.0.0/0"]}}
    with pytest.raises(ConfigurationError) as error:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(world)})
    assert (error.value.where, error.value.field) == ("environment 'dev'", "eks.public_access_cidrs")
    assert "never 0.0.0.0/0" in error.value.allowed
    prod = {"prod": {"eks.public_access_cidrs": ["203.0.113.0/24"]}}
    with pytest.raises(ConfigurationError) as error:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(prod)})
    assert (error.value.where, error.value.field) == ("environment 'prod'", "eks.public_access_cidrs")
    assert "protected" in error.value.allowed


def test_matrix_gives_every_environment_a_cluster_and_gpus_only_where_enabled() -> None:
    for name, config in load_environments(environ={}).items():
        assert config.eks is not None
        assert config.eks.endpoint_public_access is False
        assert (config.eks.gpu_node_group is not None) == config.gpu_enabled, name


# --- the load balancer controller policy asset -------------------------------------------------------------


def test_controller_policy_asset_is_filled_in_completely() -> None:
    statements = load_balancer_controller_statements(
        partition="aws", region="eu-west-1", account_id="123456789012", cluster_name="c1", vpc_arn="arn:vpc"
    )
    text = json.dumps([s.to_json() for s in statements])
    assert not re.search(r"\{\{\w+\}\}", text)
    assert "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/*/*" in text
    assert '"aws:ResourceTag/elbv2.k8s.aws/cluster": "c1"' in text
    assert not [a for s in statements for a in s.actions if a == "*" or a.endswith(":*")]


def test_controller_policy_fits_the_inline_policy_quota() -> None:
    # IAM allows 10,240 characters (whitespace excluded) of inline policies per role.
    statements = load_balancer_controller_statements(
        partition="aws-us-gov",
        region="ap-southeast-2",
        account_id="123456789012",
        cluster_name="a-long-project-name-staging",
        vpc_arn="arn:aws-us-gov:ec2:ap-southeast-2:123456789012:vpc/vpc-0123456789abcdef0",
    )
    document = json.dumps({"Version": "2012-10-17", "Statement": [s.to_json() for s in statements]})
    assert len(re.sub(r"\s", "", document)) < 10_240
