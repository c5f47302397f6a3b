"""Fixtures of the emulator's own tests (this folder and ``patches``): one running emulator, emptied per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emulator import Emulator, start_emulator


@pytest.fixture(scope="package")
def emulator() -> Iterator[Emulator]:
    """One emulator for the emulator's tests, always stopped at the end (moto's state is process-wide anyway)."""
    with start_emulator() as running:
        yield running


@pytest.fixture(scope="module")
def aws(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator, emptied before each test module.

    A reset costs about a second (moto rebuilds its backends, IAM with its managed policy catalogue), so the
    tests of one module share an emulator and keep apart by naming their own resources.
    """
    emulator.reset()
    yield emulator
