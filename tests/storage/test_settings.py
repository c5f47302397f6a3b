"""Storage settings: destroy protection, bucket lifecycle limits, storage section, S3 names and prefixes."""

from __future__ import annotations

import re

import pytest
from constructs.core.errors import ConfigurationError
from constructs.storage.settings import (
    BucketLifecycle,
    DestroyProtection,
    StorageSettings,
    is_bucket_name,
    is_key_prefix,
)

PROTECTED_NEVER_EMPTIED = "False when prevent_destroy is True (a protected bucket is never emptied by Terraform)"


def _rejected(model: type, field: str, allowed: str, **values) -> None:
    """Building ``model`` from ``values`` fails naming the model, ``field`` and exactly what is ``allowed``."""
    pattern = rf"^{model.__name__}: field '{re.escape(field)}' = .* allowed: {re.escape(allowed)}$"
    with pytest.raises(ConfigurationError, match=pattern):
        model(**values)


@pytest.mark.parametrize("model", [DestroyProtection, BucketLifecycle, StorageSettings])
def test_protected_data_cannot_be_force_destroyed(model) -> None:
    _rejected(model, "force_destroy", PROTECTED_NEVER_EMPTIED, force_destroy=True)
    _rejected(model, "force_destroy", PROTECTED_NEVER_EMPTIED, force_destroy=True, prevent_destroy=True)
    unprotected = model(force_destroy=True, prevent_destroy=False)
    assert (unprotected.force_destroy, unprotected.prevent_destroy) == (True, False)


@pytest.mark.parametrize("model", [DestroyProtection, BucketLifecycle, StorageSettings])
def test_data_is_protected_by_default(model) -> None:
    default = model()
    assert (default.force_destroy, default.prevent_destroy) == (False, True)


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        # STANDARD_IA bills 30 days at least: old versions go there no sooner.
        ({"noncurrent_transition_days": 29}, "noncurrent_transition_days", "a whole number from 30 to 3650"),
        ({"noncurrent_transition_days": 3651}, "noncurrent_transition_days", "a whole number from 30 to 3650"),
        ({"noncurrent_expiration_days": 0}, "noncurrent_expiration_days", "a whole number from 1 to 3650"),
        ({"noncurrent_expiration_days": 3651}, "noncurrent_expiration_days", "a whole number from 1 to 3650"),
        (
            {"noncurrent_expiration_days": 30},
            "noncurrent_expiration_days",
            "more days than noncurrent_transition_days (30)",
        ),
        (
            {"noncurrent_transition_days": 90, "noncurrent_expiration_days": 60},
            "noncurrent_expiration_days",
            "more days than noncurrent_transition_days (90)",
        ),
        ({"abort_multipart_days": 0}, "abort_multipart_days", "a whole number from 1 to 30"),
        ({"abort_multipart_days": 31}, "abort_multipart_days", "a whole number from 1 to 30"),
        ({"expire_objects_after_days": 0}, "expire_objects_after_days", "a whole number from 1 to 3650 or null"),
        ({"expire_objects_after_days": 3651}, "expire_objects_after_days", "a whole number from 1 to 3650 or null"),
        ({"expire_objects_after_days": True}, "expire_objects_after_days", "a whole number from 1 to 3650 or null"),
        ({"abort_multipart_days": "7"}, "abort_multipart_days", "a whole number from 1 to 30"),
    ],
)
def test_bucket_lifecycle_limits(values, field, allowed) -> None:
    _rejected(BucketLifecycle, field, allowed, **values)


@pytest.mark.parametrize(
    ("transition", "expiration", "tiers"),
    [(30, 31, False), (30, 59, False), (30, 60, True), (45, 74, False), (45, 75, True)],
)
def test_old_versions_are_tiered_only_if_they_stay_the_30_days_standard_ia_bills(transition, expiration, tiers) -> None:
    lifecycle = BucketLifecycle(noncurrent_transition_days=transition, noncurrent_expiration_days=expiration)
    assert lifecycle.tiers_old_versions is tiers


def test_bucket_lifecycle_defaults() -> None:
    lifecycle = BucketLifecycle()
    assert lifecycle.expire_objects_after_days is None
    assert (lifecycle.noncurrent_transition_days, lifecycle.noncurrent_expiration_days) == (30, 90)
    assert lifecycle.abort_multipart_days == 7 and lifecycle.tiers_old_versions


@pytest.mark.parametrize(
    ("values", "field", "allowed"),
    [
        # Old versions must outlive the 30 days before they would move to STANDARD_IA.
        ({"backup_retention_days": 30}, "backup_retention_days", "a whole number from 31 to 3650"),
        ({"backup_retention_days": 3651}, "backup_retention_days", "a whole number from 31 to 3650"),
        ({"checkpoint_expiry_days": 0}, "checkpoint_expiry_days", "a whole number from 1 to 3650"),
        ({"checkpoint_expiry_days": 3651}, "checkpoint_expiry_days", "a whole number from 1 to 3650"),
        ({"access_logging": "yes"}, "access_logging", "a boolean (true/false)"),
        ({"prevent_destroy": 1}, "prevent_destroy", "a boolean (true/false)"),
        (
            # Lifecycle fields are derived from the storage section, not set in it.
            {"noncurrent_expiration_days": 60},
            "noncurrent_expiration_days",
            "one of 'force_destroy', 'prevent_destroy', 'checkpoint_expiry_days', 'backup_retention_days', "
            "'access_logging'",
        ),
    ],
)
def test_storage_settings_limits(values, field, allowed) -> None:
    _rejected(StorageSettings, field, allowed, **values)


@pytest.mark.parametrize("retention", [31, 60, 3650])
def test_every_allowed_backup_retention_gives_a_valid_bucket_lifecycle(retention) -> None:
    storage = StorageSettings(force_destroy=True, prevent_destroy=False, backup_retention_days=retention)
    lifecycle = storage.bucket_lifecycle(expire_objects_after_days=5)
    assert isinstance(lifecycle, BucketLifecycle)
    assert lifecycle.noncurrent_expiration_days == retention
    assert lifecycle.expire_objects_after_days == 5
    assert (lifecycle.force_destroy, lifecycle.prevent_destroy) == (True, False)
    # What the storage section does not decide keeps the lifecycle's defaults.
    assert (lifecycle.noncurrent_transition_days, lifecycle.abort_multipart_days) == (30, 7)
    assert storage.bucket_lifecycle().expire_objects_after_days is None


VALID_BUCKET_NAMES = ["abc", "a" * 63, "my.bucket-1", "0-starts-with-digit", "ends-with-digit-9"]
INVALID_BUCKET_NAMES = [
    "ab",
    "Upper-Case-Bucket",
    "bucket_with_underscore",
    "-leading-dash",
    "trailing-dash-",
    "a" * 64,
    "192.168.1.10",
    "two..dots",
    "xn--punycode",
]


@pytest.mark.parametrize("name", VALID_BUCKET_NAMES)
def test_valid_bucket_names(name) -> None:
    assert is_bucket_name(name)


@pytest.mark.parametrize("name", INVALID_BUCKET_NAMES)
def test_invalid_bucket_names(name) -> None:
    assert not is_bucket_name(name)


@pytest.mark.parametrize("prefix", ["", "datasets/", "datasets/images/", "run=1/part_2.v3/"])
def test_valid_key_prefixes(prefix) -> None:
    assert is_key_prefix(prefix)


@pytest.mark.parametrize("prefix", ["datasets", "/datasets/", "a//", "./", "a/../", "with space/", "*/"])
def test_invalid_key_prefixes(prefix) -> None:
    assert not is_key_prefix(prefix)
