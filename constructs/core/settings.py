"""The base of every settings model, the types settings share, and the translation of validation errors.

Settings are pydantic models: strict (``True`` is not a number, ``"3"`` is not an int, a list is not a tuple),
frozen, and closed (an unknown field is an error). A field's limits are written once, in its type; a rule
between fields of one section is a ``model_validator`` of that section that raises :class:`FieldError`.
Whatever breaks a rule is reported as a :class:`ConfigurationError` naming where, the dotted field, the value
and what is allowed; the allowed text comes from the validator's message or, for type and range errors, from
the field's type itself (:func:`describe`).

This module imports no construct, no cdktf and no provider binding, and neither may any ``settings.py``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self, Union

import annotated_types
from constructs.core.errors import ConfigurationError, FieldError, one_of, require_field
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo


class LiteralInput(BaseModel):
    """Base of every model of user input (the settings, the deployment variables): its text stays literal."""

    @model_validator(mode="before")
    @classmethod
    def _text_is_literal(cls, data: Any) -> Any:
        # Runs before the fields' own checks, so the message says why, whatever else the field allows.
        if isinstance(data, dict):
            reject_template_sequences(data)
        return data


class Settings(LiteralInput):
    """Base of every settings model: strict, frozen, no unknown fields, literal text, no repeated list items.

    Building one directly (``NetworkSettings(zone_ids=("use1-az1",))``) raises :class:`ConfigurationError`
    located at the class name; inside the environment matrix the same rule is located at the environment and
    dotted path.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", arbitrary_types_allowed=False)

    if not TYPE_CHECKING:
        # Hidden from the type checker so that it keeps checking each model's fields as keyword arguments.
        # Pydantic runs a custom __init__ for nested models too, so a section's error reaches the enclosing
        # model already as a ConfigurationError, which settings_error re-locates under the section's path.
        def __init__(self, /, **data: Any) -> None:
            try:
                super().__init__(**data)
            except ValidationError as error:
                raise settings_error(error, self._where(data), type(self)) from None

    @classmethod
    def _where(cls, data: dict[str, Any]) -> str:
        """How a direct construction's errors are located (the class name; the environment overrides it)."""
        return cls.__name__

    @model_validator(mode="after")
    def _lists_have_no_repeats(self) -> Self:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, tuple) and not any(isinstance(item, BaseModel) for item in value):
                require_field(
                    len(set(value)) == len(value),
                    name,
                    value,
                    "each item at most once (a repeated entry would create or grant the same thing twice)",
                )
        return self


# --- one rule for every input string: it reaches Terraform as a literal -------------------------------------

# Terraform evaluates "${...}" (interpolation) and "%{...}" (directives) inside any JSON string, including
# their escaped forms "$${" and "%%{". A value from the matrix, an override or an ML_PLATFORM_* variable must
# stay a literal: otherwise an override such as "${file(\"/etc/passwd\")}" is evaluated at plan time on the
# deploying machine. Rejecting (rather than escaping) keeps what the user wrote identical to what AWS receives.
TEMPLATE_SEQUENCES = ("${", "%{")
LITERAL_TEXT = "text without '${' or '%{' (Terraform would evaluate it as a template expression)"


def is_literal(text: str) -> bool:
    """Whether Terraform reads ``text`` as a literal string (no template sequence in it)."""
    return not any(sequence in text for sequence in TEMPLATE_SEQUENCES)


def reject_template_sequences(data: dict[str, Any]) -> None:
    """Raise :class:`FieldError` for the first string in ``data``'s values (or in their lists) that is not literal.

    Nested settings check their own fields when they are built, so only strings and lists are walked here.
    """

    def walk(value: Any, field: str) -> None:
        if isinstance(value, str):
            if not is_literal(value):
                raise FieldError(field, value, LITERAL_TEXT)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(item, f"{field}[{index}]")

    for name, value in data.items():
        walk(value, str(name))


# --- what a type allows, in words ------------------------------------------------------------------------


