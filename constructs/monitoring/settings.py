"""Per-environment monitoring: who is alerted, when an alarm fires, and what Container Insights keeps.

Every alarm notifies the environment's alert topic (``<name prefix>-alerts``), and the topic notifies its
subscribers: e-mail addresses and HTTPS integration endpoints (a PagerDuty Events integration, a chat
workflow). An integration URL carries its credential in its path, so it is a secret-like value: keep it out
of the matrix and pass it through an override file kept out of git (docs/monitoring.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Self
from urllib.parse import parse_qsl, urlsplit

from constructs.core.errors import require_field
from constructs.core.formats import Email, LogRetentionDays
from constructs.core.settings import Settings, predicate
from pydantic import Field, model_validator

# Query parameters that carry a credential: a URL holding one would put that credential in the subscription
# (shown in the console and in Terraform's plan and state) as a visible parameter. Integration services put
# theirs in the path instead (PagerDuty's integration key, a chat workflow's trigger ID), where it is still a
# secret, and the docs say how to keep it out of git.
CREDENTIAL_QUERY_PARAMETERS = frozenset(
    {
        "access_token",
        "api-key",
        "api_key",
        "apikey",
        "auth",
        "authorization",
        "client_secret",
        "code",
        "key",
        "password",
        "passwd",
        "pwd",
        "secret",
        "sig",
        "signature",
        "token",
        "x-amz-credential",
        "x-amz-signature",
    }
)
MAX_ENDPOINT_LENGTH = 2048
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOST = re.compile(rf"(?=.{{4,253}}$)(?:{_HOST_LABEL}\.)+[a-z]{{2,63}}")


def is_https_endpoint(value: str) -> bool:
    """An ``https://`` URL of a DNS host, with no user or password, fragment, whitespace or credential parameter."""
    if not value.isascii() or len(value) > MAX_ENDPOINT_LENGTH or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme != "https" or parts.username is not None or parts.password is not None or parts.fragment:
        return False
    host = parts.hostname or ""
    if not _HOST.fullmatch(host) or parts.netloc.lower() not in (host, f"{host}:{port}"):
        return False
    names = {name.lower() for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    return not names & CREDENTIAL_QUERY_PARAMETERS


HttpsEndpoint = Annotated[
    str,
    predicate(
        is_https_endpoint,
        "https:// URLs of a DNS host name, such as 'https://events.pagerduty.com/integration/<key>/enqueue' (no "
        "http, IP address, user or password, fragment or whitespace; no credential as a query parameter such as "
        f"'token' or 'key'; at most {MAX_ENDPOINT_LENGTH} characters)",
    ),
]
"""An HTTPS integration endpoint an SNS topic can deliver to."""


class AlarmThresholds(Settings):
    """When each alarm fires. Each alarm exists only where its component does.

    sagemaker_5xx_percent: share of a variant's invocations answered with a 5xx (model or platform error), in
      percent, per 5-minute window; alarms when 2 of the last 3 windows are above it (1-100). A rate, unlike the
      rollback alarms' per-minute count, so that it means the same at any traffic.
    sagemaker_latency_p99_ms: p99 ModelLatency of a variant in milliseconds per 5-minute window; alarms when 2 of
      the last 3 windows are above it (10 to 600,000: SageMaker's 60 s invocation timeout is 60,000).
    rds_cpu_percent: the MLflow database's average CPU over 15 minutes (three 5-minute windows) above which it
      alarms (50-100).
    rds_free_storage_gib: free storage of the MLflow database, in GiB, below which it alarms (1-1000; below the
      database's allocated storage, checked with the environment). With storage autoscaling RDS grows the volume
      at 10 % free; this alarm means autoscaling did not keep up or reached its ceiling.
    rds_free_memory_mib: freeable memory of the MLflow database, in MiB, below which it alarms when it stays there
      for 15 minutes (16-65536).
    eks_failed_nodes: EKS nodes with a failed condition (not Ready, memory, disk or PID pressure) for 5 minutes
      in a row at which it alarms (1-100).
    eks_pending_pods: pods of the cluster in Pending at which it alarms, when they stay there for
      ``eks_pending_minutes`` (1-1000).
    eks_pending_minutes: minutes the pending pods must last (5-120). Longer than a GPU node's start from zero
      (several minutes), so a scale-up is not an incident.
    training_capacity_unmet_minutes: minutes the GPU training cluster may stay below the capacity it asks for
      (desired above in service: no capacity for the instance types, launch failures, nodes that never become
      healthy) before it alarms; a multiple of 5 from 10 to 240. Idle GPUs are no alarm: the idle shutdown
      scales the cluster to zero.
    """

    sagemaker_5xx_percent: Annotated[int, Field(ge=1, le=100)] = 5
    sagemaker_latency_p99_ms: Annotated[int, Field(ge=10, le=600_000)] = 2000
    rds_cpu_percent: Annotated[int, Field(ge=50, le=100)] = 80
    rds_free_storage_gib: Annotated[int, Field(ge=1, le=1000)] = 5
    rds_free_memory_mib: Annotated[int, Field(ge=16, le=65536)] = 128
    eks_failed_nodes: Annotated[int, Field(ge=1, le=100)] = 1
    eks_pending_pods: Annotated[int, Field(ge=1, le=1000)] = 1
    eks_pending_minutes: Annotated[int, Field(ge=5, le=120)] = 15
    training_capacity_unmet_minutes: Annotated[
        int,
        Field(
            ge=10,
            le=240,
            multiple_of=5,
            description="a multiple of 5 from 10 to 240 (the alarm evaluates 5-minute windows)",
        ),
    ] = 30


class MonitoringSettings(Settings):
    """Per-environment monitoring and alerting.

    alarms: create the alarms and the encrypted alert topic they notify. False leaves the environment with its
      dashboard only (then it has no subscribers either); a protected environment always has alarms.
    alert_emails: e-mail subscribers of the alert topic (at most 10); each confirms its subscription from the
      message SNS sends it.
    alert_https_endpoints: HTTPS integration endpoints subscribed to the alert topic (at most 5), such as a
      PagerDuty Events integration URL. The endpoint must confirm the subscription (PagerDuty's integration
      does); the deploy fails otherwise, since it would never receive an alert. Secret-like: pass them through
      an override file kept out of git.
    thresholds: when each alarm fires (see :class:`AlarmThresholds`).
    container_insights: install the CloudWatch observability add-on on the EKS cluster (Container Insights with
      enhanced observability, NVIDIA GPU metrics through its DCGM exporter); its metrics feed the cluster's
      alarms and dashboard row. Billed per observation.
    performance_log_retention_days: retention of the cluster's Container Insights performance log group
      (``/aws/containerinsights/<cluster>/performance``), where the agent sends the events its metrics come from
      (a CloudWatch Logs retention value). Container logs (Fluent Bit) are not collected.
    """

    alarms: bool = True
    alert_emails: Annotated[tuple[Email, ...], Field(max_length=10)] = ()
    alert_https_endpoints: Annotated[tuple[HttpsEndpoint, ...], Field(max_length=5)] = ()
    thresholds: AlarmThresholds = Field(default_factory=AlarmThresholds)
    container_insights: bool = True
    performance_log_retention_days: LogRetentionDays = 7

    @model_validator(mode="after")
    def _subscribers_need_alarms(self) -> Self:
        for field in ("alert_emails", "alert_https_endpoints"):
            value = getattr(self, field)
            require_field(
                self.alarms or not value,
                field,
                value,
                "no subscribers while alarms is False (no alarm would ever notify them); set alarms to True",
            )
        return self

    @property
    def subscriber_count(self) -> int:
        """How many e-mail addresses and HTTPS endpoints the alert topic notifies."""
        return len(self.alert_emails) + len(self.alert_https_endpoints)


def check_alerting(monitoring: MonitoringSettings, *, protected: bool, database_storage_gib: int | None) -> None:
    """The rules across sections for ``monitoring``; call it from the environment model, which knows the rest.

    A protected environment has alarms and at least one subscriber (an alarm nobody receives is no alarm), and
    the database's free-storage alarm starts below its allocated storage (``database_storage_gib``, None without
    a database), or it would fire on an empty database. Raises :class:`~constructs.core.errors.FieldError` naming
    ``monitoring.<field>``.
    """
    if protected:
        require_field(
            monitoring.alarms,
            "monitoring.alarms",
            monitoring.alarms,
            "True when protected is True (production is watched)",
        )
        require_field(
            monitoring.subscriber_count >= 1,
            "monitoring.alert_emails",
            monitoring.alert_emails,
            "at least one subscriber when protected is True: an e-mail address here, or an HTTPS endpoint in "
            "monitoring.alert_https_endpoints",
        )
    free = monitoring.thresholds.rds_free_storage_gib
    if monitoring.alarms and database_storage_gib is not None:
        require_field(
            free < database_storage_gib,
            "monitoring.thresholds.rds_free_storage_gib",
            free,
            f"less than mlflow.database.allocated_storage_gib ({database_storage_gib}): the alarm would fire on an "
            "empty database",
        )
