"""The GPU node script's behaviour, run for real under bash: checkpoint restore, the job's environment file,
the CloudWatch agent's configuration, and the interruption watcher.

The real script functions and the real watcher run with stub `curl` (an IMDSv2 endpoint that refuses tokenless
reads) and `aws` executables first on PATH; every call they make is recorded in order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from constructs.training.user_data import GpuNodeBootstrapParams, render_gpu_node_user_data

from tests.training.node_script import BASH, WATCHER_HEREDOC, heredoc, make_params, run_bash

AWS_STUB = """#!{python}
# Records each call; answers list-objects-v2 from listing.json by applying the real --query (JMESPath).
import json, os, sys
import jmespath
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as log:
    log.write("aws " + " ".join(args) + "\\n")
    if args[:2] == ["s3api", "list-objects-v2"]:
        opts = dict(zip(args[2::2], args[3::2]))
        objects = json.load(open(os.path.join(os.environ["STUB_DIR"], "listing.json")))
        contents = [o for o in objects if o["Key"].startswith(opts["--prefix"])]
        response = {{"Contents": contents}} if contents else {{}}
        print(json.dumps(jmespath.search(opts["--query"], response), indent=4))
    elif args[:2] == ["s3", "sync"]:
        for root, _, files in sorted(os.walk(args[2])):
            for name in sorted(files):
                log.write("  synced-file: " + os.path.relpath(os.path.join(root, name), args[2]) + "\\n")
    elif args[:2] == ["autoscaling", "complete-lifecycle-action"]:
        sys.exit(254 if os.path.exists(os.path.join(os.environ["STUB_DIR"], "complete-fails")) else 0)
"""

CURL_STUB = """#!/bin/bash
# IMDSv2 stub: hands out a token on PUT and refuses any read that does not carry it.
echo "curl $*" >>"$STUB_LOG"
args="$*"
if [[ $args == *"-X PUT"* && $args == *"/latest/api/token"* ]]; then printf TOKEN123; exit 0; fi
if [[ $args != *"X-aws-ec2-metadata-token: TOKEN123"* ]]; then
  echo "curl: tokenless read" >>"$STUB_LOG"
  exit 22
fi
case $args in
  *autoscaling/target-lifecycle-state*) file=lifecycle-state ;;
  *spot/instance-action*) file=spot ;;
  *) exit 22 ;;
esac
[[ -s $STUB_DIR/$file ]] || exit 22
cat "$STUB_DIR/$file"
"""


@pytest.fixture
def stubs(tmp_path: Path) -> dict[str, str]:
    """Environment with stub aws/curl first on PATH; STUB_LOG records every call in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(AWS_STUB.format(python=sys.executable))
    (bin_dir / "curl").write_text(CURL_STUB)
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    (tmp_path / "log").write_text("")
    return {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_DIR": str(tmp_path),
        "STUB_LOG": str(tmp_path / "log"),
    }


def source_script(tmp_path: Path, params: GpuNodeBootstrapParams, *, env_file: Path | None = None) -> Path:
    rendered = render_gpu_node_user_data(params)
    if env_file is not None:
        rendered = rendered.replace("ENV_FILE=/etc/ml-training.env", f"ENV_FILE={env_file}")
    path = tmp_path / "user_data.sh"
    path.write_text(rendered)
    return path


def write_listing(tmp_path: Path, objects: list[tuple[str, str]]) -> None:
    listing = [{"Key": key, "LastModified": modified, "Size": 1} for key, modified in objects]
    (tmp_path / "listing.json").write_text(json.dumps(listing))


def restore(tmp_path: Path, stubs: dict[str, str]) -> tuple[str, list[str]]:
    script = source_script(tmp_path, make_params())
    code = (
        f"source {script}; mkdir -p {tmp_path}/ckpt; CHECKPOINT_DIR={tmp_path}/ckpt TRAINING_USER=$(id -un); "
        'restore_latest_checkpoint; echo "RESUME_FROM=$RESUME_FROM"'
    )
    result = run_bash("-c", code, env=stubs)
    assert result.returncode == 0, result.stderr
    aws_calls = [line for line in Path(stubs["STUB_LOG"]).read_text().splitlines() if line.startswith("aws s3 ")]
    return result.stdout.strip(), aws_calls


def test_restore_downloads_the_newest_checkpoint_directory(tmp_path: Path, stubs: dict[str, str]) -> None:
    write_listing(
        tmp_path,
        [
            ("checkpoints/c1/step-200/model.pt", "2024-05-02T10:00:00+00:00"),
            ("checkpoints/c1/step-100/model.pt", "2024-05-01T10:00:00+00:00"),
            ("checkpoints/c1/", "2024-05-03T10:00:00+00:00"),  # console "folder" marker, not a checkpoint
            ("checkpoints/c10/step-900/model.pt", "2024-05-04T10:00:00+00:00"),  # another cluster
        ],
    )
    resume_from, calls = restore(tmp_path, stubs)
    assert resume_from == f"RESUME_FROM={tmp_path}/ckpt/step-200"
    assert calls == [
        f"aws s3 sync s3://ml-ckpt-bucket/checkpoints/c1/step-200/ {tmp_path}/ckpt/step-200/ --only-show-errors"
    ]


