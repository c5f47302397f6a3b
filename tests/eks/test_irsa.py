"""IRSA: the cluster's OIDC provider, roles that exactly one service account may assume, and the accounts."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.core.iam import PolicyStatement
from constructs.eks.cluster import EksCluster
from constructs.eks.irsa import IrsaRole, IrsaRoleProps

from stacks.matrix import MATRIX
from tests.eks.clusters import IRSA, eks_cluster, expected_irsa_trust, issuer_host_local, web_identity_trust
from tests.support.stacks import TinyStack
from tests.support.synth_json import ENVIRONMENTS, address, doc, only, policy, ref, resources

STATEMENT = PolicyStatement(sid="Read", actions=("s3:GetObject",), resources=("arn:aws:s3:::b/*",))
PROVIDER_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC"
ISSUER_HOST = "oidc.eks.us-east-1.amazonaws.com/id/ABC"


def irsa_props(**overrides: Any) -> IrsaRoleProps:
    props: dict[str, Any] = {
        "role_name": "tiny-reader",
        "description": "reads",
        "namespace": "ml-jobs",
        "service_account_name": "reader",
        "oidc_provider_arn": PROVIDER_ARN,
        "oidc_issuer_host": ISSUER_HOST,
        "statements": (STATEMENT,),
    }
    props.update(overrides)
    return IrsaRoleProps(**props)


def named(stack: dict[str, Any], resource_type: str, prefix: str) -> str:
    """The logical name of the one resource of a tiny stack whose name starts with ``prefix`` (its construct path)."""
    (name,) = [name for name in stack["resource"].get(resource_type, {}) if name.startswith(prefix)]
    return name


# --- the platform's roles, per environment --------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_oidc_provider_trusts_the_cluster_issuer_for_sts(stacks, env) -> None:
    stack = stacks[env]
    provider = only(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider")
    issuer = f"{address(stack, 'aws_eks_cluster', 'eks/cluster/cluster')}.identity[0].oidc[0].issuer"
    assert provider["url"] == f"${{{issuer}}}"
    assert provider["client_id_list"] == ["sts.amazonaws.com"]
    # AWS provider 5.x computes the thumbprint; none is pinned.
    assert "thumbprint_list" not in provider
    assert stack["locals"][issuer_host_local(stack)] == f'${{replace({issuer}, "https://", "")}}'


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
    # The EBS CSI add-on creates and annotates its own account; the others are Terraform's.
    terraforms = {path: key for path, key in IRSA.items() if not path.startswith("eks/addons/")}
    # Each Kubeflow team's jobs run as the 'training' account of the team's namespace, with the team's role.
    kubeflow = MATRIX[env].kubeflow
    for team in kubeflow.teams if kubeflow is not None else ():
        terraforms[f"kubeflow/team-{team.name}/training-irsa/role"] = (team.name, "training")
    assert set(accounts) == set(terraforms.values())
    for role_path, key in terraforms.items():
        assert accounts[key]["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": ref(stack, "aws_iam_role", role_path, "arn")
        }
        assert accounts[key]["automount_service_account_token"] is True


# --- IrsaRole, built alone -----------------------------------------------------------------------------


def test_irsa_role_trusts_one_account_and_annotates_it() -> None:
    tiny = TinyStack()
    IrsaRole(tiny.stack, "reader", irsa_props())
    stack = tiny.synth()
    (role,) = stack["resource"]["aws_iam_role"].values()
    assert policy(role["assume_role_policy"]) == web_identity_trust(PROVIDER_ARN, ISSUER_HOST, "ml-jobs", "reader")
    assert role["max_session_duration"] == 3600
    (account,) = stack["resource"]["kubernetes_service_account_v1"].values()
    assert account["metadata"]["name"] == "reader" and account["metadata"]["namespace"] == "ml-jobs"
    (role_name,) = stack["resource"]["aws_iam_role"]
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": f"${{aws_iam_role.{role_name}.arn}}"}
    (inline,) = stack["resource"]["aws_iam_role_policy"].values()
    assert policy(inline["policy"])["Statement"] == [STATEMENT.to_json()]


def test_irsa_role_without_a_service_account_for_add_ons() -> None:
    tiny = TinyStack()
    role = IrsaRole(tiny.stack, "reader", irsa_props(create_service_account=False))
    assert role.service_account is None
    stack = tiny.synth()
    assert "kubernetes_service_account_v1" not in stack["resource"]
    assert len(stack["resource"]["aws_iam_role"]) == 1


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


# --- EksCluster.add_service_account ----------------------------------------------------------------------


def add_reader(cluster: EksCluster, tiny: TinyStack, id: str = "reader", **overrides: Any) -> IrsaRole:
    """``cluster.add_service_account`` in ``tiny``'s stack: a reader role for ``ml-jobs/reader``, with ``overrides``."""
    arguments: dict[str, Any] = {
        "role_name": "tiny-reader",
        "description": "reads the training data",
        "namespace": "ml-jobs",
        "service_account_name": "reader",
        "statements": (STATEMENT,),
        "managed_policy_arns": ("arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess",),
        **overrides,
    }
    return cluster.add_service_account(tiny.stack, id, **arguments)


