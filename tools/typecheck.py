#!/usr/bin/env python3
"""Run mypy on constructs/, stacks/, gitops/, costs/ and main.py.

Our ``constructs/`` folder joins the installed ``constructs`` library's package at run time (the library's
``__init__`` extends its ``__path__``; see the README, "Layout"), which a static checker cannot follow: it
finds the library and stops there. So mypy gets an overlay: a temporary ``constructs`` package holding the
library's files and our feature packages side by side, as links. Nothing is copied and the checked files are
the project's own.

    .venv/bin/python tools/typecheck.py      # or: make typecheck (part of make lint)
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def overlay(target: Path) -> list[str]:
    """Link the library's and our ``constructs`` entries into ``target/constructs``; our module names."""
    spec = importlib.util.find_spec("constructs")
    if spec is None or spec.origin is None:
        raise SystemExit("the constructs library is not installed: pip install -r requirements.txt")
    library = Path(spec.origin).parent
    package = target / "constructs"
    package.mkdir()
    for entry in library.iterdir():
        (package / entry.name).symlink_to(entry)
    ours = []
    for entry in sorted((ROOT / "constructs").iterdir()):
        if entry.name == "__pycache__" or (entry.is_file() and entry.suffix != ".py"):
            continue
        if (package / entry.name).exists():
            raise SystemExit(f"constructs/{entry.name} would shadow the library's module of that name")
        (package / entry.name).symlink_to(entry)
        ours.append(f"constructs.{entry.stem}")
    return ours


def main() -> int:
    """Type-check the product code; mypy's exit code."""
    with tempfile.TemporaryDirectory(prefix="typecheck-") as scratch:
        modules = overlay(Path(scratch))
        arguments = [arg for module in modules for arg in ("-p", module)]
        arguments += ["-p", "stacks", "-p", "gitops", "-p", "costs", "-m", "main"]
        env = {**os.environ, "MYPYPATH": os.pathsep.join([scratch, str(ROOT)])}
        command = [sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache"), *arguments]
        result = subprocess.run(command, cwd=ROOT, env=env, check=False, capture_output=True, text=True)
        # Report our files by their project paths, not by their links in the overlay.
        print((result.stdout + result.stderr).replace(f"{scratch}/", ""), end="")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
