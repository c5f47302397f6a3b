"""EKS managed node groups: CPU and GPU shapes per environment, hardened launch templates, node roles, bad props."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.node_group import (
    EksGpuNodeGroup,
    EksGpuNodeGroupProps,
    EksNodeGroup,
    EksNodeGroupProps,
    NodeTaint,
)
from constructs.eks.settings import EksGpuNodeGroupSettings, EksNodeGroupSettings

from tests.eks.clusters import GPU_ENVIRONMENTS, eks_cluster
from tests.support.stacks import OWNER_TAGS, TinyStack, context
from tests.support.synth_json import ENVIRONMENTS, address, only, ref, resources, role_attachments

CPU_GROUP = {
    # env: (instance types, min, max, desired)
    "dev": (["t3.large", "m6i.large"], 1, 3, 1),
    "staging": (["m6i.xlarge"], 2, 6, 2),
    "prod": (["m6i.xlarge"], 2, 6, 3),
}
GPU_GROUP = {"staging": ("SPOT", 4), "prod": ("ON_DEMAND", 10)}
MATRIX_OWNER_TAGS = {"team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}


def group_paths(env: str) -> list[str]:
    """Construct paths (under ``eks/``) of the environment's node groups."""
    return ["cpu-nodes"] + (["gpu-nodes/group"] if env in GPU_ENVIRONMENTS else [])


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
    for group_path in group_paths(env):
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
        expected_tags = {**MATRIX_OWNER_TAGS, "environment": env, "Name": f"mlp-{env}-{group_path.split('-')[0]}"}
        assert {spec["resource_type"]: spec["tags"] for spec in template["tag_specifications"]} == {
            "instance": expected_tags,
            "volume": expected_tags,
        }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_node_roles_have_exactly_the_three_node_policies(stacks, env) -> None:
    stack = stacks[env]
    for group_path in group_paths(env):
        attached = sorted(arn.rsplit("/", 1)[1] for arn in role_attachments(stack, f"eks/{group_path}/node-role"))
        assert attached == ["AmazonEC2ContainerRegistryReadOnly", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy"]
        role = ref(stack, "aws_iam_role", f"eks/{group_path}/node-role", "name")
        assert not [p for p in resources(stack, "aws_iam_role_policy").values() if p["role"] == role]
        # The role keeps its policies until the nodes are gone.
        group = only(stack, "aws_eks_node_group", f"eks/{group_path}/node-group")
        for policy_name in ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly", "AmazonEKS_CNI_Policy"):
            attachment = address(stack, "aws_iam_role_policy_attachment", f"eks/{group_path}/node-{policy_name}")
            assert attachment in group["depends_on"]


# --- node groups built alone -----------------------------------------------------------------------------


def node_group_props(tiny: TinyStack, **overrides: Any) -> EksNodeGroupProps:
    props: dict[str, Any] = {
        "name": "tiny-cpu",
        "subnet_ids": ["subnet-1"],
        "settings": EksNodeGroupSettings(),
        "ami_type": "AL2023_x86_64_STANDARD",
        "volume_key": tiny.key,
    }
    props.update(overrides)
    if "cluster" not in props:
        props["cluster"] = eks_cluster(tiny)
    return EksNodeGroupProps(**props)


def test_gpu_group_construct_counts_the_gpus_of_its_instance_types() -> None:
    tiny = TinyStack()
    group = EksGpuNodeGroup(
        tiny.stack,
        "quad",
        EksGpuNodeGroupProps(
            name="tiny-gpu",
            cluster=eks_cluster(tiny),
            subnet_ids=["subnet-1"],
            settings=EksGpuNodeGroupSettings(instance_types=("g5.12xlarge", "g6.12xlarge")),
            volume_key=tiny.key,
        ),
    )
    assert group.node_group is group.group.node_group
    (synthesized,) = tiny.synth()["resource"]["aws_eks_node_group"].values()
    assert synthesized["tags"]["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "4"
    assert synthesized["tags"]["k8s.io/cluster-autoscaler/tiny"] == "owned"
    assert synthesized["instance_types"] == ["g5.12xlarge", "g6.12xlarge"]
    assert synthesized["ami_type"] == "AL2023_x86_64_NVIDIA"


def test_launched_instances_and_volumes_carry_the_clusters_owner_tags() -> None:
    tiny = TinyStack()
    owner_tags = {**OWNER_TAGS, "team": "vision"}
    EksNodeGroup(
        tiny.stack, "nodes", node_group_props(tiny, cluster=eks_cluster(tiny, context=context(owner_tags=owner_tags)))
    )
    stack = tiny.synth()
    (template,) = stack["resource"]["aws_launch_template"].values()
    expected = {**owner_tags, "Name": "tiny-cpu"}
    assert {spec["resource_type"]: spec["tags"] for spec in template["tag_specifications"]} == {
        "instance": expected,
        "volume": expected,
    }
    (role,) = [r for r in stack["resource"]["aws_iam_role"].values() if r["name"] == "tiny-cpu-node"]
    assert role["description"] == "Nodes of the EKS node group tiny-cpu"


def test_node_group_owner_tags_come_from_a_context_that_requires_all_four() -> None:
    # Node groups used to check their owner tags themselves; the context they read them from does now.
    with pytest.raises(ConfigurationError) as error:
        context(owner_tags={"team": "t"})
    assert (error.value.where, error.value.field) == ("PlatformContext", "owner_tags")
    assert "'environment', 'team', 'cost_center', 'project'" in error.value.allowed


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"name": "Tiny_CPU"}, "name"),
        ({"name": "a-node-group-name-that-is-far-too-long"}, "name"),
        ({"ami_type": "AL2_x86_64"}, "ami_type"),
        ({"subnet_ids": []}, "subnet_ids"),
        ({"labels": {"bad key!": "x"}}, "labels"),
        ({"labels": {"ml-platform/node-type": "not a value"}}, "labels"),
        ({"taints": (NodeTaint(key="dedicated", value="x", effect="NoSchedule"),)}, "taints"),
        ({"taints": (NodeTaint(key="bad key!", value="x"),)}, "taints"),
        ({"autoscaler_resources": {"nvidia.com/gpu": "one"}}, "autoscaler_resources"),
        ({"autoscaler_resources": {"nvidia.com/gpu": "0"}}, "autoscaler_resources"),
    ],
)
def test_node_group_construct_rejects_bad_props(overrides, field) -> None:
    tiny = TinyStack()
    props = node_group_props(tiny, **overrides)
    with pytest.raises(ConfigurationError) as error:
        EksNodeGroup(tiny.stack, "nodes", props)
    assert (error.value.where, error.value.field) == ("tiny/nodes", field)
