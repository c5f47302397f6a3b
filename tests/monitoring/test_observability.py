"""Container Insights on EKS: the pinned add-on, its agent's role, its configuration (DCGM on, GPU taint
tolerated, no logs, no traces) and its performance log group."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.releases import KUBERNETES_RELEASES
from constructs.monitoring.observability import ADDON_VERSIONS, addon_version

from stacks.matrix import MATRIX
from tests.support.synth_json import ENVIRONMENTS, names_of, only, policy, ref, resources, role_attachments

ADDON = "platform/monitoring/container-insights/addon"
ROLE = "platform/monitoring/container-insights/agent-irsa/role"
LOG_GROUP = "platform/monitoring/container-insights/performance-log-group"


def tolerates(tolerations: list[dict[str, str]], taint: dict[str, str]) -> bool:
    """Kubernetes' rule: a toleration matches a taint when effects agree (or it names none) and it either
    ``Exists`` for the taint's key (any key when it names none) or equals its key and value."""
    for t in tolerations:
        if t.get("effect") not in (None, "", taint["effect"]):
            continue
        if t.get("operator", "Equal") == "Exists":
            if t.get("key") in (None, "", taint["key"]):
                return True
        elif t.get("key") == taint["key"] and t.get("value", "") == taint["value"]:
            return True
    return False


def _addon(stack: dict[str, Any]) -> dict[str, Any]:
    return only(stack, "aws_eks_addon", ADDON)


def _configuration(stack: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_addon(stack)["configuration_values"])


def test_every_kubernetes_minor_of_the_platform_has_a_pinned_addon_build() -> None:
    assert set(ADDON_VERSIONS) == set(KUBERNETES_RELEASES)
    for version in ADDON_VERSIONS.values():
        assert re.fullmatch(r"v\d+\.\d+\.\d+-eksbuild\.\d+", version)


def test_a_minor_without_a_pinned_build_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        addon_version("1.99", "test/monitoring")
    assert (caught.value.field, caught.value.value) == ("kubernetes_version", "1.99")
    assert "ADDON_VERSIONS" in caught.value.allowed


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_observability_addon_is_pinned_to_the_clusters_kubernetes_minor(stacks, env) -> None:
    stack = stacks[env]
    addon = _addon(stack)
    minor = MATRIX[env].eks.kubernetes_version  # type: ignore[union-attr]
    assert addon["addon_name"] == "amazon-cloudwatch-observability"
    assert addon["addon_version"] == ADDON_VERSIONS[minor]
    assert addon["cluster_name"] == ref(stack, "aws_eks_cluster", "platform/eks/cluster/cluster", "name")
    assert addon["service_account_role_arn"] == ref(stack, "aws_iam_role", ROLE, "arn")
    assert (addon["resolve_conflicts_on_create"], addon["resolve_conflicts_on_update"]) == ("OVERWRITE", "OVERWRITE")
    # After the nodes and the node add-ons (its pods need nodes, DNS and networking), its role and its log group.
    waits_for = set(addon["depends_on"])
    for node_group in names_of(stack, "aws_eks_node_group"):
        assert f"aws_eks_node_group.{node_group}" in waits_for
    for name, other in resources(stack, "aws_eks_addon").items():
        if other["addon_name"] != "amazon-cloudwatch-observability":
            assert f"aws_eks_addon.{name}" in waits_for
    assert ref(stack, "aws_cloudwatch_log_group", LOG_GROUP, "")[2:-2] in waits_for


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_agent_role_serves_only_the_cloudwatch_agent_and_holds_only_the_agent_policy(stacks, env) -> None:
    stack = stacks[env]
    role = only(stack, "aws_iam_role", ROLE)
    assert role["name"] == f"mlp-{env}-cloudwatch-agent"
    (statement,) = policy(role["assume_role_policy"])["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    (conditions,) = statement["Condition"].values()
    subjects = [value for key, value in conditions.items() if key.endswith(":sub")]
    assert subjects == ["system:serviceaccount:amazon-cloudwatch:cloudwatch-agent"]
    (attached,) = role_attachments(stack, ROLE)
    assert attached.endswith(":iam::aws:policy/CloudWatchAgentServerPolicy")
    # No traces, so no X-Ray; no inline permissions either.
    assert not [
        p
        for p in resources(stack, "aws_iam_role_policy").values()
        if p["role"] == ref(stack, "aws_iam_role", ROLE, "name")
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_configuration_collects_enhanced_metrics_and_gpu_metrics_and_nothing_else(stacks, env) -> None:
    configuration = _configuration(stacks[env])
    kubernetes = configuration["agent"]["config"]["logs"]["metrics_collected"]["kubernetes"]
    assert kubernetes == {"enhanced_container_insights": True, "accelerated_compute_metrics": True}
    # Only Container Insights: no Application Signals (traces, auto-instrumentation) in the agent's configuration.
    assert set(configuration["agent"]["config"]) == {"logs"}
    assert set(configuration["agent"]["config"]["logs"]["metrics_collected"]) == {"kubernetes"}
    assert configuration["containerLogs"] == {"enabled": False}
    assert configuration["dcgmExporter"] == {"enabled": True}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_the_agent_and_the_dcgm_exporter_tolerate_the_gpu_node_groups_taint(stacks, env) -> None:
    stack = stacks[env]
    (gpu_group,) = [g for g in resources(stack, "aws_eks_node_group").values() if g.get("taint")]
    (taint,) = gpu_group["taint"]
    kubernetes_taint = {"key": taint["key"], "value": taint["value"], "effect": "NoSchedule"}
    assert (taint["key"], taint["effect"]) == ("nvidia.com/gpu", "NO_SCHEDULE")
    configuration = _configuration(stack)
    # Root tolerations apply to the agent, the DCGM exporter and the node collectors unless a component overrides.
    assert tolerates(configuration["tolerations"], kubernetes_taint)
    assert "tolerations" not in configuration["dcgmExporter"]


def test_the_toleration_rule_of_the_test_is_kubernetes_rule() -> None:
    gpu = {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    assert tolerates([{"operator": "Exists"}], gpu)
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}], gpu)
    assert tolerates([{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true"}], gpu)
    assert not tolerates([], gpu)
    assert not tolerates([{"key": "other", "operator": "Exists"}], gpu)
    assert not tolerates([{"key": "nvidia.com/gpu", "operator": "Equal", "value": "false"}], gpu)
    assert not tolerates([{"operator": "Exists", "effect": "NoExecute"}], gpu)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_performance_log_group_is_encrypted_kept_as_the_matrix_says_and_protected_in_prod(stacks, env) -> None:
    stack = stacks[env]
    group = only(stack, "aws_cloudwatch_log_group", LOG_GROUP)
    assert group["name"] == f"/aws/containerinsights/mlp-{env}/performance"
    assert group["kms_key_id"] == ref(stack, "aws_kms_key", "platform/keys/logs", "arn")
    assert group["retention_in_days"] == MATRIX[env].monitoring.performance_log_retention_days
    protected = MATRIX[env].protected
    assert group.get("skip_destroy") == (True if protected else None)
    assert group.get("lifecycle") == ({"prevent_destroy": True} if protected else None)


def test_without_container_insights_there_is_no_addon_role_or_log_group(altered) -> None:
    stack = altered["staging"]
    assert names_of(stack, "aws_eks_addon", ADDON) == []
    assert names_of(stack, "aws_iam_role", ROLE) == []
    assert names_of(stack, "aws_cloudwatch_log_group", LOG_GROUP) == []
    assert len(resources(stack, "aws_eks_addon")) == 4
