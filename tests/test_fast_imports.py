"""The fast provider loader: loads only what is used, and synthesizes exactly what the naive import does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from constructs import provider_bindings

from tests.conftest import ENVIRONMENTS

ROOT = Path(__file__).resolve().parent.parent


def test_only_used_submodules_are_loaded(synth_dir) -> None:
    loaded = [name for name in sys.modules if name.startswith("cdktf_cdktf_provider_aws.")]
    assert "cdktf_cdktf_provider_aws.vpc" in sys.modules
    assert "cdktf_cdktf_provider_aws.xray_group" not in sys.modules
    # The package has 2,135 submodules; the platform uses a small fraction of them.
    assert 10 < len(loaded) < 200, len(loaded)


def test_unknown_import_mode_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(provider_bindings.IMPORT_MODE_ENV, "turbo")
    monkeypatch.delitem(sys.modules, "cdktf_cdktf_provider_does_not_exist", raising=False)
    with pytest.raises(ValueError, match=r"ML_PLATFORM_IMPORT_MODE='turbo'.*'fast'.*'naive'"):
        provider_bindings._load_package("cdktf_cdktf_provider_does_not_exist")


def test_missing_bindings_say_how_to_install() -> None:
    bindings = provider_bindings.ProviderBindings("cdktf_cdktf_provider_does_not_exist")
    with pytest.raises(ModuleNotFoundError, match=r"pip install -r requirements.txt"):
        _ = bindings.vpc


@pytest.mark.slow
def test_naive_import_synthesizes_byte_identical_stacks(synth_dir, tmp_path) -> None:
    """A cold `main.py` with the usual imports writes the same bytes as the fast path."""
    env = {**os.environ, provider_bindings.IMPORT_MODE_ENV: "naive", "CDKTF_OUTDIR": str(tmp_path / "naive")}
    subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    for name in ENVIRONMENTS:
        naive = (tmp_path / "naive" / "stacks" / name / "cdk.tf.json").read_bytes()
        fast = (synth_dir / "stacks" / name / "cdk.tf.json").read_bytes()
        assert naive == fast, f"{name}: naive and fast imports synthesized different JSON"