def test_restore_downloads_a_single_file_checkpoint(tmp_path: Path, stubs: dict[str, str]) -> None:
    write_listing(
        tmp_path,
        [
            ("checkpoints/c1/step-100/model.pt", "2024-05-01T10:00:00+00:00"),
            ("checkpoints/c1/last.pt", "2024-05-02T09:00:00+00:00"),
        ],
    )
    resume_from, calls = restore(tmp_path, stubs)
    assert resume_from == f"RESUME_FROM={tmp_path}/ckpt/last.pt"
    assert calls == [f"aws s3 cp s3://ml-ckpt-bucket/checkpoints/c1/last.pt {tmp_path}/ckpt/last.pt --only-show-errors"]


def test_restore_starts_fresh_without_checkpoints(tmp_path: Path, stubs: dict[str, str]) -> None:
    write_listing(tmp_path, [("checkpoints/other/step-1/model.pt", "2024-05-01T10:00:00+00:00")])
    resume_from, calls = restore(tmp_path, stubs)
    assert resume_from == "RESUME_FROM="
    assert calls == []


def test_env_file_has_the_job_settings(tmp_path: Path, stubs: dict[str, str]) -> None:
    env_file = tmp_path / "ml-training.env"
    script = source_script(tmp_path, make_params(), env_file=env_file)
    code = (
        f"source {script}; INSTANCE_ID=i-0abc DATA_DIR=/mnt/d/data CHECKPOINT_DIR=/mnt/d/ckpt GPU_COUNT=8 "
        "TRAINING_PYTHON=/opt/pytorch/bin/python3 AWS_DEFAULT_REGION=us-east-1; "
        "write_env_file /mnt/d/ckpt/step-200"
    )
    result = run_bash("-c", code, env=stubs)
    assert result.returncode == 0, result.stderr
    read = run_bash("-c", f"set -a; source {env_file}; env", env={"PATH": "/usr/bin:/bin"})
    values = dict(line.split("=", 1) for line in read.stdout.splitlines() if "=" in line)
    assert values["DATA_DIR"] == "/mnt/d/data"
    assert values["CHECKPOINT_DIR"] == "/mnt/d/ckpt"
    assert values["CHECKPOINT_S3_URI"] == "s3://ml-ckpt-bucket/checkpoints/c1/"
    assert values["ARTIFACTS_S3_URI"] == "s3://ml-artifacts-bucket/artifacts/c1/"
    assert values["DATA_S3_URI"] == "s3://ml-data-bucket/datasets/imagenet/"
    assert values["RESUME_FROM"] == "/mnt/d/ckpt/step-200"
    assert values["LIFECYCLE_HOOK_NAME"] == "gpu-drain"
    assert values["TRAINING_PID_FILE"] == "/run/ml-training/training.pid"


def test_env_file_refuses_values_that_would_expand(tmp_path: Path, stubs: dict[str, str]) -> None:
    env_file = tmp_path / "ml-training.env"
    script = source_script(tmp_path, make_params(), env_file=env_file)
    code = f"source {script}; INSTANCE_ID=i-1 GPU_COUNT=1; write_env_file '/ckpt/$(reboot)'"
    result = run_bash("-c", code, env=stubs)
    assert result.returncode == 1
    assert "RESUME_FROM cannot be written to" in result.stderr
    assert not env_file.exists()


def test_cloudwatch_agent_config_publishes_gpu_utilization_by_asg() -> None:
    script = render_gpu_node_user_data(make_params())
    template = heredoc(script, 'cat >"$config" <<EOF')
    result = run_bash("-c", f"METRICS_NAMESPACE=MLPlatform/GPUTraining\ncat <<EOF\n{template}EOF\n")
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    metrics = config["metrics"]
    assert metrics["namespace"] == "MLPlatform/GPUTraining"
    assert metrics["append_dimensions"]["AutoScalingGroupName"] == "${aws:AutoScalingGroupName}"
    assert metrics["aggregation_dimensions"] == [["AutoScalingGroupName"]]
    assert "utilization_gpu" in metrics["metrics_collected"]["nvidia_gpu"]["measurement"]


# --- the interruption watcher, run for real ----------------------------------------------------------


