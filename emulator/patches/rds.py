"""RDS: DB instances and DB parameter groups.

What moto 5.2.5 lacks or gets wrong for the hashicorp/aws 5.100.0 provider, found by applying the MLflow
database (``constructs/mlflow/database.py``) and planning again:

* Every DB instance has the same ``DbiResourceId``, which the provider uses as the instance's ID (it finds the
  instance by the ``dbi-resource-id`` filter): two instances in one emulator were indistinguishable. Each now
  gets its own.
* ``EngineLifecycleSupport`` and Performance Insights (``EnablePerformanceInsights``, its KMS key and retention)
  are accepted but not kept, so the provider planned to set them again on every run. They are kept, with
  AWS's defaults when unset (extended support on, insights off), and ``ModifyDBInstance`` changes them.
* ``DescribeDBParameters`` reports no ``Source``; the provider keeps only the parameters whose source is
  ``user`` (the ones a parameter group changed), so every parameter was planned again. moto keeps only the
  parameters a group changed, so they are now reported with ``Source: user``, and a request for another
  source (``engine-default``, ``system``: AWS's hundreds of defaults, which moto does not have) gets none.
* Cross-region replication of automated backups (``aws_db_instance_automated_backups_replication``, started from
  the destination region) is missing: ``StartDBInstanceAutomatedBackupsReplication`` and its ``Stop`` are added,
  and ``DescribeDBInstanceAutomatedBackups`` lists a replication in the destination region (status
  ``replicating``, found by its ``DBInstanceAutomatedBackupsArn`` as the provider reads it back).
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import add_action, backend_store, store_lock, wrap

# What RDS enrolls an RDS for PostgreSQL or MySQL instance in when a request does not say.
DEFAULT_ENGINE_LIFECYCLE_SUPPORT = "open-source-rds-extended-support"
# Performance Insights' free tier, RDS's retention when a request turns insights on without one.
DEFAULT_INSIGHTS_RETENTION_DAYS = 7
_RESOURCE_ID_ALPHABET = string.ascii_uppercase + string.digits


def _patch_unique_resource_ids() -> None:
    """Give every DB instance its own ``DbiResourceId`` (``db-`` and 26 upper-case letters and digits, as RDS)."""
    from moto.moto_api._internal import mock_random
    from moto.rds.models import DBInstance

    def unique_id(original: Callable[..., Any]) -> Callable[..., Any]:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.dbi_resource_id = "db-" + "".join(mock_random.choice(_RESOURCE_ID_ALPHABET) for _ in range(26))

        return __init__

    wrap(DBInstance, "__init__", unique_id)


def _patch_instance_settings() -> None:
    """Keep an instance's engine lifecycle support and Performance Insights settings, on create and modify.

    moto's DBInstance takes them as unknown keyword arguments and drops them; its responses serialize the
    attributes named after the response fields (``performance_insights_enabled``), so setting those is enough.
    """
    from moto.rds.models import DBInstance

    def insights(instance: Any, enabled: bool, kms_key_id: Any, retention: Any) -> None:
        instance.performance_insights_enabled = enabled
        if enabled:
            instance.performance_insights_kms_key_id = kms_key_id or getattr(
                instance, "performance_insights_kms_key_id", None
            )
            instance.performance_insights_retention_period = retention or getattr(
                instance, "performance_insights_retention_period", DEFAULT_INSIGHTS_RETENTION_DAYS
            )

    def keep_settings(original: Callable[..., Any]) -> Callable[..., Any]:
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            self.engine_lifecycle_support = kwargs.get("engine_lifecycle_support") or DEFAULT_ENGINE_LIFECYCLE_SUPPORT
            insights(
                self,
                bool(kwargs.get("enable_performance_insights")),
                kwargs.get("performance_insights_kms_key_id"),
                kwargs.get("performance_insights_retention_period"),
            )

        return __init__

    def change_settings(original: Callable[..., Any]) -> Callable[..., Any]:
        def update(self: Any, *args: Any, **kwargs: Any) -> None:
            enable = kwargs.pop("enable_performance_insights", None)
            kms_key_id = kwargs.pop("performance_insights_kms_key_id", None)
            retention = kwargs.pop("performance_insights_retention_period", None)
            original(self, *args, **kwargs)
            if enable is not None:
                insights(self, bool(enable), kms_key_id, retention)

        return update

    wrap(DBInstance, "__init__", keep_settings)
    wrap(DBInstance, "update", change_settings)


def _patch_parameter_sources() -> None:
    """Report a parameter group's parameters with ``Source: user``, and none for any other requested source."""
    from moto.core.responses import ActionResult
    from moto.rds.responses import RDSResponse

    def with_source(original: Callable[..., Any]) -> Callable[..., Any]:
        def describe_db_parameters(self: Any) -> Any:
            result = original(self)
            requested = self.params.get("Source")
            parameters = [] if requested not in (None, "user") else result.result["Parameters"]
            return ActionResult({"Parameters": [{**parameter, "Source": "user"} for parameter in parameters]})

        return describe_db_parameters

    wrap(RDSResponse, "describe_db_parameters", with_source)


