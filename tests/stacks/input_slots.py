"""Every place of the environment matrix where a user's string can go, as an override that puts it there.

A slot is derived from the settings models and the configured matrix, so a string field added to any section is
a slot the moment it exists: a plain string field, each element of a list of strings, each part of a
``(name, value)`` pair, and each string field of each item of a list of settings (SageMaker variants).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterator
from typing import Any, Literal, Union

from pydantic import BaseModel

from stacks.environment import EnvironmentConfig
from stacks.matrix import MATRIX


@dataclasses.dataclass(frozen=True)
class Slot:
    """One place for a string: the environment, the field an error must name, and how to put a string there.

    ``current`` is the string the matrix holds there (None when the field is unset or a list is empty).
    """

    env: str
    field: str
    current: str | None
    _put: Callable[[str], dict[str, Any]]

    def override(self, text: str) -> dict[str, Any]:
        """The ``ML_PLATFORM_OVERRIDES`` document that sets this slot to ``text``."""
        return {self.env: self._put(text)}


def _strip(annotation: Any) -> tuple[Any, ...]:
    """The member types of ``annotation`` without constraints and without None."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _strip(typing.get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return tuple(m for arg in typing.get_args(annotation) if arg is not type(None) for m in _strip(arg))
    return (annotation,)


def _is_text(annotation: Any) -> bool:
    return annotation is str or (
        typing.get_origin(annotation) is Literal and all(isinstance(a, str) for a in typing.get_args(annotation))
    )


def _dump(value: Any) -> Any:
    """A settings value as JSON-ready data (the shape an override gives)."""
    if isinstance(value, BaseModel):
        return {name: _dump(getattr(value, name)) for name in type(value).model_fields}
    if isinstance(value, tuple):
        return [_dump(item) for item in value]
    return value


def _model_slots(env: str, model: BaseModel, path: str) -> Iterator[Slot]:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        here = f"{path}.{name}" if path else name
        members = _strip(field.annotation)
        if isinstance(value, BaseModel):
            yield from _model_slots(env, value, here)
            continue
        if any(_is_text(m) for m in members):
            yield Slot(env, here, value if isinstance(value, str) else None, lambda t, p=here: {p: t})
            continue
        tuples = [m for m in members if typing.get_origin(m) is tuple]
        if not tuples:
            continue
        element = _strip(typing.get_args(tuples[0])[0])[0]
        if _is_text(element):
            first = value[0] if value else None
            yield Slot(env, f"{here}[0]", first, lambda t, p=here, v=value: {p: [t, *list(v)[1:]]})
        elif typing.get_origin(element) is tuple:  # (name, value) pairs
            for part in range(len(typing.get_args(element))):
                pairs = _dump(value) or [["NAME", "value"]]
                current = pairs[0][part] if value else None

                def put(t: str, p: str = here, pairs: list[Any] = pairs, part: int = part) -> dict[str, Any]:
                    first = list(pairs[0])
                    first[part] = t
                    return {p: [first, *pairs[1:]]}

                yield Slot(env, f"{here}[0][{part}]", current, put)
        elif value and all(isinstance(item, BaseModel) for item in value):
            for index, item in enumerate(value):
                for inner in _model_slots(env, item, ""):
                    yield _in_list(env, here, index, value, inner)


def _in_list(env: str, path: str, index: int, items: tuple[BaseModel, ...], inner: Slot) -> Slot:
    def put(text: str) -> dict[str, Any]:
        dumped = _dump(items)
        dumped[index].update(inner._put(text))
        return {path: dumped}

    return Slot(env, f"{path}[{index}].{inner.field}", inner.current, put)


def string_slots(configs: dict[str, EnvironmentConfig] | None = None) -> list[Slot]:
    """Every string slot of every environment (each field once per environment that configures its section)."""
    configs = dict(MATRIX) if configs is None else configs
    return [slot for env, config in configs.items() for slot in _model_slots(env, config, "")]
