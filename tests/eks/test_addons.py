"""EKS add-ons: pinned versions that wait for nodes, the EBS CSI role, and the encrypted default storage class."""

from __future__ import annotations

import pytest
from constructs.eks.addons import EksAddons, EksAddonsProps

from tests.eks.clusters import eks_cluster
from tests.support.stacks import OWNER_TAGS, TinyStack, context
from tests.support.synth_json import (
    ENVIRONMENTS,
    address,
    allow,
    data_ref,
    doc,
    ref,
    resources,
    role_attachments,
    role_policies,
)

KEY_ACTIONS = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_core_addons_are_pinned_and_wait_for_nodes(stacks, env) -> None:
    stack = stacks[env]
    # The core add-ons; monitoring's CloudWatch observability add-on is tested in tests/monitoring.
    addons = {
        a["addon_name"]: a
        for a in resources(stack, "aws_eks_addon").values()
        if "/eks/addons/" in a["//"]["metadata"]["path"]
    }
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
    attached = role_attachments(stack, "eks/addons/ebs-csi-irsa/role")
    assert [arn.split(":", 2)[2] for arn in attached] == ["iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    data_key = ref(stack, "aws_kms_key", "platform/keys/data", "arn")
    region = data_ref(stack, "aws_region", "platform/region", "name")
    assert role_policies(stack, "eks/addons/ebs-csi-irsa/role") == {
        "permissions": doc(
            allow(
                "EncryptVolumesWithDataKey",
                KEY_ACTIONS,
                data_key,
                StringEquals={"kms:ViaService": f"ec2.{region}.amazonaws.com"},
            ),
            allow("AttachEncryptedVolumes", GRANT_ACTIONS, data_key, Bool={"kms:GrantIsForAWSResource": "true"}),
        )
    }


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


# --- add-ons built alone ---------------------------------------------------------------------------------


def test_addons_tag_volumes_with_the_clusters_owner_tags_and_use_its_region_and_partition() -> None:
    tiny = TinyStack()
    where = context(region="eu-west-1", partition="aws-cn", owner_tags={**OWNER_TAGS, "project": "vision"})
    cluster = eks_cluster(tiny, context=where)
    addons = EksAddons(
        tiny.stack,
        "addons",
        EksAddonsProps(cluster=cluster, volume_key=tiny.key, storage_reclaim_policy="Delete"),
    )
    assert addons.storage_class is not None
    stack = tiny.synth()
    (storage_class,) = stack["resource"]["kubernetes_storage_class_v1"].values()
    assert storage_class["reclaim_policy"] == "Delete"
    assert {k: v for k, v in storage_class["parameters"].items() if k.startswith("tagSpecification_")} == {
        "tagSpecification_1": "cost_center=c",
        "tagSpecification_2": "environment=test",
        "tagSpecification_3": "project=vision",
        "tagSpecification_4": "team=t",
    }
    role = next(name for name, r in stack["resource"]["aws_iam_role"].items() if r["name"] == "tiny-ebs-csi")
    attachments = [
        a["policy_arn"] for a in stack["resource"]["aws_iam_role_policy_attachment"].values() if role in a["role"]
    ]
    assert attachments == ["arn:aws-cn:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
    (permissions,) = [p for p in stack["resource"]["aws_iam_role_policy"].values() if role in p["role"]]
    assert '"kms:ViaService": "ec2.eu-west-1.amazonaws.com"' in permissions["policy"]
