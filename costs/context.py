"""What every pricing function works with: the stack, its region's price table and the estimate it adds to."""

from __future__ import annotations

from dataclasses import dataclass

from costs.model import Estimate, Line, Unpriced, UsageItem
from costs.pricing import PriceTable
from costs.terraform import StackView


def money(value: float) -> str:
    """A unit price as text, with as many decimals as it has (``$0.045``, ``$1.00``, ``$0.0000133334``)."""
    text = f"{value:.10f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${int(whole):,}.{decimals.ljust(2, '0')}"


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 key``, ``3 keys``; ``many`` is the plural where it is not ``noun + "s"``."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


@dataclass
class Pricing:
    """A stack being priced.

    view: the stack's resources.
    prices: its region's price table.
    estimate: the estimate the lines, usage items and gaps are added to.
    """

    view: StackView
    prices: PriceTable
    estimate: Estimate

    @property
    def hours(self) -> float:
        """Hours an always-on resource runs in a month."""
        return self.prices.hours_per_month

    def add(self, line: Line) -> None:
        """Add a priced line."""
        self.estimate.lines.append(line)

    def missing(self, address: str, what: str) -> None:
        """Record something the price table cannot price."""
        self.estimate.unpriced.append(Unpriced(address, what))

    def usage(self, component: str, name: str, key: str, basis: str) -> None:
        """List a usage-based cost with its unit price; an unknown key is reported as unpriced."""
        price = self.prices.usage(key)
        if price is None:
            self.missing(component, f"usage price {key!r}")
            return
        self.estimate.usage.append(UsageItem(component, name, price.price, price.unit, basis))

    def hourly(self, address: str, key: str) -> float | None:
        """An hourly price, reported as unpriced when the table lacks it."""
        price = self.prices.hourly(key)
        if price is None:
            self.missing(address, f"hourly price {key!r}")
        return price

    def monthly(self, address: str, key: str) -> float | None:
        """A monthly price, reported as unpriced when the table lacks it."""
        price = self.prices.monthly(key)
        if price is None:
            self.missing(address, f"monthly price {key!r}")
        return price
