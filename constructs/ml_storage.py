"""The platform's ML data stores: training data, model artifacts, checkpoints and MLflow artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.secure_bucket import SecureBucket, SecureBucketProps
from constructs.validation import require, require_field_types, require_int_range


@dataclass(frozen=True)
class StorageSettings:
    """Per-environment storage behaviour.

    force_destroy: allow ``terraform destroy`` to empty buckets (only for throw-away environments).
    prevent_destroy: Terraform refuses to destroy the data buckets (production).
    checkpoint_expiry_days: training checkpoints are deleted after this many days.
    backup_retention_days: old object versions are deleted after this many days, so an overwritten
      or deleted object can be restored until then (the data's backup retention).
    access_logging: S3 server access logs of every data bucket go to a dedicated log bucket.
    """

    force_destroy: bool = False
    prevent_destroy: bool = True
    checkpoint_expiry_days: int = 30
    backup_retention_days: int = 90
    access_logging: bool = True

    def __post_init__(self) -> None:
        where = "StorageSettings"
        require_field_types(self, where)
        require(
            not (self.force_destroy and self.prevent_destroy),
            where,
            "force_destroy",
            self.force_destroy,
            "False when prevent_destroy is True",
        )
        require_int_range(where, "checkpoint_expiry_days", self.checkpoint_expiry_days, 1, 3650)
        require_int_range(where, "backup_retention_days", self.backup_retention_days, 31, 3650)


@dataclass(frozen=True)
class MlStorageProps:
    """Props for :class:`MlStorage`.

    name_prefix: start of every bucket name (``<prefix>-<purpose>-<account id>``).
    account_id: the AWS account ID (a token), which makes the names globally unique.
    data_key: KMS key for SSE-KMS on the data buckets.
    settings: environment-specific behaviour.
    """

    name_prefix: str
    account_id: str
    data_key: Any
    settings: StorageSettings = StorageSettings()


class MlStorage(Construct):
    """Four SSE-KMS buckets for the ML lifecycle, plus an SSE-S3 bucket for their access logs.

    ``training_data`` holds datasets, ``model_artifacts`` trained models (SageMaker reads them),
    ``checkpoints`` training checkpoints (expire after ``checkpoint_expiry_days``), and
    ``mlflow_artifacts`` the MLflow tracking server's artifact store.
    """

    PURPOSES = ("training-data", "model-artifacts", "checkpoints", "mlflow-artifacts")

    def __init__(self, scope: Construct, id: str, props: MlStorageProps) -> None:
        super().__init__(scope, id)
        s = props.settings
        self.access_logs: SecureBucket | None = None
        if s.access_logging:
            self.access_logs = SecureBucket(
                self,
                "access-logs",
                SecureBucketProps(
                    bucket_name=f"{props.name_prefix}-access-logs-{props.account_id}",
                    kms_key=None,
                    log_delivery_source_account=props.account_id,
                    force_destroy=s.force_destroy,
                    prevent_destroy=s.prevent_destroy,
                    noncurrent_expiration_days=s.backup_retention_days,
                    expire_objects_after_days=s.backup_retention_days,
                ),
            )
        buckets: dict[str, SecureBucket] = {}
        for purpose in self.PURPOSES:
            buckets[purpose] = SecureBucket(
                self,
                purpose,
                SecureBucketProps(
                    bucket_name=f"{props.name_prefix}-{purpose}-{props.account_id}",
                    kms_key=props.data_key,
                    force_destroy=s.force_destroy,
                    prevent_destroy=s.prevent_destroy,
                    noncurrent_expiration_days=s.backup_retention_days,
                    expire_objects_after_days=s.checkpoint_expiry_days if purpose == "checkpoints" else None,
                    access_log_bucket=self.access_logs,
                ),
            )
        self.training_data = buckets["training-data"]
        self.model_artifacts = buckets["model-artifacts"]
        self.checkpoints = buckets["checkpoints"]
        self.mlflow_artifacts = buckets["mlflow-artifacts"]

    @property
    def data_buckets(self) -> tuple[SecureBucket, ...]:
        """The four data buckets, in a stable order."""
        return (self.training_data, self.model_artifacts, self.checkpoints, self.mlflow_artifacts)
