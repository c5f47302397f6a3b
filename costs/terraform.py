"""Reading a synthesized ``cdk.tf.json`` the way Terraform will: resources by address, literal values, and
references (``${aws_launch_template.<name>.id}``) followed to the resource they name.

Values the estimate needs but the JSON gives as a reference it cannot follow, or not at all, are recorded as
:class:`~costs.model.Unresolved` by :meth:`StackView.integer` and friends instead of being guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from costs.model import Unresolved

JsonObject = Mapping[str, Any]
"""A JSON object of the synthesized configuration."""

# A resource address inside an interpolation: `aws_eks_node_group.platform_gpu_ABC123` (not `data.` sources).
_ADDRESS = re.compile(r"(?<![\w.])((?:aws|kubernetes|helm)_[a-z0-9_]+)\.([A-Za-z0-9_-]+)")


def block(value: Any) -> JsonObject:
    """A nested block as an object: cdktf writes a single block as an object, Terraform also accepts a list."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, list) and value and isinstance(value[0], Mapping):
        return value[0]
    return {}


def blocks(value: Any) -> list[JsonObject]:
    """A repeated block as a list of objects (a single object counts as a list of one)."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, Mapping)]
    return []


def is_reference(value: Any) -> bool:
    """True for a string holding a Terraform interpolation."""
    return isinstance(value, str) and "${" in value


def references(value: Any) -> list[str]:
    """The resource addresses (``type.name``) a string refers to, in order of appearance."""
    if not isinstance(value, str):
        return []
    return [f"{kind}.{name}" for kind, name in _ADDRESS.findall(value)]


class StackView:
    """One parsed stack, with its resources by address and a sink for values that could not be resolved."""

    def __init__(self, stack: JsonObject) -> None:
        self.stack = stack
        self.unresolved: list[Unresolved] = []

    def resources(self, resource_type: str) -> Iterator[tuple[str, JsonObject]]:
        """``(address, arguments)`` of every resource of a type, in the order of the JSON."""
        for name, config in self.stack.get("resource", {}).get(resource_type, {}).items():
            if isinstance(config, Mapping):
                yield f"{resource_type}.{name}", config

    def resource(self, address: str) -> JsonObject | None:
        """The arguments of the resource at ``address`` (``type.name``), or None when the stack has none."""
        resource_type, _, name = address.partition(".")
        config = self.stack.get("resource", {}).get(resource_type, {}).get(name)
        return config if isinstance(config, Mapping) else None

    def referenced(self, value: Any, resource_type: str) -> tuple[str, JsonObject] | None:
        """The first resource of ``resource_type`` that ``value`` refers to, with its address."""
        for address in references(value):
            if address.startswith(f"{resource_type}."):
                config = self.resource(address)
                if config is not None:
                    return address, config
        return None

    def count(self, address: str, config: JsonObject) -> int | None:
        """How many instances of the resource Terraform creates (``count``/``for_each``); None if unresolved."""
        if "count" in config:
            return self.integer(address, config, "count")
        if "for_each" in config:
            each = config["for_each"]
            if isinstance(each, Mapping | list):
                return len(each)
            self.unresolve(address, "for_each", each)
            return None
        return 1

    def integer(self, address: str, config: JsonObject, path: str, default: int | None = None) -> int | None:
        """The non-negative integer at ``path`` (dotted, through blocks) of a resource; None when unresolved.

        A missing value is ``default`` when one is given (the provider's default), else unresolved.
        """
        value = self.value(config, path)
        if value is None:
            if default is not None:
                return default
            self.unresolve(address, path, None)
            return None
        number = literal_int(value)
        if number is None:
            self.unresolve(address, path, value)
        return number

    def string(self, address: str, config: JsonObject, path: str, default: str | None = None) -> str | None:
        """The literal string at ``path``; a reference, or a missing value without default, is unresolved."""
        value = self.value(config, path)
        if value is None and default is not None:
            return default
        if not isinstance(value, str) or is_reference(value) or not value:
            self.unresolve(address, path, value)
            return None
        return value

    def strings(self, address: str, config: JsonObject, path: str) -> list[str] | None:
        """The literal list of strings at ``path`` (references to resources inside are fine); else unresolved."""
        value = self.value(config, path)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.unresolve(address, path, value)
            return None
        return list(value)

    @staticmethod
    def value(config: JsonObject, path: str) -> Any:
        """The value at a dotted ``path`` through nested blocks, or None when absent."""
        current: Any = config
        for key in path.split("."):
            current = block(current).get(key)
            if current is None:
                return None
        return current

    def unresolve(self, address: str, path: str, value: Any) -> None:
        """Record a value that cannot be used as a literal."""
        shown = "absent" if value is None else str(value)
        self.unresolved.append(Unresolved(address, path, shown))


def literal_int(value: Any) -> int | None:
    """A non-negative integer from an int, an integral float or a digit string; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def region_of(stack: JsonObject) -> str | None:
    """The region of the stack's default (un-aliased) AWS provider, or None when it is not a literal."""
    providers = stack.get("provider", {}).get("aws", [])
    for provider in blocks(providers):
        if "alias" not in provider:
            region = provider.get("region")
            return region if isinstance(region, str) and not is_reference(region) else None
    return None
