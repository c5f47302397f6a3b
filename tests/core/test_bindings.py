"""The fast provider loader: loads only the submodules used, with clear errors.

That it synthesizes byte-identical stacks to the usual (naive) import is proven by ``make bench``
(bench/synth.py synthesizes both ways and fails when the outputs differ).
"""

from __future__ import annotations

import sys

import pytest
from constructs.core import bindings


def test_only_used_submodules_are_loaded(synth_dir) -> None:
    loaded = [name for name in sys.modules if name.startswith("cdktf_cdktf_provider_aws.")]
    assert "cdktf_cdktf_provider_aws.vpc" in sys.modules
    assert "cdktf_cdktf_provider_aws.xray_group" not in sys.modules
    # The package has 2,135 submodules; the platform uses a small fraction of them.
    assert 10 < len(loaded) < 200, len(loaded)


def test_unknown_import_mode_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(bindings.IMPORT_MODE_ENV, "turbo")
    monkeypatch.delitem(sys.modules, "cdktf_cdktf_provider_does_not_exist", raising=False)
    with pytest.raises(ValueError, match=r"ML_PLATFORM_IMPORT_MODE='turbo'.*'fast'.*'naive'"):
        bindings._load_package("cdktf_cdktf_provider_does_not_exist")


def test_missing_bindings_say_how_to_install() -> None:
    missing = bindings.ProviderBindings("cdktf_cdktf_provider_does_not_exist")
    with pytest.raises(ModuleNotFoundError, match=r"pip install -r requirements.txt"):
        _ = missing.vpc
