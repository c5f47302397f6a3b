"""Customer-managed KMS keys for the platform's data, EKS secrets and logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, policy_document
from constructs.core.refs import KmsKeyRef
from constructs.storage.settings import PlatformKeysSettings

# Explicit administration actions: the account administers the key without a `kms:*` wildcard.
KEY_ADMIN_ACTIONS = (
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
)
KEY_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)


@dataclass(frozen=True)
class PlatformKeysProps:
    """Props for :class:`PlatformKeys`.

    context: the environment; its name prefix starts the key aliases (``alias/<prefix>-data``).
    settings: environment-specific values.
    """

    context: PlatformContext
    settings: PlatformKeysSettings = field(default_factory=PlatformKeysSettings)


class PlatformKeys(Construct):
    """Three customer-managed keys, rotation on, each usable only through the services that need it.

    - ``data``: S3 buckets, EBS volumes, SageMaker volumes and ECR, only via those services.
    - ``eks_secrets``: envelope encryption of Kubernetes secrets, only via EKS.
    - ``logs``: CloudWatch Logs groups of this account and region (VPC flow logs, EKS control plane,
      Lambda), bound by the log group ARN encryption context.
    """

    def __init__(self, scope: Construct, id: str, props: PlatformKeysProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.context = props.context
        self._root = props.context.account_root
        self.data = self._key(
            "data",
            "ML platform data: S3 buckets, EBS and SageMaker volumes, ECR images",
            via_services=("s3", "ec2", "sagemaker", "ecr"),
            extra=(self._ebs_use_statement(), self._ebs_attachment_statement()),
        )
        self.eks_secrets = self._key(
            "eks-secrets",
            "ML platform EKS secrets envelope encryption",
            via_services=("eks",),
        )
        self.logs = self._key("logs", "ML platform CloudWatch Logs", via_services=(), extra=(self._logs_statement(),))

    def _key(
        self,
        purpose: str,
        description: str,
        *,
        via_services: tuple[str, ...],
        extra: tuple[PolicyStatement, ...] = (),
    ) -> KmsKeyRef:
        statements = [
            PolicyStatement(
                sid="AccountAdministersKey",
                principals={"AWS": self._root},
                actions=KEY_ADMIN_ACTIONS,
                resources=("*",),
            )
        ]
        if via_services:
            statements.append(
                PolicyStatement(
                    sid="AccountUsesKeyThroughServices",
                    principals={"AWS": self._root},
                    actions=(*KEY_USE_ACTIONS, "kms:CreateGrant"),
                    resources=("*",),
                    conditions={
                        "StringEquals": {"kms:ViaService": [self.context.via_service(svc) for svc in via_services]}
                    },
                )
            )
        statements.extend(extra)
        key = aws.kms_key.KmsKey(
            self,
            purpose,
            description=description,
            enable_key_rotation=True,
            deletion_window_in_days=self.props.settings.deletion_window_days,
            policy=policy_document(*statements),
        )
        aws.kms_alias.KmsAlias(
            self, f"{purpose}-alias", name=f"alias/{self.context.name_prefix}-{purpose}", target_key_id=key.key_id
        )
        return key

    def _ebs_use_statement(self) -> PolicyStatement:
        # The grant alone is not enough: the Auto Scaling service-linked role also calls the key
        # directly when it launches an instance with an encrypted volume (AWS's documented key policy
        # for CMK-encrypted Auto Scaling volumes; aws/ebs allows the same through EC2 only).
        return PolicyStatement(
            sid="AccountServiceRolesUseKeyForVolumes",
            principals={"AWS": "*"},
            actions=KEY_USE_ACTIONS,
            resources=("*",),
            conditions={
                "StringEquals": {
                    "kms:CallerAccount": self.context.account_id,
                    "kms:ViaService": self.context.via_service("ec2"),
                }
            },
        )

    def _ebs_attachment_statement(self) -> PolicyStatement:
        # The Auto Scaling and EKS service-linked roles launch instances with encrypted volumes; they
        # cannot be named before they exist, so AWS's own pattern (that of aws/ebs) is used instead:
        # any principal of this account, only through EC2, only for persistent-resource grants.
        return PolicyStatement(
            sid="AccountServiceRolesAttachEncryptedVolumes",
            principals={"AWS": "*"},
            actions=("kms:CreateGrant",),
            resources=("*",),
            conditions={
                "StringEquals": {
                    "kms:CallerAccount": self.context.account_id,
                    "kms:ViaService": self.context.via_service("ec2"),
                },
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        )

    def _logs_statement(self) -> PolicyStatement:
        c = self.context
        return PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals={"Service": c.via_service("logs")},
            actions=("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
            resources=("*",),
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": c.arn("logs", "*")}},
        )
