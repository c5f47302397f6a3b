"""Kubeflow's settings, built directly: each limit rejects a bad value with the dotted field named and what is
allowed, and the good values next to each limit pass.

A team's name becomes a Kubernetes namespace, a Kueue ClusterQueue and part of an IAM role name, so it must be a
namespace name (a DNS-1123 label) short enough for the role, and never a namespace the platform or Kubernetes
already owns: a team namespace called ``mlflow`` would take over (and on destroy delete) MLflow's. The rules
between Kubeflow and the rest of an environment (EKS, its GPU node group) are in test_environments.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.kubeflow.settings import GpuNodeQuota, KubeflowSettings, NodeQuota, TeamSettings

NAME_ALLOWED = "a Kubernetes namespace name of 1-20 characters"
COHORT_ALLOWED = "a DNS-1123 label"
STRATEGIES = "one of 'BestEffortFIFO', 'StrictFIFO'"


def team(name: str = "base", **changes: Any) -> dict[str, Any]:
    """A valid team as the matrix or an override writes it (a CPU quota only), with ``changes``."""
    return {"name": name, "cpu_nodes": {"cpu": 2, "memory_gib": 8}, **changes}


def rejected(**settings: Any) -> ConfigurationError:
    """The error building :class:`KubeflowSettings` from ``settings`` raises (the test fails if it builds)."""
    with pytest.raises(ConfigurationError) as error:
        KubeflowSettings(**settings)
    assert error.value.where == "KubeflowSettings"
    return error.value


def second_team_rejected(**changes: Any) -> ConfigurationError:
    """The error for a second team with ``changes``: the index in the field shows which team is wrong."""
    return rejected(teams=(team(), team(**{"name": "other", **changes})))


# --- team names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a",  # one character
        "nlp",
        "team-2",
        "a1-b2-c3",
        "x" * 20,  # the longest
        "research--vision",  # a DNS label allows consecutive hyphens
    ],
)
def test_a_namespace_name_is_accepted_as_team_name_and_gives_its_data_prefix(name) -> None:
    settings = KubeflowSettings(teams=(team(), team(name)))
    accepted = settings.teams[1]
    assert accepted.name == name
    # The team's objects in the shared buckets: the role of its namespace is limited to this prefix.
    assert accepted.data_prefix == f"teams/{name}/"
    assert settings.teams[0].data_prefix == "teams/base/"


def test_no_team_data_prefix_contains_another_teams() -> None:
    """The trailing '/' keeps 'nlp' away from 'nlp-2''s objects: a prefix grant covers every key it starts."""
    names = ("nlp", "nlp-2", "n", "nlp2", "vision")
    prefixes = [t.data_prefix for t in KubeflowSettings(teams=tuple(team(n) for n in names)).teams]
    for prefix in prefixes:
        assert [other for other in prefixes if other.startswith(prefix)] == [prefix]


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("Vision", "upper case"),
        ("vIsion", "upper case inside"),
        ("1team", "leading digit"),
        ("-team", "leading hyphen"),
        ("team-", "trailing hyphen"),
        ("team_a", "underscore"),
        ("team.a", "a dot: a DNS subdomain, not a label"),
        ("team a", "space"),
        ("", "empty"),
        ("x" * 21, "over 20 characters (the role name '<prefix>-team-<name>' must fit in 64)"),
        ("équipe", "not ASCII"),
    ],
)
def test_a_team_name_that_is_not_a_namespace_name_is_rejected_naming_the_team(name, why) -> None:
    error = second_team_rejected(name=name)
    assert (error.field, error.value) == ("teams[1].name", name), why
    assert NAME_ALLOWED in error.allowed
    assert "starting with a letter" in error.allowed and "ending with a letter or digit" in error.allowed


@pytest.mark.parametrize(
    "name",
    [
        "default",
        "kube-system",
        "kube-public",
        "kube-node-lease",
        # The platform's own: Kubeflow Trainer, Kueue, the External Secrets Operator and MLflow install there.
        "kubeflow-system",
        "kueue-system",
        "external-secrets",
        "mlflow",
    ],
)
def test_a_namespace_the_platform_or_kubernetes_owns_is_not_a_team_name(name) -> None:
    error = second_team_rejected(name=name)
    assert (error.field, error.value) == ("teams[1].name", name)
    # The message lists the reserved names, so the user sees why a well-formed name is refused.
    assert NAME_ALLOWED in error.allowed and "not one of" in error.allowed
    assert repr(name) in error.allowed.split("not one of", 1)[1]


