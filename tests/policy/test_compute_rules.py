"""EC2-1 (IMDSv2), EC2-2 (encrypted volumes), NET-1 (no internet ingress) and GPU-1 on hand-written input."""

from __future__ import annotations

from typing import Any

import pytest
from constructs.policy.rules import (
    LOAD_BALANCER_SG_TAG,
    EncryptedVolumes,
    GpuOnlyWhereAllowed,
    InstanceMetadataV2,
    NoPublicIngress,
)

from tests.policy.cases import check_one

# --- EC2-1 / EC2-2 --------------------------------------------------------------------------------

_EBS = {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "kms_key_id": "${aws_kms_key.k.arn}"}}


def test_ec2_rules_pass_imdsv2_and_kms_encrypted_volumes() -> None:
    config = {"metadata_options": {"http_tokens": "required"}, "block_device_mappings": [_EBS]}
    assert check_one(InstanceMetadataV2(), "aws_launch_template", config) == []
    assert check_one(EncryptedVolumes(), "aws_launch_template", config) == []
    instance = {
        "metadata_options": {"http_endpoint": "disabled"},
        "root_block_device": {"encrypted": True, "kms_key_id": "k"},
    }
    assert check_one(InstanceMetadataV2(), "aws_instance", instance) == []
    assert check_one(EncryptedVolumes(), "aws_instance", instance) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "does not require IMDSv2"),
        ({"metadata_options": {"http_tokens": "optional", "http_endpoint": "enabled"}}, "does not require IMDSv2"),
    ],
)
def test_ec2_1_flags_imdsv1(config, message) -> None:
    assert check_one(InstanceMetadataV2(), "aws_launch_template", config) == [
        f"aws_launch_template.r {message} (metadata_options.http_tokens = 'required')"
    ]


