"""The shared Lambda package builder: each function's package names its owner in errors, and the training
cluster's import path builds the very same bytes as before the builder moved to ``constructs.core``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from constructs.core.errors import ConfigurationError
from constructs.core.function_archive import FUNCTIONS_DIR, build_function_archive
from constructs.sagemaker.idle import FUNCTION_SOURCE as ENDPOINT_IDLE_SOURCE
from constructs.training import function_archive as training


def test_every_function_of_the_repository_packages_only_its_python_files() -> None:
    for source in (training.FUNCTION_SOURCE, ENDPOINT_IDLE_SOURCE):
        assert source.parent == FUNCTIONS_DIR
        with zipfile.ZipFile(build_function_archive(source).path) as archive:
            assert archive.namelist() == ["handler.py"]
            assert archive.read("handler.py") == (source / "handler.py").read_bytes()


def test_the_training_path_builds_the_same_package() -> None:
    assert training.build_function_archive(training.FUNCTION_SOURCE) == build_function_archive(training.FUNCTION_SOURCE)


@pytest.mark.parametrize(
    ("build", "owner"),
    [
        (lambda source: build_function_archive(source, owner="EndpointIdlePolicy"), "EndpointIdlePolicy"),
        (lambda source: build_function_archive(source), "Lambda function"),
        (training.build_function_archive, "GpuTrainingCluster"),
    ],
)
def test_a_folder_without_python_names_the_owner(tmp_path: Path, build, owner: str) -> None:
    (tmp_path / "README.md").write_text("no code")
    with pytest.raises(ConfigurationError) as raised:
        build(tmp_path)
    assert (raised.value.where, raised.value.field, raised.value.value) == (owner, "function source", str(tmp_path))
