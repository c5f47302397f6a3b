"""``make rehearse ENV=dev``: deploy one environment's AWS part to a local AWS emulator and back, on a laptop.

1. Start the emulator (``emulator/``, a patched moto) on 127.0.0.1.
2. Synthesize every stack with the emulator switch (``ML_PLATFORM_EMULATOR_ENDPOINT``: only the provider block
   changes) and local state (``ML_PLATFORM_BACKEND=local``), in a scratch directory.
3. Keep the AWS part of the environment's stack (the Helm and Kubernetes providers need a real cluster), create
   the public hosted zones it expects to exist, and run the pinned ``terraform`` directly: ``init`` (the offline
   mirror when ``ML_PLATFORM_TF_MIRROR`` is set), ``apply``, a refresh-only apply (as the deploy workflow does
   after each apply), a second ``plan -detailed-exitcode`` that must be clean, and the drift check
   (``gitops.drift``), which must find nothing.
4. Destroy, or with ``--keep`` leave the emulator running and print how to point the AWS CLI at it, until Ctrl-C.

The cdktf CLI is not used: its ``deploy`` also runs ``terraform providers lock`` for other platforms, which needs
the registry. Exit code 0 when every step passed; 1 otherwise, naming the step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gitops.terraform import TerraformError, aws_only, emulator_cli_env, run_terraform

ROOT = Path(__file__).resolve().parent.parent
# Most of an apply is the provider's own waits, which overlap with more operations in flight.
PARALLELISM = "-parallelism=40"
STEP_TIMEOUT = 900.0


class RehearsalFailed(RuntimeError):
    """A step of the rehearsal failed; the message names it."""


def _step(name: str) -> None:
    print(f"\n==> {name}", flush=True)


def synthesize(outdir: Path, endpoint: str) -> None:
    """Synthesize every stack for the emulator at ``endpoint`` with local state, in a process of its own."""
    env = {
        **os.environ,
        "ML_PLATFORM_EMULATOR_ENDPOINT": endpoint,
        "ML_PLATFORM_BACKEND": "local",
        "CDKTF_OUTDIR": str(outdir),
    }
    result = subprocess.run([sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RehearsalFailed(f"synth exited with {result.returncode}:\n{result.stderr}")


def hosted_zone_names(environment: str) -> list[str]:
    """The public hosted zones the environment names its load balancers in (they must exist before a deploy)."""
    from stacks.overrides import load_environments

    config = load_environments()[environment]
    names = {m.ingress.hosted_zone_name for m in config.serving}
    if config.mlflow is not None and config.mlflow.ingress is not None:
        names.add(config.mlflow.ingress.hosted_zone_name)
    return sorted(names)


def prepare_stack(stack_dir: Path) -> None:
    """Keep only the AWS part of the synthesized stack in ``stack_dir`` (its assets stay beside it)."""
    path = stack_dir / "cdk.tf.json"
    path.write_text(json.dumps(aws_only(json.loads(path.read_text())), indent=2))


def _terraform(args: Sequence[str], stack_dir: Path, env: dict[str, str], ok: tuple[int, ...] = (0,)) -> int:
    started = time.monotonic()
    try:
        result = run_terraform(args, stack_dir, env, timeout=STEP_TIMEOUT, ok_returncodes=ok)
    except TerraformError as error:
        raise RehearsalFailed(f"terraform {args[0]} failed:\n{error.output[-4000:]}") from None
    summary = [line for line in result.stdout.splitlines() if line.startswith(("Apply complete", "Destroy complete"))]
    print(f"terraform {args[0]}: exit {result.returncode} in {time.monotonic() - started:.0f} s", *summary, sep="\n  ")
    return result.returncode


def aws_cli_hint(endpoint: str, region: str) -> str:
    """How to point the AWS CLI (and boto3, and Terraform) at the running emulator."""
    return (
        "The emulator stays up until Ctrl-C. Point the AWS CLI at it with:\n"
        f"  export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "
        f"AWS_REGION={region}\n"
        "  aws ec2 describe-vpcs; aws s3 ls; aws iam list-roles"
    )


@contextmanager
def _scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ml-platform-rehearsal-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _wait_for_ctrl_c() -> None:
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        signal.signal(signal.SIGINT, previous)


def rehearse(environment: str, *, keep: bool, port: int = 0) -> None:
    """Run the rehearsal of ``environment``; raises :class:`RehearsalFailed` naming the failed step.

    keep: leave the emulator up (and the environment deployed) until Ctrl-C, then destroy.
    """
    from emulator import REGION, start_emulator
    from stacks.overrides import load_environments

    known = tuple(load_environments())
    if environment not in known:
        raise RehearsalFailed(f"unknown environment {environment!r}: one of {', '.join(known)}")
    with start_emulator(port) as emulator, _scratch() as scratch:
        print(f"AWS emulator listening on {emulator.endpoint}")
        _step(f"synthesize every stack for the emulator (scratch: {scratch})")
        synthesize(scratch, emulator.endpoint)
        stack_dir = scratch / "stacks" / environment
        if not stack_dir.is_dir():
            raise RehearsalFailed(f"no stack named {environment!r} was synthesized")
        prepare_stack(stack_dir)
        route53: Any = emulator.client("route53")
        for name in hosted_zone_names(environment):
            route53.create_hosted_zone(Name=name, CallerReference=f"rehearsal-{name}")
            print(f"created the public hosted zone {name} the environment expects")
        env = emulator_cli_env(scratch)
        _step("terraform init (providers from ML_PLATFORM_TF_MIRROR when set)")
        _terraform(["init", "-input=false", "-no-color"], stack_dir, env)
        _step(f"terraform apply of {environment}'s AWS part")
        _terraform(["apply", "-auto-approve", "-input=false", "-no-color", PARALLELISM], stack_dir, env)
        _step("refresh-only apply: record what the apply changed in other resources (as the deploy workflow does)")
        _terraform(["apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color"], stack_dir, env)
        _step("a second plan must find nothing to do")
        if _terraform(["plan", "-detailed-exitcode", "-input=false", "-no-color"], stack_dir, env, ok=(0, 2)) != 0:
            raise RehearsalFailed("the plan after apply is not clean: the configuration does not converge")
        _step("drift check (gitops.drift)")
        outcome = subprocess.run(
            [sys.executable, "-m", "gitops.drift", environment, "--stacks-dir", str(stack_dir.parent)],
            cwd=ROOT,
            env=env,
            check=False,
        ).returncode
        if outcome != 0:
            raise RehearsalFailed(f"the drift check exited with {outcome}, expected 0 (clean)")
        if keep:
            _step("kept running")
            print(aws_cli_hint(emulator.endpoint, REGION))
            print(f"Terraform working directory: {stack_dir}  (state: terraform.{environment}.tfstate)")
            _wait_for_ctrl_c()
        _step(f"terraform destroy of {environment}")
        destroyed = _terraform(
            ["destroy", "-auto-approve", "-input=false", "-no-color", PARALLELISM], stack_dir, env, ok=(0, 1)
        )
        if destroyed != 0:
            print(
                f"{environment} refused to be destroyed: protected environments keep their data (prevent_destroy), "
                "and buckets without force_destroy must be emptied first. The emulator discards everything on exit."
            )


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gitops.rehearse ENV [--keep] [--port N]``; exit 0 when the rehearsal passed, 1 when a step failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("environment", help="the environment to rehearse, such as dev")
    parser.add_argument("--keep", action="store_true", help="keep the emulator up after the checks, until Ctrl-C")
    parser.add_argument("--port", type=int, default=0, help="emulator port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args(argv)
    try:
        rehearse(args.environment, keep=args.keep, port=args.port)
    except RehearsalFailed as failure:
        print(f"\nrehearsal of {args.environment} failed: {failure}", file=sys.stderr)
        return 1
    print(f"\nrehearsal of {args.environment} passed: applied, converged, no drift, destroyed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
