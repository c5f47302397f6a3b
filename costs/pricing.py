"""The dated price tables (``costs/prices/<region>.json``) and the look-ups the estimator makes in them.

A table is one region's list prices with the pages they come from (``source``), the day they were read
(``retrieved``), the currency and notes on what is confirmed and what is an assumption (spot and commitment
discounts). Every look-up answers ``None`` for what the table does not hold: the estimator reports that as
unpriced, never as zero. docs/costs.md says how to update a table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_DIR = Path(__file__).resolve().parent / "prices"
"""Where the price tables live: one ``<region>.json`` per region."""

REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]")
SECTIONS = (
    "ec2",
    "sagemaker_hosting",
    "rds",
    "rds_storage_gb_month",
    "ebs_gb_month",
    "hourly",
    "monthly",
    "usage",
    "spot_discount",
    "commitment_discount",
)
"""The sections every table has (a key missing inside one is simply not priced)."""


class PriceTableError(ValueError):
    """A price table that cannot be used: unreadable, or missing its source, date or a section."""


@dataclass(frozen=True)
class UsagePrice:
    """A price per unit of use (per GB, per request), listed next to the estimate rather than summed into it.

    price: the price of one unit, in the table's currency.
    unit: what one unit is ("GB processed", "million requests").
    """

    price: float
    unit: str


@dataclass(frozen=True)
class InstancePrice:
    """The on-demand price of one instance type.

    hourly: the price of one instance-hour.
    gpus: GPUs it carries (0 for CPU types); the estimator turns GPU requests of served models into nodes.
    """

    hourly: float
    gpus: int = 0


@dataclass(frozen=True)
class PriceTable:
    """One region's list prices, with where and when they were read.

    region: the AWS region the prices are for.
    currency: the currency of every figure (USD).
    retrieved: the day the prices were checked (ISO date).
    source: the pricing page of each section.
    notes: what is confirmed, what is an assumption (spot, commitments), what is not confirmed.
    hours_per_month: hours an always-on resource runs in a month (730).
    path: the file the table was read from.
    sections: the prices, by section (:data:`SECTIONS`).
    """

    region: str
    currency: str
    retrieved: str
    source: Mapping[str, str]
    notes: tuple[str, ...]
    hours_per_month: float
    path: Path
    sections: Mapping[str, Mapping[str, Any]]

    def ec2(self, instance_type: str) -> InstancePrice | None:
        """The on-demand price of an EC2 instance type (Linux), or None when the table lacks it."""
        return self._instance("ec2", instance_type)

    def sagemaker(self, instance_type: str) -> InstancePrice | None:
        """The real-time inference price of a SageMaker hosting instance type (``ml.g5.xlarge``), or None."""
        return self._instance("sagemaker_hosting", instance_type)

    def rds(self, engine: str, instance_class: str) -> float | None:
        """The Single-AZ hourly price of an RDS instance class for an engine (``postgres``), or None."""
        prices = self.sections["rds"].get(engine, {})
        return _number(prices.get(instance_class))

    def rds_storage(self, storage_type: str) -> float | None:
        """The Single-AZ price of one GB-month of RDS storage of a type (gp3, gp2), or None."""
        return _number(self.sections["rds_storage_gb_month"].get(storage_type))

    def ebs(self, volume_type: str) -> float | None:
        """The price of one GB-month of an EBS volume type, or None."""
        return _number(self.sections["ebs_gb_month"].get(volume_type))

    def hourly(self, key: str) -> float | None:
        """An hourly price of the ``hourly`` section (``nat_gateway``, ``eks_standard_support``), or None."""
        return _number(self.sections["hourly"].get(key))

    def monthly(self, key: str) -> float | None:
        """A monthly price of the ``monthly`` section (``kms_key``, ``secret``), or None."""
        return _number(self.sections["monthly"].get(key))

    def usage(self, key: str) -> UsagePrice | None:
        """A usage price (``nat_gateway_data``), or None."""
        entry = self.sections["usage"].get(key)
        if not isinstance(entry, Mapping) or _number(entry.get("price")) is None:
            return None
        return UsagePrice(float(entry["price"]), str(entry.get("unit", "unit")))

    def spot_discount(self, instance_type: str) -> float | None:
        """The typical spot discount (0-1) of the instance's family, or None when the table has no figure."""
        family = instance_type.removeprefix("ml.").split(".", 1)[0]
        return _number(self.sections["spot_discount"].get(family))

    def commitment(self, key: str) -> float | None:
        """A one-year commitment discount (0-1): ``ec2_compute_savings_plan``, ``sagemaker_savings_plan``..."""
        return _number(self.sections["commitment_discount"].get(key))

    def _instance(self, section: str, instance_type: str) -> InstancePrice | None:
        entry = self.sections[section].get(instance_type)
        if not isinstance(entry, Mapping) or _number(entry.get("hourly")) is None:
            return None
        return InstancePrice(float(entry["hourly"]), int(entry.get("gpus", 0)))


def _number(value: object) -> float | None:
    """A price as a float; None for anything that is not a non-negative number (bool included)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def load_table(path: Path) -> PriceTable:
    """Read and check one price table file."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PriceTableError(f"{path}: cannot read the price table: {error}") from error
    if not isinstance(data, dict):
        raise PriceTableError(f"{path}: a price table is a JSON object")
    for key in ("region", "currency", "retrieved"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise PriceTableError(f"{path}: {key!r} is required (a non-empty string)")
    if data["region"] != path.stem:
        raise PriceTableError(f"{path}: 'region' is {data['region']!r}, but the file is named for {path.stem!r}")
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["retrieved"]):
        raise PriceTableError(f"{path}: 'retrieved' must be an ISO date (YYYY-MM-DD), got {data['retrieved']!r}")
    source = data.get("source")
    if not isinstance(source, dict) or not source or not all(isinstance(v, str) and v for v in source.values()):
        raise PriceTableError(f"{path}: 'source' must name the pricing page of each section")
    hours = _number(data.get("hours_per_month"))
    if hours is None or hours <= 0:
        raise PriceTableError(f"{path}: 'hours_per_month' must be a positive number (730)")
    missing = [name for name in SECTIONS if not isinstance(data.get(name), dict)]
    if missing:
        raise PriceTableError(f"{path}: sections {missing} are missing (each is an object, possibly empty)")
    for name in ("spot_discount", "commitment_discount"):
        for key, value in data[name].items():
            number = _number(value)
            if number is None or number >= 1:
                raise PriceTableError(f"{path}: {name}.{key} must be a fraction from 0 to below 1, got {value!r}")
    notes = data.get("notes", [])
    return PriceTable(
        region=data["region"],
        currency=data["currency"],
        retrieved=data["retrieved"],
        source=dict(source),
        notes=tuple(str(note) for note in notes),
        hours_per_month=hours,
        path=path,
        sections={name: data[name] for name in SECTIONS},
    )


def available_regions(directory: Path = PRICES_DIR) -> tuple[str, ...]:
    """The regions that have a price table in ``directory``, sorted."""
    return tuple(sorted(p.stem for p in directory.glob("*.json") if REGION.fullmatch(p.stem)))


def table_for(region: str, directory: Path = PRICES_DIR) -> PriceTable | None:
    """The price table of ``region``, or None when ``directory`` has none for it."""
    if not REGION.fullmatch(region):
        return None
    path = directory / f"{region}.json"
    return load_table(path) if path.is_file() else None