@pytest.mark.parametrize("name", ["kube-team", "kube-x"])
def test_the_kube_prefix_kubernetes_keeps_for_itself_is_not_a_team_name(name) -> None:
    error = second_team_rejected(name=name)
    assert (error.field, error.value) == ("teams[1].name", name)
    assert "not starting with 'kube-'" in error.allowed


def test_a_team_built_alone_names_its_own_field() -> None:
    with pytest.raises(ConfigurationError) as error:
        TeamSettings(name="Kube-System", cpu_nodes=NodeQuota(cpu=1, memory_gib=1))
    assert (error.value.where, error.value.field, error.value.value) == ("TeamSettings", "name", "Kube-System")
    assert NAME_ALLOWED in error.value.allowed


def test_team_names_are_distinct() -> None:
    # Two teams of one name would be one namespace, one ClusterQueue and one IAM role claimed twice.
    error = rejected(teams=(team("vision"), team("nlp"), team("vision", storage_gib=10)))
    assert (error.field, error.value) == ("teams", ("vision", "nlp", "vision"))
    assert "each team name at most once" in error.allowed


# --- cohorts ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", ["Research", "research_1", "-research", "research-", "r.s", "", "r" * 64])
def test_a_cohort_that_is_not_a_dns_label_is_rejected(cohort) -> None:
    error = second_team_rejected(cohort=cohort)
    assert (error.field, error.value) == ("teams[1].cohort", cohort)
    assert COHORT_ALLOWED in error.allowed and "1-63 characters" in error.allowed


def test_a_cohort_may_not_carry_a_terraform_template() -> None:
    error = second_team_rejected(cohort="${var.cohort}")
    assert error.field == "teams[1].cohort"
    assert "text without '${'" in error.allowed


@pytest.mark.parametrize("cohort", ["research", "r", "r" * 63, "gpu-pool-2", None])
def test_a_dns_label_or_no_cohort_is_accepted(cohort) -> None:
    assert KubeflowSettings(teams=(team(cohort=cohort),)).teams[0].cohort == cohort


