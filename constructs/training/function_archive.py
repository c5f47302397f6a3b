"""The idle-shutdown function's deployment package (the builder is :mod:`constructs.core.function_archive`)."""

from __future__ import annotations

from pathlib import Path

from constructs.core import function_archive
from constructs.core.function_archive import FUNCTIONS_DIR, FunctionArchive

FUNCTION_SOURCE = FUNCTIONS_DIR / "idle_shutdown"

__all__ = ["FUNCTION_SOURCE", "FunctionArchive", "build_function_archive"]


def build_function_archive(source: Path) -> FunctionArchive:
    """Zip ``source``'s Python files reproducibly (see :func:`constructs.core.function_archive.build_function_archive`);
    an error names the GPU training cluster, whose function this package is."""
    return function_archive.build_function_archive(source, owner="GpuTrainingCluster")
