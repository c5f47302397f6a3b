"""Shared fixtures: every environment is synthesized once per test session, the way main.py does it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.synth_json import ENVIRONMENTS

if TYPE_CHECKING:
    from emulator import Emulator

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# The suite must not depend on whoever runs it: user overrides and deployment choices are cleared.
PLATFORM_VARIABLES = (
    "ML_PLATFORM_OVERRIDES",
    "ML_PLATFORM_OVERRIDES_FILE",
    "ML_PLATFORM_BACKEND",
    "ML_PLATFORM_STATE_BUCKET",
    "ML_PLATFORM_STATE_REGION",
    "ML_PLATFORM_LOCK_TABLE",
    "ML_PLATFORM_EMULATOR_ENDPOINT",
    "ML_PLATFORM_GITHUB_REPOSITORY",
    "ML_PLATFORM_STACKS",
)
for _var in PLATFORM_VARIABLES:
    os.environ.pop(_var, None)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding ``stacks/<env>/cdk.tf.json`` for every environment, synthesized once."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("cdktf.out")
    build_app(str(outdir)).synth()
    return outdir


@pytest.fixture(scope="session")
def stack_json(synth_dir: Path) -> dict[str, str]:
    """The synthesized JSON text of each environment, for ``cdktf.Testing`` matchers."""
    return {env: (synth_dir / "stacks" / env / "cdk.tf.json").read_text() for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def stacks(stack_json: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The parsed synthesized configuration of each environment."""
    return {env: json.loads(text) for env, text in stack_json.items()}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """A local AWS emulator for one test module, emptied first and always stopped at the end.

    moto keeps its state per process, so whatever an earlier module left behind is reset away. (The emulator's
    own tests, in tests/emulator/, share one per package instead.)
    """
    from emulator import start_emulator

    with start_emulator() as running:
        running.reset()
        yield running


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch with the platform's variables unset."""
    for var in PLATFORM_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    yield monkeypatch


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything that runs against the AWS emulator is slow: `make test-fast` (-m "not slow") skips it.

    The longest test runs first, then the other emulator tests: with several workers (`make test` runs
    pytest-xdist with whole files per worker, handed out in the order of their first test:
    `--no-loadscope-reorder`), the longest work starts at once and the rest of the suite fills the other
    workers meanwhile.
    """
    for item in items:
        if item.get_closest_marker("emulator") is not None and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.slow)
    # Then the other emulator files (minutes each, mostly the provider's waits), before the quick unit files.
    items.sort(
        key=lambda item: (item.get_closest_marker("longest") is None, item.get_closest_marker("emulator") is None)
    )
