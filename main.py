#!/usr/bin/env python3
"""Synthesize one Terraform stack per environment (dev, staging, prod).

Configuration errors are raised before anything is written (exit code 2), a failed security or
tagging check stops the synth with the construct path and rule (exit code 3), and the stacks are synthesized
into a scratch directory that replaces the output directory only when every stack succeeded,
so a failed synth never leaves a partial ``cdktf.out`` behind.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

# jsii prints a multi-line banner on Node 20; the supported range is pinned in package.json.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdktf import App
from constructs.core.checks import check_failure_report
from constructs.core.errors import ConfigurationError

from stacks.deployment import load_deployment
from stacks.ml_platform_stack import MlPlatformStack
from stacks.overrides import load_environments


def build_app(outdir: str) -> App:
    """Validate the configuration and build every environment's stack into an App."""
    environments = load_environments()
    deployment = load_deployment()
    app = App(outdir=outdir)
    for config in environments.values():
        MlPlatformStack(app, config, deployment)
    return app


def synth(outdir: Path) -> None:
    """Synthesize into a scratch directory, then swap it into ``outdir`` in one step."""
    outdir = outdir.resolve()
    outdir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{outdir.name}-", dir=outdir.parent))
    try:
        build_app(str(scratch)).synth()
        if outdir.exists():
            shutil.rmtree(outdir)
        scratch.rename(outdir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    """Entry point for ``python3 main.py`` and ``cdktf synth`` (which sets CDKTF_OUTDIR)."""
    outdir = Path(os.environ.get("CDKTF_OUTDIR", "cdktf.out"))
    try:
        synth(outdir)
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:
        report = check_failure_report(error)
        if report is None:
            raise
        print(f"synthesis checks failed: {report}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
