"""Stacks for the monitoring tests: the default matrix (``stacks``), ``published`` (a model published, so the
SageMaker endpoint exists) and ``altered`` (staging and dev with monitoring overridden the way an operator would).
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
from tests.sagemaker.conftest import published, published_dir, published_json

__all__ = ["published", "published_dir", "published_json"]

PAGER = "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue"
CHAT = "https://hooks.example.com/triggers/T0001/12345/abcdef?channel=ml-platform"
ALTERED = {
    # Staging without Container Insights, with the on-call integrations an override file would add.
    "staging": {
        "monitoring.container_insights": False,
        "monitoring.alert_https_endpoints": [PAGER, CHAT],
        "monitoring.alert_emails": ["oncall@example.com", "ml-platform-alerts@example.com"],
    },
    # Dev with alarms switched on, to one address.
    "dev": {"monitoring.alarms": True, "monitoring.alert_emails": ["dev-alerts@example.com"]},
}


@pytest.fixture(scope="session")
def altered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Staging and dev synthesized with :data:`ALTERED`'s monitoring overrides, parsed."""
    configs = apply_overrides(MATRIX, ALTERED)
    outdir: Path = tmp_path_factory.mktemp("monitoring-altered")
    app = cdktf.App(outdir=str(outdir))
    for env in ALTERED:
        MlPlatformStack(app, configs[env], DeploymentSettings())
    app.synth()
    return {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in ALTERED}
