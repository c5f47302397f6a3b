"""The EKS control plane, as synthesized for each environment and built alone: encryption, logs, endpoint, admins."""

from __future__ import annotations

import json

import cdktf
import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.releases import KUBERNETES_RELEASES
from constructs.eks.settings import EksClusterSettings

from tests.eks.clusters import eks_cluster
from tests.support.stacks import DEPLOYER_ARN, TinyStack, context
from tests.support.synth_json import (
    ENVIRONMENTS,
    address,
    allow,
    data_ref,
    doc,
    only,
    output,
    policy,
    ref,
    resources,
    role_attachments,
    role_policies,
)

LOG_RETENTION = {"dev": 14, "staging": 30, "prod": 365}
VPC_CIDR = {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_encrypts_secrets_logs_and_keeps_the_endpoint_private(stacks, env) -> None:
    stack = stacks[env]
    cluster = only(stack, "aws_eks_cluster", "platform/eks/cluster/cluster")
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
    (attached,) = role_attachments(stack, "eks/cluster/cluster-role")
    assert attached.endswith(":iam::aws:policy/AmazonEKSClusterPolicy")
    assert only(stack, "aws_iam_role_policy_attachment", "eks/cluster/cluster-policy")["policy_arn"] == attached
    secrets_key = ref(stack, "aws_kms_key", "platform/keys/eks-secrets", "arn")
    assert role_policies(stack, "eks/cluster/cluster-role") == {
        "encrypt-secrets": doc(
            allow(
                "EnvelopeEncryptSecrets",
                ["kms:Encrypt", "kms:Decrypt", "kms:ListGrants", "kms:DescribeKey"],
                secrets_key,
            )
        )
    }


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
        "principal_arn": data_ref(stack, "aws_iam_session_context", "deployer", "issuer_arn"),
        "type": "STANDARD",
    }
    association = only(stack, "aws_eks_access_policy_association", "eks/cluster/deployer-cluster-admin")
    assert association["policy_arn"].endswith(":eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy")
    assert association["access_scope"] == {"type": "cluster"}
    assert association["principal_arn"] == ref(stack, "aws_eks_access_entry", "deployer-access", "principal_arn")
    # No other admins unless the matrix (or an override) names them.
    assert len(resources(stack, "aws_eks_access_entry")) == 1


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_cluster_name_endpoint_and_oidc_provider_are_outputs(stacks, env) -> None:
    stack = stacks[env]
    assert output(stack, "eks_cluster_name")["value"] == ref(stack, "aws_eks_cluster", "eks/cluster/cluster", "name")
    assert output(stack, "eks_cluster_endpoint")["value"] == ref(
        stack, "aws_eks_cluster", "eks/cluster/cluster", "endpoint"
    )
    assert output(stack, "eks_oidc_provider_arn")["value"] == ref(
        stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn"
    )


# --- one cluster, built alone ---------------------------------------------------------------------------


def test_a_cluster_built_alone_names_its_role_log_group_and_api_group_after_itself() -> None:
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    assert (cluster.name, cluster.release) == ("tiny", KUBERNETES_RELEASES["1.36"])
    stack = tiny.synth()
    (synthesized,) = stack["resource"]["aws_eks_cluster"].values()
    assert synthesized["name"] == "tiny"
    assert synthesized["vpc_config"]["subnet_ids"] == ["subnet-1", "subnet-2"]
    assert synthesized["vpc_config"]["endpoint_public_access"] is False
    assert "public_access_cidrs" not in synthesized["vpc_config"]
    (role,) = stack["resource"]["aws_iam_role"].values()
    assert role["name"] == "tiny-eks-cluster"
    (attachment,) = stack["resource"]["aws_iam_role_policy_attachment"].values()
    assert attachment["policy_arn"] == "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    (log_group,) = stack["resource"]["aws_cloudwatch_log_group"].values()
    assert (log_group["name"], log_group["retention_in_days"]) == ("/aws/eks/tiny/cluster", 90)
    (group,) = stack["resource"]["aws_security_group"].values()
    assert (group["name"], group["vpc_id"]) == ("tiny-eks-api", "vpc-1")


