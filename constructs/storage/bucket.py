"""An S3 bucket with the platform's security baseline and intent-named grants."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.checks import suppress
from constructs.core.errors import ConfigurationError, require
from constructs.core.iam import PolicyStatement, grant, policy_document
from constructs.core.refs import KmsKeyRef, RoleRef
from constructs.storage.settings import BUCKET_NAME_ALLOWED, BucketLifecycle, is_bucket_name

# An unresolved Terraform token inside a Python string, e.g. the account ID from a data source.
_TOKEN = re.compile(r"\$\{TfToken\[[^\]]+\]\}")
# Account IDs are 12 digits: the length a token stands for when a name is checked before apply.
ACCOUNT_ID_LENGTH = 12


@dataclass(frozen=True)
class SecureBucketProps:
    """Props for :class:`SecureBucket`.

    bucket_name: globally unique S3 name; may contain the account ID token (counted as its 12 digits).
    kms_key: customer-managed key for SSE-KMS; None means SSE-S3, which only the access-log bucket
      may use (S3 server access logging cannot deliver to SSE-KMS buckets).
    lifecycle: destroy protection and the lifecycle rules (old versions, expiry, multipart uploads).
    access_log_bucket: bucket that receives this bucket's server access logs, if any.
    log_delivery_source_account: with ``kms_key=None``, the account whose buckets may log here: those that name
      this bucket as their ``access_log_bucket``, and no other.
    """

    bucket_name: str
    kms_key: KmsKeyRef | None
    lifecycle: BucketLifecycle = field(default_factory=BucketLifecycle)
    access_log_bucket: SecureBucket | None = None
    log_delivery_source_account: str | None = None


class SecureBucket(Construct):
    """An S3 bucket that is private, encrypted, versioned, TLS-only and tidied by lifecycle rules.

    All four public-access-block flags are on, object ownership is enforced on the bucket owner
    (ACLs disabled), SSE-KMS uses S3 bucket keys to cut KMS request costs, and a bucket policy
    denies any request made without TLS. Access is granted only through :meth:`grant_read` and
    :meth:`grant_read_write`, which write least-privilege inline policies.
    """

    def __init__(self, scope: Construct, id: str, props: SecureBucketProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        # A token (the account ID) is only known at apply time; its 12 digits are what S3 will see.
        concrete = _TOKEN.sub("0" * ACCOUNT_ID_LENGTH, props.bucket_name)
        require(is_bucket_name(concrete), where, "bucket_name", props.bucket_name, BUCKET_NAME_ALLOWED)
        if props.kms_key is None and props.log_delivery_source_account is None:
            raise ConfigurationError(
                where,
                "kms_key",
                None,
                "a KMS key (only an access-log bucket, which sets log_delivery_source_account, may use SSE-S3)",
            )
        self.props = props
        self.kms_key = props.kms_key
        if props.kms_key is None:
            suppress(
                self,
                "S3-2",
                "S3 server access logging delivers only to buckets encrypted with SSE-S3 (AES256), not SSE-KMS; "
                "this bucket receives access logs only",
            )

        self.bucket = aws.s3_bucket.S3Bucket(
            self,
            "bucket",
            bucket=props.bucket_name,
            force_destroy=props.lifecycle.force_destroy,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.lifecycle.prevent_destroy else None,
        )
        bucket_id = self.bucket.id
        aws.s3_bucket_public_access_block.S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        aws.s3_bucket_ownership_controls.S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=bucket_id,
            rule=aws.s3_bucket_ownership_controls.S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        # Replication needs versioning on both sides first; a replication configuration depends on this.
        self.versioning = aws.s3_bucket_versioning.S3BucketVersioningA(
            self,
            "versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3_bucket_versioning.S3BucketVersioningVersioningConfiguration(
                status="Enabled"
            ),
        )
        if props.kms_key is not None:
            sse: dict[str, str] = {"sse_algorithm": "aws:kms", "kms_master_key_id": props.kms_key.arn}
            bucket_key = True
        else:
            sse = {"sse_algorithm": "AES256"}
            bucket_key = False
        sse_config = aws.s3_bucket_server_side_encryption_configuration
        sse_config.S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                sse_config.S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=sse_config.S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
                        **sse
                    ),
                    bucket_key_enabled=bucket_key,
                )
            ],
        )
        # Buckets whose server access logs this bucket receives (it must be an access-log bucket).
        self._log_sources: list[str] = []
        # Key prefixes under which Elastic Load Balancing delivers load balancers' access logs.
        self._load_balancer_prefixes: list[str] = []
        # Whether uploads that ask for another encryption than the bucket's key are refused.
        self._own_key_only = False
        self.policy = aws.s3_bucket_policy.S3BucketPolicy(
            self, "policy", bucket=bucket_id, policy=policy_document(*self._policy_statements())
        )
        aws.s3_bucket_lifecycle_configuration.S3BucketLifecycleConfiguration(
            self, "lifecycle", bucket=bucket_id, rule=self._lifecycle_rules(), depends_on=[self.policy]
        )
        if props.access_log_bucket is not None:
            props.access_log_bucket.allow_access_logs_from(self)
            aws.s3_bucket_logging.S3BucketLoggingA(
                self,
                "access-logging",
                bucket=bucket_id,
                target_bucket=props.access_log_bucket.bucket.id,
                target_prefix=f"{props.bucket_name}/",
                # S3 rejects PutBucketLogging (InvalidTargetBucketForLogging) until the target bucket's
                # policy lets the logging service write, so the grant must exist first.
                depends_on=[props.access_log_bucket.policy],
            )

    def _policy_statements(self) -> list[PolicyStatement]:
        arns = (self.bucket.arn, f"{self.bucket.arn}/*")
        statements = [
            PolicyStatement(
                sid="DenyInsecureTransport",
                effect="Deny",
                principals={"AWS": "*"},
                actions=("s3:*",),
                resources=arns,
                conditions={"Bool": {"aws:SecureTransport": "false"}},
            )
        ]
        if self.props.log_delivery_source_account is not None and self._log_sources:
            statements.append(
                PolicyStatement(
                    sid="S3ServerAccessLogDelivery",
                    principals={"Service": "logging.s3.amazonaws.com"},
                    actions=("s3:PutObject",),
                    resources=(f"{self.bucket.arn}/*",),
                    # AWS's server access logging policy: the logging service writes here only on behalf of
                    # the named source buckets of this account (a confused-deputy guard).
                    conditions={
                        "StringEquals": {"aws:SourceAccount": self.props.log_delivery_source_account},
                        "ArnLike": {"aws:SourceArn": list(self._log_sources)},
                    },
                )
            )
        if self._own_key_only and self.props.kms_key is not None:
            # A client asking for SSE-S3 (Terraform's S3 backend with `encrypt = true` and no key) would
            # override the bucket's default and store the object outside the key's policy.
            statements += [
                self._deny_upload_header("DenyOtherEncryption", "s3:x-amz-server-side-encryption", "aws:kms"),
                self._deny_upload_header(
                    "DenyOtherKeys", "s3:x-amz-server-side-encryption-aws-kms-key-id", self.props.kms_key.arn
                ),
            ]
        if self._load_balancer_prefixes:
            account = self.props.log_delivery_source_account
            statements.append(
                PolicyStatement(
                    sid="LoadBalancerAccessLogDelivery",
                    principals={"Service": "logdelivery.elasticloadbalancing.amazonaws.com"},
                    actions=("s3:PutObject",),
                    # ELB writes under <prefix>/AWSLogs/<account>/, and only this account's load balancers' logs.
                    resources=tuple(
                        f"{self.bucket.arn}/{prefix}/*/AWSLogs/{account}/*" for prefix in self._load_balancer_prefixes
                    ),
                )
            )
        return statements

    def _deny_upload_header(self, sid: str, key: str, allowed: str) -> PolicyStatement:
        # A negated operator matches an absent key: Null keeps uploads that ask for no encryption (they get the
        # bucket's default) out, while one asking for SSE-KMS without a key ID (S3 would use aws/s3) is denied.
        return PolicyStatement(
            sid=sid,
            effect="Deny",
            principals={"AWS": "*"},
            actions=("s3:PutObject",),
            resources=(f"{self.bucket.arn}/*",),
            conditions={"StringNotEquals": {key: allowed}, "Null": {"s3:x-amz-server-side-encryption": "false"}},
        )

    def accept_only_its_key(self) -> None:
        """Refuse uploads that ask for SSE-S3 or another KMS key: every object is encrypted with this bucket's key.

        Uploads that name no encryption get the bucket's default (its key): the statements deny only requests that
        carry an encryption header with another value.
        """
        require(self.props.kms_key is not None, self.node.path, "kms_key", None, "a KMS key (an SSE-KMS bucket)")
        self._own_key_only = True
        self.policy.policy = policy_document(*self._policy_statements())

    def allow_load_balancer_logs(self, prefix: str) -> None:
        """Let Elastic Load Balancing deliver access logs of this account's load balancers under ``<prefix>/<name>/``.

        Only an access-log bucket (SSE-S3) may receive them: ELB cannot write to an SSE-KMS bucket. Each load
        balancer logs under a prefix of its own below ``prefix``.
        """
        require(
            self.props.log_delivery_source_account is not None,
            self.node.path,
            "kms_key",
            self.props.kms_key,
            "None: load balancers' access logs go to an access-log bucket (ELB delivers them only to SSE-S3 buckets)",
        )
        self._load_balancer_prefixes.append(prefix)
        self.policy.policy = policy_document(*self._policy_statements())
        suppress(
            self.policy,
            "IAM-3",
            "Elastic Load Balancing's log delivery documents no aws:SourceAccount or aws:SourceArn key; the statement "
            "is kept to keys under AWSLogs/<this account>/, where ELB writes only this account's load balancers' logs",
        )

    def allow_access_logs_from(self, source: SecureBucket) -> None:
        """Let S3 server access logging deliver ``source``'s logs to this bucket, which must be an access-log bucket.

        A :class:`SecureBucket` with an ``access_log_bucket`` calls this itself.
        """
        require(
            self.props.log_delivery_source_account is not None,
            source.node.path,
            "access_log_bucket",
            self.node.path,
            "an access-log bucket (kms_key None and log_delivery_source_account set: S3 delivers server access "
            "logs only to SSE-S3 buckets)",
        )
        self._log_sources.append(source.arn)
        self.policy.policy = policy_document(*self._policy_statements())

    def _lifecycle_rules(self) -> list[Any]:
        p = self.props.lifecycle
        lc = aws.s3_bucket_lifecycle_configuration
        tier = p.tiers_old_versions
        everything = [lc.S3BucketLifecycleConfigurationRuleFilter(prefix="")]
        rules = [
            lc.S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-multipart-uploads",
                status="Enabled",
                filter=everything,
                abort_incomplete_multipart_upload=[
                    lc.S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(
                        days_after_initiation=p.abort_multipart_days
                    )
                ],
            ),
            lc.S3BucketLifecycleConfigurationRule(
                id="tier-then-expire-old-versions" if tier else "expire-old-versions",
                status="Enabled",
                filter=everything,
                noncurrent_version_transition=[
                    lc.S3BucketLifecycleConfigurationRuleNoncurrentVersionTransition(
                        noncurrent_days=p.noncurrent_transition_days, storage_class="STANDARD_IA"
                    )
                ]
                if tier
                else None,
                noncurrent_version_expiration=[
                    lc.S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                        noncurrent_days=p.noncurrent_expiration_days
                    )
                ],
            ),
        ]
        if p.expire_objects_after_days is not None:
            rules.append(
                lc.S3BucketLifecycleConfigurationRule(
                    id="expire-current-objects",
                    status="Enabled",
                    filter=everything,
                    expiration=[lc.S3BucketLifecycleConfigurationRuleExpiration(days=p.expire_objects_after_days)],
                )
            )
        return rules

    @property
    def arn(self) -> str:
        """The bucket ARN."""
        return self.bucket.arn

    @property
    def name(self) -> str:
        """The bucket name."""
        return self.bucket.bucket

    def s3_uri(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>``."""
        return f"s3://{self.bucket.bucket}/{prefix}"

    def read_statements(self, prefix: str = "") -> list[PolicyStatement]:
        """Statements for listing and reading objects (under ``prefix`` when given)."""
        if prefix:
            # GetBucketLocation requests carry no s3:prefix key, so a prefix condition would deny them.
            listing = [
                PolicyStatement(
                    sid="ListBucket",
                    actions=("s3:ListBucket",),
                    resources=(self.bucket.arn,),
                    conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                ),
                PolicyStatement(sid="LocateBucket", actions=("s3:GetBucketLocation",), resources=(self.bucket.arn,)),
            ]
        else:
            listing = [
                PolicyStatement(
                    sid="ListBucket", actions=("s3:ListBucket", "s3:GetBucketLocation"), resources=(self.bucket.arn,)
                )
            ]
        statements = [
            *listing,
            PolicyStatement(
                sid="ReadObjects",
                actions=("s3:GetObject", "s3:GetObjectVersion"),
                resources=(f"{self.bucket.arn}/{prefix}*",),
            ),
        ]
        statements.extend(self._key_statements(write=False))
        return statements

    def read_write_statements(self, prefix: str = "") -> list[PolicyStatement]:
        """Statements for reading, writing and deleting objects (under ``prefix`` when given)."""
        statements = [s for s in self.read_statements(prefix) if not s.sid.startswith("UseBucketKey")]
        statements.append(
            PolicyStatement(
                sid="WriteObjects",
                actions=("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"),
                resources=(f"{self.bucket.arn}/{prefix}*",),
            )
        )
        statements.extend(self._key_statements(write=True))
        return statements

    def _key_statements(self, *, write: bool) -> list[PolicyStatement]:
        if self.kms_key is None:
            return []
        actions = ("kms:Decrypt", "kms:GenerateDataKey") if write else ("kms:Decrypt",)
        return [
            PolicyStatement(
                sid="UseBucketKey",
                actions=actions,
                resources=(self.kms_key.arn,),
                conditions={"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
            )
        ]

    def grant_read(self, role: RoleRef, *, prefix: str = "") -> Any:
        """Let ``role`` list and read objects (under ``prefix``), decrypting through S3 only."""
        return grant(
            self,
            f"grant-read-{role.friendly_unique_id}",
            role,
            *self.read_grant(prefix),
            name=f"read-{self.node.id}",
        )

    def grant_read_write(self, role: RoleRef, *, prefix: str = "") -> Any:
        """Let ``role`` read, write and delete objects (under ``prefix``), using the key through S3 only."""
        return grant(
            self,
            f"grant-read-write-{role.friendly_unique_id}",
            role,
            *self.read_write_grant(prefix),
            name=f"read-write-{self.node.id}",
        )

    def read_grant(self, prefix: str = "") -> list[PolicyStatement]:
        """What :meth:`grant_read` attaches, for a policy that combines several buckets' grants (one IRSA role's)."""
        return self._named(self.read_statements(prefix))

    def read_write_grant(self, prefix: str = "") -> list[PolicyStatement]:
        """What :meth:`grant_read_write` attaches, for a policy that combines several buckets' grants."""
        return self._named(self.read_write_statements(prefix))

    def _named(self, statements: list[PolicyStatement]) -> list[PolicyStatement]:
        # Sids must be unique within a policy and alphanumeric; prefix them with the bucket's purpose.
        purpose = re.sub(r"[^A-Za-z0-9]", "", self.node.id.title())
        return [
            PolicyStatement(
                sid=purpose + s.sid, actions=s.actions, resources=s.resources, effect=s.effect, conditions=s.conditions
            )
            for s in statements
        ]
