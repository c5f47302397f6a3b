"""The External Secrets Operator: a pinned chart whose controller has no AWS identity and ignores cluster-wide kinds.

The operator is what lets Terraform handle secrets' ARNs and never their values, so what matters is what it may
do: with no IAM role of its own and no cluster-wide stores, a namespace's objects can only use that namespace's
own (IRSA) identity. Its CRDs come with its release, which the custom resources' release depends on; it is
installed only once the deployer can reach the cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.eks.external_secrets import ExternalSecretsOperator, ExternalSecretsOperatorProps, operator_values
from constructs.eks.settings import EksClusterSettings

from tests.eks.clusters import eks_cluster
from tests.support.stacks import TinyStack
from tests.support.synth_json import address, names_of, only

NODES = {"node.kubernetes.io/pool": "cpu"}
COMPONENTS = ("controller", "webhook", "certController")


def _build(replicas: int, settings: EksClusterSettings | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The operator (after an SNS topic standing for the node groups) in a tiny stack: its release and the stack."""
    tiny = TinyStack()
    cluster = eks_cluster(tiny, settings)
    first = aws.sns_topic.SnsTopic(tiny.stack, "nodes")
    props = ExternalSecretsOperatorProps(cluster=cluster, node_selector=NODES, replicas=replicas, depends_on=[first])
    operator = ExternalSecretsOperator(tiny.stack, "eso", props)
    stack = tiny.synth_with_paths()
    release = only(stack, "helm_release", "eso/external-secrets")
    assert operator.namespace == release["namespace"]
    assert json.loads(release["values"][0]) == operator_values(props)
    return release, stack


@pytest.fixture(scope="module")
def single() -> tuple[dict[str, Any], dict[str, Any]]:
    return _build(replicas=1)


@pytest.fixture(scope="module")
def replicated() -> tuple[dict[str, Any], dict[str, Any]]:
    return _build(replicas=2)


def values_of(release: dict[str, Any]) -> dict[str, Any]:
    (values,) = release["values"]
    return json.loads(values)


def _keys(value: Any) -> Iterator[str]:
    """Every key at any depth of ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_the_release_is_the_pinned_chart_in_its_own_namespace(single) -> None:
    release, _ = single
    chart = (release["repository"], release["chart"], release["version"])
    assert chart == ("https://charts.external-secrets.io", "external-secrets", "2.9.0")
    assert (release["name"], release["namespace"], release["create_namespace"]) == (
        "external-secrets",
        "external-secrets",
        True,
    )
    assert release["atomic"] is True and release["wait"] is True


@pytest.mark.parametrize("fixture", ["single", "replicated"])
def test_only_namespaced_kinds_are_processed_and_the_crds_come_with_the_chart(fixture, request) -> None:
    values = values_of(request.getfixturevalue(fixture)[0])
    assert values["installCRDs"] is True
    # A cluster-wide store, secret or generator would let one namespace's objects use another's identity.
    cluster_wide = ("processClusterStore", "processClusterExternalSecret", "processClusterPushSecret")
    assert [values[key] for key in (*cluster_wide, "processClusterGenerator")] == [False] * 4
    # The namespaced kinds the platform uses (SecretStore, PushSecret) stay on: the chart's default is true.
    assert values.get("processSecretStore", True) is True and values.get("processPushSecret", True) is True


@pytest.mark.parametrize("fixture", ["single", "replicated"])
def test_the_operator_has_no_aws_identity_of_its_own(fixture, request) -> None:
    release = request.getfixturevalue(fixture)[0]
    values = values_of(release)
    assert values["serviceAccount"]["create"] is True
    assert values["serviceAccount"]["annotations"] == {}
    # No IRSA role anywhere in the values (the webhook and cert controller included) nor in a `set` of the release.
    assert "eks.amazonaws.com/role-arn" not in set(_keys(values))
    assert "role-arn" not in json.dumps(release)


def test_one_replica_elects_no_leader_and_has_no_disruption_budget(single) -> None:
    values = values_of(single[0])
    assert values["replicaCount"] == 1
    assert values["leaderElect"] is False
    # A budget of minAvailable 1 over one replica would block every node drain.
    assert values["podDisruptionBudget"]["enabled"] is False


def test_more_replicas_elect_a_leader_and_keep_one_through_a_drain(replicated) -> None:
    values = values_of(replicated[0])
    assert values["replicaCount"] == 2
    assert values["leaderElect"] is True
    assert values["podDisruptionBudget"] == {"enabled": True, "minAvailable": 1}


@pytest.mark.parametrize("fixture", ["single", "replicated"])
def test_every_component_runs_on_the_given_nodes(fixture, request) -> None:
    values = values_of(request.getfixturevalue(fixture)[0])
    placed = {"controller": values, "webhook": values["webhook"], "certController": values["certController"]}
    assert {name: placed[name]["nodeSelector"] for name in COMPONENTS} == dict.fromkeys(COMPONENTS, NODES)
    assert values["webhook"]["create"] is True and values["certController"]["create"] is True
    for name in COMPONENTS:
        resources = placed[name]["resources"]
        assert resources["requests"]["cpu"] and resources["requests"]["memory"] and resources["limits"]["memory"]


def test_the_release_waits_for_the_given_resources_and_the_clusters_admin_access(single) -> None:
    release, stack = single
    admin = [
        f"aws_eks_access_policy_association.{name}" for name in names_of(stack, "aws_eks_access_policy_association")
    ]
    assert admin == [address(stack, "aws_eks_access_policy_association", "cluster/deployer-cluster-admin")]
    assert release["depends_on"] == [address(stack, "aws_sns_topic", "nodes"), *admin]


def test_every_admin_access_of_the_cluster_comes_first() -> None:
    admin_role = "arn:aws:iam::123456789012:role/platform-admin"
    release, stack = _build(1, EksClusterSettings(admin_role_arns=(admin_role,)))
    admin = {
        f"aws_eks_access_policy_association.{name}" for name in names_of(stack, "aws_eks_access_policy_association")
    }
    assert len(admin) == 2  # the listed role and the deployer
    assert admin <= set(release["depends_on"])
    assert address(stack, "aws_sns_topic", "nodes") in release["depends_on"]


def test_no_replicas_is_rejected_naming_the_field() -> None:
    tiny = TinyStack()
    props = ExternalSecretsOperatorProps(cluster=eks_cluster(tiny), node_selector=NODES, replicas=0)
    with pytest.raises(ConfigurationError) as error:
        ExternalSecretsOperator(tiny.stack, "eso", props)
    assert error.value.field == "replicas"
