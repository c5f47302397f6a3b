"""Per-environment settings of the MLflow tracking server and its PostgreSQL database."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from constructs.core.errors import require_field
from constructs.core.formats import HostInZone, LogRetentionDays
from constructs.core.settings import Settings, choice, matches
from pydantic import Field, model_validator

# RDS for PostgreSQL major versions the platform runs, with their parameter group family. A major version is
# pinned (upgrading one is a planned change: allow_major_version_upgrade stays off); RDS applies minor versions
# in the maintenance window. The PostgreSQL project supports 16 until November 2028 and 17 until November 2029;
# RDS standard support ends a few months after that, and extended support costs extra (engine_lifecycle_support).
POSTGRES_FAMILIES = {"16": "postgres16", "17": "postgres17"}
DEFAULT_POSTGRES_VERSION = "17"

# Graviton (g) and Intel (i) burstable, general purpose and memory optimized classes that RDS for PostgreSQL
# 16 and 17 offer, in the sizes RDS sells. A burstable class suits a tracking server's light, spiky load.
_DB_INSTANCE_CLASS = (
    r"db\.(?:t4g|t3)\.(?:micro|small|medium|large|xlarge|2xlarge)"
    r"|db\.(?:m6g|m6i|m7g|m7i|r6g|r6i|r7g|r7i)\.(?:large|xlarge|2xlarge|4xlarge|8xlarge|12xlarge|16xlarge)"
)
DbInstanceClass = Annotated[
    str,
    matches(
        _DB_INSTANCE_CLASS,
        "an RDS for PostgreSQL instance class such as 'db.t4g.micro' or 'db.m7g.large' (burstable t4g/t3 from "
        "micro to 2xlarge; m6g, m6i, m7g, m7i, r6g, r6i, r7g, r7i from large to 16xlarge)",
    ),
]
# Enhanced Monitoring's sampling periods (0 turns it off).
MonitoringInterval = Literal[0, 1, 5, 10, 15, 30, 60]


class MlflowDatabaseSettings(Settings):
    """The MLflow backend store: one RDS for PostgreSQL instance in the private subnets.

    engine_version: PostgreSQL major version (a key of ``POSTGRES_FAMILIES``).
    instance_class: RDS instance class; the smallest, ``db.t4g.micro``, is enough for one team's experiments.
    allocated_storage_gib: initial gp3 storage (20-1000 GiB).
    max_allocated_storage_gib: ceiling RDS storage autoscaling may grow to, or None for no autoscaling.
    multi_az: a synchronous standby in a second AZ (RDS fails over in one to two minutes), at twice the price.
    backup_retention_days: days of automated backups and point-in-time recovery (1-35).
    replicated_backup_retention_days: days the environment's secondary region keeps the replicated automated backups
      (1-35: point-in-time recovery there; docs/disaster-recovery.md), or None for no replication. A cross-region read
      replica is ruled out: RDS creates no read replica of an instance whose master password it manages.
    deletion_protection: AWS refuses to delete the instance while on (Terraform too).
    final_snapshot: take a snapshot when the instance is deleted (``<identifier>-final``); off only for throw-away
      data.
    performance_insights: Performance Insights (7 days of history, free tier), encrypted with the data key.
    monitoring_interval_seconds: Enhanced Monitoring (OS metrics) period, 0 for off.
    log_retention_days: retention of the exported PostgreSQL and upgrade logs in CloudWatch Logs.
    """

    engine_version: Annotated[str, choice(POSTGRES_FAMILIES)] = DEFAULT_POSTGRES_VERSION
    instance_class: DbInstanceClass = "db.t4g.micro"
    allocated_storage_gib: Annotated[int, Field(ge=20, le=1000)] = 20
    max_allocated_storage_gib: Annotated[int, Field(ge=21, le=1000)] | None = None
    multi_az: bool = False
    backup_retention_days: Annotated[int, Field(ge=1, le=35)] = 7
    replicated_backup_retention_days: Annotated[int, Field(ge=1, le=35)] | None = None
    deletion_protection: bool = True
    final_snapshot: bool = True
    performance_insights: bool = False
    monitoring_interval_seconds: MonitoringInterval = 0
    log_retention_days: LogRetentionDays = 30

    @model_validator(mode="after")
    def _storage_can_grow(self) -> Self:
        if self.max_allocated_storage_gib is not None:
            require_field(
                self.max_allocated_storage_gib > self.allocated_storage_gib,
                "max_allocated_storage_gib",
                self.max_allocated_storage_gib,
                f"None or a value above allocated_storage_gib ({self.allocated_storage_gib})",
            )
        return self

    @property
    def parameter_group_family(self) -> str:
        """The RDS parameter group family of ``engine_version``."""
        return POSTGRES_FAMILIES[self.engine_version]


class MlflowIngressSettings(HostInZone):
    """How people outside the cluster reach MLflow: an internal ALB with HTTPS on a host name of a Route53 zone.

    hostname: the URL's host name, inside ``hosted_zone_name``.
    hosted_zone_name: a public Route53 hosted zone of the account (it must exist): it validates the ACM
      certificate and holds the host name's alias record. The record points at an internal ALB, so the name
      resolves from anywhere and connects only from the VPC and networks routed into it (VPN, peering).
    """

    EXAMPLE_HOST: ClassVar[str] = "mlflow"


class MlflowSettings(Settings):
    """The MLflow tracking server on the environment's EKS cluster, with its database and artifact store.

    database: the PostgreSQL backend store.
    replicas: tracking server pods (1-10); two or more with a PodDisruptionBudget keep it up through node drains.
    pod_disruption_budget: keep all but one replica up during voluntary disruptions (needs ``replicas`` >= 2).
    cpu_millicores, memory_mib: each pod's request; memory is also its limit (a pod over it is restarted rather
      than starving its node), CPU is limited to ``cpu_limit_millicores``.
    cpu_limit_millicores: each pod's CPU limit (at least its request).
    authentication: ``"basic-auth"`` runs MLflow's own authentication (users and permissions in the database;
      the admin's password is generated in the cluster and kept in Secrets Manager), ``"none"`` leaves every
      request anonymous, which is allowed only without ``ingress`` (reached by ``kubectl port-forward``).
    ingress: an internal HTTPS load balancer with a DNS name, or None for in-cluster access only.
    secret_refresh_minutes: how often the database password is re-read from Secrets Manager (5-1440); RDS
      rotates it every 7 days, and a changed password restarts the pods.
    """

    database: MlflowDatabaseSettings = Field(default_factory=MlflowDatabaseSettings)
    replicas: Annotated[int, Field(ge=1, le=10)] = 1
    pod_disruption_budget: bool = False
    cpu_millicores: Annotated[int, Field(ge=100, le=16000)] = 500
    cpu_limit_millicores: Annotated[int, Field(ge=100, le=16000)] = 2000
    memory_mib: Annotated[int, Field(ge=512, le=65536)] = 2048
    authentication: Literal["basic-auth", "none"] = "basic-auth"
    ingress: MlflowIngressSettings | None = None
    secret_refresh_minutes: Annotated[int, Field(ge=5, le=1440)] = 60

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        require_field(
            self.cpu_limit_millicores >= self.cpu_millicores,
            "cpu_limit_millicores",
            self.cpu_limit_millicores,
            f"a value >= cpu_millicores ({self.cpu_millicores})",
        )
        if self.pod_disruption_budget:
            require_field(
                self.replicas >= 2,
                "replicas",
                self.replicas,
                "2 or more when pod_disruption_budget is True (a budget of one pod blocks every node drain)",
            )
        if self.ingress is not None:
            require_field(
                self.authentication != "none",
                "authentication",
                self.authentication,
                "'basic-auth' when ingress is set (a load balancer must not serve anonymous requests)",
            )
        return self
