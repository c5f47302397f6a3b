"""What happens to an idle SageMaker real-time endpoint: the ``idle`` section of the serving settings.

Kept apart from :mod:`constructs.sagemaker.settings` (which embeds it as ``SageMakerEndpointSettings.idle``) so
that the cron translation for EventBridge Scheduler and the rule across sections live next to the model they
belong to. Like every settings module, it imports no construct, no cdktf and no provider binding.
"""

from __future__ import annotations

from typing import Literal, Protocol, Self

from constructs.core.errors import require_field
from constructs.core.formats import IDLE_PERIOD_MINUTES, Cron, IdleMinutes, LogRetentionDays, TimeZone
from constructs.core.settings import Settings
from pydantic import model_validator

IDLE_TAG = "ml-platform:idle-policy"
"""Tag of an endpoint whose idle policy may delete it; its value is the policy (``delete_endpoint``)."""
PARK_EVENT = {"action": "park", "source": "schedule"}
"""The payload the parking schedule sends the function (its own, not an AWS event)."""

IdleAction = Literal["scale_to_minimum", "delete_endpoint"]
"""What the idle policy does to an idle endpoint (see :class:`EndpointIdleSettings`)."""

_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")


def _day_names(field: str) -> str:
    """A Unix day-of-week field (0-6 or SUN-SAT, lists and ranges) with every day as its name."""
    return "".join(_DAY_NAMES[int(part)] if part.isdigit() else part.upper() for part in _split_days(field))


def _split_days(field: str) -> list[str]:
    parts: list[str] = []
    current = ""
    for character in field:
        if character in ",-":
            parts += [current, character]
            current = ""
        else:
            current += character
    return [*parts, current]


def schedule_expression(cron: str) -> str:
    """The EventBridge Scheduler form of a 5-field Unix cron expression (``cron(m h dom mon dow year)``).

    Scheduler counts days of the week 1-7 from Sunday where cron counts 0-6, and one of day-of-month and
    day-of-week must be ``?``; days are written as names (``MON-FRI``) so the numbering cannot be mistaken.
    Expressions :meth:`EndpointIdleSettings.parking_cron` accepts always translate.
    """
    minute, hour, day_of_month, month, day_of_week = cron.split(" ")
    month = month.upper()
    days = f"{day_of_month} {month} ?" if day_of_week == "*" else f"? {month} {_day_names(day_of_week)}"
    return f"cron({minute} {hour} {days} *)"


class EndpointIdleSettings(Settings):
    """The idle policy of a real-time endpoint with instance variants (``SageMakerEndpointSettings.idle``).

    A real-time endpoint with model-based production variants cannot run fewer than one instance per variant
    (scaling to zero exists only for inference-component endpoints), and it bills every instance-hour, used or
    not. Serverless endpoints cost nothing while idle and take no idle section.

    idle_minutes: zero invocations on every variant for this long make the endpoint idle; a multiple of the
      alarm's 5-minute period, at least 15 (so a pause between test runs does not count) and at most a day
      (CloudWatch's limit for the range an alarm evaluates).
    action: the policy applied when the endpoint is idle (and by the parking schedule):
      ``scale_to_minimum`` sets every instance variant to ``min_instance_count`` (the autoscaling minimum:
      target tracking alone does not shrink an endpoint nobody calls, which publishes no invocation metric);
      ``delete_endpoint`` deletes the endpoint and keeps its configuration and model, so the next deploy
      (``cdktf deploy`` or the GitOps apply) recreates it. Never allowed in a protected environment.
    parking_cron: a schedule (5-field cron in ``schedule_time_zone``) that applies ``action`` whatever the
      traffic, such as ``'0 20 * * 1-5'`` (weekday evenings: a deleted endpoint then stays parked over the weekend
      until the next deploy; a scaled-down one grows again with traffic); None for none. Day-of-week steps and
      restricting both day-of-month and day-of-week are refused (EventBridge Scheduler cannot express them).
    schedule_time_zone: IANA time zone of ``parking_cron``, so the hour follows daylight saving time.
    log_retention_days: retention of the idle function's log group.
    """

    idle_minutes: IdleMinutes = 60
    action: IdleAction = "scale_to_minimum"
    parking_cron: Cron | None = None
    schedule_time_zone: TimeZone = "UTC"
    log_retention_days: LogRetentionDays = 30

    @model_validator(mode="after")
    def _cron_fits_the_scheduler(self) -> Self:
        if self.parking_cron is not None:
            _, _, day_of_month, _, day_of_week = self.parking_cron.split(" ")
            require_field(
                "/" not in day_of_week and (day_of_month == "*" or day_of_week == "*"),
                "parking_cron",
                self.parking_cron,
                "a cron expression EventBridge Scheduler can run: no step in the day of week, and a day of month "
                "or a day of week but not both (such as '0 20 * * 1-5' or '0 20 1 * *')",
            )
        return self

    @property
    def periods(self) -> int:
        """The alarm's evaluation periods: ``idle_minutes`` in 5-minute periods."""
        return self.idle_minutes // IDLE_PERIOD_MINUTES

    @property
    def schedule_expression(self) -> str | None:
        """``parking_cron`` as EventBridge Scheduler reads it, or None without a schedule."""
        return None if self.parking_cron is None else schedule_expression(self.parking_cron)


class WithIdlePolicy(Protocol):
    """What :func:`check_idle_policy` reads of the serving settings (``SageMakerEndpointSettings``)."""

    @property
    def idle(self) -> EndpointIdleSettings | None:
        """The idle section, None when the endpoint has none."""
        ...


def check_idle_policy(sagemaker: WithIdlePolicy | None, *, protected: bool) -> None:
    """The rule across sections for ``sagemaker.idle``: a protected environment's endpoint is never parked.

    In a protected environment the idle policy may only scale variants to their minimum (never delete the
    endpoint) and has no parking schedule (production serves at any hour; it shrinks when idle, never by the
    clock). Raises :class:`~constructs.core.errors.FieldError` naming ``sagemaker.idle.<field>``; call it from
    the environment model, which knows ``protected``.
    """
    idle = sagemaker.idle if sagemaker is not None else None
    if idle is None or not protected:
        return
    require_field(
        idle.action != "delete_endpoint",
        "sagemaker.idle.action",
        idle.action,
        "'scale_to_minimum' when protected is True (a protected environment's endpoint is never deleted)",
    )
    require_field(
        idle.parking_cron is None,
        "sagemaker.idle.parking_cron",
        idle.parking_cron,
        "None when protected is True (production serving shrinks when idle, never by the clock)",
    )
