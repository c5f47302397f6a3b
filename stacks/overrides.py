"""User overrides of the environment matrix, and loading the validated matrix.

Overrides come from ``ML_PLATFORM_OVERRIDES`` (inline JSON) or ``ML_PLATFORM_OVERRIDES_FILE`` (a UTF-8 JSON
file), not both, keyed by environment and dotted field path::

    {"staging": {"network.flow_log_retention_days": 60, "sagemaker.variants": [{"instance_type": "ml.g5.2xlarge"}]}}

Each value replaces one field and passes through the same settings models as the matrix itself, so it fails
with the same message: environment, dotted field, value, what is allowed. The rules across sections run once
all of an environment's overrides are in, so overrides that only make sense together can be given together.
Overrides tune an environment; what it is (``REVIEWED`` fields) and, when it is protected, what names or places
its data (``IDENTITY`` fields, its sections) stay as stacks/matrix.py says.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from constructs.core.errors import ConfigurationError, one_of, require
from constructs.core.settings import locked_fields, sections, settings_error
from pydantic import BaseModel, ValidationError

from stacks.environment import EnvironmentConfig, cross_section_rules_deferred, validate_matrix, where
from stacks.matrix import MATRIX

OVERRIDES_ENV = "ML_PLATFORM_OVERRIDES"
OVERRIDES_FILE_ENV = "ML_PLATFORM_OVERRIDES_FILE"
_EXAMPLE = 'a JSON object such as {"budget.monthly_limit_usd": 900}'


def _immutable(value: Any) -> Any:
    """JSON has no tuples; settings hold tuples so they stay immutable."""
    if isinstance(value, list):
        return tuple(_immutable(item) for item in value)
    if isinstance(value, dict):
        return {key: _immutable(item) for key, item in value.items()}
    return value


def _revalidated(model: BaseModel, changes: Mapping[str, Any]) -> BaseModel:
    """``model`` with ``changes``, validated again as a whole (``model_copy`` would skip validation)."""
    data = {name: getattr(model, name) for name in type(model).model_fields}
    data.update(changes)
    return type(model).model_validate(data)


def _replace(model: Any, parts: list[str], value: Any, env: str, path: str, done: tuple[str, ...] = ()) -> Any:
    """``model`` with the field at ``parts`` replaced by ``value``; every settings rule on the way runs again."""
    prefix = ".".join(done)
    if not isinstance(model, BaseModel):
        raise ConfigurationError(where(env), path, value, f"a path into an enabled section ('{prefix}' is {model!r})")
    head = parts[0]
    fields = type(model).model_fields
    field_path = f"{prefix}.{head}" if prefix else head
    require(head in fields, where(env), field_path, head, one_of(fields))
    new = value if len(parts) == 1 else _replace(getattr(model, head), parts[1:], value, env, path, (*done, head))
    try:
        return _revalidated(model, {head: new})
    except ValidationError as error:
        raise settings_error(error, where(env), type(model), prefix) from None


def apply_overrides(
    configs: Mapping[str, EnvironmentConfig], overrides: Mapping[str, Any]
) -> dict[str, EnvironmentConfig]:
    """The matrix with ``overrides`` ({env: {dotted.path: value}}) applied; every rule runs on the result."""
    result = dict(configs)
    require(isinstance(overrides, Mapping), "overrides", "<root>", overrides, "a JSON object keyed by environment name")
    for env, fields in overrides.items():
        require(env in configs, "overrides", "environment", env, one_of(configs))
        require(isinstance(fields, Mapping), where(env), "<overrides>", fields, _EXAMPLE)
        config = result[env]
        with cross_section_rules_deferred():
            for path, value in fields.items():
                config = _replace(config, path.split("."), _immutable(value), env, path)
        # Before the rules across sections: a locked field is what the user must hear about, not its effects.
        _keeps_locked_fields(configs[env], config)
        try:
            result[env] = _revalidated(config, {})  # type: ignore[assignment]
        except ValidationError as error:
            raise settings_error(error, where(env), EnvironmentConfig) from None
    return result


def _keeps_locked_fields(before: EnvironmentConfig, after: EnvironmentConfig) -> None:
    """Overrides tune an environment; they never change what it is, nor, when it is protected, what it keeps.

    Compared on the result, so a field is caught however it was reached: by its own path or inside a section
    replaced as a whole.
    """
    env = where(before.name)
    if before.protected:
        kept = dict(sections(after))
        for path, _ in sections(before):
            require(
                path in kept,
                env,
                path,
                None,
                "the section stacks/matrix.py configures: a protected environment's feature is removed through code "
                "review, never by an override (removing it destroys what it holds)",
            )
    now = {path: value for path, value, _ in locked_fields(after)}
    for path, value, lock in locked_fields(before):
        if before.protected or not lock.protected_only:
            require(now.get(path) == value, env, path, now.get(path), f"{value!r}: {lock.allowed}")


_MAX_DEPTH = 32


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as parsed: its key-value pairs in order, a repeated key included, until :func:`_objects`."""