def describe(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """What a value of ``annotation`` (with pydantic/annotated-types ``metadata``) must be, in words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return describe(args[0], (*metadata, *args[1:]))
    for item in metadata:
        if isinstance(item, FieldInfo) and item.description:
            return item.description
        if isinstance(item, Check):
            return item.allowed
    if origin in (Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        text = " or ".join(describe(member, metadata) for member in members)
        return f"{text} or null" if len(members) < len(args) else text
    if origin is Literal:
        return one_of(args)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_plural(describe(args[0]))}{_length(metadata, 'items')}"
        return f"a list of {len(args)}: " + ", ".join(describe(arg) for arg in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{annotation.__name__} settings (override their fields by dotted path)"
    if annotation is bool:
        return "a boolean (true/false)"
    if annotation is int:
        return "a whole number" + _range(metadata)
    if annotation is float:
        return "a number" + _range(metadata)
    if annotation is str:
        return "a string" + _length(metadata, "characters")
    return f"a {getattr(annotation, '__name__', annotation)}"


def _constraint(metadata: Sequence[Any], kind: type) -> Any:
    for item in metadata:
        found = item if isinstance(item, kind) else None
        if isinstance(item, FieldInfo):
            found = next((m for m in item.metadata if isinstance(m, kind)), None)
        if found is not None:
            return found
    return None


def _range(metadata: Sequence[Any]) -> str:
    ge, le = _constraint(metadata, annotated_types.Ge), _constraint(metadata, annotated_types.Le)
    gt = _constraint(metadata, annotated_types.Gt)
    if ge is not None and le is not None:
        return f" from {ge.ge} to {le.le}"
    if gt is not None:
        return f" greater than {gt.gt}"
    if ge is not None:
        return f" of at least {ge.ge}"
    if le is not None:
        return f" of at most {le.le}"
    return ""


def _length(metadata: Sequence[Any], unit: str) -> str:
    low, high = _constraint(metadata, annotated_types.MinLen), _constraint(metadata, annotated_types.MaxLen)

    def count(n: int) -> str:
        return f"{n} {unit if n != 1 else unit.rstrip('s')}"

    if low is not None and high is not None:
        return f" ({low.min_length} to {count(high.max_length)})"
    if low is not None:
        return f" (at least {count(low.min_length)})"
    if high is not None:
        return f" (at most {count(high.max_length)})"
    return ""


def _plural(text: str) -> str:
    """``a whole number from 1 to 5`` -> ``whole numbers from 1 to 5``; texts already plural stay as they are."""
    for article in ("a ", "an "):
        if text.startswith(article):
            text = text[len(article) :]
            for noun in ("whole number", "number", "string", "boolean"):
                if text.startswith(noun):
                    return f"{noun}s{text[len(noun) :]}"
    return text


# --- validation errors as ConfigurationError ----------------------------------------------------------------


def _step(annotation: Any, part: str | int) -> tuple[Any, bool]:
    """The annotation one location step below ``annotation``, and whether ``part`` names a field or index."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return _step(args[0], part)
    if origin in (Union, types.UnionType):
        for member in args:
            if _tag_of(member) == part:
                return member, False
        members = [arg for arg in args if arg is not type(None)]
        return _step(members[0], part) if len(members) == 1 else (Any, True)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        field = annotation.model_fields.get(part)
        if field is None:
            return Any, True
        return Annotated[(field.annotation, *field.metadata, field)] if field.metadata or field.description else (
            field.annotation
        ), True
    if origin is tuple and isinstance(part, int):
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0], True
        return (args[part] if part < len(args) else Any), True
    return Any, True


def _tag_of(member: Any) -> str | None:
    if typing.get_origin(member) is Annotated:
        for item in typing.get_args(member)[1:]:
            tag = getattr(item, "tag", None)
            if isinstance(tag, str):
                return tag
    return None


def _path(parts: Iterable[str | int]) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def settings_error(error: ValidationError, where: str, model: type[BaseModel], prefix: str = "") -> ConfigurationError:
    """The first problem of a pydantic ``error`` raised validating ``model``, as a :class:`ConfigurationError`.

    ``prefix`` is the dotted location of ``model`` inside what the user wrote (``sagemaker`` for an endpoint
    section of the matrix).
    """
    detail = error.errors(include_url=False)[0]
    annotation: Any = model
    named: list[str | int] = []
    for part in detail["loc"]:
        annotation, is_field = _step(annotation, part)
        if is_field:
            named.append(part)
    field = _path(named)
    value = detail.get("input")
    cause = (detail.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError | ConfigurationError):
        field = _path([*named, cause.field]) if field else cause.field
        value, allowed = cause.value, cause.allowed
    elif detail["type"] in ("value_error", "assertion_error") and cause is not None:
        allowed = str(cause)
    elif detail["type"] == "extra_forbidden":
        fields = list(model.model_fields) if not named[:-1] else []
        allowed = one_of(fields) if fields else "a field of these settings"
        value = named[-1] if named else value
    elif detail["type"] == "missing":
        allowed = f"a value: {describe(annotation)} (the field is required)"
    else:
        allowed = describe(annotation)
    if prefix:
        field = f"{prefix}.{field}" if field else prefix
    return ConfigurationError(where, field or "<settings>", value, allowed)


