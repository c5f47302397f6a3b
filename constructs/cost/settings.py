"""Per-environment spending limit."""

from __future__ import annotations

from typing import Annotated

from constructs.core.settings import Email, PositiveInt, Settings
from pydantic import Field


class BudgetSettings(Settings):
    """Per-environment spending limit.

    monthly_limit_usd: the environment's monthly cost budget in US dollars.
    alert_emails: who is told at 80 % forecast and 100 % actual spend (at least one address).
    """

    monthly_limit_usd: PositiveInt
    alert_emails: Annotated[tuple[Email, ...], Field(min_length=1)]