def test_policy_arns_are_in_the_partition_of_the_clusters_context() -> None:
    tiny = TinyStack()
    eks_cluster(tiny, context=context(partition="aws-us-gov"))
    stack = tiny.synth()
    (attachment,) = stack["resource"]["aws_iam_role_policy_attachment"].values()
    assert attachment["policy_arn"] == "arn:aws-us-gov:iam::aws:policy/AmazonEKSClusterPolicy"
    (association,) = stack["resource"]["aws_eks_access_policy_association"].values()
    assert association["policy_arn"] == "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def test_public_endpoint_with_named_cidrs_is_synthesized() -> None:
    tiny = TinyStack()
    eks_cluster(tiny, EksClusterSettings(public_access_cidrs=("203.0.113.0/24",)))
    (cluster,) = tiny.synth()["resource"]["aws_eks_cluster"].values()
    assert cluster["vpc_config"]["endpoint_public_access"] is True
    assert cluster["vpc_config"]["endpoint_private_access"] is True
    assert cluster["vpc_config"]["public_access_cidrs"] == ["203.0.113.0/24"]


def test_admin_roles_get_access_entries_and_the_deployer_entry_can_be_left_out() -> None:
    admin = "arn:aws:iam::123456789012:role/PlatformAdmins"
    tiny = TinyStack()
    eks_cluster(tiny, EksClusterSettings(admin_role_arns=(admin,), deployer_admin_access=False))
    stack = tiny.synth()
    (entry,) = stack["resource"]["aws_eks_access_entry"].values()
    assert entry["principal_arn"] == admin and entry["type"] == "STANDARD"
    (association,) = stack["resource"]["aws_eks_access_policy_association"].values()
    assert association["policy_arn"] == "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    assert "aws_iam_session_context" not in stack.get("data", {})


def test_admin_roles_and_the_deployer_each_get_their_own_entry() -> None:
    admin = "arn:aws:iam::123456789012:role/PlatformAdmins"
    tiny = TinyStack()
    cluster = eks_cluster(tiny, EksClusterSettings(admin_role_arns=(admin,)))
    assert len(cluster.admin_access) == 2
    stack = tiny.synth()
    principals = sorted(e["principal_arn"] for e in stack["resource"]["aws_eks_access_entry"].values())
    # The deployer is the context's (the platform reads it once, from its own session context data source).
    assert principals == sorted([admin, DEPLOYER_ARN])
    assert len(stack["resource"]["aws_eks_access_policy_association"]) == 2


def test_viewer_roles_read_the_whole_cluster_secrets_included_and_nothing_more() -> None:
    # The GitOps plan role: its plans refresh Helm releases, whose state Helm keeps in Secrets.
    viewer = "arn:aws:iam::123456789012:role/mlp-github-plan"
    tiny = TinyStack()
    eks_cluster(tiny, EksClusterSettings(viewer_role_arns=(viewer,)))
    stack = tiny.synth()
    ((name, entry),) = [
        (n, e) for n, e in stack["resource"]["aws_eks_access_entry"].items() if e["principal_arn"] == viewer
    ]
    assert entry["type"] == "STANDARD" and "kubernetes_groups" not in entry
    policies = {
        a["policy_arn"].rsplit("/", 1)[1]: a["access_scope"]
        for a in stack["resource"]["aws_eks_access_policy_association"].values()
        if a["principal_arn"] == f"${{aws_eks_access_entry.{name}.principal_arn}}"
    }
    # One read-everything policy on the whole cluster; never cluster admin.
    assert policies == {"AmazonEKSAdminViewPolicy": {"type": "cluster"}}


