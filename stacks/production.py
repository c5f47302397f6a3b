"""The environment model's rules for production: what a protected environment must have to survive the loss of
an availability zone or its region, keep its data through a destroy, stay on at night, and alert someone.

Plain functions of an :class:`~stacks.environment.EnvironmentConfig`, called by its cross-section validator; kept apart
so that the environment model stays readable.
"""

from __future__ import annotations

import ipaddress
from typing import Protocol

from constructs.core.errors import require_field
from constructs.monitoring.settings import check_alerting
from constructs.platform_config import PlatformConfig

from stacks.regions import SUPPORTED_REGIONS, ZONE_ID_PREFIXES


class EnvironmentConfig(PlatformConfig, Protocol):
    """The sections of an environment (:class:`stacks.environment.EnvironmentConfig`) these rules read: what the
    platform reads, and its availability and region."""

    @property
    def multi_az(self) -> bool: ...

    @property
    def region(self) -> str: ...


def regions_fit(config: EnvironmentConfig) -> None:
    """The rules about the secondary region and serving failover (every environment)."""
    recovery_fits(config)
    failover_fits(config)


def protected_fits(config: EnvironmentConfig) -> None:
    """The rules only a protected environment must meet, then the alerting rule (every environment)."""
    if config.protected:
        protects_data(config)
        stays_on(config)
    alerts_reach_someone(config)


def recovery_fits(config: EnvironmentConfig) -> None:
    """A protected environment spans zones and has a recovery region; replicated backups need one."""
    require_field(
        config.secondary_region != config.region,
        "secondary_region",
        config.secondary_region,
        f"a region other than region ({config.region}): a recovery region fails with the primary otherwise",
    )
    if config.protected:
        require_field(
            config.multi_az,
            "multi_az",
            config.multi_az,
            "True when protected is True (a protected environment survives the loss of an availability zone)",
        )
        require_field(
            config.secondary_region is not None,
            "secondary_region",
            config.secondary_region,
            f"one of {', '.join(r for r in SUPPORTED_REGIONS if r != config.region)} when protected is True (its "
            "data must survive the loss of its region)",
        )
    database = config.mlflow.database if config.mlflow is not None else None
    if database is None:
        return
    if database.replicated_backup_retention_days is not None:
        require_field(
            config.secondary_region is not None,
            "mlflow.database.replicated_backup_retention_days",
            database.replicated_backup_retention_days,
            "None while secondary_region is None (backups are replicated to the secondary region)",
        )
    elif config.protected:
        require_field(
            False,
            "mlflow.database.replicated_backup_retention_days",
            None,
            "1 to 35 days when protected is True (the experiment history must survive the loss of its region)",
        )


def failover_fits(config: EnvironmentConfig) -> None:
    """Serving failover needs the secondary region and SageMaker; its network lies in that region, apart."""
    if config.failover is None:
        require_field(
            not (config.protected and config.sagemaker is not None),
            "failover",
            None,
            "a failover section when protected is True and sagemaker is set (serving must survive its region)",
        )
        return
    require_field(
        config.secondary_region is not None and config.sagemaker is not None,
        "failover",
        config.failover.hostname,
        "None unless secondary_region and sagemaker are set (the endpoint is served in both regions)",
    )
    prefix = ZONE_ID_PREFIXES[config.secondary_region] if config.secondary_region is not None else ""
    for index, zone_id in enumerate(config.failover.network.zone_ids):
        require_field(
            zone_id.startswith(f"{prefix}-az"),
            f"failover.network.zone_ids[{index}]",
            zone_id,
            f"a zone ID of the secondary region {config.secondary_region} ('{prefix}-az<n>')",
        )
    blocks = (ipaddress.IPv4Network(config.network.vpc_cidr), ipaddress.IPv4Network(config.failover.network.vpc_cidr))
    require_field(
        not blocks[0].overlaps(blocks[1]),
        "failover.network.vpc_cidr",
        config.failover.network.vpc_cidr,
        f"a block that does not overlap network.vpc_cidr ({config.network.vpc_cidr}): the regions may be peered",
    )


def protects_data(config: EnvironmentConfig) -> None:
    """A protected environment keeps its data through a destroy."""
    require_field(
        config.storage.prevent_destroy,
        "storage.prevent_destroy",
        config.storage.prevent_destroy,
        "True when protected is True (Terraform must never destroy protected data)",
    )
    require_field(
        config.keys.deletion_window_days == 30,
        "keys.deletion_window_days",
        config.keys.deletion_window_days,
        "30 when protected is True (the longest window to cancel a key deletion)",
    )
    if config.mlflow is not None:
        database = config.mlflow.database
        for field, value in (
            ("deletion_protection", database.deletion_protection),
            ("final_snapshot", database.final_snapshot),
        ):
            require_field(
                value,
                f"mlflow.database.{field}",
                value,
                "True when protected is True (the experiment history must survive a destroy)",
            )
        require_field(
            database.backup_retention_days >= 7,
            "mlflow.database.backup_retention_days",
            database.backup_retention_days,
            "7 or more when protected is True (a week of point-in-time recovery)",
        )
    if config.eks is not None:
        require_field(
            not config.eks.public_access_cidrs,
            "eks.public_access_cidrs",
            config.eks.public_access_cidrs,
            "empty when protected is True (a protected environment's Kubernetes API stays private)",
        )


def stays_on(config: EnvironmentConfig) -> None:
    """A protected environment's capacity is never switched off by the clock: its users work at any hour."""
    gpu_group = config.eks.gpu_node_group if config.eks is not None else None
    if gpu_group is not None:
        require_field(
            gpu_group.off_hours is None,
            "eks.gpu_node_group.off_hours",
            gpu_group.off_hours.model_dump() if gpu_group.off_hours is not None else None,
            "None when protected is True (production GPUs stop when idle, never by the clock)",
        )


def alerts_reach_someone(config: EnvironmentConfig) -> None:
    """A protected environment's alarms notify someone, and no alarm fires on a healthy database."""
    storage = config.mlflow.database.allocated_storage_gib if config.mlflow is not None else None
    check_alerting(config.monitoring, protected=config.protected, database_storage_gib=storage)
