"""The ``published`` stacks: the default matrix with ``sagemaker.model_version`` set in every environment.

The default matrix is a fresh installation: no model is published, so the model, endpoint and autoscaling are
absent. Setting a model version is exactly what a user does after publishing a model (docs/sagemaker.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cdktf
import pytest

from stacks.deployment import DeploymentSettings
from stacks.matrix import MATRIX
from stacks.ml_platform_stack import MlPlatformStack
from stacks.overrides import apply_overrides
from tests.support.synth_json import ENVIRONMENTS


@pytest.fixture(scope="session")
def published_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every environment synthesized with ``sagemaker.model_version = "v1"``, as after publishing a model."""
    configs = apply_overrides(MATRIX, {env: {"sagemaker.model_version": "v1"} for env in ENVIRONMENTS})
    outdir = tmp_path_factory.mktemp("sagemaker-published")
    app = cdktf.App(outdir=str(outdir))
    for env in ENVIRONMENTS:
        MlPlatformStack(app, configs[env], DeploymentSettings())
    app.synth()
    return outdir


@pytest.fixture(scope="session")
def published_json(published_dir: Path) -> dict[str, str]:
    """The synthesized JSON text of each published environment, for ``cdktf.Testing`` matchers."""
    return {env: (published_dir / "stacks" / env / "cdk.tf.json").read_text() for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def published(published_json: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The parsed configuration of each published environment."""
    return {env: json.loads(text) for env, text in published_json.items()}
