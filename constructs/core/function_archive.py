"""A Lambda function's deployment package, built reproducibly at synthesis from a folder of ``functions/``."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from constructs.core.errors import ConfigurationError

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent.parent / "functions"
"""The repository's Lambda sources, one folder per function."""


@dataclass(frozen=True)
class FunctionArchive:
    """A Lambda deployment package built at synthesis.

    path: the zip file (in a content-addressed folder under the system's temp directory).
    sha256_hex: its SHA-256, hex (names the asset folder).
    sha256_base64: its SHA-256, base64: what Lambda reports as CodeSha256 and Terraform's source_code_hash.
    """

    path: Path
    sha256_hex: str
    sha256_base64: str


def build_function_archive(source: Path, owner: str = "Lambda function") -> FunctionArchive:
    """Zip ``source``'s Python files reproducibly: sorted, stored, with fixed timestamps and modes.

    The same code always gives the same bytes, on any machine, so ``source_code_hash`` changes only when
    the code does; ``__pycache__`` and anything that is not ``*.py`` stay out of the package. ``owner`` names
    the construct in the error raised when ``source`` holds no Python file.
    """
    files = sorted(p for p in source.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise ConfigurationError(owner, "function source", str(source), "a folder with *.py files")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in files:
            entry = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes())
    data = buffer.getvalue()
    digest = hashlib.sha256(data)
    folder = Path(tempfile.gettempdir()) / "ml-platform-assets" / digest.hexdigest()
    target = folder / f"{source.name}.zip"
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        # Write-then-rename, so a concurrent synthesis never sees a partial file.
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_bytes(data)
        partial.replace(target)
    return FunctionArchive(target, digest.hexdigest(), base64.b64encode(digest.digest()).decode())
