"""The Terraform state store: a versioned, KMS-encrypted, TLS-only bucket with access logs that Terraform never
destroys, and intent-named grants for the roles that read or write one stack's state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, grant
from constructs.core.refs import RoleRef
from constructs.gitops.settings import StateStoreSettings
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.keys import KeyAdministrators, key_policy
from constructs.storage.settings import BucketLifecycle

LOCK_SUFFIX = ".tflock"
"""Terraform's S3-native lock object sits beside the state object, named after it plus this suffix."""


@dataclass(frozen=True)
class StateStoreProps:
    """Props for :class:`StateStore`.

    context: the account and region; its deployer (the person running the bootstrap) administers the key.
    bucket_name: the state bucket's name (``ML_PLATFORM_STATE_BUCKET``); its access logs go to ``<name>-logs``.
    key_users: every role that reads or writes state: the key's policy lets them use it through S3 only.
    settings: how long state history and access logs are kept.
    """

    context: PlatformContext
    bucket_name: str
    key_users: Sequence[RoleRef]
    settings: StateStoreSettings


class StateStore(Construct):
    """Where every environment's Terraform state lives.

    The bucket is versioned (each apply's state is kept for ``state_history_days``: a bad apply is undone by
    restoring the previous version), encrypted with its own rotating KMS key, TLS-only, private, logged to an
    access-log bucket, and protected by ``prevent_destroy``: ``terraform destroy`` of the bootstrap stack fails
    rather than delete every environment's state. Access is granted per state object by :meth:`grant_read` and
    :meth:`grant_read_write`.
    """

    def __init__(self, scope: Construct, id: str, props: StateStoreProps) -> None:
        super().__init__(scope, id)
        c = props.context
        self.key = aws.kms_key.KmsKey(
            self,
            "key",
            description="Terraform state of every ML platform environment",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy(
                c,
                KeyAdministrators(c.deployer_arn),
                PolicyStatement(
                    sid="StateRolesThroughS3",
                    # The administrator too: it writes the bootstrap's own state (docs/state-bootstrap.md).
                    principals={"AWS": [c.deployer_arn, *(role.arn for role in props.key_users)]},
                    actions=("kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*", "kms:DescribeKey"),
                    resources=("*",),
                    conditions={"StringEquals": {"kms:ViaService": c.via_service("s3")}},
                ),
            ),
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        aws.kms_alias.KmsAlias(
            self, "alias", name=f"alias/{c.name_prefix}-terraform-state", target_key_id=self.key.key_id
        )
        kept = BucketLifecycle(prevent_destroy=True)
        self.access_logs = SecureBucket(
            self,
            "access-logs",
            SecureBucketProps(
                bucket_name=f"{props.bucket_name}-logs",
                kms_key=None,
                log_delivery_source_account=c.account_id,
                lifecycle=kept.model_copy(
                    update={
                        "expire_objects_after_days": props.settings.access_log_days,
                        "noncurrent_expiration_days": 31,
                    }
                ),
            ),
        )
        self.bucket = SecureBucket(
            self,
            "bucket",
            SecureBucketProps(
                bucket_name=props.bucket_name,
                kms_key=self.key,
                lifecycle=kept.model_copy(update={"noncurrent_expiration_days": props.settings.state_history_days}),
                access_log_bucket=self.access_logs,
            ),
        )
        # Terraform's S3 backend with `encrypt = true` asks for SSE-S3, which would leave the state outside this
        # key; the backends here send no header (stacks/backend.py), and anything else is refused.
        self.bucket.accept_only_its_key()

    def read_statements(self, keys: Sequence[str]) -> list[PolicyStatement]:
        """Read the state objects ``keys`` (``ml-platform/dev/terraform.tfstate``...), never their locks.

        A read-only plan runs with ``-lock=false``: it takes no lock, so it cannot hold up an apply.
        """
        return [
            self._listing(keys),
            PolicyStatement(sid="ReadState", actions=("s3:GetObject",), resources=tuple(self.state_objects(keys))),
        ]

    def read_write_statements(self, key: str) -> list[PolicyStatement]:
        """Read and write the state object ``key``, and take, check and release its lock object."""
        state = self.state_objects([key])[0]
        lock = f"{state}{LOCK_SUFFIX}"
        return [
            self._listing([key]),
            PolicyStatement(sid="ReadWriteState", actions=("s3:GetObject", "s3:PutObject"), resources=(state,)),
            PolicyStatement(
                sid="LockState", actions=("s3:GetObject", "s3:PutObject", "s3:DeleteObject"), resources=(lock,)
            ),
        ]

    def state_objects(self, keys: Sequence[str]) -> list[str]:
        """The ARNs of the state objects ``keys``."""
        return [f"{self.bucket.arn}/{key}" for key in keys]

    def _listing(self, keys: Sequence[str]) -> PolicyStatement:
        # Terraform lists the state's folder (workspaces, lock files); nothing else of the bucket.
        return PolicyStatement(
            sid="ListState",
            actions=("s3:ListBucket",),
            resources=(self.bucket.arn,),
            conditions={"StringLike": {"s3:prefix": [f"{key.rsplit('/', 1)[0]}/*" for key in keys]}},
        )

    def grant_read(self, role: RoleRef, keys: Sequence[str]) -> None:
        """Let ``role`` read the states ``keys`` (:meth:`read_statements`)."""
        grant(self, f"read-state-{role.friendly_unique_id}", role, *self.read_statements(keys), name="read-state")

    def grant_read_write(self, role: RoleRef, key: str) -> None:
        """Let ``role`` read, write and lock the state at ``key`` (:meth:`read_write_statements`)."""
        grant(
            self, f"write-state-{role.friendly_unique_id}", role, *self.read_write_statements(key), name="write-state"
        )
