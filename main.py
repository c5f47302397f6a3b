#!/usr/bin/env python3
"""Synthesize one Terraform stack per environment (dev, staging, prod), and the account-level bootstrap stack.

Configuration errors, including an output directory that must not be replaced, are raised before anything is
written (exit code 2); a failed security or tagging check stops the synth with the construct path and rule
(exit code 3); SIGINT, SIGTERM or SIGHUP stop it with exit code 128 + the signal's number. The stacks are
synthesized into a scratch directory that replaces the output directory only when every stack succeeded, so a
failed or interrupted synth never leaves a partial ``cdktf.out`` or a scratch directory behind
(``stacks/output.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# jsii prints a multi-line banner on Node 20; the supported range is pinned in package.json.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from cdktf import App
from constructs.core.bindings import BackgroundLoad, aws
from constructs.core.checks import check_failure_report
from constructs.core.errors import ConfigurationError

from stacks.output import Interrupted, outdir_from, stacks_from, synthesis_output


def build_app(outdir: str) -> App:
    """Validate the configuration and build every environment's stack, and the bootstrap stack, into an App.

    ``ML_PLATFORM_STACKS`` (comma-separated stack names) builds only those.
    """
    # Every stack uses the AWS provider, whose assembly keeps the jsii kernel busy for seconds: it loads while the
    # configuration is validated and the stack modules are imported, which never call the kernel. A configuration
    # error is raised (and reported) at once; the process ends when the load has.
    loading = BackgroundLoad(aws)
    from stacks.deployment import load_deployment
    from stacks.overrides import load_environments

    environments = load_environments()
    deployment = load_deployment()
    from stacks.bootstrap_stack import BOOTSTRAP_STACK, BootstrapStack
    from stacks.matrix import BOOTSTRAP
    from stacks.ml_platform_stack import MlPlatformStack

    selected = stacks_from(os.environ, [*environments, BOOTSTRAP_STACK])
    loading.wait()
    app = App(outdir=outdir)
    for config in environments.values():
        if config.name in selected:
            MlPlatformStack(app, config, deployment)
    if BOOTSTRAP_STACK in selected:
        BootstrapStack(app, BOOTSTRAP, environments, deployment)
    return app


def synth(outdir: Path) -> None:
    """Synthesize every stack into a scratch directory, then swap it in for ``outdir`` in one step."""
    with synthesis_output(outdir) as scratch:
        build_app(str(scratch)).synth()


def main() -> int:
    """Entry point for ``python3 main.py`` and ``cdktf synth`` (which sets CDKTF_OUTDIR)."""
    try:
        synth(outdir_from(os.environ))
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    except Interrupted as interrupted:
        print(f"synth interrupted by {interrupted}", file=sys.stderr)
        return 128 + interrupted.signum
    except RuntimeError as error:
        report = check_failure_report(error)
        if report is None:
            raise
        print(f"synthesis checks failed: {report}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
