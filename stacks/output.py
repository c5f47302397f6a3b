"""The synth output directory (``CDKTF_OUTDIR``): where it may be, and how a finished synth replaces it.

A synth writes into a scratch directory beside the output and swaps it in only when every stack succeeded.
Swapping in deletes what was there, so only a directory that is recognizably the output of an earlier synth
is ever replaced: cdktf's ``manifest.json`` naming the stacks, and ``stacks/<name>/`` directories holding only
what cdktf and Terraform write there. Terraform's working files in a stack's directory (``.terraform/``, the
provider lock file and, with the local backend, the state) are carried over into the new output, as cdktf's
own in-place synth keeps them: losing local state would orphan every deployed resource. Anything else (a file,
a symbolic link, a foreign directory, the working directory, the repository or one of their ancestors) is
refused before anything is synthesized.

A termination signal (SIGINT, SIGTERM, SIGHUP) during the synth raises :class:`Interrupted`, so the clean-up
runs and no scratch directory is left behind; a signal during the swap itself waits until the swap is done,
so the output is always either the previous one or the complete new one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from constructs.core.errors import ConfigurationError

OUTDIR_ENV = "CDKTF_OUTDIR"
DEFAULT_OUTDIR = "cdktf.out"
REPOSITORY = Path(__file__).resolve().parent.parent
MANIFEST = "manifest.json"
STACKS = "stacks"
# What cdktf writes into a stack's directory: the configuration (JSON, or HCL with `--hcl`), its metadata and
# assets, and the plan file of `cdktf diff`/`deploy`. A synth writes them afresh, so they are replaced.
REGENERATED = frozenset({"cdk.tf.json", "cdk.tf", "metadata.json", "assets", "plan"})
# What Terraform keeps in its working directory. A synth cannot recreate them, so they are carried over.
_TERRAFORM_NAMES = frozenset(
    {".terraform", ".terraform.lock.hcl", ".terraform.tfstate.lock.info", "terraform.tfstate.d"}
)
_TERRAFORM_SUFFIXES = (".tfstate", ".tfstate.backup")
_ALLOWED = "a directory that does not exist yet, an empty directory, or the output of an earlier synth (replaced)"
SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class Interrupted(BaseException):
    """A termination signal arrived during the synth.

    A ``BaseException`` like ``KeyboardInterrupt``, so that no ``except Exception`` on the way swallows it and
    every ``finally`` clean-up runs. ``signum`` is the signal's number.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class SignalGuard:
    """Turns termination signals into :class:`Interrupted`, or holds them during :meth:`deferred` blocks."""

    def __init__(self) -> None:
        self._deferring = False
        self._pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler: raise now, or remember the signal until the deferred block ends."""
        if not self._deferring:
            raise Interrupted(signum)
        self._pending = self._pending or signum

    @contextmanager
    def deferred(self) -> Iterator[None]:
        """Hold a signal until the block has finished: for steps that must not stop half-way."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        signum, self._pending = self._pending, None
        if signum is not None:
            raise Interrupted(signum)


@contextmanager
def signals_raise() -> Iterator[SignalGuard]:
    """Within the block SIGINT, SIGTERM and SIGHUP raise :class:`Interrupted`; the previous handlers return after.

    A signal that is ignored (``nohup`` ignores SIGHUP) stays ignored. Only the main thread may set handlers;
    elsewhere none is installed and the caller's own signal handling applies.
    """
    guard = SignalGuard()
    if threading.current_thread() is not threading.main_thread():
        yield guard
        return
    # A handler installed outside Python (getsignal gives None) could not be put back, so it is left alone.
    previous = {
        signum: signal.signal(signum, guard.handle)
        for signum in SIGNALS
        if signal.getsignal(signum) not in (signal.SIG_IGN, None)
    }
    try:
        yield guard
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def outdir_from(environ: Mapping[str, str]) -> Path:
    """The absolute output directory ``CDKTF_OUTDIR`` names (``cdktf.out`` when unset or empty)."""
    return Path(os.path.abspath(environ.get(OUTDIR_ENV) or DEFAULT_OUTDIR))


STACKS_ENV = "ML_PLATFORM_STACKS"


def stacks_from(environ: Mapping[str, str], available: Sequence[str]) -> tuple[str, ...]:
    """The stacks ``ML_PLATFORM_STACKS`` names (comma-separated, in ``available``'s order); all when unset or empty.

    A synth of some stacks replaces the output directory with those stacks only.
    """
    raw = environ.get(STACKS_ENV, "")
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names:
        return tuple(available)
    if unknown := sorted(names - set(available)):
        allowed = f"a comma-separated list of {', '.join(available)}; unset for every stack (not: {', '.join(unknown)})"
        raise ConfigurationError("synth selection", STACKS_ENV, raw, allowed)
    return tuple(name for name in available if name in names)


def _refused(outdir: Path, why: str) -> ConfigurationError:
    return ConfigurationError("synth output", OUTDIR_ENV, str(outdir), f"{_ALLOWED}; {why}")


def is_terraform_file(name: str) -> bool:
    """Whether ``name`` in a stack's directory is one of Terraform's working files (kept across synths)."""
    return name in _TERRAFORM_NAMES or name.endswith(_TERRAFORM_SUFFIXES)


