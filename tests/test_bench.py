"""The synth benchmark's own logic (bench/synth.py): what it measures with, how it groups and compares stacks."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_synth", ROOT / "bench" / "synth.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _bench()


def _write_stack(outdir: Path, name: str, config: dict) -> None:
    (outdir / "stacks" / name).mkdir(parents=True)
    (outdir / "stacks" / name / "cdk.tf.json").write_text(json.dumps(config))


def test_the_bench_runs_what_cdktf_synth_and_the_makefile_run() -> None:
    command = bench.app_command()
    assert command == shlex.split(json.loads((ROOT / "cdktf.json").read_text())["app"])
    assert command[-1] == "main.py" and "-O" in command
    (synth,) = re.findall(r"^SYNTH := (.+)$", (ROOT / "Makefile").read_text(), flags=re.MULTILINE)
    assert synth.replace("$(PY)", ".venv/bin/python").split() == command


def test_stacks_are_split_into_groups_of_about_equal_resources() -> None:
    stacks = {name: {"resources": count} for name, count in {"dev": 161, "staging": 253, "prod": 306, "b": 41}.items()}
    assert bench.stack_groups(stacks, 2) == [["prod", "b"], ["staging", "dev"]]
    assert bench.stack_groups(stacks, 8) == [["prod"], ["staging"], ["dev"], ["b"]]


def test_resources_data_sources_and_outputs_are_counted_per_stack(tmp_path) -> None:
    _write_stack(
        tmp_path,
        "dev",
        {
            "resource": {"aws_s3_bucket": {"a": {}, "b": {}}, "aws_kms_key": {"k": {}}},
            "data": {"aws_region": {"r": {}}},
            "output": {"o": {"value": 1}},
        },
    )
    _write_stack(tmp_path, "empty", {})
    assert bench.resources_per_stack(tmp_path) == {
        "dev": {"resources": 3, "data_sources": 1, "outputs": 1},
        "empty": {"resources": 0, "data_sources": 0, "outputs": 0},
    }


def test_outputs_are_the_same_only_with_the_same_stacks_byte_for_byte(tmp_path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for outdir in (a, b):
        _write_stack(outdir, "dev", {"resource": {}})
    assert bench.same_output(a, b)
    _write_stack(a, "prod", {})
    assert not bench.same_output(a, b)  # a stack more
    _write_stack(b, "prod", {})
    assert bench.same_output(a, b)
    (b / "stacks" / "dev" / "cdk.tf.json").write_text(json.dumps({"resource": {}}, indent=2))
    assert not bench.same_output(a, b)  # the same configuration, written differently
