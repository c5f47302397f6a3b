"""The README's cost section is what the estimator renders from the synthesized stacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from costs.estimate import estimate_stacks
from costs.render import COMMAND, README_BEGIN, README_END, readme_block

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_cost_table_is_the_estimators(stacks: dict[str, dict[str, Any]]) -> None:
    text = README.read_text()
    start, end = text.find(README_BEGIN), text.find(README_END)
    assert 0 <= start < end, f"README.md lost its {README_BEGIN} ... {README_END} section"
    current = text[start : end + len(README_END)]
    expected = readme_block(estimate_stacks(stacks))
    assert current == expected, f"README.md's cost estimate is stale: run `python main.py && {COMMAND}` (make cost)"


def test_the_readme_links_the_method_and_the_command() -> None:
    section = README.read_text().split("## What it costs", 1)[1].split("\n## ", 1)[0]
    assert "docs/costs.md" in section and "make cost" in section
