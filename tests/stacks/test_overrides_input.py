"""Reading ML_PLATFORM_OVERRIDES(_FILE): what plain ``json.loads`` would let through is a clear error.

Each error names the source (the variable, and the file's path), what is wrong, and what is allowed; none of
them is a traceback. Valid JSON reads exactly as ``json.loads`` reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from hypothesis import given, settings
from hypothesis import strategies as st

from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, load_environments, read_overrides


def _error(environ: dict[str, str]) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        read_overrides(environ)
    assert caught.value.where == "overrides"
    return caught.value


def _file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "overrides.json"
    path.write_bytes(content)
    return str(path)


def test_a_file_that_is_not_utf8_names_the_variable_the_path_and_utf8_json(tmp_path) -> None:
    path = _file(tmp_path, '{"dev": {"tags.team": "Müller"}}'.encode("latin-1"))
    error = _error({OVERRIDES_FILE_ENV: path})
    assert (error.field, error.value) == (OVERRIDES_FILE_ENV, path)
    assert error.allowed == "a UTF-8 JSON file (not UTF-8 at byte offset 24)"


def test_inline_overrides_that_are_not_utf8_are_an_error_too() -> None:
    # How Python hands over environment bytes that are not UTF-8 (surrogateescape).
    text = '{"dev": {"tags.team": "M\udcfcller"}}'
    error = _error({OVERRIDES_ENV: text})
    assert (error.field, error.value) == (OVERRIDES_ENV, text)
    assert error.allowed == "UTF-8 JSON (not UTF-8 at character offset 24)"


def test_a_utf8_file_may_start_with_a_byte_order_mark(tmp_path) -> None:
    path = _file(tmp_path, b'\xef\xbb\xbf{"dev": {"tags.team": "M\xc3\xbcller"}}')
    assert read_overrides({OVERRIDES_FILE_ENV: path}) == {"dev": {"tags.team": "Müller"}}


def test_a_file_that_cannot_be_read_says_why(tmp_path) -> None:
    error = _error({OVERRIDES_FILE_ENV: str(tmp_path)})
    assert (error.field, error.value) == (OVERRIDES_FILE_ENV, str(tmp_path))
    assert error.allowed == "a readable UTF-8 JSON file (Is a directory)"


@pytest.mark.parametrize(
    ("text", "key", "location"),
    [
        ('{"dev": {"budget.monthly_limit_usd": 700}, "dev": {"tags.team": "x"}}', "dev", "the top-level object"),
        (
            '{"staging": {"budget.monthly_limit_usd": 700, "budget.monthly_limit_usd": 900}}',
            "budget.monthly_limit_usd",
            "['staging']",
        ),
        (
            '{"prod": {"sagemaker.variants": [{"name": "a", "instance_type": "x", "name": "b"}]}}',
            "name",
            "['prod']['sagemaker.variants'][0]",
        ),
    ],
    ids=["environment", "field", "inside-a-list"],
)
def test_a_repeated_key_names_the_key_and_where_it_is(text, key, location) -> None:
    error = _error({OVERRIDES_ENV: text})
    assert (error.field, error.value) == (OVERRIDES_ENV, key)
    assert error.allowed == f"JSON without a repeated key ({key!r} is repeated in {location})"


def test_a_repeated_key_in_a_file_names_the_file(tmp_path) -> None:
    path = _file(tmp_path, b'{"dev": {\n  "tags.team": "ml",\n  "tags.team": "data"\n}}\n')
    error = _error({OVERRIDES_FILE_ENV: path})
    assert (error.field, error.value) == (OVERRIDES_FILE_ENV, "tags.team")
    assert error.allowed == f"JSON without a repeated key ('tags.team' is repeated in ['dev'] of {path})"


def test_a_repeated_key_is_reported_through_load_environments_before_any_setting_is_checked() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments({OVERRIDES_ENV: '{"dev": {"region": "no-such-region", "region": "us-east-1"}}'})
    assert (caught.value.field, caught.value.value) == (OVERRIDES_ENV, "region")


def test_setting_both_variables_is_an_error_naming_both(tmp_path) -> None:
    path = _file(tmp_path, b'{"dev": {"budget.monthly_limit_usd": 700}}')
    inline = '{"dev": {"budget.monthly_limit_usd": 800}}'
    error = _error({OVERRIDES_ENV: inline, OVERRIDES_FILE_ENV: path})
    assert (error.field, error.value) == (OVERRIDES_ENV, inline)
    assert error.allowed == (
        f"set one of {OVERRIDES_ENV} (inline JSON) or {OVERRIDES_FILE_ENV} (a JSON file), not both "
        f"({OVERRIDES_FILE_ENV} is {path!r})"
    )


def test_an_empty_variable_counts_as_unset(tmp_path) -> None:
    path = _file(tmp_path, b'{"dev": {"budget.monthly_limit_usd": 700}}')
    assert read_overrides({OVERRIDES_ENV: "", OVERRIDES_FILE_ENV: path}) == {"dev": {"budget.monthly_limit_usd": 700}}
    assert read_overrides({OVERRIDES_ENV: '{"dev": {}}', OVERRIDES_FILE_ENV: ""}) == {"dev": {}}
    assert read_overrides({}) == {}


@pytest.mark.parametrize(
    ("number", "detail"),
    [
        ("NaN", "NaN is not a JSON number"),
        ("Infinity", "Infinity is not a JSON number"),
        ("-Infinity", "-Infinity is not a JSON number"),
        ("[1, NaN]", "NaN is not a JSON number"),
        ("1e400", "1e400 is beyond the range of a number"),
    ],
)
def test_numbers_json_does_not_have_are_rejected(number, detail) -> None:
    text = f'{{"dev": {{"budget.monthly_limit_usd": {number}}}}}'
    error = _error({OVERRIDES_ENV: text})
    assert (error.field, error.value, error.allowed) == (OVERRIDES_ENV, text, f"valid JSON ({detail})")


def test_malformed_json_in_a_file_names_the_path_line_and_column(tmp_path) -> None:
    path = _file(tmp_path, b'{"dev": {\n  "tags.team": "ml",\n}}\n')
    error = _error({OVERRIDES_FILE_ENV: path})
    assert (error.field, error.value) == (OVERRIDES_FILE_ENV, path)
    assert error.allowed == "valid JSON (Expecting property name enclosed in double quotes at line 3 column 1)"


@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_clear_error_not_a_recursion_error(depth) -> None:
    text = '{"dev": {"tags.team": ' + "[" * depth + "]" * depth + "}}"
    error = _error({OVERRIDES_ENV: text})
    assert error.field == OVERRIDES_ENV
    assert error.allowed.startswith(("JSON nested at most 32 levels deep", "valid JSON (maximum recursion depth"))


def test_a_json_value_that_is_not_an_object_is_still_rejected() -> None:
    error = _error({OVERRIDES_ENV: "[1, 2]"})
    assert (error.field, error.value, error.allowed) == (
        OVERRIDES_ENV,
        [1, 2],
        "a JSON object keyed by environment name",
    )


_KEYS = st.lists(st.sampled_from(["region", "tags.team", "budget.monthly_limit_usd", "multi_az"]), max_size=6)


@settings(deadline=None)
@given(keys=_KEYS)
def test_an_object_is_rejected_exactly_when_a_key_repeats_and_the_first_repeat_is_named(keys: list[str]) -> None:
    text = '{"dev": {' + ", ".join(f'"{key}": {index}' for index, key in enumerate(keys)) + "}}"
    repeats = [key for index, key in enumerate(keys) if key in keys[:index]]
    if not repeats:
        assert read_overrides({OVERRIDES_ENV: text}) == {"dev": {key: keys.index(key) for key in keys}}
        return
    error = _error({OVERRIDES_ENV: text})
    assert error.value == repeats[0]


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(["dev", "staging", "prod"]), st.dictionaries(st.text(min_size=1), _JSON_VALUES, max_size=4)
    )
)
def test_valid_json_reads_exactly_as_json_loads_reads_it(overrides: dict[str, dict[str, Any]]) -> None:
    text = json.dumps(overrides)
    assert read_overrides({OVERRIDES_ENV: text}) == json.loads(text) == overrides
