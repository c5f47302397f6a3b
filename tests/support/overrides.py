"""The matrix as the synthesis loads it with ``ML_PLATFORM_OVERRIDES``, for tests of the environment rules."""

from __future__ import annotations

import json
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError

from stacks.environment import EnvironmentConfig
from stacks.overrides import OVERRIDES_ENV, load_environments


def with_overrides(overrides: dict[str, Any]) -> dict[str, EnvironmentConfig]:
    """The matrix with ``overrides``, loaded the way ``cdktf synth`` loads ``ML_PLATFORM_OVERRIDES``."""
    return load_environments(environ={OVERRIDES_ENV: json.dumps(overrides)})


def rejected(overrides: dict[str, Any], env: str) -> ConfigurationError:
    """The error ``overrides`` raise; it must name environment ``env``."""
    with pytest.raises(ConfigurationError) as error:
        with_overrides(overrides)
    assert error.value.where == f"environment '{env}'"
    return error.value
