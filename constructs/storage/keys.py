"""Customer-managed KMS keys for the platform's data, EKS secrets and logs, and the key policy all keys share.

Every key of the platform (these three and any other feature's, such as the training cluster's notifications
key) is administered the same way: :func:`key_policy` starts its policy with :func:`administration_statements`,
so named roles administer the key and the account as a whole may only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, policy_document
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef
from constructs.storage.settings import PlatformKeysSettings

# The AWS console's key administrator actions, written out instead of `kms:*`. They include kms:PutKeyPolicy
# (kms:Put*) and kms:CreateGrant (kms:Create*): whoever holds them can give anyone any use of the key.
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
# What the account keeps: reading the key's metadata, policy, rotation status, grants and tags.
KEY_READ_ACTIONS = (
    "kms:DescribeKey",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListResourceTags",
)
KEY_USE_ACTIONS = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
)


@dataclass(frozen=True)
class KeyAdministrators:
    """Who administers the platform's keys: the principal that runs Terraform and the environment's named roles.

    deployer_arn: the IAM role (or user) running Terraform, as the ``issuer_arn`` of an ``aws_iam_session_context``
      of the caller identity: a key policy cannot name an assumed-role session, only its role.
    role_arns: the other administrator roles (``keys.admin_role_arns`` of the environment).
    """

    deployer_arn: str
    role_arns: tuple[str, ...] = ()

    @property
    def principals(self) -> tuple[str, ...]:
        """The deployer first, then every named role (a named role equal to the deployer appears once)."""
        return (self.deployer_arn, *(arn for arn in self.role_arns if arn != self.deployer_arn))


def administration_statements(
    context: PlatformContext, administrators: KeyAdministrators
) -> tuple[PolicyStatement, PolicyStatement]:
    """The first two statements of every key policy: the account reads the key, the administrators manage it."""
    # The account principal (`...:root`) in a key policy lets IAM policies of the account grant what the
    # statement lists. AWS's default key policy gives it kms:*, so that an IAM administrator can always recover
    # the key; but then any principal an IAM policy allows may also PutKeyPolicy or CreateGrant, and the key is
    # administered by the whole account. AWS does not require the account statement ("you are not required to
    # give the account principal ... access", Default key policy); what it guards against, a key nobody can
    # manage, is guarded here by the administrators statement: the role running Terraform is always in it (the
    # lockout safety check refuses a policy that would not let its creator call PutKeyPolicy again), and
    # keys.admin_role_arns names the others, such as a break-glass role. The account keeps read-only actions so
    # that auditors, AWS Config and read-only plans can still see the key through IAM.
    return (
        PolicyStatement(
            sid="AccountReadsKey",
            principals={"AWS": context.account_root},
            actions=KEY_READ_ACTIONS,
            resources=("*",),
        ),
        PolicyStatement(
            sid="AdministratorsManageKey",
            principals={"AWS": list(administrators.principals)},
            actions=KEY_ADMIN_ACTIONS,
            resources=("*",),
        ),
    )


def key_policy(context: PlatformContext, administrators: KeyAdministrators, *statements: PolicyStatement) -> str:
    """A key policy: :func:`administration_statements`, then ``statements`` (who may use the key, and how)."""
    return policy_document(*administration_statements(context, administrators), *statements)


@dataclass(frozen=True)
class PlatformKeysProps:
    """Props for :class:`PlatformKeys`.

    context: the environment; its name prefix starts the key aliases (``alias/<prefix>-data``), and its
      deployer administers every key (see :class:`KeyAdministrators`).
    settings: environment-specific values, among them the other administrator roles.
    """

    context: PlatformContext
    settings: PlatformKeysSettings = field(default_factory=PlatformKeysSettings)


class PlatformKeys(Construct):
    """Three customer-managed keys, rotation on, each usable only through the services that need it.

    Each is administered by :attr:`administrators` (the deploying role and ``settings.admin_role_arns``), which
    other features' keys share; the account itself may only read them.

    - ``data``: S3 buckets, EBS volumes, SageMaker volumes, ECR and RDS databases, only via those services.
    - ``eks_secrets``: envelope encryption of Kubernetes secrets, only via EKS.
    - ``logs``: CloudWatch Logs groups of this account and region (VPC flow logs, EKS control plane,
      Lambda), bound by the log group ARN encryption context.
    """

    def __init__(self, scope: Construct, id: str, props: PlatformKeysProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.context = props.context
        self._root = props.context.account_root
        self.administrators = KeyAdministrators(props.context.deployer_arn, props.settings.admin_role_arns)
        self.data = self._key(
            "data",
            "ML platform data: S3 buckets, EBS and SageMaker volumes, ECR images, RDS databases",
            via_services=("s3", "ec2", "sagemaker", "ecr", "rds"),
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
        statements: list[PolicyStatement] = []
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
            policy=key_policy(self.context, self.administrators, *statements),
            # Deleting a key makes everything encrypted with it unreadable.
            lifecycle=prevent_destroy(self.context.protected),
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
        return logs_key_statement(self.context)


def logs_key_statement(context: PlatformContext) -> PolicyStatement:
    """What makes a key a logs key: CloudWatch Logs of ``context``'s region uses it for this account's log groups."""
    return PolicyStatement(
        sid="CloudWatchLogsOfThisAccount",
        principals={"Service": context.via_service("logs")},
        actions=("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"),
        resources=("*",),
        conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn": context.arn("logs", "*")}},
    )
