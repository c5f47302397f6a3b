"""Bad input, everywhere: every field of every environment, fed malformed values through the overrides.

The cases are derived from the environment matrix itself: the dataclasses of
:class:`EnvironmentConfig` are walked generically, and for each field a malformed value is derived
from its type annotation (wrong type, empty, negative, not a choice). A section added to the
matrix is covered the moment it exists. Each value must be rejected with a
:class:`ConfigurationError` that names the environment, the dotted field path and what is allowed.

The end-to-end cases run ``python main.py`` the way a user does and check that a bad override
stops it with exit code 2 before anything is written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union

import pytest
from constructs.validation import ConfigurationError

from stacks.environments import BASE_MATRIX, ENVIRONMENT_NAMES, OVERRIDES_ENV, EnvironmentConfig, load_environments

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# String fields for which "" is a meaningful value, with what it means. Everything else must reject "".
EMPTY_STRING_IS_VALID = {
    "training.data_prefix": "the whole training data bucket",
    "sagemaker_training.training_data_prefix": "the whole training data bucket",
}


@dataclasses.dataclass(frozen=True)
class Leaf:
    """One overridable field: dotted path, type annotation and current value."""

    path: str
    annotation: Any
    value: Any


def _optional_parts(annotation: Any) -> tuple[list[Any], bool]:
    """The non-None members of an annotation, and whether None is allowed."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = typing.get_args(annotation)
        return [a for a in args if a is not type(None)], type(None) in args
    return [annotation], False


def _leaves(obj: Any, cls: type, prefix: str = "") -> Iterator[Leaf]:
    """Every field of the dataclass ``cls`` (with ``obj`` its instance, or None for a disabled section)."""
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        path = f"{prefix}.{field.name}" if prefix else field.name
        annotation = hints[field.name]
        value = getattr(obj, field.name) if obj is not None else None
        members, _ = _optional_parts(annotation)
        sections = [m for m in members if dataclasses.is_dataclass(m)]
        # The section itself is a field (a wrong type for it must be rejected) and so is each of its fields;
        # the fields of a disabled (None) section must be rejected as paths into a disabled section.
        yield Leaf(path, annotation, value)
        if sections:
            yield from _leaves(value, sections[0], path)


def _bad_values(leaf: Leaf) -> list[tuple[str, Any]]:
    """Malformed values for ``leaf``, labelled, derived from its annotation (all JSON-serializable)."""
    members, optional = _optional_parts(leaf.annotation)
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
        cases: list[tuple[str, Any]] = [("number", 42), ("bool", True), ("list", ["x"])]
        if leaf.path not in EMPTY_STRING_IS_VALID:
            cases.append(("empty", ""))
        return cases
    if origin is tuple:
        cases = [("string", "x"), ("number", 7), ("wrong-element-type", [42]), ("null-element", [None])]
        if args and args[0] is str:
            cases.append(("empty-element", [""]))
        return cases
    if origin is Literal:
        return [("not-a-choice", "not-a-choice"), ("number", 42)]
    if kind is not None and dataclasses.is_dataclass(kind):
        return [("string", "enabled"), ("number", 1), ("list", [1])]
    # An annotation this walker does not know yet: a JSON object is never a valid scalar or tuple.
    return [("object", {"unexpected": "object"})]


def _cases() -> list[Any]:
    cases = []
    for env in ENVIRONMENT_NAMES:
        for leaf in _leaves(BASE_MATRIX[env], EnvironmentConfig):
            for label, bad in _bad_values(leaf):
                cases.append(pytest.param(env, leaf.path, bad, id=f"{env}-{leaf.path}-{label}"))
    return cases


CASES = _cases()


def test_the_walker_covers_every_section_and_field() -> None:
    covered = {path for _, path, _ in (case.values for case in CASES)}
    for field in dataclasses.fields(EnvironmentConfig):
        assert field.name in covered
    # Nested fields of every section are reached, including sections that are None in some environment.
    for section in ("network.vpc_cidr", "keys.deletion_window_days", "storage.force_destroy", "tags.team"):
        assert section in covered
    optional_sections = [
        f.name
        for f in dataclasses.fields(EnvironmentConfig)
        if any(getattr(c, f.name) is None for c in BASE_MATRIX.values())
    ]
    for name in optional_sections:
        assert any(path.startswith(f"{name}.") for path in covered), name
    assert len(CASES) > 100


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
    ("dev", "network.az_count", 7, "from 2 to 6"),
    ("staging", "network.vpc_cidr", "10.20.0.0/8", "prefix from /16 to /20"),
    ("prod", "network.flow_log_retention_days", 13, "one of"),
    ("dev", "network.nat_gateways", "per_subnet", "'single', 'per_az'"),
    ("prod", "keys.deletion_window_days", 31, "from 7 to 30"),
    ("staging", "storage.backup_retention_days", 30, "from 31"),
    ("dev", "storage.checkpoint_expiry_days", 0, "from 1 to 3650"),
    ("prod", "budget.alert_emails", ["ops@example"], "e-mail"),
    ("dev", "region", "us-gov-west-1", "'us-east-1'"),
]


@pytest.mark.parametrize(("env", "path", "bad", "fragment"), OUT_OF_RANGE)
def test_out_of_range_values_say_what_is_allowed(env, path, bad, fragment) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={OVERRIDES_ENV: json.dumps({env: {path: bad}})})
    assert (caught.value.where, caught.value.field) == (f"environment '{env}'", path)
    assert fragment in caught.value.allowed


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"storage.prevent_destroy": False, "storage.force_destroy": False}, "storage.prevent_destroy", "protected"),
        ({"keys.deletion_window_days": 14}, "keys.deletion_window_days", "30 when protected"),
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
    assert (caught.value.where, caught.value.field, caught.value.allowed) == (
        "environment 'prod'",
        "protected",
        "True (production data)",
    )


# --- end to end: python main.py ---------------------------------------------------------------------


def _run_main(outdir: Path, overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("ML_PLATFORM_") and key not in ("CDKTF_OUTDIR", "PYTHONPATH")
    }
    env.update({"CDKTF_OUTDIR": str(outdir), OVERRIDES_ENV: overrides})
    return subprocess.run(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("overrides", "env", "field", "allowed"),
    [
        ('{"prod": {"storage.access_logging": "yes"}}', "prod", "storage.access_logging", "a boolean"),
        ('{"dev": {"network.az_count": 12}}', "dev", "network.az_count", "an integer from 2 to 6"),
    ],
)
def test_main_stops_with_exit_2_and_writes_nothing(tmp_path, overrides, env, field, allowed) -> None:
    outdir = tmp_path / "cdktf.out"
    result = _run_main(outdir, overrides)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"configuration error: environment '{env}': field '{field}'")
    assert f"allowed: {allowed}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not outdir.exists()
    # No scratch directory of the aborted synth is left beside it either.
    assert list(tmp_path.iterdir()) == []


def test_main_leaves_an_existing_output_untouched(tmp_path) -> None:
    outdir = tmp_path / "cdktf.out"
    (outdir / "stacks" / "dev").mkdir(parents=True)
    (outdir / "stacks" / "dev" / "cdk.tf.json").write_text('{"previous": "synth"}')
    (outdir / "manifest.json").write_text("{}")
    before = _snapshot(outdir)
    result = _run_main(outdir, '{"staging": {"budget.alert_emails": "not-a-list@example.com"}}')
    assert result.returncode == 2, result.stderr
    assert "environment 'staging': field 'budget.alert_emails'" in result.stderr and "allowed: " in result.stderr
    assert _snapshot(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
