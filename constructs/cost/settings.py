"""Per-environment spending limit."""

from __future__ import annotations

from typing import Annotated

from constructs.core.formats import Email
from constructs.core.settings import Settings
from pydantic import Field


class BudgetSettings(Settings):
    """Per-environment spending limit.

    monthly_limit_usd: the environment's monthly cost budget in US dollars (1 to 1,000,000: a larger figure
      is a typo, and a budget that never fires is no budget).
    alert_emails: who is told at 80 % forecast and 100 % actual spend (at least one address).
    """

    monthly_limit_usd: Annotated[int, Field(ge=1, le=1_000_000)]
    alert_emails: Annotated[tuple[Email, ...], Field(min_length=1)]