class Node:
    """A fake node: the real watcher plus optionally a fake training process, with stub aws/curl."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.tmp = tmp_path
        self.log = Path(env["STUB_LOG"])
        self.ckpt = tmp_path / "ckpt"
        self.ckpt.mkdir()
        self.pid_file = tmp_path / "training.pid"
        script = source_script(tmp_path, make_params())
        common = tmp_path / "common.sh"
        result = run_bash("-c", f"source {script}; declare -f log imds_get retry > {common}")
        assert result.returncode == 0, result.stderr
        watcher = heredoc(script.read_text(), WATCHER_HEREDOC)
        (tmp_path / "watcher.sh").write_text(watcher.replace("/usr/local/lib/ml-training/common.sh", str(common)))
        self.env = {
            **env,
            "REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ASG_NAME": "gpu-training-asg",
            "LIFECYCLE_HOOK_NAME": "gpu-drain",
            "INSTANCE_ID": "i-0abc",
            "CHECKPOINT_DIR": str(self.ckpt),
            "CHECKPOINT_S3_URI": "s3://ml-ckpt-bucket/checkpoints/c1/",
            "TRAINING_PID_FILE": str(self.pid_file),
            "CHECKPOINT_GRACE_SECONDS": "20",
            "POLL_SECONDS": "0.2",
            "QUIET_SECONDS": "1",
        }
        self.procs: list[subprocess.Popen] = []

    def set_imds(self, name: str, value: str) -> None:
        (self.tmp / name).write_text(value)

    def start_training(self, *, exit_after_save: bool) -> None:
        step = self.ckpt / "step-7"
        save = f'mkdir -p {step}; echo weights > {step}/model.pt; echo "training: saved" >>{self.log}'
        trap = f"trap '{save}; {'exit 0' if exit_after_save else ':'}' USR1"
        code = f"{trap}; echo $$ > {self.pid_file}; while :; do sleep 0.1; done"
        self.procs.append(subprocess.Popen([BASH, "-c", code]))
        wait_for(lambda: self.pid_file.exists() and self.pid_file.read_text().strip() != "")

    def start_watcher(self) -> subprocess.Popen:
        watcher = subprocess.Popen(
            [BASH, str(self.tmp / "watcher.sh")],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.procs.append(watcher)
        return watcher

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for condition")
        time.sleep(0.05)


@pytest.fixture
def node(tmp_path: Path, stubs: dict[str, str]) -> Iterator[Node]:
    fake = Node(tmp_path, stubs)
    yield fake
    fake.stop()


def complete_call() -> str:
    return (
        "aws autoscaling complete-lifecycle-action --auto-scaling-group-name gpu-training-asg "
        "--lifecycle-hook-name gpu-drain --instance-id i-0abc --lifecycle-action-result CONTINUE"
    )


def assert_every_imds_read_used_a_token(calls: list[str]) -> None:
    assert "curl: tokenless read" not in calls
    reads = [c for c in calls if c.startswith("curl ") and "api/token" not in c]
    assert reads and all("X-aws-ec2-metadata-token: TOKEN123" in c for c in reads)


def test_asg_termination_signals_training_syncs_then_completes_the_hook(node: Node) -> None:
    node.start_training(exit_after_save=True)
    node.set_imds("lifecycle-state", "Terminated")
    watcher = node.start_watcher()
    assert watcher.wait(timeout=30) == 0, watcher.stdout.read().decode() if watcher.stdout else ""
    calls = node.calls()
    saved = calls.index("training: saved")
    sync = calls.index(
        f"aws s3 sync {node.ckpt} s3://ml-ckpt-bucket/checkpoints/c1/ --only-show-errors --exclude *.tmp"
    )
    complete = calls.index(complete_call())
    assert saved < sync < complete
    assert calls[sync + 1] == "  synced-file: step-7/model.pt"
    assert_every_imds_read_used_a_token(calls)


def test_spot_notice_drains_once_and_completes_when_asg_terminates(node: Node) -> None:
    node.start_training(exit_after_save=False)
    node.set_imds("lifecycle-state", "InService")
    node.set_imds("spot", '{"action": "terminate", "time": "2024-05-01T10:02:00Z"}')
    watcher = node.start_watcher()
    wait_for(lambda: any(c.startswith("aws s3 sync") for c in node.calls()))
    time.sleep(1)
    assert watcher.poll() is None
    assert not any("complete-lifecycle-action" in c for c in node.calls())
    node.set_imds("lifecycle-state", "Terminated")
    assert watcher.wait(timeout=30) == 0
    calls = node.calls()
    assert calls.index("training: saved") < calls.index(complete_call())
    assert sum(c.startswith("aws s3 sync") for c in calls) == 1
    assert "  synced-file: step-7/model.pt" in calls
    assert_every_imds_read_used_a_token(calls)


def test_sigterm_syncs_and_completes_without_a_training_process(node: Node) -> None:
    node.ckpt.joinpath("step-3").mkdir()
    node.ckpt.joinpath("step-3", "model.pt").write_text("weights")
    node.set_imds("lifecycle-state", "InService")
    watcher = node.start_watcher()
    wait_for(lambda: any("target-lifecycle-state" in c for c in node.calls()))
    watcher.send_signal(signal.SIGTERM)
    assert watcher.wait(timeout=30) == 0
    calls = node.calls()
    sync = next(i for i, c in enumerate(calls) if c.startswith("aws s3 sync"))
    assert calls[sync + 1] == "  synced-file: step-3/model.pt"
    assert calls.index(complete_call()) > sync


def test_failed_hook_completion_is_retried(node: Node) -> None:
    node.set_imds("lifecycle-state", "Terminated")
    (node.tmp / "complete-fails").write_text("1")
    watcher = node.start_watcher()
    assert watcher.wait(timeout=30) == 1
    calls = node.calls()
    assert calls.count(complete_call()) == 5
    assert sum(c.startswith("aws s3 sync") for c in calls) == 1