def _patch_backup_replication() -> None:
    """Replicate a DB instance's automated backups into the requesting (destination) region, and stop it again."""
    from moto.core.responses import ActionResult
    from moto.moto_api._internal import mock_random
    from moto.rds.exceptions import DBInstanceNotFoundError, RDSClientError
    from moto.rds.models import rds_backends
    from moto.rds.responses import RDSResponse

    def replications(response: Any) -> dict[str, dict[str, Any]]:
        return backend_store(response.backend, "_emulator_backup_replications")

    def start_db_instance_automated_backups_replication(self: Any) -> Any:
        source_arn = str(self.params.get("SourceDBInstanceArn", ""))
        parts = source_arn.split(":")
        if len(parts) != 7 or parts[5] != "db":
            raise DBInstanceNotFoundError(source_arn)
        source_region, identifier = parts[3], parts[6]
        source = rds_backends[self.current_account][source_region].databases.get(identifier)
        if source is None:
            raise DBInstanceNotFoundError(identifier)
        suffix = "".join(mock_random.choice(_RESOURCE_ID_ALPHABET.lower()) for _ in range(26))
        arn = f"arn:{self.partition}:rds:{self.region}:{self.current_account}:auto-backup:ab-{suffix}"
        backup = {
            "DBInstanceArn": source_arn,
            "DbiResourceId": source.dbi_resource_id,
            "Region": source_region,
            "DBInstanceIdentifier": identifier,
            "Status": "replicating",
            "Engine": source.engine,
            "BackupRetentionPeriod": int(self.params.get("BackupRetentionPeriod") or 7),
            "KmsKeyId": self.params.get("KmsKeyId"),
            "Encrypted": True,
            "DBInstanceAutomatedBackupsArn": arn,
        }
        with store_lock:
            replications(self)[arn] = backup
        return ActionResult({"DBInstanceAutomatedBackup": backup})

    def stop_db_instance_automated_backups_replication(self: Any) -> Any:
        source_arn = self.params.get("SourceDBInstanceArn")
        with store_lock:
            stopped = [arn for arn, b in replications(self).items() if b["DBInstanceArn"] == source_arn]
            if not stopped:
                raise RDSClientError(
                    "InvalidDBInstanceState", f"The DB instance {source_arn} is not replicating to the current region."
                )
            backup = replications(self).pop(stopped[0])
        return ActionResult({"DBInstanceAutomatedBackup": {**backup, "Status": "retained"}})

    def with_replications(original: Callable[..., Any]) -> Callable[..., Any]:
        def describe_db_instance_automated_backups(self: Any) -> Any:
            arn = self.params.get("DBInstanceAutomatedBackupsArn")
            with store_lock:
                replicated = list(replications(self).values())
            if arn is not None:
                found = [b for b in replicated if b["DBInstanceAutomatedBackupsArn"] == arn]
                if not found:
                    raise RDSClientError(
                        "DBInstanceAutomatedBackupNotFound", f"No automated backup with ARN {arn} found."
                    )
                return ActionResult({"DBInstanceAutomatedBackups": found})
            result = original(self)
            return ActionResult(
                {"DBInstanceAutomatedBackups": [*result.result["DBInstanceAutomatedBackups"], *replicated]}
            )

        return describe_db_instance_automated_backups

    for action in (start_db_instance_automated_backups_replication, stop_db_instance_automated_backups_replication):
        add_action(RDSResponse, action.__name__, action)
    wrap(RDSResponse, "describe_db_instance_automated_backups", with_replications)


def apply() -> None:
    """Apply the RDS patches (once per process: see ``emulator.server.apply_patches``)."""
    _patch_unique_resource_ids()
    _patch_instance_settings()
    _patch_parameter_sources()
    _patch_backup_replication()
