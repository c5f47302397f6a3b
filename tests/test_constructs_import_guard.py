"""Our constructs/ folder extends the `constructs` library's package instead of shadowing it."""

from __future__ import annotations

import importlib
from pathlib import Path

import constructs

ROOT = Path(__file__).resolve().parent.parent


def test_library_wins_and_our_modules_import_as_submodules() -> None:
    assert hasattr(constructs, "Construct")
    assert "site-packages" in constructs.__file__, constructs.__file__
    module = importlib.import_module("constructs.platform_network")
    assert Path(module.__file__).resolve().parent == ROOT / "constructs"


def test_constructs_folder_has_no_init_and_no_jsii_module() -> None:
    assert not (ROOT / "constructs" / "__init__.py").exists()
    assert not (ROOT / "constructs" / "_jsii.py").exists()
    assert not (ROOT / "constructs" / "_jsii").exists()
