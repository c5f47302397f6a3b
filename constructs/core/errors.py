"""The platform's configuration error: where, which field, the bad value and what is allowed.

Every rule that rejects input raises :class:`ConfigurationError` (directly, or as a :class:`FieldError` inside a
settings validator, which the settings layer turns into one), before anything is synthesized.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class ConfigurationError(ValueError):
    """A value in the environment matrix, an override or a construct's props is not allowed.

    ``where`` is the environment (``environment 'dev'``), a settings class or a construct path; ``field`` the
    dotted field name; ``value`` the rejected value; ``allowed`` what would be accepted.
    """

    def __init__(self, where: str, field: str, value: Any, allowed: str) -> None:
        self.where = where
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{where}: field '{field}' = {value!r} is not allowed; allowed: {allowed}")

    def located(self, where: str, prefix: str = "") -> ConfigurationError:
        """The same error re-addressed to ``where``, with ``prefix`` added in front of the field name."""
        field = f"{prefix}.{self.field}" if prefix else self.field
        return ConfigurationError(where, field, self.value, self.allowed)


class FieldError(ValueError):
    """Raised by a settings validator: ``field`` is the dotted path relative to the model that validates.

    The settings layer prefixes the model's own location, so a rule written once in a section's model reports
    ``sagemaker.variants[1].name`` when the matrix is checked and ``variants[1].name`` when the model is built
    directly.
    """

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(allowed)


def require(condition: bool, where: str, field: str, value: Any, allowed: str) -> None:
    """Raise :class:`ConfigurationError` unless ``condition`` holds (for construct wiring checks)."""
    if not condition:
        raise ConfigurationError(where, field, value, allowed)


def require_field(condition: bool, field: str, value: Any, allowed: str) -> None:
    """Raise :class:`FieldError` unless ``condition`` holds (inside settings validators)."""
    if not condition:
        raise FieldError(field, value, allowed)


def one_of(choices: Iterable[Any]) -> str:
    """``one of 'a', 'b'``: the allowed text of a choice."""
    return "one of " + ", ".join(repr(choice) for choice in choices)