@pytest.mark.parametrize(
    ("resource_type", "config", "message"),
    [
        ("aws_launch_template", {}, "maps no EBS volume"),
        (
            "aws_launch_template",
            {"block_device_mappings": [_EBS, {"device_name": "/dev/sdf", "ebs": {"volume_size": 100}}]},
            "volume /dev/sdf is not encrypted",
        ),
        (
            "aws_launch_template",
            {"block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"encrypted": True}}]},
            "volume /dev/xvda has no kms_key_id",
        ),
        ("aws_instance", {"root_block_device": {"encrypted": False}}, "root volume is not encrypted"),
        ("aws_ebs_volume", {"size": 10, "encrypted": True}, "has no kms_key_id"),
    ],
)
def test_ec2_2_flags_unencrypted_or_unmapped_volumes(resource_type, config, message) -> None:
    (problem,) = check_one(EncryptedVolumes(), resource_type, config)
    assert problem.startswith(f"{resource_type}.r") and message in problem


# --- NET-1 ----------------------------------------------------------------------------------------

_LB_TAGS = {LOAD_BALANCER_SG_TAG: "true"}


def _ingress(port: int, cidr: str = "0.0.0.0/0", protocol: str = "tcp") -> dict[str, Any]:
    return {"from_port": port, "to_port": port, "protocol": protocol, "cidr_blocks": [cidr]}


def test_net1_allows_internal_ingress_and_https_on_a_load_balancer_group() -> None:
    rule = NoPublicIngress()
    assert check_one(rule, "aws_security_group", {"ingress": [_ingress(22, "10.0.0.0/16")]}) == []
    assert check_one(rule, "aws_security_group", {"ingress": [_ingress(443)], "tags": _LB_TAGS}) == []
    groups = {"aws_security_group": {"lb": {"tags": _LB_TAGS}}}
    sg_rule = {**_ingress(443), "type": "ingress", "security_group_id": "${aws_security_group.lb.id}"}
    assert check_one(rule, "aws_security_group_rule", sg_rule, **groups) == []
    egress = {**_ingress(0, protocol="-1"), "type": "egress", "security_group_id": "${aws_security_group.x.id}"}
    assert check_one(rule, "aws_security_group_rule", egress) == []
    vpc_rule = {
        "security_group_id": "${aws_security_group.lb.id}",
        "ip_protocol": "tcp",
        "from_port": 443,
        "to_port": 443,
        "cidr_ipv6": "::/0",
    }
    assert check_one(rule, "aws_vpc_security_group_ingress_rule", vpc_rule, **groups) == []


@pytest.mark.parametrize(
    ("resource_type", "config", "fragment"),
    [
        ("aws_security_group", {"ingress": [_ingress(22)]}, "ingress[0] allows 22-22/tcp from ['0.0.0.0/0']"),
        # 443 from anywhere needs the load-balancer tag; other ports never pass, even on a tagged group.
        ("aws_security_group", {"ingress": [_ingress(443)]}, "allows 443-443/tcp"),
        (
            "aws_security_group",
            {"ingress": [_ingress(443), {**_ingress(0, protocol="-1"), "to_port": 0}], "tags": _LB_TAGS},
            "ingress[1] allows 0-0/-1",
        ),
        (
            "aws_security_group_rule",
            {**_ingress(443, "::/0"), "type": "ingress", "security_group_id": "${aws_security_group.app.id}"},
            "allows 443-443/tcp from ['::/0']",
        ),
        (
            "aws_vpc_security_group_ingress_rule",
            {
                "security_group_id": "sg-123",
                "ip_protocol": "tcp",
                "from_port": 80,
                "to_port": 80,
                "cidr_ipv4": "0.0.0.0/0",
            },
            "allows 80-80/tcp",
        ),
    ],
)
def test_net1_flags_internet_ingress(resource_type, config, fragment) -> None:
    (problem,) = check_one(NoPublicIngress(), resource_type, config, aws_security_group={"app": {"tags": {}}})
    assert fragment in problem and LOAD_BALANCER_SG_TAG in problem


# --- GPU-1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "config", "path"),
    [
        ("aws_launch_template", {"instance_type": "g5.2xlarge"}, "instance_type"),
        (
            "aws_autoscaling_group",
            {
                "mixed_instances_policy": {
                    "launch_template": {"override": [{"instance_type": "m6i.large"}, {"instance_type": "p4d.24xlarge"}]}
                }
            },
            "mixed_instances_policy.launch_template.override[1].instance_type",
        ),
        ("aws_eks_node_group", {"instance_types": ["m6i.large", "g5.xlarge"]}, "instance_types"),
        ("aws_eks_node_group", {"ami_type": "AL2_x86_64_GPU", "instance_types": ["m6i.large"]}, "ami_type"),
        (
            "aws_sagemaker_endpoint_configuration",
            {"production_variants": [{"variant_name": "a", "instance_type": "ml.g5.xlarge"}]},
            "production_variants[0].instance_type",
        ),
        (
            "aws_launch_template",
            {"instance_requirements": {"accelerator_count": {"min": 1}, "vcpu_count": {"min": 4}}},
            "instance_requirements",
        ),
    ],
)
def test_gpu1_flags_accelerators_only_where_gpus_are_disabled(resource_type, config, path) -> None:
    (problem,) = check_one(GpuOnlyWhereAllowed(gpu_enabled=False), resource_type, config)
    assert problem.startswith(f"{resource_type}.r.{path}") and "gpu_enabled is False" in problem
    assert check_one(GpuOnlyWhereAllowed(gpu_enabled=True), resource_type, config) == []


def test_gpu1_passes_cpu_instances_and_fails_closed_on_what_it_cannot_classify() -> None:
    rule = GpuOnlyWhereAllowed(gpu_enabled=False)
    assert check_one(rule, "aws_instance", {"instance_type": "t3.micro", "tags": {"instance_type": "g5.xlarge"}}) == []
    assert check_one(rule, "aws_launch_template", {"instance_type": "m6i.xlarge"}) == []
    # A reference resolved at plan time, or a family the catalog does not know, could be a GPU.
    for unknown in ("${var.types}", "zz9.large", "p6-b200.48xlarge"):
        (problem,) = check_one(rule, "aws_eks_node_group", {"instance_types": [unknown]})
        assert "accelerated, or of a family the catalog does not know" in problem
