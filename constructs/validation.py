"""Input validation shared by every construct's props and by the environment matrix.

Every error says *where* (an environment, or a construct path), *which field*, the bad value and
*what is allowed*, and it is raised before anything is synthesized.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any


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
