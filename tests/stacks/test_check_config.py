"""`make check-config`: the matrix, overrides and deployment settings validated without a synth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stacks import check_config
from stacks.overrides import OVERRIDES_ENV

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_a_valid_configuration_is_summarized_per_environment(clean_env, capsys) -> None:
    clean_env.setenv(OVERRIDES_ENV, '{"dev": {"budget.monthly_limit_usd": 650}}')
    assert check_config.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("dev: us-east-1, 10.10.0.0/16 over 2 AZs, no GPUs, single NAT, destroyable;")
    assert "budget 650 USD/month" in out[0]
    assert out[2].startswith("prod: ") and "protected" in out[2] and "training" in out[2]
    # Every enabled feature is named, the Kubeflow section with its number of teams.
    assert "mlflow" in out[2] and "kubeflow (2 teams)" in out[2]
    # The matrix serves no model: nothing to name.
    assert all("serving" not in line for line in out)
    assert out[-1].startswith("overrides: 1 field(s)")


def test_served_models_are_counted(clean_env, capsys) -> None:
    clean_env.setenv("ML_PLATFORM_OVERRIDES_FILE", str(PROJECT_ROOT / "examples" / "model-serving.json"))
    assert check_config.main() == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out if "serving (1 model)" in line] == ["dev", "staging", "prod"]


def test_a_bad_override_exits_2_with_the_contract_message(clean_env, capsys) -> None:
    clean_env.setenv(OVERRIDES_ENV, '{"staging": {"eks.gpu_node_group.instance_types": ["m6i.large"]}}')
    assert check_config.main() == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "configuration error: environment 'staging': field 'eks.gpu_node_group.instance_types[0]' = 'm6i.large'"
    )
    assert "NVIDIA GPU instance type" in err


def test_it_runs_without_loading_any_provider_binding() -> None:
    """The point of check-config: answers without the provider bindings' seconds of import time."""
    probe = (
        "import sys; from stacks import check_config; rc = check_config.main(); "
        "loaded = [m for m in sys.modules if m.startswith('cdktf_cdktf_provider') or m == 'cdktf']; "
        "print(rc, loaded)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_")}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "0 []"
