#!/usr/bin/env python3
"""Compare the synthesized Terraform JSON of the work tree with that of another git revision.

A refactoring must not change a synthesized byte. This script checks out ``--base`` (default
``HEAD``) into a temporary git worktree, synthesizes every scenario below there and here with a cold
``python main.py`` (so it only relies on the environment-variable interface, which both revisions
share), and compares every ``cdk.tf.json`` byte for byte. It prints a short diff of each difference
and exits 1 if there is any.

    .venv/bin/python tools/compare_synth.py                 # work tree vs HEAD
    .venv/bin/python tools/compare_synth.py --base af54bf3  # work tree vs an older commit

The scenarios are the matrix as committed plus the override combinations the test suite
synthesizes, and a few more that reach optional code paths (published models with A/B variants,
canary and linear roll-outs, VPC training jobs, EFA, public API endpoints, the other Kubernetes minor).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

EVERYWHERE = ("dev", "staging", "prod")

# name -> (overrides as in ML_PLATFORM_OVERRIDES, other ML_PLATFORM_* variables)
SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "matrix": ({}, {}),
    "published-model": ({env: {"sagemaker.model_version": "v1"} for env in EVERYWHERE}, {}),
    "aws-side-only": ({env: {"eks.in_cluster_components": False} for env in EVERYWHERE}, {}),
    "emulator": (
        {"staging": {"sagemaker.model_version": "1.0.0"}, "dev": {"sagemaker.model_version": "1.0.0"}},
        {"ML_PLATFORM_EMULATOR_ENDPOINT": "http://127.0.0.1:4566", "ML_PLATFORM_BACKEND": "local"},
    ),
    "state-bucket": (
        {},
        {
            "ML_PLATFORM_STATE_BUCKET": "acme-tf-state",
            "ML_PLATFORM_STATE_REGION": "eu-west-1",
            "ML_PLATFORM_LOCK_TABLE": "tf-locks",
        },
    ),
    "optional-paths": (
        {
            "dev": {
                "sagemaker.model_version": "2025-06-01",
                "sagemaker.variants": [{"name": "sl", "memory_size_in_mb": 4096, "provisioned_concurrency": 2}],
                "eks.public_access_cidrs": ["203.0.113.0/24"],
                "eks.kubernetes_version": "1.35",
                "network.interface_endpoints": ["sts", "logs"],
                "sagemaker_training.vpc": True,
                "sagemaker_training.instance_count": 2,
                "sagemaker_training.training_data_prefix": "datasets/images/",
            },
            "staging": {
                "sagemaker.model_version": "v2",
                "sagemaker.variants": [
                    {"name": "current", "instance_type": "ml.m5.xlarge", "initial_instance_count": 2},
                    {
                        "name": "candidate",
                        "instance_type": "ml.m5.xlarge",
                        "model_version": "v3",
                        "initial_weight": 0.5,
                        "initial_instance_count": 2,
                    },
                ],
                "sagemaker.min_instance_count": 2,
                "sagemaker.max_instance_count": 8,
                "sagemaker.traffic_shifting": "LINEAR",
                "sagemaker.linear_step_instance_count": 1,
                "sagemaker.inference_image": "{repository}:1.4.2",
                "sagemaker.container_environment": {"LOG_LEVEL": "debug"},
                "training.efa_enabled": True,
                "training.ecr_repository_arns": ["arn:aws:ecr:us-east-1:123456789012:repository/trainer"],
                "training.data_prefix": "",
                "eks.admin_role_arns": ["arn:aws:iam::123456789012:role/PlatformAdmins"],
                "eks.deployer_admin_access": False,
                "eks.private_access_cidrs": ["10.99.0.0/16"],
            },
            "prod": {
                "sagemaker.model_version": "1.2.3",
                "sagemaker.inference_image": "{account}.dkr.ecr.{region}.amazonaws.com/serving:7",
                "sagemaker_training.training_image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/train:1",
                "sagemaker_training.managed_spot": False,
                "training.scale_to_zero_cron": "0 22 * * 1-5",
                "training.schedule_time_zone": "Europe/Berlin",
            },
        },
        {},
    ),
}

PASSED_THROUGH = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "JSII_RUNTIME", "NODE_OPTIONS")


def synthesize(tree: Path, outdir: Path, overrides: dict[str, Any], variables: dict[str, str]) -> None:
    """A cold ``python main.py`` in ``tree`` into ``outdir``; the environment holds only what is given."""
    env = {key: os.environ[key] for key in PASSED_THROUGH if key in os.environ}
    env.update(
        {
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
            "CDKTF_OUTDIR": str(outdir),
            "ML_PLATFORM_OVERRIDES": json.dumps(overrides),
            **variables,
        }
    )
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"synth failed in {tree} (exit {result.returncode}):\n{result.stderr[-4000:]}")


def compare(base: Path, here: Path, label: str, max_lines: int) -> list[str]:
    """Names of the stacks whose JSON differs; prints a short unified diff of each."""
    differing = []
    names = sorted({p.name for p in (base / "stacks").iterdir()} | {p.name for p in (here / "stacks").iterdir()})
    for name in names:
        old, new = base / "stacks" / name / "cdk.tf.json", here / "stacks" / name / "cdk.tf.json"
        if old.is_file() and new.is_file() and old.read_bytes() == new.read_bytes():
            continue
        differing.append(name)
        old_lines = old.read_text().splitlines() if old.is_file() else []
        new_lines = new.read_text().splitlines() if new.is_file() else []
        diff = list(difflib.unified_diff(old_lines, new_lines, f"base/{name}", f"work/{name}", n=2, lineterm=""))
        print(f"--- {label}/{name}: {len(diff)} diff lines")
        for line in diff[:max_lines]:
            print(f"    {line}")
    return differing


def main() -> int:
    """Synthesize every scenario in both trees and compare."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="HEAD", help="git revision to compare against (default: HEAD)")
    parser.add_argument("--only", action="append", choices=sorted(SCENARIOS), help="run only these scenarios")
    parser.add_argument("--diff-lines", type=int, default=40, help="diff lines shown per differing stack")
    args = parser.parse_args()
    scenarios = {name: SCENARIOS[name] for name in (args.only or SCENARIOS)}
    with tempfile.TemporaryDirectory(prefix="compare-synth-") as scratch:
        worktree = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(worktree), args.base], cwd=ROOT, check=True
        )
        try:
            failures: dict[str, list[str]] = {}
            for name, (overrides, variables) in scenarios.items():
                base_out, work_out = Path(scratch) / name / "base", Path(scratch) / name / "work"
                synthesize(worktree, base_out, overrides, variables)
                synthesize(ROOT, work_out, overrides, variables)
                differing = compare(base_out, work_out, name, args.diff_lines)
                print(f"{name}: {'identical' if not differing else 'DIFFERENT: ' + ', '.join(differing)}", flush=True)
                if differing:
                    failures[name] = differing
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
    print(f"{len(scenarios) - len(failures)} of {len(scenarios)} scenarios byte-identical to {args.base}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
