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
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap

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


def apply() -> None:
    """Apply the RDS patches (once per process: see ``emulator.server.apply_patches``)."""
    _patch_unique_resource_ids()
    _patch_instance_settings()
    _patch_parameter_sources()
