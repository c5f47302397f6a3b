"""What the user-data tests share: example parameters of the node script, its heredocs, and bash to run it."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from constructs.training.user_data import GpuNodeBootstrapParams

BASH = shutil.which("bash") or "/bin/bash"
WATCHER_HEREDOC = "cat >\"$WATCHER\" <<'EOF'"
"""The line that starts the interruption watcher's heredoc in the script."""


def make_params(**overrides: Any) -> GpuNodeBootstrapParams:
    """Parameters of a small example cluster ``c1``, with ``overrides``."""
    values: dict[str, Any] = {
        "region": "us-east-1",
        "cluster_name": "c1",
        "data_bucket": "ml-data-bucket",
        "checkpoint_bucket": "ml-ckpt-bucket",
        "artifacts_bucket": "ml-artifacts-bucket",
        "lifecycle_hook_name": "gpu-drain",
        "asg_name": "gpu-training-asg",
        "data_prefix": "datasets/imagenet/",
        "metrics_namespace": "MLPlatform/GPUTraining",
        "checkpoint_grace_seconds": 30,
    }
    values.update(overrides)
    return GpuNodeBootstrapParams(**values)


def heredoc(script: str, opener: str) -> str:
    """Body of the heredoc that starts on the line ``opener`` (up to its EOF line)."""
    start = script.index(opener + "\n") + len(opener) + 1
    return script[start : script.index("\nEOF\n", start) + 1]


def run_bash(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``bash *args`` with output captured (``env`` None: this process's environment)."""
    return subprocess.run([BASH, *args], capture_output=True, text=True, env=env, timeout=timeout)