# --- quotas -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"cpu_nodes": {"cpu": 0, "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number from 1 to 4096"),
        ({"cpu_nodes": {"cpu": -2, "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number from 1 to 4096"),
        ({"cpu_nodes": {"cpu": 4097, "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number from 1 to 4096"),
        ({"cpu_nodes": {"cpu": 2, "memory_gib": 0}}, "teams[1].cpu_nodes.memory_gib", "from 1 to 65536"),
        ({"cpu_nodes": {"cpu": 2, "memory_gib": -8}}, "teams[1].cpu_nodes.memory_gib", "from 1 to 65536"),
        # A GPU quota of no GPUs is a CPU quota on the expensive nodes: leave gpu_nodes out instead.
        ({"gpu_nodes": {"gpus": 0, "cpu": 4, "memory_gib": 16}}, "teams[1].gpu_nodes.gpus", "from 1 to 1024"),
        ({"gpu_nodes": {"gpus": -1, "cpu": 4, "memory_gib": 16}}, "teams[1].gpu_nodes.gpus", "from 1 to 1024"),
        ({"gpu_nodes": {"gpus": 1025, "cpu": 4, "memory_gib": 16}}, "teams[1].gpu_nodes.gpus", "from 1 to 1024"),
        ({"gpu_nodes": {"gpus": 1, "cpu": 0, "memory_gib": 16}}, "teams[1].gpu_nodes.cpu", "from 1 to 4096"),
        ({"gpu_nodes": {"gpus": 1, "cpu": 4, "memory_gib": 0}}, "teams[1].gpu_nodes.memory_gib", "from 1 to 65536"),
        ({"gpu_nodes": {"cpu": 4, "memory_gib": 16}}, "teams[1].gpu_nodes.gpus", "(the field is required)"),
        ({"storage_gib": -1}, "teams[1].storage_gib", "a whole number from 0 to 65536"),
        # Strict: a number written as text, a boolean or a fraction is not a count (JSON overrides included).
        ({"cpu_nodes": {"cpu": "4", "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number from 1 to 4096"),
        ({"cpu_nodes": {"cpu": True, "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number"),
        ({"cpu_nodes": {"cpu": 2.5, "memory_gib": 8}}, "teams[1].cpu_nodes.cpu", "a whole number"),
        ({"gpu_nodes": {"gpus": "2", "cpu": 4, "memory_gib": 16}}, "teams[1].gpu_nodes.gpus", "a whole number"),
        # A quota names only what Kueue counts; anything else is a typo, not a setting.
        (
            {"cpu_nodes": {"cpu": 2, "memory_gib": 8, "gpus": 1}},
            "teams[1].cpu_nodes.gpus",
            "one of 'cpu', 'memory_gib'",
        ),
        (
            {"gpus": 1},
            "teams[1].gpus",
            "one of 'name', 'cpu_nodes', 'gpu_nodes', 'cohort', 'storage_gib', 'member_role_arns'",
        ),
    ],
)
def test_a_bad_quota_is_rejected_naming_the_team_and_field(changes, field, fragment) -> None:
    error = second_team_rejected(**changes)
    assert error.field == field
    assert fragment in error.allowed


@pytest.mark.parametrize(
    ("model", "values", "field"),
    [
        (NodeQuota, {"cpu": "4", "memory_gib": 8}, "cpu"),
        (NodeQuota, {"cpu": 4, "memory_gib": 0}, "memory_gib"),
        (GpuNodeQuota, {"gpus": 0, "cpu": 4, "memory_gib": 16}, "gpus"),
        (GpuNodeQuota, {"gpus": 1.0, "cpu": 4, "memory_gib": 16}, "gpus"),
    ],
)
def test_a_quota_built_alone_names_its_own_field(model, values, field) -> None:
    with pytest.raises(ConfigurationError) as error:
        model(**values)
    assert (error.value.where, error.value.field, error.value.value) == (model.__name__, field, values[field])
    assert "a whole number from 1 to" in error.value.allowed


def test_quotas_at_their_limits_pass() -> None:
    low = TeamSettings(
        name="low",
        cpu_nodes=NodeQuota(cpu=1, memory_gib=1),
        gpu_nodes=GpuNodeQuota(gpus=1, cpu=1, memory_gib=1),
        storage_gib=0,
    )
    high = TeamSettings(
        name="high",
        cpu_nodes=NodeQuota(cpu=4096, memory_gib=65536),
        gpu_nodes=GpuNodeQuota(gpus=1024, cpu=4096, memory_gib=65536),
        storage_gib=65536,
    )
    assert (low.gpu_nodes.gpus, low.storage_gib, high.gpu_nodes.gpus, high.cpu_nodes.memory_gib) == (1, 0, 1024, 65536)
    # A GPU quota is a node quota too: the ClusterQueue's GPU flavor carries its cores and memory.
    assert isinstance(low.gpu_nodes, NodeQuota)


# --- members ----------------------------------------------------------------------------------------------

ROLE = "arn:aws:iam::123456789012:role/ml-alice"
OTHER_ROLE = "arn:aws:iam::123456789012:role/people/ml-bob"
ROLE_ALLOWED = "IAM role ARNs such as"


@pytest.mark.parametrize(
    "arn",
    [
        ROLE,
        OTHER_ROLE,  # a role with a path, as SSO permission sets' roles have
        "arn:aws-us-gov:iam::123456789012:role/ml",
        "arn:aws-cn:iam::123456789012:role/AWSReservedSSO_ML_0123abcd",
    ],
)
def test_a_role_arn_is_accepted_as_member(arn) -> None:
    settings = KubeflowSettings(teams=(team(), team("other", member_role_arns=(arn,))))
    assert settings.teams[1].member_role_arns == (arn,)
    assert settings.members == {arn: ("other",)}


@pytest.mark.parametrize(
    ("arn", "why"),
    [
        ("arn:aws:iam::123456789012:role/*", "a wildcard: every role of the account"),
        ("arn:aws:iam::123456789012:role/ml-*", "a wildcard in the name"),
        ("arn:aws:iam::123456789012:user/bob", "a user: access entries are for the roles people assume"),
        ("arn:aws:iam::*:role/ml", "a wildcard account"),
        ("arn:aws:iam::12345678901:role/ml", "an 11-digit account"),
        ("arn:aws:sts::123456789012:assumed-role/ml/session", "a session, not the role"),
        ("ml-alice", "a name, not an ARN"),
        ("", "empty"),
    ],
)
def test_a_member_that_is_not_one_iam_role_is_rejected_naming_its_position(arn, why) -> None:
    error = second_team_rejected(member_role_arns=(ROLE, arn))
    assert (error.field, error.value) == ("teams[1].member_role_arns[1]", arn), why
    assert ROLE_ALLOWED in error.allowed and "role name" in error.allowed


def test_a_role_listed_twice_in_one_team_is_rejected() -> None:
    error = second_team_rejected(member_role_arns=(ROLE, OTHER_ROLE, ROLE))
    assert (error.field, error.value) == ("teams[1].member_role_arns", (ROLE, OTHER_ROLE, ROLE))
    assert "at most once" in error.allowed


def test_a_role_in_several_teams_is_one_member_with_all_its_teams() -> None:
    # One access entry per role and cluster: the role's teams are gathered, in the order of the teams.
    settings = KubeflowSettings(
        teams=(
            team("vision", member_role_arns=(OTHER_ROLE, ROLE)),
            team("tabular"),
            team("nlp", member_role_arns=(ROLE,)),
        )
    )
    assert settings.members == {ROLE: ("vision", "nlp"), OTHER_ROLE: ("vision",)}
    # Sorted by role ARN, whatever order the teams list them in, so the plan does not depend on it.
    assert list(settings.members) == sorted([ROLE, OTHER_ROLE])
    assert KubeflowSettings(teams=(team(),)).members == {}
    assert KubeflowSettings(teams=(team(),)).teams[0].member_role_arns == ()


# --- the teams list and Kueue's behaviour ------------------------------------------------------------------


def test_at_least_one_team() -> None:
    error = rejected(teams=())
    assert (error.field, error.value) == ("teams", ())
    assert "1 to 50 items" in error.allowed


def test_teams_are_required() -> None:
    error = rejected()
    assert error.field == "teams"
    assert "(the field is required)" in error.allowed


def test_at_most_fifty_teams() -> None:
    names = [f"t{index}" for index in range(51)]
    assert len(KubeflowSettings(teams=tuple(team(n) for n in names[:50])).teams) == 50
    error = rejected(teams=tuple(team(n) for n in names))
    assert error.field == "teams"
    assert "1 to 50 items" in error.allowed


@pytest.mark.parametrize("minutes", [4, 0, -5, 121, 600])
def test_wait_for_pods_ready_outside_5_to_120_minutes_is_rejected(minutes) -> None:
    # Under 5 minutes a GPU node scaling up from zero never makes it; over 2 hours a half-started job holds GPUs.
    error = rejected(teams=(team(),), wait_for_pods_ready_minutes=minutes)
    assert (error.field, error.value) == ("wait_for_pods_ready_minutes", minutes)
    assert "a whole number from 5 to 120" in error.allowed


@pytest.mark.parametrize("minutes", [5, 120])
def test_wait_for_pods_ready_at_its_limits_passes(minutes) -> None:
    assert KubeflowSettings(teams=(team(),), wait_for_pods_ready_minutes=minutes).wait_for_pods_ready_minutes == minutes


@pytest.mark.parametrize("strategy", ["FIFO", "bestEffortFIFO", "besteffortfifo", "", "StrictFifo"])
def test_an_unknown_queueing_strategy_is_rejected(strategy) -> None:
    error = rejected(teams=(team(),), queueing_strategy=strategy)
    assert (error.field, error.value) == ("queueing_strategy", strategy)
    assert STRATEGIES in error.allowed


def test_wait_for_pods_ready_is_a_number_not_text() -> None:
    error = rejected(teams=(team(),), wait_for_pods_ready_minutes="15")
    assert error.field == "wait_for_pods_ready_minutes"
    assert "a whole number from 5 to 120" in error.allowed


def test_an_unknown_field_is_rejected_listing_the_known_ones() -> None:
    error = rejected(teams=(team(),), gpu_quota=4)
    assert (error.field, error.value) == ("gpu_quota", "gpu_quota")
    assert error.allowed == "one of 'teams', 'wait_for_pods_ready_minutes', 'queueing_strategy'"


def test_defaults_and_gpu_teams() -> None:
    settings = KubeflowSettings(
        teams=(team("cpu-only"), team("gpu", gpu_nodes={"gpus": 2, "cpu": 7, "memory_gib": 28}, cohort="research")),
        queueing_strategy="StrictFIFO",
    )
    # A job's pods have 15 minutes to start by default, and smaller jobs may pass a large one that does not fit.
    assert KubeflowSettings(teams=(team(),)).wait_for_pods_ready_minutes == 15
    assert KubeflowSettings(teams=(team(),)).queueing_strategy == "BestEffortFIFO"
    assert settings.queueing_strategy == "StrictFIFO"
    # Without gpu_nodes a team has no GPU quota and no cohort; only teams with a GPU quota count as GPU teams.
    cpu_only = settings.teams[0]
    assert (cpu_only.gpu_nodes, cpu_only.cohort, cpu_only.storage_gib) == (None, None, 200)
    assert [t.name for t in settings.gpu_teams] == ["gpu"]
    assert settings.gpu_teams[0].gpu_nodes == GpuNodeQuota(gpus=2, cpu=7, memory_gib=28)
    assert KubeflowSettings(teams=(team(),)).gpu_teams == ()
