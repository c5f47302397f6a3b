"""The dated price tables: every table in costs/prices/ loads, and the loader refuses incomplete ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from costs.pricing import PRICES_DIR, PriceTableError, available_regions, load_table, table_for
from tests.costs.builders import PRICES, estimate, write_prices


@pytest.mark.parametrize("region", available_regions())
def test_every_price_table_names_its_source_and_date(region: str) -> None:
    table = table_for(region)
    assert table is not None
    assert table.region == region and table.currency == "USD" and table.hours_per_month == 730
    assert table.retrieved and table.source and table.notes
    assert any("spot" in note.lower() for note in table.notes), "the spot figures are an assumption and say so"
    for key in ("ec2_compute_savings_plan", "sagemaker_savings_plan", "rds_reserved_instance"):
        assert 0 < (table.commitment(key) or 0) < 1


def test_us_east_1_has_a_table() -> None:
    assert "us-east-1" in available_regions(PRICES_DIR)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": {}}, "'source'"),
        ({"retrieved": "December 2026"}, "ISO date"),
        ({"region": "eu-west-1"}, "named for 'us-east-1'"),
        ({"spot_discount": {"g5": 1.2}}, "spot_discount.g5"),
        ({"ec2": None}, "sections ['ec2']"),
        ({"hours_per_month": 0}, "hours_per_month"),
    ],
)
def test_an_incomplete_table_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    (tmp_path / "us-east-1.json").write_text(json.dumps({**PRICES, **change}))
    with pytest.raises(PriceTableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_table(tmp_path / "us-east-1.json")


def test_any_region_with_a_file_is_priced(tmp_path: Path) -> None:
    prices = write_prices(tmp_path, region="eu-west-1", retrieved="2026-03-01")
    result = estimate(prices, {"aws_kms_key": {"k": {}}}, region="eu-west-1")
    assert result.complete and result.price_date == "2026-03-01" and result.total_min == 1.0
    assert not estimate(prices, {"aws_kms_key": {"k": {}}}, region="us-east-1").complete
