"""The EKS add-ons every node needs (VPC CNI, kube-proxy, CoreDNS, EBS CSI) and the default storage class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.eks_cluster import RECLAIM_POLICIES, EksCluster
from constructs.iam_policy import PolicyStatement
from constructs.irsa_role import IrsaRole, IrsaRoleProps
from constructs.provider_bindings import aws, kubernetes
from constructs.validation import ConfigurationError, require, require_one_of

EBS_CSI_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
EBS_CSI_PROVISIONER = "ebs.csi.aws.com"
DEFAULT_STORAGE_CLASS = "gp3-encrypted"
DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"


@dataclass(frozen=True)
class EksAddonsProps:
    """Props for :class:`EksAddons`.

    cluster: the cluster to install into; its settings pin the add-on versions.
    region: the cluster's region (the data key is usable only through EC2 there).
    volume_key: KMS key for EBS volumes created through the default storage class.
    owner_tags: cost tags put on every dynamically provisioned volume.
    storage_reclaim_policy: ``Retain`` or ``Delete`` for volumes of the default storage class.
    depends_on: resources the add-ons wait for (node groups: CoreDNS and the EBS CSI controller
      only become healthy once there are nodes to run on).
    in_cluster_resources: create the default StorageClass, a Kubernetes object that needs the
      cluster's API endpoint at apply time. False leaves it out; the add-ons and the EBS CSI role,
      which only the AWS API creates, are there either way.
    """

    cluster: EksCluster
    region: str
    volume_key: Any
    owner_tags: Mapping[str, str]
    storage_reclaim_policy: str = "Retain"
    depends_on: Sequence[Any] = ()
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
        require_one_of(self.node.path, "storage_reclaim_policy", props.storage_reclaim_policy, RECLAIM_POLICIES)
        require(
            isinstance(props.in_cluster_resources, bool),
            self.node.path,
            "in_cluster_resources",
            props.in_cluster_resources,
            "True or False",
        )
        missing = [key for key in ("environment", "team", "cost_center", "project") if not props.owner_tags.get(key)]
        if missing:
            raise ConfigurationError(self.node.path, "owner_tags", dict(props.owner_tags), f"a map with {missing}")
        self.props = props
        cluster = props.cluster
        release = cluster.props.settings.release
        partition = cluster.props.partition

        self.ebs_csi_role = IrsaRole(
            self,
            "ebs-csi-irsa",
            IrsaRoleProps(
                role_name=f"{cluster.name}-ebs-csi",
                description=f"EBS CSI controller of EKS cluster {cluster.name}",
                namespace=EBS_CSI_NAMESPACE,
                service_account_name=EBS_CSI_SERVICE_ACCOUNT,
                oidc_provider_arn=cluster.oidc_provider.arn,
                oidc_issuer_host=cluster.oidc_issuer_host,
                managed_policy_arns=(f"arn:{partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy",),
                statements=self._volume_key_statements(props.volume_key, props.region),
                create_service_account=False,
            ),
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
            for index, (key, value) in enumerate(sorted(props.owner_tags.items()), start=1)
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
    def _volume_key_statements(key: Any, region: str) -> tuple[PolicyStatement, ...]:
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
                conditions={"StringEquals": {"kms:ViaService": f"ec2.{region}.amazonaws.com"}},
            ),
            PolicyStatement(
                sid="AttachEncryptedVolumes",
                actions=("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"),
                resources=(key.arn,),
                conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            ),
        )
