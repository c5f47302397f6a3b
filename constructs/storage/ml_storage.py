"""The platform's ML data stores: training data, model artifacts, checkpoints and MLflow artifacts."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from constructs.core.context import PlatformContext
from constructs.core.refs import KmsKeyRef
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.settings import StorageSettings


@dataclass(frozen=True)
class MlStorageProps:
    """Props for :class:`MlStorage`.

    context: the environment; bucket names are ``<name prefix>-<purpose>-<account id>`` (the account ID, a
      token, makes them globally unique).
    data_key: KMS key for SSE-KMS on the data buckets.
    settings: environment-specific behaviour.
    """

    context: PlatformContext
    data_key: KmsKeyRef
    settings: StorageSettings


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
        c = props.context
        self.access_logs: SecureBucket | None = None
        if s.access_logging:
            self.access_logs = SecureBucket(
                self,
                "access-logs",
                SecureBucketProps(
                    bucket_name=f"{c.name_prefix}-access-logs-{c.account_id}",
                    kms_key=None,
                    log_delivery_source_account=c.account_id,
                    lifecycle=s.bucket_lifecycle(expire_objects_after_days=s.backup_retention_days),
                ),
            )
        buckets: dict[str, SecureBucket] = {}
        for purpose in self.PURPOSES:
            buckets[purpose] = SecureBucket(
                self,
                purpose,
                SecureBucketProps(
                    bucket_name=f"{c.name_prefix}-{purpose}-{c.account_id}",
                    kms_key=props.data_key,
                    lifecycle=s.bucket_lifecycle(
                        expire_objects_after_days=s.checkpoint_expiry_days if purpose == "checkpoints" else None
                    ),
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