def _is_manifest(path: Path) -> bool:
    """Whether ``path`` is a cdktf manifest: a version and an object of stacks, each with its synthesized path."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(manifest, dict) or not isinstance(manifest.get("version"), str):
        return False
    stacks = manifest.get("stacks")
    return isinstance(stacks, dict) and all(
        isinstance(stack, dict) and isinstance(stack.get("synthesizedStackPath"), str) for stack in stacks.values()
    )


def foreign_content(directory: Path) -> str | None:
    """Why the existing ``directory`` is not the output of an earlier synth; None when it is one, or empty."""
    try:
        entries = sorted(entry.name for entry in directory.iterdir())
        if not entries:
            return None
        unknown = [name for name in entries if name not in (MANIFEST, STACKS)]
        if unknown:
            return f"it holds {unknown[0]!r}, which a synth does not write"
        if not _is_manifest(directory / MANIFEST):
            return f"it has no cdktf {MANIFEST} naming its stacks"
        stacks = directory / STACKS
        if not os.path.lexists(stacks):
            return None
        if stacks.is_symlink() or not stacks.is_dir():
            return f"'{STACKS}' is not a directory"
        for stack in sorted(stacks.iterdir()):
            if stack.is_symlink() or not stack.is_dir():
                return f"'{STACKS}/{stack.name}' is not a stack's directory"
            for entry in sorted(stack.iterdir()):
                if entry.name not in REGENERATED and not is_terraform_file(entry.name):
                    return f"it holds '{STACKS}/{stack.name}/{entry.name}', which neither cdktf nor Terraform writes"
    except OSError as error:
        return f"it cannot be read ({error.strerror})"
    return None


def check_outdir(outdir: Path) -> None:
    """Raise :class:`ConfigurationError` unless a synth may write ``outdir`` (absolute), replacing what is there."""
    if outdir.is_symlink():
        raise _refused(outdir, f"it is a symbolic link (to {os.readlink(outdir)})")
    resolved = outdir.resolve()
    for protected, what in ((Path.cwd().resolve(), "the working directory"), (REPOSITORY, "the repository")):
        if resolved == protected or resolved in protected.parents:
            raise _refused(outdir, f"it is {what} or contains it")
    if not resolved.exists():
        ancestor = next(parent for parent in resolved.parents if parent.exists())
        if not ancestor.is_dir():
            raise _refused(outdir, f"{ancestor} is not a directory")
        return
    if not resolved.is_dir():
        raise _refused(outdir, "it is a file, not a directory")
    problem = foreign_content(resolved)
    if problem is not None:
        raise _refused(outdir, problem)


def _terraform_files(outdir: Path) -> list[Path]:
    """Terraform's working files in ``outdir``'s stack directories, relative to ``outdir``."""
    stacks = outdir / STACKS
    if not stacks.is_dir():
        return []
    return [
        entry.relative_to(outdir)
        for stack in sorted(stacks.iterdir())
        for entry in sorted(stack.iterdir())
        if is_terraform_file(entry.name)
    ]


def replace_outdir(scratch: Path, outdir: Path) -> None:
    """Swap the finished synth in ``scratch`` in for ``outdir``, carrying Terraform's working files over.

    Run with signals deferred: between the renames neither directory is complete. A step that fails is rolled
    back; if even that fails, the previous output is left in a ``.<name>-old-*`` directory beside ``outdir``.
    """
    check_outdir(outdir)  # again: the directory may have changed during the synth
    if not outdir.exists():
        scratch.rename(outdir)
        return
    kept = _terraform_files(outdir)
    orphaned = [path for path in kept if not (scratch / path.parent).is_dir()]
    if orphaned:
        raise _refused(outdir, f"'{orphaned[0]}' belongs to a stack this app no longer synthesizes; move it first")
    trash = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-old-", dir=outdir.parent))
    previous = trash / outdir.name
    restored = True
    try:
        outdir.rename(previous)
        moved: list[Path] = []
        try:
            for path in kept:
                (previous / path).rename(scratch / path)
                moved.append(path)
            scratch.rename(outdir)
        except BaseException:
            restored = False
            for path in reversed(moved):
                (scratch / path).rename(previous / path)
            previous.rename(outdir)
            restored = True
            raise
    finally:
        if restored:
            shutil.rmtree(trash, ignore_errors=True)


@contextmanager
def synthesis_output(outdir: Path) -> Iterator[Path]:
    """A scratch directory beside ``outdir`` to synthesize into, swapped in for ``outdir`` if the block succeeds.

    ``outdir`` is checked first (:func:`check_outdir`). Termination signals inside the block raise
    :class:`Interrupted`; whatever ends the block, the scratch directory is removed.
    """
    check_outdir(outdir)
    with signals_raise() as guard:
        scratch: Path | None = None
        try:
            with guard.deferred():
                try:
                    outdir.parent.mkdir(parents=True, exist_ok=True)
                    scratch = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-", dir=outdir.parent))
                except OSError as error:
                    raise _refused(outdir, f"no directory can be created beside it ({error.strerror})") from None
            yield scratch
            with guard.deferred():
                replace_outdir(scratch, outdir)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
