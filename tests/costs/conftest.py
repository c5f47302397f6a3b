"""Fixtures of the estimator tests: a directory holding the known price table (tests/costs/builders.py), and the
``published`` stacks of tests/sagemaker (the default matrix with a model published)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.costs.builders import write_prices
from tests.sagemaker.conftest import published, published_dir, published_json

__all__ = ["prices_dir", "published", "published_dir", "published_json"]


@pytest.fixture
def prices_dir(tmp_path: Path) -> Path:
    """A price directory with the known us-east-1 table."""
    return write_prices(tmp_path / "prices")
