"""Off hours of the EKS GPU node group: no GPU node from the evening to the morning and over the weekend."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.node_group import EksGpuNodeGroup, EksGpuNodeGroupProps
from constructs.eks.settings import EksGpuNodeGroupSettings, OffHours

from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides
from tests.eks.clusters import eks_cluster
from tests.support.stacks import TinyStack
from tests.support.synth_json import only, ref, resources

GROUP = "eks/gpu-nodes/group/node-group"
WEEKDAY_EVENINGS = {"stop_cron": "0 20 * * 1-5", "start_cron": "0 7 * * 1-5", "time_zone": "America/New_York"}


def _schedules(stack: dict) -> dict[str, dict]:
    return {
        s["scheduled_action_name"]: s
        for s in resources(stack, "aws_autoscaling_schedule").values()
        if "/eks/gpu-nodes/" in s["//"]["metadata"]["path"]
    }


def test_staging_stops_its_gpu_nodes_on_weekday_evenings_and_allows_them_again_in_the_morning(stacks) -> None:
    stack = stacks["staging"]
    asg = ref(stack, "aws_eks_node_group", GROUP, "resources[0].autoscaling_groups[0].name")
    schedules = _schedules(stack)
    assert set(schedules) == {"mlp-staging-gpu-off-hours-stop", "mlp-staging-gpu-off-hours-start"}
    stop, start = schedules["mlp-staging-gpu-off-hours-stop"], schedules["mlp-staging-gpu-off-hours-start"]
    for schedule in (stop, start):
        # The Auto Scaling group EKS created for the node group; cluster-autoscaler reads its bounds.
        assert schedule["autoscaling_group_name"] == asg
        assert schedule["time_zone"] == "America/New_York"
    # A maximum of 0: cluster-autoscaler cannot start a node, whatever is pending.
    assert stop["recurrence"] == "0 20 * * 1-5"
    assert (stop["min_size"], stop["max_size"], stop["desired_capacity"]) == (0, 0, 0)
    # The matrix's bounds again; the desired capacity (-1: unchanged) is cluster-autoscaler's to raise.
    group = only(stack, "aws_eks_node_group", GROUP)["scaling_config"]
    assert (start["recurrence"], start["min_size"], start["max_size"], start["desired_capacity"]) == (
        "0 7 * * 1-5",
        group["min_size"],
        group["max_size"],
        -1,
    )


def test_terraform_leaves_the_scheduled_bounds_to_the_schedules(stacks) -> None:
    staging = only(stacks["staging"], "aws_eks_node_group", GROUP)
    assert staging["lifecycle"]["ignore_changes"] == [
        "scaling_config[0].desired_size",
        "scaling_config[0].min_size",
        "scaling_config[0].max_size",
    ]
    prod = only(stacks["prod"], "aws_eks_node_group", GROUP)
    assert prod["lifecycle"]["ignore_changes"] == ["scaling_config[0].desired_size"]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_clock_stops_gpu_nodes_in_dev_or_prod(stacks, env) -> None:
    assert _schedules(stacks[env]) == {}


def test_the_morning_start_restores_the_groups_own_bounds() -> None:
    tiny = TinyStack()
    settings = EksGpuNodeGroupSettings(min_size=1, max_size=3, desired_size=1, off_hours=OffHours(**WEEKDAY_EVENINGS))
    EksGpuNodeGroup(
        tiny.stack,
        "gpu",
        EksGpuNodeGroupProps(
            name="tiny-gpu", cluster=eks_cluster(tiny), subnet_ids=["subnet-1"], settings=settings, volume_key=tiny.key
        ),
    )
    schedules = {s["scheduled_action_name"]: s for s in resources(tiny.synth(), "aws_autoscaling_schedule").values()}
    start = schedules["tiny-gpu-off-hours-start"]
    assert (start["min_size"], start["max_size"]) == (1, 3)
    assert schedules["tiny-gpu-off-hours-stop"]["max_size"] == 0


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        ({"stop_cron": "0 20 * * 1-5", "start_cron": "0 20 * * 1-5"}, "start_cron", "a schedule other than stop_cron"),
        ({"stop_cron": "0 25 * * *", "start_cron": "0 7 * * *"}, "stop_cron", "a 5-field cron expression"),
        ({"stop_cron": "cron(0 20 * * ? *)", "start_cron": "0 7 * * *"}, "stop_cron", "a 5-field cron expression"),
        ({"stop_cron": "0 20 * * *", "start_cron": "0 7 * * *", "time_zone": "EST5"}, "time_zone", "IANA"),
        ({"stop_cron": "0 20 * * *"}, "start_cron", "the field is required"),
    ],
)
def test_bad_off_hours_are_rejected(values, field, allowed) -> None:
    with pytest.raises(ConfigurationError, match=rf"^OffHours: field '{field}' = .*{re.escape(allowed)}"):
        OffHours(**values)


def test_production_gpus_are_never_stopped_by_the_clock() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"prod": {"eks.gpu_node_group.off_hours": WEEKDAY_EVENINGS}})
    message = str(caught.value)
    assert "environment 'prod'" in message
    assert "field 'eks.gpu_node_group.off_hours'" in message
    assert "None when protected is True" in message


def test_a_model_served_on_gpus_keeps_its_nodes_through_the_night() -> None:
    example = json.loads(Path("examples/model-serving.json").read_text())["staging"]
    del example["eks.gpu_node_group.off_hours"]
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"staging": example})
    message = str(caught.value)
    assert "environment 'staging'" in message
    assert "field 'eks.gpu_node_group.off_hours'" in message
    assert "None while model 'chat' is served on GPUs" in message