# --- validators and types shared by several features -----------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Check(AfterValidator):
    """A validator that knows what it allows, so a type error on the same field is described the same way."""

    allowed: str = ""


def predicate(test: Callable[[Any], bool], allowed: str) -> Check:
    """A validator accepting values for which ``test`` holds; ``allowed`` says what those are."""

    def check(value: Any) -> Any:
        if not test(value):
            raise ValueError(allowed)
        return value

    return Check(check, allowed)


def choice(options: Iterable[Any], allowed: str | None = None) -> Check:
    """A validator accepting only ``options`` (for ints, where ``Literal`` would also match ``True``)."""
    values = tuple(options)
    return predicate(lambda value: value in values, allowed or one_of(values))


def matches(pattern: str | re.Pattern[str], allowed: str) -> Check:
    """A validator accepting strings that ``pattern`` (a Python regular expression) matches in full."""
    compiled = re.compile(pattern)
    return predicate(lambda value: bool(compiled.fullmatch(value)), allowed)


def cidr_block(min_prefix: int, max_prefix: int, allowed: str | None = None) -> Check:
    """A validator for an IPv4 CIDR block (network address, no host bits) with a prefix in the range."""
    text = allowed or f"an IPv4 CIDR block such as '10.20.0.0/16' with a prefix from /{min_prefix} to /{max_prefix}"

    def check(value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value, strict=True)
        except (ValueError, TypeError):
            raise ValueError(text) from None
        if not min_prefix <= network.prefixlen <= max_prefix:
            raise ValueError(text)
        return value

    return Check(check, text)


def unique(values: Sequence[Any], field: str, what: str) -> None:
    """Raise :class:`FieldError` when ``values`` repeats an item."""
    if len(set(values)) != len(values):
        raise FieldError(field, tuple(values), f"each {what} at most once")


PositiveInt = Annotated[int, Field(ge=1)]
"""A whole number of at least 1."""

# --- what an override may not change ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class OverrideLock:
    """Field metadata: an override (``ML_PLATFORM_OVERRIDES``) may not change this field.

    ``protected_only``: the lock holds in protected environments only. Such fields name or place resources
    (a prefix, a CIDR, a zone): changing one replaces what they name, so in an environment holding data the
    change goes through stacks/matrix.py and code review.
    """

    allowed: str
    protected_only: bool


REVIEWED = OverrideLock("the value in stacks/matrix.py; change it there, through code review", protected_only=False)
"""Never overridable: what the environment is allowed to be (its name, GPUs, protection)."""

IDENTITY = OverrideLock(
    "the value in stacks/matrix.py in a protected environment: it names or places resources that hold data, so "
    "a change replaces them and goes through code review",
    protected_only=True,
)
"""Not overridable in protected environments: changing it replaces the resources it names."""


def walk_fields(model: BaseModel, path: str = "", *, into_lists: bool = True) -> Iterator[tuple[str, FieldInfo, Any]]:
    """(dotted path, field, value) of every field of ``model`` and, recursively, of the settings inside it.

    Settings in a list (SageMaker variants) are walked item by item (``sagemaker.variants[0].name``) unless
    ``into_lists`` is False.
    """
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        child = f"{path}.{name}" if path else name
        yield child, field, value
        if isinstance(value, BaseModel):
            yield from walk_fields(value, child, into_lists=into_lists)
        elif into_lists and isinstance(value, tuple):
            for index, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from walk_fields(item, f"{child}[{index}]")


def locked_fields(model: BaseModel) -> Iterator[tuple[str, Any, OverrideLock]]:
    """(dotted path, value, lock) of every locked field of ``model`` and of the settings inside it."""
    for path, field, value in walk_fields(model):
        for item in field.metadata:
            if isinstance(item, OverrideLock):
                yield path, value, item


def sections(model: BaseModel) -> Iterator[tuple[str, BaseModel]]:
    """(dotted path, settings) of every settings section inside ``model``, recursively (not list items)."""
    for path, _, value in walk_fields(model, into_lists=False):
        if isinstance(value, BaseModel):
            yield path, value