def test_a_role_cannot_be_both_viewer_and_admin() -> None:
    role = "arn:aws:iam::123456789012:role/PlatformAdmins"
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings(admin_role_arns=(role,), viewer_role_arns=(role,))
    assert "viewer_role_arns" in str(error.value) and "one access entry per cluster" in str(error.value)


PERSON = "arn:aws:iam::123456789012:role/people/ml-alice"


def test_namespace_access_is_one_entry_with_its_groups_and_the_edit_policy_on_those_namespaces_only() -> None:
    tiny = TinyStack()
    cluster = eks_cluster(tiny, context=context(partition="aws-us-gov"))
    cluster.grant_namespace_access(
        tiny.stack, "people", principal_arn=PERSON, namespaces=["vision", "nlp"], groups=["ml-vision", "ml-nlp"]
    )
    stack = tiny.synth()
    (cluster_name,) = stack["resource"]["aws_eks_cluster"]
    entries = {k: v for k, v in stack["resource"]["aws_eks_access_entry"].items() if v["principal_arn"] == PERSON}
    ((entry_name, entry),) = entries.items()
    # A standard entry mapping the role into the groups RoleBindings name; no access policy of its own.
    assert {k: v for k, v in entry.items() if k != "//"} == {
        "cluster_name": f"${{aws_eks_cluster.{cluster_name}.name}}",
        "principal_arn": PERSON,
        "type": "STANDARD",
        "kubernetes_groups": ["ml-vision", "ml-nlp"],
    }
    associations = [
        a
        for a in stack["resource"]["aws_eks_access_policy_association"].values()
        if a["principal_arn"] == f"${{aws_eks_access_entry.{entry_name}.principal_arn}}"
    ]
    # Referencing the entry makes Terraform create the entry first (EKS refuses an association without one).
    (association,) = associations
    assert association["policy_arn"] == "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
    assert association["access_scope"] == {"type": "namespace", "namespaces": ["vision", "nlp"]}
    assert association["cluster_name"] == f"${{aws_eks_cluster.{cluster_name}.name}}"
    # The deployer stays the only cluster-wide grant.
    scopes = sorted(a["access_scope"]["type"] for a in stack["resource"]["aws_eks_access_policy_association"].values())
    assert scopes == ["cluster", "namespace"]


def test_namespace_access_to_no_namespace_is_rejected_naming_namespaces() -> None:
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    with pytest.raises(ConfigurationError) as error:
        cluster.grant_namespace_access(tiny.stack, "people", principal_arn=PERSON, namespaces=[], groups=["ml-vision"])
    # An edit policy scoped to no namespace is one EKS refuses at apply time; caught at synthesis instead.
    assert (error.value.where, error.value.field, error.value.value) == ("tiny/cluster/people", "namespaces", [])
    principals = [e["principal_arn"] for e in tiny.synth()["resource"]["aws_eks_access_entry"].values()]
    assert PERSON not in principals


def test_private_access_cidrs_add_https_rules_to_the_api_group() -> None:
    tiny = TinyStack()
    eks_cluster(tiny, EksClusterSettings(private_access_cidrs=("172.16.0.0/12",)))
    rules = tiny.synth()["resource"]["aws_vpc_security_group_ingress_rule"].values()
    assert sorted((r["cidr_ipv4"], r["from_port"], r["to_port"]) for r in rules) == [
        ("10.0.0.0/16", 443, 443),
        ("172.16.0.0/12", 443, 443),
    ]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "bad name"}, "name"),
        ({"name": ""}, "name"),
        ({"name": "-leading-dash"}, "name"),
        ({"subnet_ids": ["subnet-1"]}, "subnet_ids"),
    ],
)
def test_cluster_construct_rejects_bad_props(overrides, field) -> None:
    with pytest.raises(ConfigurationError) as error:
        eks_cluster(TinyStack(), **overrides)
    assert (error.value.where, error.value.field) == ("tiny/cluster", field)
