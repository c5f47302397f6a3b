"""User overrides of the environment matrix, and loading the validated matrix.

Overrides come from ``ML_PLATFORM_OVERRIDES`` (inline JSON) and/or ``ML_PLATFORM_OVERRIDES_FILE`` (a JSON
file; the inline value wins field by field), keyed by environment and dotted field path::

    {"staging": {"network.az_count": 2, "sagemaker.variants": [{"instance_type": "ml.g5.2xlarge"}]}}

Each value replaces one field and passes through the same settings models as the matrix itself, so it fails
with the same message: environment, dotted field, value, what is allowed. The rules across sections run once
all of an environment's overrides are in, so overrides that only make sense together can be given together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from constructs.core.errors import ConfigurationError, one_of, require
from constructs.core.settings import settings_error
from pydantic import BaseModel, ValidationError

from stacks.environment import EnvironmentConfig, cross_section_rules_deferred, validate_matrix, where
from stacks.matrix import MATRIX

OVERRIDES_ENV = "ML_PLATFORM_OVERRIDES"
OVERRIDES_FILE_ENV = "ML_PLATFORM_OVERRIDES_FILE"
_EXAMPLE = 'a JSON object such as {"network.az_count": 2}'


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
                require(path != "name", where(env), path, value, "any field but 'name'")
                config = _replace(config, path.split("."), _immutable(value), env, path)
        try:
            result[env] = _revalidated(config, {})  # type: ignore[assignment]
        except ValidationError as error:
            raise settings_error(error, where(env), EnvironmentConfig) from None
    return result


def read_overrides(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Overrides from ``ML_PLATFORM_OVERRIDES`` (JSON) and/or ``ML_PLATFORM_OVERRIDES_FILE``."""
    environ = os.environ if environ is None else environ
    sources: list[tuple[str, str]] = []
    if environ.get(OVERRIDES_FILE_ENV):
        path = environ[OVERRIDES_FILE_ENV]
        try:
            with open(path, encoding="utf-8") as handle:
                sources.append((OVERRIDES_FILE_ENV, handle.read()))
        except OSError as error:
            raise ConfigurationError(
                "overrides", OVERRIDES_FILE_ENV, path, f"a readable JSON file ({error.strerror})"
            ) from None
    if environ.get(OVERRIDES_ENV):
        sources.append((OVERRIDES_ENV, environ[OVERRIDES_ENV]))
    merged: dict[str, Any] = {}
    for source, text in sources:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                "overrides", source, text, f"valid JSON ({error.msg} at position {error.pos})"
            ) from None
        require(isinstance(data, dict), "overrides", source, data, "a JSON object keyed by environment name")
        for env, fields in data.items():
            require(isinstance(fields, dict), where(env), source, fields, _EXAMPLE)
            merged.setdefault(env, {}).update(fields)
    return merged


def load_environments(environ: Mapping[str, str] | None = None) -> dict[str, EnvironmentConfig]:
    """The validated matrix with the user's overrides applied. Raises :class:`ConfigurationError`."""
    configs = apply_overrides(MATRIX, read_overrides(environ))
    validate_matrix(configs)
    return configs
