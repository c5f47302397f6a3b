"""Rules across sections for the clock: production capacity and serving are never stopped or parked by a schedule."""

from __future__ import annotations

import pytest
from constructs.core.errors import ConfigurationError

from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides


@pytest.mark.parametrize(
    ("idle", "field"),
    [
        ({"action": "delete_endpoint"}, "sagemaker.idle.action"),
        ({"action": "scale_to_minimum", "parking_cron": "0 20 * * 1-5"}, "sagemaker.idle.parking_cron"),
    ],
)
def test_production_serving_is_never_parked(idle, field) -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"prod": {"sagemaker.idle": idle}})
    assert "environment 'prod'" in str(caught.value)
    assert f"field '{field}'" in str(caught.value)
