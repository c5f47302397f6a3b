"""Settings of the platform's keys and data storage, and the S3 naming rules every feature shares."""

from __future__ import annotations

import re
from typing import Annotated, Self

from constructs.core.errors import FieldError
from constructs.core.formats import IamRoleArn
from constructs.core.settings import Settings, predicate
from pydantic import Field, model_validator

# --- S3 names and prefixes ---------------------------------------------------------------------------------

_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IP_ADDRESS = re.compile(r"\d+\.\d+\.\d+\.\d+")
# Prefixes and suffixes S3 reserves for access points, Object Lambda, directory and table buckets, Multi-Region
# Access Points and its documentation (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
RESERVED_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
BUCKET_NAME_ALLOWED = (
    "an S3 bucket name: 3-63 characters of lowercase letters, digits, '.' and '-', starting and ending with a "
    "letter or digit, no '..', not an IP address, not starting with "
    + ", ".join(repr(p) for p in RESERVED_BUCKET_PREFIXES)
    + ", not ending with "
    + ", ".join(repr(s) for s in RESERVED_BUCKET_SUFFIXES)
)


def is_bucket_name(name: str) -> bool:
    """S3's general purpose bucket naming rules."""
    return (
        bool(_BUCKET_NAME.fullmatch(name))
        and ".." not in name
        and not name.startswith(RESERVED_BUCKET_PREFIXES)
        and not name.endswith(RESERVED_BUCKET_SUFFIXES)
        and not _IP_ADDRESS.fullmatch(name)
    )


BucketName = Annotated[str, predicate(is_bucket_name, BUCKET_NAME_ALLOWED)]
"""An S3 bucket name."""

_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._=-]+")
S3_PREFIX_ALLOWED = (
    "'' (the whole bucket) or a relative S3 key prefix ending in '/', such as 'datasets/images/' "
    "(segments of letters, digits, '.', '_', '=' and '-'; no '.' or '..' segments)"
)


def is_key_prefix(prefix: str) -> bool:
    """A relative key prefix that IAM grants can be scoped to: whole segments, each followed by '/'."""
    if prefix == "":
        return True
    if not prefix.endswith("/"):
        return False
    segments = prefix[:-1].split("/")
    return all(_PREFIX_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments)


S3KeyPrefix = Annotated[str, predicate(is_key_prefix, S3_PREFIX_ALLOWED)]
"""A key prefix inside a bucket that a grant is scoped to (``""`` for the whole bucket)."""

# --- keys -------------------------------------------------------------------------------------------------

KeyDeletionWindowDays = Annotated[int, Field(ge=7, le=30)]
"""How long a deleted KMS key can still be recovered (KMS allows 7 to 30 days)."""


class PlatformKeysSettings(Settings):
    """Per-environment key settings; every KMS key of an environment follows them.

    deletion_window_days: how long a deleted key can still be recovered (7-30 days). Longer in production,
      because a deleted key makes every object encrypted with it unreadable.
    admin_role_arns: IAM roles (each at most once, no wildcards, no users) that administer every key of the
      environment: change its policy, create and revoke grants, tag, disable, schedule and cancel deletion.
      The role that runs Terraform is always an administrator as well, without being listed (KMS refuses a key
      policy that would lock its creator out), so this lists the others: a break-glass role, the deploy roles
      of CI. Every role must exist before the deploy (KMS rejects a policy naming a missing principal), and a
      different role running Terraform later must be listed here first, or it cannot update the key policies.
      The account itself keeps only read access (describe, policy, rotation status, grants, tags) through IAM.
    """

    deletion_window_days: KeyDeletionWindowDays = 30
    admin_role_arns: tuple[IamRoleArn, ...] = ()


# --- buckets ----------------------------------------------------------------------------------------------

ObjectExpiryDays = Annotated[int, Field(ge=1, le=3650)]
"""Days after which an object (or an old version) is deleted."""
# STANDARD_IA bills at least 30 days per object: old versions move there no sooner.
STANDARD_IA_MINIMUM_DAYS = 30


class DestroyProtection(Settings):
    """Whether Terraform may destroy stored data.

    force_destroy: allow ``terraform destroy`` to empty buckets (only for throw-away environments).
    prevent_destroy: Terraform refuses to destroy the buckets at all (production data).
    """

    force_destroy: bool = False
    prevent_destroy: bool = True

    @model_validator(mode="after")
    def _protected_data_is_never_emptied(self) -> Self:
        if self.force_destroy and self.prevent_destroy:
            raise FieldError(
                "force_destroy",
                self.force_destroy,
                "False when prevent_destroy is True (a protected bucket is never emptied by Terraform)",
            )
        return self


class BucketLifecycle(DestroyProtection):
    """Protection and lifecycle of one bucket (see :class:`~constructs.storage.bucket.SecureBucket`).

    expire_objects_after_days: delete current objects after this many days (checkpoints); None keeps them.
    noncurrent_transition_days: move old versions to STANDARD_IA after this many days (>= 30), unless they are
      deleted less than 30 days later (STANDARD_IA's minimum billable storage duration).
    noncurrent_expiration_days: delete old versions after this many days (after the transition).
    abort_multipart_days: abort incomplete multipart uploads after this many days.
    """

    expire_objects_after_days: ObjectExpiryDays | None = None
    noncurrent_transition_days: Annotated[int, Field(ge=STANDARD_IA_MINIMUM_DAYS, le=3650)] = 30
    noncurrent_expiration_days: ObjectExpiryDays = 90
    abort_multipart_days: Annotated[int, Field(ge=1, le=30)] = 7

    @model_validator(mode="after")
    def _versions_expire_after_their_transition(self) -> Self:
        if self.noncurrent_expiration_days <= self.noncurrent_transition_days:
            raise FieldError(
                "noncurrent_expiration_days",
                self.noncurrent_expiration_days,
                f"more days than noncurrent_transition_days ({self.noncurrent_transition_days})",
            )
        return self

    @property
    def tiers_old_versions(self) -> bool:
        """Old versions move to STANDARD_IA only if they then stay there the 30 days it bills for."""
        return self.noncurrent_expiration_days >= self.noncurrent_transition_days + STANDARD_IA_MINIMUM_DAYS


class StorageSettings(DestroyProtection):
    """Per-environment storage behaviour.

    force_destroy, prevent_destroy: see :class:`DestroyProtection`.
    checkpoint_expiry_days: training checkpoints are deleted after this many days.
    backup_retention_days: old object versions are deleted after this many days, so an overwritten or deleted
      object can be restored until then (the data's backup retention). More than the 30 days old versions
      spend before moving to STANDARD_IA.
    access_logging: S3 server access logs of every data bucket go to a dedicated log bucket.
    """

    checkpoint_expiry_days: ObjectExpiryDays = 30
    backup_retention_days: Annotated[int, Field(ge=STANDARD_IA_MINIMUM_DAYS + 1, le=3650)] = 90
    access_logging: bool = True

    def bucket_lifecycle(self, *, expire_objects_after_days: int | None = None) -> BucketLifecycle:
        """The lifecycle of one of the environment's buckets."""
        return BucketLifecycle(
            force_destroy=self.force_destroy,
            prevent_destroy=self.prevent_destroy,
            noncurrent_expiration_days=self.backup_retention_days,
            expire_objects_after_days=expire_objects_after_days,
        )
