"""The README and docs/ stay true: every override example they give loads, every command they name exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from constructs.core.errors import ConfigurationError

from stacks.matrix import ENVIRONMENT_NAMES
from stacks.overrides import OVERRIDES_ENV, load_environments

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_OVERRIDES = re.compile(r"ML_PLATFORM_OVERRIDES='([^']*)'")
_MAKE = re.compile(r"\bmake ([a-z][a-z-]*)")
_CDKTF = re.compile(r"\bcdktf (synth|diff|deploy|destroy)(?: ([a-z<>]+))?")
# Examples the docs show failing on purpose, and the field they fail on.
FAILING_ON_PURPOSE = {
    '{"staging": {"eks.kubernetes_version": "1.37"}}': "eks.kubernetes_version",
}


def _examples() -> list[object]:
    found = []
    for doc in DOCS:
        for text in _OVERRIDES.findall(doc.read_text()):
            for env in ENVIRONMENT_NAMES if "<env>" in text else [None]:
                example = text.replace("<env>", env) if env else text
                found.append(pytest.param(example, id=f"{doc.name}:{example}"))
    return found


def test_the_docs_have_override_examples() -> None:
    assert len(_examples()) >= 8


@pytest.mark.parametrize("example", _examples())
def test_every_override_example_in_the_docs_loads(example: str) -> None:
    overrides = json.loads(example)
    if example in FAILING_ON_PURPOSE:
        with pytest.raises(ConfigurationError) as caught:
            load_environments(environ={OVERRIDES_ENV: example})
        assert caught.value.field == FAILING_ON_PURPOSE[example]
        return
    configs = load_environments(environ={OVERRIDES_ENV: example})
    assert set(overrides) <= set(configs)


def test_every_make_target_the_docs_name_exists() -> None:
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.MULTILINE))
    for doc in DOCS:
        for target in _MAKE.findall(doc.read_text()):
            assert target in targets, f"{doc.name}: make {target}"


def test_every_cdktf_command_the_docs_name_targets_an_environment() -> None:
    for doc in DOCS:
        for command, stack in _CDKTF.findall(doc.read_text()):
            assert not stack or stack in (*ENVIRONMENT_NAMES, "<env>"), f"{doc.name}: cdktf {command} {stack}"


def test_json_blocks_in_the_docs_parse() -> None:
    for doc in DOCS:
        for block in re.findall(r"```json\n(.*?)```", doc.read_text(), flags=re.DOTALL):
            # A fragment of an object ("key": value) is shown as it appears inside cdk.tf.json.
            json.loads("{" + block + "}" if block.lstrip().startswith('"') else block)


def test_the_error_the_readme_shows_is_the_error_the_platform_gives() -> None:
    shown = re.findall(r"^configuration error: (.*)$", (ROOT / "README.md").read_text(), flags=re.MULTILINE)
    assert shown
    for line in shown:
        match = re.fullmatch(r"environment '(\w+)': field '([\w.]+)' = (.+?) is not allowed; allowed: .+", line)
        assert match, line
        env, field, value = match.groups()
        with pytest.raises(ConfigurationError) as caught:
            load_environments(environ={OVERRIDES_ENV: json.dumps({env: {field: json.loads(value)}})})
        assert str(caught.value) == line
