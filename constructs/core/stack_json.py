"""A stack's ``cdk.tf.json`` written exactly as cdktf writes it, for the checks that annotate a written stack.

cdktf 0.21 writes each stack with the ``json-stable-stringify`` package and two spaces: keys sorted by UTF-16 code
units, ``": "`` after a key, every array item and object member on its own line, and an empty object or array
still broken over two lines (``{\\n  }``), unlike Python's ``json.dumps``. Numbers print as JavaScript prints them.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

_SPACE = "  "


def stack_json(config: Any) -> str:
    """``config`` as cdktf writes a stack file (no trailing newline)."""
    return _stringify(config, 0)


def _stringify(value: Any, level: int) -> str:
    indent = "\n" + _SPACE * level
    if isinstance(value, dict):
        members = [
            f"{indent}{_SPACE}{_string(key)}: {_stringify(value[key], level + 1)}"
            for key in sorted(value, key=lambda key: key.encode("utf-16-be"))
        ]
        return "{" + ",".join(members) + indent + "}"
    if isinstance(value, list):
        return "[" + ",".join(f"{indent}{_SPACE}{_stringify(item, level + 1)}" for item in value) + indent + "]"
    if isinstance(value, str):
        return _string(value)
    if value is None or value is True or value is False:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _string(text: str) -> str:
    # JSON.stringify escapes the same characters as json.dumps without ensure_ascii: quote, backslash, controls.
    return json.dumps(text, ensure_ascii=False)


def _number(number: float) -> str:
    """``number`` as JavaScript's Number.prototype.toString prints it (JSON.stringify prints non-finite as null)."""
    if not math.isfinite(number):
        return "null"
    if number == 0:
        return "0"
    sign = "-" if number < 0 else ""
    # repr gives the shortest digits that read back as the same double, as JavaScript does.
    _, digit_tuple, exponent = Decimal(repr(abs(number))).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k, n = len(digits), len(digits) + int(exponent)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + digits
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{sign}{mantissa}e{'+' if n > 0 else '-'}{abs(n - 1)}"
