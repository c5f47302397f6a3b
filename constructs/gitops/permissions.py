"""What the GitHub roles may do, written as policy statements: a deploy role per environment, one plan role.

Stated in docs/gitops.md ("What each role may do") and checked by tests/gitops/test_bootstrap.py.

A deploy role runs ``terraform apply`` of one environment: it creates, changes and deletes every resource type of
the platform, so it holds the whole of each AWS service the platform uses, but only in the environment's region;
S3 and IAM only on names starting with the environment's prefix; its own state object and lock; no action on a
resource tagged for another environment; and explicit denials for what would let it escape those bounds (the
bootstrap's own roles, OIDC provider and state bucket, and AWS's administrator policies).

The plan role runs ``terraform plan`` of every environment for pull requests and drift checks: AWS's
``ReadOnlyAccess`` (kept current by AWS as services add read actions, which a refresh needs) minus reading data:
objects outside the state, secret values, table items, log events and container image layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from constructs.core.iam import PolicyStatement

READ_ONLY_POLICY = "ReadOnlyAccess"
"""AWS's read-only managed policy, the plan role's base."""

# AWS-managed policies that would make a platform role an administrator (rule IAM-2 keeps them out of the code; the
# deploy role may not attach them either, whatever the code says).
ADMINISTRATOR_POLICY_NAMES = ("AdministratorAccess", "PowerUserAccess", "*FullAccess")

# Reads that return data rather than configuration; a refresh never needs them, a leaked plan token must not
# have them.
DATA_READ_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "ssm:GetParameterHistory",
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:PartiQLSelect",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
    "logs:StartQuery",
    "logs:GetQueryResults",
    "logs:StartLiveTail",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "rds:DownloadDBLogFilePortion",
    "rds:DownloadCompleteDBLogFile",
    "sqs:ReceiveMessage",
    "kinesis:GetRecords",
    "athena:GetQueryResults",
    "athena:GetQueryResultsStream",
    "kinesisvideo:GetMedia",
    "glacier:GetJobOutput",
    "codecommit:GetFile",
    "codecommit:GetBlob",
    "codecommit:GitPull",
)
# Every object read (the object, its versions, attributes, torrent, ACL...); only the state objects are excepted.
OBJECT_READ_ACTIONS = ("s3:GetObject*",)

# The Route53 calls a deploy makes: reading zones and writing the records the platform owns (certificate
# validation, MLflow's and the models' aliases, the serving failover records and their health checks). Zones
# themselves are the account's, not the platform's.
DNS_RECORD_ACTIONS = (
    "route53:ChangeResourceRecordSets",
    "route53:ChangeTagsForResource",
    "route53:CreateHealthCheck",
    "route53:DeleteHealthCheck",
    "route53:GetHealthCheck",
    "route53:UpdateHealthCheck",
    "route53:GetChange",
    "route53:GetHostedZone",
    "route53:ListHostedZones",
    "route53:ListHostedZonesByName",
    "route53:ListResourceRecordSets",
    "route53:ListTagsForResource",
)


@dataclass(frozen=True)
class DeployTarget:
    """One environment a deploy role applies.

    environment: its name, which is also its GitHub Environment's.
    region: where its resources live.
    name_prefix: the start of its resource names (``<resource_prefix>-<environment>``).
    secondary_region: the region it recovers in, where it keeps copies (backups, keys), or None.
    """

    environment: str
    region: str
    name_prefix: str
    secondary_region: str | None = None

    @property
    def regions(self) -> str | list[str]:
        """The ``aws:RequestedRegion`` its regional services may be called in: its region, and its secondary."""
        return self.region if self.secondary_region is None else [self.region, self.secondary_region]


@dataclass(frozen=True)
class Account:
    """The account and partition the roles live in (data-source tokens)."""

    account_id: str
    partition: str

    def iam(self, resource: str) -> str:
        """An IAM ARN of this account (``role/x``, ``policy/x``)."""
        return f"arn:{self.partition}:iam::{self.account_id}:{resource}"


def deploy_statements(
    target: DeployTarget,
    account: Account,
    *,
    regional_services: Sequence[str],
    off_limits_roles: Sequence[str],
    off_limits_identity_provider: str,
    off_limits_buckets: Sequence[str],
    state_key_arn: str,
) -> list[PolicyStatement]:
    """The permissions of ``target``'s deploy role, apart from its state (granted by the state store).

    regional_services: IAM prefixes (``ec2``, ``eks``...) of the regional services the platform uses, S3 excepted.
    off_limits_roles, off_limits_identity_provider, off_limits_buckets: ARNs of the bootstrap's own roles, GitHub
      OIDC provider and buckets, which no deploy may touch (explicit denials win over any allow).
    state_key_arn: the state bucket's KMS key, tagged ``environment = shared`` like every bootstrap resource, which
      the role still uses (through S3) to read and write its state.
    """
    prefix = target.name_prefix
    s3 = f"arn:{account.partition}:s3:::{prefix}-*"
    return [
        PolicyStatement(
            sid="PlatformServicesInItsRegion",
            actions=tuple(f"{service}:*" for service in regional_services),
            resources=("*",),
            conditions={"StringEquals": {"aws:RequestedRegion": target.regions}},
        ),
        PolicyStatement(sid="PlatformBuckets", actions=("s3:*",), resources=(s3, f"{s3}/*")),
        PolicyStatement(
            sid="PlatformIdentities",
            actions=("iam:*",),
            resources=(
                account.iam(f"role/{prefix}-*"),
                account.iam(f"policy/{prefix}-*"),
                account.iam(f"instance-profile/{prefix}-*"),
                # The EKS cluster's IRSA provider is named after its issuer URL, not the prefix.
                account.iam(f"oidc-provider/oidc.eks.{target.region}.amazonaws.com/*"),
            ),
        ),
        PolicyStatement(sid="ReadIdentities", actions=("iam:Get*", "iam:List*"), resources=("*",)),
        PolicyStatement(
            sid="ServiceLinkedRoles",
            actions=("iam:CreateServiceLinkedRole",),
            resources=(account.iam("role/aws-service-role/*"),),
        ),
        PolicyStatement(sid="DnsRecords", actions=DNS_RECORD_ACTIONS, resources=("*",)),
        PolicyStatement(
            sid="EnvironmentBudgets",
            actions=(
                "budgets:ModifyBudget",
                "budgets:ViewBudget",
                "budgets:TagResource",
                "budgets:UntagResource",
                "budgets:ListTagsForResource",
            ),
            resources=(f"arn:{account.partition}:budgets::{account.account_id}:budget/{prefix}-*",),
        ),
        PolicyStatement(
            sid="NoAdministratorPolicies",
            effect="Deny",
            actions=("iam:AttachRolePolicy",),
            resources=("*",),
            conditions={
                "ArnLike": {
                    "iam:PolicyARN": [
                        f"arn:{account.partition}:iam::aws:policy/{name}" for name in ADMINISTRATOR_POLICY_NAMES
                    ]
                }
            },
        ),
        # Environments may share an account and a region, so the service grants above reach every environment's
        # resources: these two keep each deploy role to resources tagged with its own environment (every platform
        # resource carries the tag: provider default_tags, rule TAG-1). Where a service does not put the tag in
        # the request context, the conditions do not apply (Null), so creation and listing still work.
        _deny_other_environments(
            "OtherEnvironmentsResourcesAreOffLimits", "aws:ResourceTag/environment", target, except_=state_key_arn
        ),
        _deny_other_environments("NoResourcesTaggedForOtherEnvironments", "aws:RequestTag/environment", target),
        PolicyStatement(
            sid="BootstrapIsOffLimits",
            effect="Deny",
            actions=("iam:*",),
            resources=(*off_limits_roles, off_limits_identity_provider),
        ),
        PolicyStatement(
            sid="StateBucketsAreOffLimits",
            effect="Deny",
            actions=(
                "s3:DeleteBucket*",
                "s3:PutBucket*",
                "s3:PutEncryptionConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:PutReplicationConfiguration",
                "s3:PutObjectLockConfiguration",
                "s3:DeleteObjectVersion",
            ),
            resources=tuple(arn for bucket in off_limits_buckets for arn in (bucket, f"{bucket}/*")),
        ),
    ]


def _deny_other_environments(sid: str, key: str, target: DeployTarget, except_: str | None = None) -> PolicyStatement:
    # A negated operator also matches an absent key: Null false limits the denial to requests that carry the tag.
    return PolicyStatement(
        sid=sid,
        effect="Deny",
        actions=("*",),
        resources=() if except_ else ("*",),
        not_resources=(except_,) if except_ else (),
        conditions={"StringNotEquals": {key: target.environment}, "Null": {key: "false"}},
    )


def plan_denials(*, state_objects: Sequence[str]) -> list[PolicyStatement]:
    """What the plan role may not read although ``ReadOnlyAccess`` would allow it: data, not configuration.

    state_objects: the state object ARNs it must still read (every other object is denied).
    """
    return [
        PolicyStatement(sid="NoDataReads", effect="Deny", actions=DATA_READ_ACTIONS, resources=("*",)),
        PolicyStatement(
            sid="NoObjectReadsButState",
            effect="Deny",
            actions=OBJECT_READ_ACTIONS,
            not_resources=tuple(state_objects),
        ),
    ]
