"""Bad input, everywhere: every field of every environment, fed malformed values through the overrides.

The cases are derived from the environment model itself: the settings models of :class:`EnvironmentConfig` are
walked generically, and for each field malformed values are derived from its type (wrong type, empty, negative,
not a choice). A section added to the matrix is covered the moment it exists. Each value must be rejected with a
:class:`ConfigurationError` that names the environment, the dotted field path and what is allowed. Validation
needs no synthesis, so all of it runs in this process; ``main.py``'s end-to-end behaviour on bad input (exit 2,
nothing written) is checked in tests/test_main.py.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal, Union

import pytest
from constructs.core.errors import ConfigurationError
from pydantic import BaseModel

from stacks.environment import EnvironmentConfig
from stacks.matrix import ENVIRONMENT_NAMES, MATRIX
from stacks.overrides import OVERRIDES_ENV, load_environments

# String fields for which "" is a meaningful value, with what it means. Everything else must reject "".
EMPTY_STRING_IS_VALID = {
    "training.data_prefix": "the whole training data bucket",
    "sagemaker_training.training_data_prefix": "the whole training data bucket",
}


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One overridable field: dotted path and type annotation (without its constraints)."""

    path: str
    annotation: Any


def _members(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of an annotation (constraints stripped), and whether None is allowed."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _members(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        members = [_members(a)[0][0] for a in args if a is not type(None)]
        return members, type(None) in args
    return [annotation], False


def _leaves(cls: type[BaseModel], prefix: str = "") -> Iterator[Leaf]:
    """Every field of the settings model ``cls``, and the fields of the sections inside it."""
    for name, field in cls.model_fields.items():
        path = f"{prefix}.{name}" if prefix else name
        # The section itself is a field (a wrong type for it must be rejected) and so is each of its fields.
        yield Leaf(path, field.annotation)
        members, _ = _members(field.annotation)
        sections = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
        if sections:
            yield from _leaves(sections[0], path)


def _bad_values(leaf: Leaf) -> list[tuple[str, Any]]:
    """Malformed values for ``leaf``, labelled, derived from its annotation (all JSON-serializable)."""
    members, optional = _members(leaf.annotation)
    kind = members[0] if len(members) == 1 else None
    null = [] if optional else [("null", None)]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        return [("string", "yes"), ("number", 1), *null]
    if kind is int:
        return [("string", "3"), ("fraction", 2.5), ("bool", True), ("negative", -1), *null]
    if kind is float:
        return [("string", "1.5"), ("bool", True), ("negative", -1.0), *null]
    if kind is str:
        cases: list[tuple[str, Any]] = [("number", 42), ("bool", True), ("list", ["x"]), *null]
        if leaf.path not in EMPTY_STRING_IS_VALID:
            cases.append(("empty", ""))
        return cases
    if origin is tuple:
        cases = [("string", "x"), ("number", 7), ("wrong-element-type", [42]), ("null-element", [None])]
        element, _ = _members(args[0])
        if element == [str]:
            cases.append(("empty-element", [""]))
        return cases
    if origin is Literal:
        return [("not-a-choice", "not-a-choice"), ("number", 42), *null]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [("string", "enabled"), ("number", 1), ("list", [1])]
    # An annotation this walker does not know yet: a JSON object is never a valid scalar or tuple.
    return [("object", {"unexpected": "object"})]


def _cases() -> list[Any]:
    cases = []
    for env in ENVIRONMENT_NAMES:
        for leaf in _leaves(EnvironmentConfig):
            if leaf.path == "name":
                continue  # not overridable at all (tests/stacks/test_matrix.py)
            for label, bad in _bad_values(leaf):
                cases.append(pytest.param(env, leaf.path, bad, id=f"{env}-{leaf.path}-{label}"))
    return cases


CASES = _cases()


def test_the_walker_covers_every_section_and_field() -> None:
    covered = {path for _, path, _ in (case.values for case in CASES)}
    for name in EnvironmentConfig.model_fields:
        assert name in covered or name == "name"
    for section in ("network.vpc_cidr", "keys.deletion_window_days", "storage.force_destroy", "tags.team"):
        assert section in covered
    # Nested fields of every section are reached, including sections that are None in some environment.
    optional_sections = [
        name
        for name in EnvironmentConfig.model_fields
        if any(getattr(c, name) is None for c in MATRIX.values())
        and any(isinstance(getattr(c, name), BaseModel) for c in MATRIX.values())
    ]
    assert optional_sections == ["training", "failover"]
    for name in optional_sections:
        assert any(path.startswith(f"{name}.") for path in covered), name
    assert "eks.gpu_node_group.instance_types" in covered and "sagemaker.variants" in covered
    assert len(CASES) > 1000


@pytest.mark.parametrize(("env", "path", "bad"), CASES)
def test_every_field_rejects_malformed_values(env: str, path: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({env: {path: bad}})})
    error = caught.value
    # The error names the field, or more precisely an element of it ("sagemaker.variants[0]...").
    assert error.where == f"environment '{env}'", str(error)
    assert error.field == path or error.field.startswith((f"{path}.", f"{path}[")), str(error)
    message = str(error)
    assert message.startswith(f"environment '{env}': field '{path}")
    assert "; allowed: " in message and error.allowed


# Values outside a field's range that a type-derived walker cannot know: one per ranged field of the lead's sections.
OUT_OF_RANGE = [
    ("dev", "network.zone_ids", ["use1-az1"], "(2 to 6 items)"),
    ("staging", "network.vpc_cidr", "10.20.0.0/8", "prefix from /16 to /20"),
    ("prod", "network.flow_log_retention_days", 13, "one of"),
    ("dev", "network.nat_gateways", "per_subnet", "'single', 'per_az'"),
    ("prod", "keys.deletion_window_days", 31, "from 7 to 30"),
    ("staging", "storage.backup_retention_days", 30, "from 31"),
    ("dev", "storage.checkpoint_expiry_days", 0, "from 1 to 3650"),
    ("dev", "region", "us-gov-west-1", "'us-east-1'"),
]


@pytest.mark.parametrize(("env", "path", "bad", "fragment"), OUT_OF_RANGE)
def test_out_of_range_values_say_what_is_allowed(env, path, bad, fragment) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({env: {path: bad}})})
    assert (caught.value.where, caught.value.field) == (f"environment '{env}'", path)
    assert fragment in caught.value.allowed


def test_an_element_out_of_range_is_named_with_its_index() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({"prod": {"budget.alert_emails": ["a@b.co", "ops"]}})})
    assert (caught.value.field, caught.value.value) == ("budget.alert_emails[1]", "ops")
    assert "e-mail" in caught.value.allowed


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"storage.prevent_destroy": False, "storage.force_destroy": False}, "storage.prevent_destroy", "protected"),
        ({"keys.deletion_window_days": 14}, "keys.deletion_window_days", "30 when protected"),
        ({"eks.public_access_cidrs": ["203.0.113.0/24"]}, "eks.public_access_cidrs", "stays private"),
    ],
)
def test_a_protected_environment_cannot_be_made_destroyable(overrides, field, fragment) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({"prod": overrides})})
    assert (caught.value.where, caught.value.field) == ("environment 'prod'", field)
    assert fragment in caught.value.allowed
    # The same values are fine where the environment is not protected.
    assert load_environments(environ={OVERRIDES_ENV: json.dumps({"staging": overrides})})["staging"]


def test_an_override_cannot_unprotect_production() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({"prod": {"protected": False}})})
    assert (caught.value.where, caught.value.field) == ("environment 'prod'", "protected")
    assert caught.value.allowed.startswith("True: the value in stacks/matrix.py")
