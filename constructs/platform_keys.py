"""Customer-managed KMS keys for the platform's data, EKS secrets and logs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.iam_policy import PolicyStatement, policy_document
from constructs.provider_bindings import aws
from constructs.validation import ConfigurationError, require_field_types, require_int_range

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
class PlatformKeysSettings:
    """Per-environment key settings.

    deletion_window_days: how long a deleted key can still be recovered (7-30 days). Longer in
    production, because a deleted key makes every object encrypted with it unreadable.
    """

    deletion_window_days: int = 30

    def __post_init__(self) -> None:
        require_field_types(self, "PlatformKeysSettings")
        require_int_range("PlatformKeysSettings", "deletion_window_days", self.deletion_window_days, 7, 30)


@dataclass(frozen=True)
class PlatformKeysProps:
    """Props for :class:`PlatformKeys`.

    name_prefix: prefix of the key aliases (``alias/<prefix>-data``).
    account_id, region, partition: where the keys live; usually data-source tokens.
    settings: environment-specific values.
    """

    name_prefix: str
    account_id: str
    region: str
    partition: str = "aws"
    settings: PlatformKeysSettings = PlatformKeysSettings()


class PlatformKeys(Construct):
    """Three customer-managed keys, rotation on, each usable only through the services that need it.

    - ``data``: S3 buckets, EBS volumes, SageMaker volumes and ECR, only via those services.
    - ``eks_secrets``: envelope encryption of Kubernetes secrets, only via EKS.
    - ``logs``: CloudWatch Logs groups of this account and region (VPC flow logs, EKS control plane,
      Lambda), bound by the log group ARN encryption context.
    """

    def __init__(self, scope: Construct, id: str, props: PlatformKeysProps) -> None:
        super().__init__(scope, id)
        if not props.name_prefix:
            raise ConfigurationError(self.node.path, "name_prefix", props.name_prefix, "a non-empty string")
        self.props = props
        self._root = f"arn:{props.partition}:iam::{props.account_id}:root"
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
    ) -> Any:
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
                        "StringEquals": {
                            "kms:ViaService": [f"{svc}.{self.props.region}.amazonaws.com" for svc in via_services]
                        }
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
            self, f"{purpose}-alias", name=f"alias/{self.props.name_prefix}-{purpose}", target_key_id=key.key_id
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
                    "kms:CallerAccount": self.props.account_id,
                    "kms:ViaService": f"ec2.{self.props.region}.amazonaws.com",
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
                    "kms:CallerAccount": self.props.account_id,
                    "kms:ViaService": f"ec2.{self.props.region}.amazonaws.com",
                },
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        )

    def _logs_statement(self) -> PolicyStatement:
        p = self.props
        return PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals={"Service": f"logs.{p.region}.amazonaws.com"},
            actions=("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
            resources=("*",),
            conditions={
                "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{p.partition}:logs:{p.region}:{p.account_id}:*"}
            },
        )

    @staticmethod
    def use_statement(key: Any, sid: str, *, via_service: str | None = None) -> PolicyStatement:
        """A statement that lets a role encrypt and decrypt with ``key`` (optionally only via a service)."""
        conditions = {"StringEquals": {"kms:ViaService": via_service}} if via_service else {}
        return PolicyStatement(
            sid=sid,
            actions=("kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"),
            resources=(key.arn,),
            conditions=conditions,
        )
