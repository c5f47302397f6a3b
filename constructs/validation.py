"""Input validation shared by every construct's props and by the environment matrix.

Every error says *where* (an environment, or a construct path), *which field*, the bad value and
*what is allowed*, and it is raised before anything is synthesized.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import re
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union


class ConfigurationError(ValueError):
    """A value in the environment matrix or in a construct's props is not allowed.

    ``where`` is the environment name or construct path; ``field`` the dotted field name.
    """

    def __init__(self, where: str, field: str, value: Any, allowed: str) -> None:
        self.where = where
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{where}: field '{field}' = {value!r} is not allowed; allowed: {allowed}")

    def located(self, where: str, prefix: str = "") -> ConfigurationError:
        """Return the same error re-addressed to ``where``, with ``prefix`` added to the field name."""
        field = f"{prefix}.{self.field}" if prefix else self.field
        return ConfigurationError(where, field, self.value, self.allowed)


def require(condition: bool, where: str, field: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigurationError` unless ``condition`` holds."""
    if not condition:
        raise ConfigurationError(where, field, value, allowed)


def _describe(annotation: Any) -> str:
    """A type annotation in the words of someone writing JSON overrides."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is tuple:
        return f"a list of {_describe(args[0])} values" if len(args) == 2 and args[1] is Ellipsis else "a list"
    if origin is Literal:
        return "one of " + ", ".join(repr(arg) for arg in args)
    names = {bool: "a boolean (true/false)", int: "a whole number", float: "a number", str: "a string"}
    if annotation is type(None):
        return "null"
    if annotation in names:
        return names[annotation]
    if dataclasses.is_dataclass(annotation):
        return f"{annotation.__name__} settings (override their fields by dotted path)"
    return f"a {getattr(annotation, '__name__', annotation)}"


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` has the type ``annotation`` describes; bools are never numbers."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if origin in (Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(item, args[0]) for item in value)
        return not args or (len(value) == len(args) and all(map(_matches, value, args)))
    if origin is Literal:
        return value in args
    if origin is not None and isinstance(origin, type) and issubclass(origin, Mapping):
        key_type, value_type = args or (Any, Any)
        return isinstance(value, Mapping) and all(
            _matches(k, key_type) and _matches(v, value_type) for k, v in value.items()
        )
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    # Any other typing construct is left to the class's own checks.
    return True


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def require_field_types(instance: Any, where: str) -> None:
    """Every field of the dataclass ``instance`` has its annotated type (``True`` is not an int, ``"1"`` not a bool).

    Settings classes call this first in ``__post_init__``, so a wrong type is reported as such
    instead of slipping through a range or membership check (``True == 1``, ``14.0 == 14``).
    """
    hints = _field_types(type(instance))
    for field in dataclasses.fields(instance):
        value = getattr(instance, field.name)
        annotation = hints.get(field.name, Any)
        require(_matches(value, annotation), where, field.name, value, _describe(annotation))


def require_int_range(where: str, field: str, value: Any, low: int, high: int) -> None:
    """``value`` is an int (not a bool) within ``[low, high]``."""
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    require(ok, where, field, value, f"an integer from {low} to {high}")


def require_min_max(where: str, min_field: str, min_value: int, max_field: str, max_value: int) -> None:
    """``min_value <= max_value``; the error names both fields."""
    require(
        min_value <= max_value,
        where,
        min_field,
        min_value,
        f"a value <= {max_field} ({max_value})",
    )


def require_one_of(where: str, field: str, value: Any, choices: Iterable[Any]) -> None:
    """``value`` is one of ``choices``."""
    options = tuple(choices)
    require(value in options, where, field, value, "one of " + ", ".join(repr(c) for c in options))


def require_non_empty_tuple(where: str, field: str, value: Any) -> None:
    """``value`` is a non-empty tuple (props are frozen, so lists are not accepted)."""
    require(isinstance(value, tuple) and len(value) > 0, where, field, value, "a non-empty tuple")


def parse_cidr(where: str, field: str, value: Any, min_prefix: int = 16, max_prefix: int = 28) -> ipaddress.IPv4Network:
    """Parse an IPv4 CIDR block whose prefix length lies in ``[min_prefix, max_prefix]``."""
    allowed = f"an IPv4 CIDR block such as '10.20.0.0/16' with a prefix from /{min_prefix} to /{max_prefix}"
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except (ValueError, TypeError):
        raise ConfigurationError(where, field, value, allowed) from None
    require(min_prefix <= network.prefixlen <= max_prefix, where, field, value, allowed)
    return network


# Accelerated instance families (NVIDIA GPU, plus AWS Trainium/Inferentia which are just as costly).
GPU_FAMILY_PATTERN = re.compile(r"^(ml\.)?(p\d+[a-z]*|g\d+[a-z]*|gr\d+|trn\d+[a-z]*|inf\d+[a-z]*|dl\d+[a-z]*)\.")
INSTANCE_TYPE_PATTERN = re.compile(r"^[a-z][a-z0-9-]*\.[0-9]*[a-z]+$")
SAGEMAKER_INSTANCE_TYPE_PATTERN = re.compile(r"^ml\.[a-z][a-z0-9-]*\.[0-9]*[a-z]+$")


def is_gpu_instance_type(instance_type: str) -> bool:
    """True for accelerated EC2 or SageMaker instance types (``g5.xlarge``, ``ml.p3.8xlarge``)."""
    return bool(GPU_FAMILY_PATTERN.match(instance_type))


def require_instance_type(where: str, field: str, value: Any) -> None:
    """An EC2 instance type such as ``g5.2xlarge`` (not a SageMaker ``ml.`` type)."""
    ok = isinstance(value, str) and not value.startswith("ml.") and bool(INSTANCE_TYPE_PATTERN.match(value))
    require(ok, where, field, value, "an EC2 instance type such as 'm6i.large' or 'g5.2xlarge'")


def require_sagemaker_instance_type(where: str, field: str, value: Any) -> None:
    """A SageMaker instance type, which always carries the ``ml.`` prefix."""
    ok = isinstance(value, str) and bool(SAGEMAKER_INSTANCE_TYPE_PATTERN.match(value))
    require(ok, where, field, value, "a SageMaker instance type with the 'ml.' prefix, such as 'ml.g5.xlarge'")


# Regions the platform is tested against; extend deliberately (each needs g5/p-family capacity).
SUPPORTED_REGIONS: tuple[str, ...] = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "eu-north-1",
    "ap-northeast-1",
    "ap-southeast-2",
)