class _NotJson(ValueError):
    """A number Python's parser accepts but JSON does not have (NaN, Infinity, one beyond a float's range)."""


def _no_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if abs(value) == float("inf"):
        raise _NotJson(f"{text} is beyond the range of a number")
    return value


def _objects(value: Any, source: str, place: str, location: str = "", depth: int = 0) -> Any:
    """``value`` with each parsed object a dict; a key given twice in one object (the last would silently win)
    is an error naming the key and where it is (``['staging']['sagemaker.variants'][0]``)."""
    # Far deeper than any setting; the limit keeps this walk and the validation after it clear of Python's own.
    require(depth <= _MAX_DEPTH, "overrides", source, location + place, f"JSON nested at most {_MAX_DEPTH} levels deep")
    if isinstance(value, _Pairs):
        result: dict[str, Any] = {}
        for key, item in value:
            repeated = f"{key!r} is repeated in {location or 'the top-level object'}{place}"
            require(key not in result, "overrides", source, key, f"JSON without a repeated key ({repeated})")
            result[key] = _objects(item, source, place, f"{location}[{key!r}]", depth + 1)
        return result
    if isinstance(value, list):
        return [_objects(item, source, place, f"{location}[{index}]", depth + 1) for index, item in enumerate(value)]
    return value


def _parse(source: str, shown: str, text: str, place: str = "") -> Any:
    """The JSON ``text`` from ``source`` (``shown`` in errors, ``place`` after a location), read strictly."""
    try:
        parsed = json.loads(text, object_pairs_hook=_Pairs, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError as error:
        detail = f"{error.msg} at line {error.lineno} column {error.colno}"
    except (ValueError, RecursionError) as error:  # _NotJson, an integer of over 4300 digits, deep nesting
        detail = str(error)
    else:
        return _objects(parsed, source, place)
    raise ConfigurationError("overrides", source, shown, f"valid JSON ({detail})") from None


def _read_file(path: str) -> str:
    """The text of the overrides file at ``path``: UTF-8 (a leading byte-order mark, as some editors write, is
    dropped)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise ConfigurationError(
            "overrides", OVERRIDES_FILE_ENV, path, f"a readable UTF-8 JSON file ({error.strerror})"
        ) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ConfigurationError(
            "overrides", OVERRIDES_FILE_ENV, path, f"a UTF-8 JSON file (not UTF-8 at byte offset {error.start})"
        ) from None


def read_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overrides from ``ML_PLATFORM_OVERRIDES`` (inline JSON) or ``ML_PLATFORM_OVERRIDES_FILE`` (a JSON file).

    An empty variable counts as unset. Setting both is an error (neither silently wins), and so is what plain
    ``json.loads`` lets through: a key repeated in one object, NaN or Infinity, text that is not UTF-8.
    """
    environ = os.environ if environ is None else environ
    inline, path = environ.get(OVERRIDES_ENV), environ.get(OVERRIDES_FILE_ENV)
    if inline and path:
        raise ConfigurationError(
            "overrides",
            OVERRIDES_ENV,
            inline,
            f"set one of {OVERRIDES_ENV} (inline JSON) or {OVERRIDES_FILE_ENV} (a JSON file), not both "
            f"({OVERRIDES_FILE_ENV} is {path!r})",
        )
    if path:
        source, data = OVERRIDES_FILE_ENV, _parse(OVERRIDES_FILE_ENV, path, _read_file(path), f" of {path}")
    elif inline:
        try:
            inline.encode("utf-8")
        except UnicodeEncodeError as error:  # the environment held bytes that are not UTF-8
            raise ConfigurationError(
                "overrides", OVERRIDES_ENV, inline, f"UTF-8 JSON (not UTF-8 at character offset {error.start})"
            ) from None
        source, data = OVERRIDES_ENV, _parse(OVERRIDES_ENV, inline, inline)
    else:
        return {}
    require(isinstance(data, dict), "overrides", source, data, "a JSON object keyed by environment name")
    for env, fields in data.items():
        require(isinstance(fields, dict), where(env), source, fields, _EXAMPLE)
    return data


def load_environments(environ: Mapping[str, str] | None = None) -> dict[str, EnvironmentConfig]:
    """The validated matrix with the user's overrides applied. Raises :class:`ConfigurationError`."""
    overrides = read_overrides(environ)
    configs = apply_overrides(MATRIX, overrides)
    validate_matrix(configs, changed=set(overrides))
    return configs