@pytest.mark.parametrize("create", [True, False])
def test_add_service_account_trusts_that_clusters_provider_for_that_account_only(create) -> None:
    tiny = TinyStack()
    eks_cluster(tiny, id="first")
    second = eks_cluster(tiny, id="second", name="tiny-second")
    reader = add_reader(second, tiny, create_service_account=create)
    assert reader.node.path == "tiny/reader"
    assert (reader.namespace, reader.service_account_name) == ("ml-jobs", "reader")
    stack = tiny.synth()
    role_name = named(stack, "aws_iam_role", "reader_")
    role = stack["resource"]["aws_iam_role"][role_name]
    assert (role["name"], role["description"]) == ("tiny-reader", "reads the training data")
    # The second cluster's provider and issuer, not the first's: no other cluster's tokens are accepted.
    provider = named(stack, "aws_iam_openid_connect_provider", "second_")
    issuer_host = issuer_host_local(stack, "second_")
    assert policy(role["assume_role_policy"]) == web_identity_trust(
        f"${{aws_iam_openid_connect_provider.{provider}.arn}}", f"${{local.{issuer_host}}}", "ml-jobs", "reader"
    )
    issuer = f"aws_eks_cluster.{named(stack, 'aws_eks_cluster', 'second_')}.identity[0].oidc[0].issuer"
    assert stack["locals"][issuer_host] == f'${{replace({issuer}, "https://", "")}}'

    # The permissions: the statements inline, the managed policies attached.
    (inline,) = [p for p in stack["resource"]["aws_iam_role_policy"].values() if role_name in p["role"]]
    assert (inline["name"], policy(inline["policy"])) == ("permissions", doc(STATEMENT.to_json()))
    (attached,) = [a for a in stack["resource"]["aws_iam_role_policy_attachment"].values() if role_name in a["role"]]
    assert attached["policy_arn"] == "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess"
    accounts = stack["resource"].get("kubernetes_service_account_v1", {})
    if not create:
        assert reader.service_account is None
        assert accounts == {}
        return
    (account,) = accounts.values()
    assert account["metadata"] == {
        "name": "reader",
        "namespace": "ml-jobs",
        "annotations": {"eks.amazonaws.com/role-arn": f"${{aws_iam_role.{role_name}.arn}}"},
        "labels": {"app.kubernetes.io/managed-by": "terraform"},
    }
    assert account["automount_service_account_token"] is True
    # Created once the deploying principal may use that cluster's API, and the role has its permissions.
    assert sorted(account["depends_on"]) == sorted(
        [
            f"aws_eks_access_policy_association.{named(stack, 'aws_eks_access_policy_association', 'second_')}",
            f"aws_iam_role_policy.{named(stack, 'aws_iam_role_policy', 'reader_')}",
            f"aws_iam_role_policy_attachment.{named(stack, 'aws_iam_role_policy_attachment', 'reader_')}",
        ]
    )


def test_add_service_account_keeps_the_irsa_name_rules() -> None:
    tiny = TinyStack()
    cluster = eks_cluster(tiny)
    with pytest.raises(ConfigurationError) as error:
        add_reader(cluster, tiny, "bad", namespace="ML_Jobs")
    assert (error.value.where, error.value.field) == ("tiny/bad", "namespace")
    with pytest.raises(ConfigurationError) as error:
        add_reader(cluster, tiny, "sa", service_account_name="reader.sa")
    assert (error.value.where, error.value.field) == ("tiny/sa", "service_account_name")
    with pytest.raises(ConfigurationError) as error:
        add_reader(cluster, tiny, "idle", statements=(), managed_policy_arns=())
    assert (error.value.where, error.value.field) == ("tiny/idle", "statements")
