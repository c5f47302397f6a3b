"""The EKS add-ons every node needs (VPC CNI, kube-proxy, CoreDNS, EBS CSI) and the default storage class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import aws, kubernetes
from constructs.core.iam import PolicyStatement
from constructs.core.refs import KmsKeyRef
from constructs.eks.cluster import EksCluster

EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
DEFAULT_STORAGE_CLASS = "gp3-encrypted"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class EksAddonsProps:
    """Props for :class:`EksAddons`.

    cluster: the cluster to install into; its Kubernetes release pins the add-on versions, and its
      context's owner tags go on every dynamically provisioned volume.
    volume_key: KMS key for EBS volumes created through the default storage class (usable only through EC2).
    storage_reclaim_policy: ``Retain`` or ``Delete`` for volumes of the default storage class.
    depends_on: resources the add-ons wait for (node groups: CoreDNS and the EBS CSI controller
      only become healthy once there are nodes to run on).
    in_cluster_resources: create the default StorageClass, a Kubernetes object that needs the
      cluster's API endpoint at apply time. False leaves it out; the add-ons and the EBS CSI role,
      which only the AWS API creates, are there either way.
    """

    cluster: EksCluster
    volume_key: KmsKeyRef
    storage_reclaim_policy: str = "Retain"
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class EksAddons(Construct):
    """EKS-managed add-ons at pinned versions, and an encrypted gp3 default StorageClass.

    Conflicts are resolved with OVERWRITE both on create (EKS's bootstrap copies are adopted) and on
    update (Terraform's ``configuration_values`` are the only configuration; a manual ``kubectl edit``
    of an add-on's fields is reverted on the next version change rather than silently kept).

    The EBS CSI driver gets its own IRSA role: the AWS-managed ``AmazonEBSCSIDriverPolicy`` plus use
    of the data key through EC2, which encrypted volumes need. The add-on creates and annotates its
    service account itself, so the role does not. Without ``in_cluster_resources`` there is no
    StorageClass (and nothing here talks to the Kubernetes API).
    """

    def __init__(self, scope: Construct, id: str, props: EksAddonsProps) -> None:
        super().__init__(scope, id)
        self.props = props
        cluster = props.cluster
        release = cluster.release

        self.ebs_csi_role = cluster.add_service_account(
            self,
            "ebs-csi-irsa",
            role_name=f"{cluster.name}-ebs-csi",
            description=f"EBS CSI controller of EKS cluster {cluster.name}",
            namespace=EBS_CSI_NAMESPACE,
            service_account_name=EBS_CSI_SERVICE_ACCOUNT,
            managed_policy_arns=(cluster.context.managed_policy_arn("service-role/AmazonEBSCSIDriverPolicy"),),
            statements=self._volume_key_statements(props.volume_key, cluster.context.via_service("ec2")),
            create_service_account=False,
        )

        versions = {
            "vpc-cni": release.vpc_cni,
            "kube-proxy": release.kube_proxy,
            "coredns": release.coredns,
            "aws-ebs-csi-driver": release.ebs_csi_driver,
        }
        self.addons: dict[str, Any] = {}
        for name, version in versions.items():
            self.addons[name] = aws.eks_addon.EksAddon(
                self,
                name,
                cluster_name=cluster.cluster.name,
                addon_name=name,
                addon_version=version,
                resolve_conflicts_on_create="OVERWRITE",
                resolve_conflicts_on_update="OVERWRITE",
                service_account_role_arn=self.ebs_csi_role.arn if name == "aws-ebs-csi-driver" else None,
                depends_on=[
                    *props.depends_on,
                    *(self.ebs_csi_role.policy_attachments if name == "aws-ebs-csi-driver" else ()),
                ]
                or None,
            )

        self.storage_class: Any | None = None
        if props.in_cluster_resources:
            self.storage_class = self._default_storage_class(props)

    def _default_storage_class(self, props: EksAddonsProps) -> Any:
        tag_parameters = {
            f"tagSpecification_{index}": f"{key}={value}"
            for index, (key, value) in enumerate(sorted(props.cluster.context.owner_tags.items()), start=1)
        }
        return kubernetes.storage_class_v1.StorageClassV1(
            self,
            "default-storage-class",
            metadata=kubernetes.storage_class_v1.StorageClassV1Metadata(
                name=DEFAULT_STORAGE_CLASS,
                annotations={DEFAULT_CLASS_ANNOTATION: "true"},
            ),
            storage_provisioner=EBS_CSI_PROVISIONER,
            parameters={
                "type": "gp3",
                # The CSI provisioner reads this key; the driver only logs its legacy "fsType" as deprecated.
                "csi.storage.k8s.io/fstype": "ext4",
                "encrypted": "true",
                "kmsKeyId": props.volume_key.arn,
                **tag_parameters,
            },
            # Binding waits for the pod's node, so the volume is created in that node's AZ.
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy=props.storage_reclaim_policy,
            allow_volume_expansion=True,
            depends_on=[self.addons["aws-ebs-csi-driver"], *props.cluster.admin_access],
        )

    @staticmethod
    def _volume_key_statements(key: KmsKeyRef, ec2_service: str) -> tuple[PolicyStatement, ...]:
        return (
            PolicyStatement(
                sid="EncryptVolumesWithDataKey",
                actions=(
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ),
                resources=(key.arn,),
                conditions={"StringEquals": {"kms:ViaService": ec2_service}},
            ),
            PolicyStatement(
                sid="AttachEncryptedVolumes",
                actions=("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"),
                resources=(key.arn,),
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        )
