"""The input boundary, class by class: every string a user can set, every field an override may not change.

The string slots come from the settings models and the matrix (tests/stacks/input_slots.py), so a string field
added anywhere is covered without touching this file. Properties are checked with hypothesis where the input
space is open (any text), exhaustively where it is closed (every slot, every locked field).
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.core.instance_types import CPU_FAMILIES, instance_family
from constructs.core.settings import LITERAL_TEXT, is_literal, locked_fields, sections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stacks.matrix import MATRIX
from stacks.overrides import OVERRIDES_ENV, load_environments
from tests.stacks.input_slots import Slot, string_slots

SLOTS = string_slots()
TEMPLATES = ('${file("/etc/hostname")}', "%{ if true }x%{ endif }")


def _load(overrides: dict[str, Any]) -> dict[str, Any]:
    return load_environments(environ={OVERRIDES_ENV: json.dumps(overrides)})


def _shape(field: str) -> str:
    return re.sub(r"\[\d+\]", "[]", field)


def test_the_slots_reach_every_kind_of_string() -> None:
    shapes = {_shape(slot.field) for slot in SLOTS}
    for expected in (
        "tags.project",
        "budget.alert_emails[]",
        "network.interface_endpoints[]",
        "eks.admin_role_arns[]",
        "eks.viewer_role_arns[]",
        "eks.gpu_node_group.instance_types[]",
        "training.schedule_time_zone",
        "training.scale_to_zero_cron",
        "training.data_prefix",
        "sagemaker.container_environment[][]",
        "sagemaker.variants[].name",
        "sagemaker.variants[].instance_type",
        "sagemaker.inference_image",
        "sagemaker_training.training_image",
    ):
        assert expected in shapes, expected
    assert {slot.env for slot in SLOTS} == set(MATRIX)


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("slot", SLOTS, ids=lambda slot: f"{slot.env}-{slot.field}")
def test_no_string_anywhere_may_carry_a_terraform_template(slot: Slot, template: str) -> None:
    text = (slot.current or "a") + template
    with pytest.raises(ConfigurationError) as caught:
        _load(slot.override(text))
    assert (caught.value.where, caught.value.field) == (f"environment '{slot.env}'", slot.field)
    assert caught.value.allowed == LITERAL_TEXT


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slot=st.sampled_from(SLOTS),
    text=st.text(alphabet=st.sampled_from("${}%a9.-_/@ \n\t:"), max_size=10),
    cut=st.integers(min_value=0, max_value=64),
)
def test_an_accepted_string_is_literal_and_has_no_control_character(slot: Slot, text: str, cut: int) -> None:
    base = slot.current or ""
    candidate = base[:cut] + text + base[cut:]
    try:
        _load(slot.override(candidate))
    except ConfigurationError as error:
        assert error.where == f"environment '{slot.env}'" and error.allowed
        return
    assert is_literal(candidate)
    assert (candidate.isprintable() and candidate == candidate.strip()) or slot.field.endswith("[1]"), candidate


@pytest.mark.parametrize("suffix", ["\n", "\t", "\r\n"])
@pytest.mark.parametrize("slot", [s for s in SLOTS if s.current], ids=lambda slot: f"{slot.env}-{slot.field}")
def test_a_trailing_newline_or_tab_is_rejected_everywhere(slot: Slot, suffix: str) -> None:
    assert slot.current is not None
    with pytest.raises(ConfigurationError) as caught:
        _load(slot.override(slot.current + suffix))
    assert caught.value.field == slot.field


# --- accelerated instance types: known CPU families only where GPUs are off ----------------------------------

_DEV_TYPE_SLOTS = [s for s in SLOTS if s.env == "dev" and "instance_type" in s.field]


@settings(max_examples=200, deadline=None)
@given(
    slot=st.sampled_from(_DEV_TYPE_SLOTS),
    family=st.from_regex(r"(ml\.)?[a-z]{1,3}[0-9]{0,2}[a-z]{0,3}(-[a-z0-9]{1,5})?", fullmatch=True),
    size=st.sampled_from(["large", "xlarge", "2xlarge", "48xlarge", "metal"]),
)
def test_an_environment_without_gpus_accepts_only_known_cpu_families(slot: Slot, family: str, size: str) -> None:
    prefix = "ml." if slot.current and slot.current.startswith("ml.") else ""
    candidate = f"{prefix}{family.removeprefix('ml.')}.{size}"
    try:
        _load(slot.override(candidate))
    except ConfigurationError:
        return
    assert instance_family(candidate) in CPU_FAMILIES, candidate


@pytest.mark.parametrize("instance_type", ["p6-b200.48xlarge", "p6e-gb200.36xlarge", "g6f.xlarge", "trn2u.48xlarge"])
def test_hyphenated_and_new_accelerated_families_are_refused_in_dev(instance_type: str) -> None:
    for slot in _DEV_TYPE_SLOTS:
        prefix = "ml." if slot.current and slot.current.startswith("ml.") else ""
        with pytest.raises(ConfigurationError) as caught:
            _load(slot.override(prefix + instance_type))
        # Named exactly, or as the list that holds it.
        assert caught.value.field in (slot.field, slot.field.rsplit("[", 1)[0])


# --- what overrides may not change ------------------------------------------------------------------------


def _changed(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, str):
        return "us-west-2" if value == "us-east-1" else value + "x"
    if isinstance(value, tuple):
        return [*value[1:], *value[:1]] if len(value) > 1 else [*value, *value]
    raise AssertionError(f"no changed value for {value!r}")


LOCKS = [
    pytest.param(env, path, value, lock, id=f"{env}-{path}")
    for env, config in MATRIX.items()
    for path, value, lock in locked_fields(config)
]


def test_locks_cover_identity_and_protection_fields() -> None:
    locked = {(env, path) for env, path, *_ in (p.values for p in LOCKS)}
    for path in ("name", "gpu_enabled", "protected", "resource_prefix", "region", "sagemaker.model_name"):
        assert ("prod", path) in locked, path


@pytest.mark.parametrize(("env", "path", "value", "lock"), LOCKS)
def test_an_override_cannot_change_a_locked_field(env: str, path: str, value: Any, lock: Any) -> None:
    overrides = {env: {path: _changed(value)}}
    if lock.protected_only and not MATRIX[env].protected:
        # Identity fields of an environment without data stay overridable (the change may still fail another rule).
        try:
            _load(overrides)
        except ConfigurationError as error:
            assert error.allowed != lock.allowed
        return
    with pytest.raises(ConfigurationError) as caught:
        _load(overrides)
    assert (caught.value.where, caught.value.field) == (f"environment '{env}'", path)


def test_a_locked_field_is_caught_inside_a_section_replaced_whole() -> None:
    sagemaker = MATRIX["prod"].sagemaker
    assert sagemaker is not None
    dumped = json.loads(sagemaker.model_dump_json())
    dumped["model_name"] = "renamed"
    with pytest.raises(ConfigurationError) as caught:
        _load({"prod": {"sagemaker": dumped}})
    assert caught.value.field == "sagemaker.model_name"


@pytest.mark.parametrize("path", [path for path, _ in sections(MATRIX["prod"])])
def test_no_section_of_a_protected_environment_can_be_removed(path: str) -> None:
    try:
        _load({"prod": {path: None}})
    except ConfigurationError as error:
        # A required section rejects null by its type; an optional one by the protection rule.
        assert error.field == path
        return
    raise AssertionError(f"prod.{path} = null was accepted")


def test_the_same_removal_is_allowed_where_nothing_is_protected() -> None:
    assert _load({"staging": {"training": None, "sagemaker": None}})["staging"].training is None


def test_renaming_the_project_tag_keeps_resource_names() -> None:
    configs = _load({"prod": {"tags.project": "Fraud Detection"}, "dev": {"tags.project": "fraud"}})
    assert configs["prod"].name_prefix == MATRIX["prod"].name_prefix
    assert configs["prod"].resource_tags["project"] == "Fraud Detection"
