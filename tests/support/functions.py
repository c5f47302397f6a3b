"""Lambda handlers of functions/, loaded as Lambda loads them: a top-level module, sys.path untouched."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_handler(source: Path, module_name: str) -> ModuleType:
    """``<source>/handler.py`` imported as the module ``module_name``."""
    spec = importlib.util.spec_from_file_location(module_name, source / "handler.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class body is processed.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
