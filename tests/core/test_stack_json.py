"""A stack file rewritten by the checks is formatted exactly as cdktf writes one (json-stable-stringify, 2 spaces).

The real authority is cdktf itself: tests/policy/test_suppressions.py compares a file the checks annotated with
the file cdktf writes for the same override, and ``make compare-synth`` compares every scenario's stacks.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from constructs.core.stack_json import stack_json
from hypothesis import given
from hypothesis import strategies as st


def test_members_sorted_one_per_line_and_empty_containers_broken_over_two_lines() -> None:
    config = {"b": [1, "two", None, True], "a": {}, "c": {"y": [], "x": {"z": False}}}
    assert stack_json(config) == (
        "{\n"
        '  "a": {\n'
        "  },\n"
        '  "b": [\n'
        "    1,\n"
        '    "two",\n'
        "    null,\n"
        "    true\n"
        "  ],\n"
        '  "c": {\n'
        '    "x": {\n'
        '      "z": false\n'
        "    },\n"
        '    "y": [\n'
        "    ]\n"
        "  }\n"
        "}"
    )


def test_text_is_escaped_as_json_stringify_escapes_it() -> None:
    assert stack_json(["é ü", 'say "hi"\n\t\\', "\x01", "/"]) == (
        '[\n  "é ü",\n  "say \\"hi\\"\\n\\t\\\\",\n  "\\u0001",\n  "/"\n]'
    )


def test_keys_sort_by_utf16_code_units_as_javascript_sorts_them() -> None:
    # U+FF5E sorts after U+1F600 in UTF-16 (0xFF5E > 0xD83D) but before it by code point.
    assert stack_json({"\U0001f600": 1, "\uff5e": 2}) == '{\n  "\U0001f600": 1,\n  "\uff5e": 2\n}'


NUMBERS = [0.1, 1.5, -0.5, 123.456, 1e21, 1.5e21, 1e20, 1e-7, 1.5e-7, 1e-6, 0.00001, 2.5e25, 5e-324, 1.8e308]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js runs the jsii kernel; the oracle here")
def test_numbers_print_as_javascript_prints_them() -> None:
    printed = subprocess.run(
        ["node", "-e", f"for (const x of {json.dumps(NUMBERS)}) console.log(JSON.stringify(x))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert [stack_json(number) for number in NUMBERS] == printed


# A configuration read from a file cdktf wrote: an integral number reads back as an int, never as a float.
fractions = st.floats(allow_nan=False, allow_infinity=False).filter(lambda number: not number.is_integer())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | fractions | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_what_is_written_reads_back_as_the_same_configuration(value) -> None:
    assert json.loads(stack_json(value)) == value
