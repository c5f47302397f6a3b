"""The idle-shutdown function's deployment package: reproducible bytes, only Python files, the hashes Lambda and
Terraform compare."""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from constructs.core.errors import ConfigurationError
from constructs.training.function_archive import build_function_archive


def test_function_archive_is_reproducible_and_holds_only_python(tmp_path: Path) -> None:
    source = tmp_path / "fn"
    (source / "__pycache__").mkdir(parents=True)
    (source / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00stale")
    (source / "README.md").write_text("notes")
    first = build_function_archive(source)
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00other")
    second = build_function_archive(source)
    assert first == second
    with zipfile.ZipFile(first.path) as archive:
        assert archive.namelist() == ["handler.py"]
    assert first.sha256_base64 == base64.b64encode(hashlib.sha256(first.path.read_bytes()).digest()).decode()
    assert first.sha256_hex == hashlib.sha256(first.path.read_bytes()).hexdigest()
    (source / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    assert build_function_archive(source).sha256_hex != first.sha256_hex


def test_function_archive_does_not_depend_on_file_times(tmp_path: Path) -> None:
    source = tmp_path / "fn"
    source.mkdir()
    handler = source / "handler.py"
    handler.write_text("def handler(event, context):\n    return 'times'\n")
    first = build_function_archive(source)
    data = first.path.read_bytes()
    # Built again from scratch (not found in its content-addressed folder) after the file's time changed.
    first.path.unlink()
    os.utime(handler, (1_000_000_000, 1_000_000_000))
    second = build_function_archive(source)
    assert second.path.read_bytes() == data
    assert second == first


def test_function_archive_needs_python_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="function source"):
        build_function_archive(tmp_path)
