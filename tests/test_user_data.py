"""Tests for the GPU node user data: rendering, escaping, validation, and the script's behaviour.

The behavioural tests run the real script functions and the real interruption watcher under bash, with
stub `curl` (an IMDSv2 endpoint that refuses tokenless reads) and `aws` executables on PATH.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
from constructs.user_data import (
    EC2_USER_DATA_LIMIT_BYTES,
    SCRIPT_PATH,
    GpuNodeBootstrapParams,
    render_gpu_node_user_data,
    terraform_escape,
)

BASH = shutil.which("bash") or "/bin/bash"
TOKEN = "${aws_s3_bucket.data.bucket}"


def make_params(**overrides: object) -> GpuNodeBootstrapParams:
    values: dict[str, object] = {
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
    return GpuNodeBootstrapParams(**values)  # type: ignore[arg-type]


def terraform_unescape(text: str) -> str:
    """What Terraform does to literal text in a template string."""
    return re.sub(r"([$%])\1\{", r"\1{", text)


def heredoc(script: str, opener: str) -> str:
    """Body of the heredoc that starts on the line `opener` (up to its EOF line)."""
    start = script.index(opener + "\n") + len(opener) + 1
    return script[start : script.index("\nEOF\n", start) + 1]


def run_bash(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [BASH, "-c", code], capture_output=True, text=True, env=env or dict(os.environ), timeout=timeout
    )


# --- rendering ---------------------------------------------------------------------------------------


def test_rendered_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "user_data.sh"
    script.write_text(render_gpu_node_user_data(make_params()))
    result = subprocess.run([BASH, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_embedded_watcher_is_valid_bash(tmp_path: Path) -> None:
    watcher = tmp_path / "watcher.sh"
    watcher.write_text(heredoc(render_gpu_node_user_data(make_params()), "cat >\"$WATCHER\" <<'EOF'"))
    result = subprocess.run([BASH, "-n", str(watcher)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert watcher.read_text().startswith("#!/bin/bash\n")


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck_is_clean(tmp_path: Path) -> None:
    rendered = render_gpu_node_user_data(make_params())
    (tmp_path / "user_data.sh").write_text(rendered)
    (tmp_path / "watcher.sh").write_text(heredoc(rendered, "cat >\"$WATCHER\" <<'EOF'"))
    for name in ("user_data.sh", "watcher.sh"):
        result = subprocess.run(["shellcheck", str(tmp_path / name)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout


def test_header_follows_the_set_line_with_every_parameter_quoted() -> None:
    params = make_params(data_bucket=TOKEN, data_prefix="")
    lines = render_gpu_node_user_data(params).splitlines()
    assert lines[0] == "#!/bin/bash"
    assert lines[1] == "set -euo pipefail"
    header = lines[2 : 2 + len(fields(params))]
    expected = [f"readonly {f.name.upper()}={shlex.quote(str(getattr(params, f.name)))}" for f in fields(params)]
    assert header == expected
    assert "readonly DATA_BUCKET='${aws_s3_bucket.data.bucket}'" in header
    assert "readonly DATA_PREFIX=''" in header


def test_bash_reads_back_the_exact_parameter_values() -> None:
    params = make_params(data_bucket=TOKEN, asg_name="${aws_autoscaling_group.gpu.name}", data_prefix="")
    lines = render_gpu_node_user_data(params).splitlines()
    names = [f.name.upper() for f in fields(params)]
    code = "\n".join(lines[: 2 + len(names)] + [f'printf "%s\\n" "${name}"' for name in names])
    result = run_bash(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(getattr(params, f.name)) for f in fields(params)]


def test_unrendered_script_stops_with_a_clear_message() -> None:
    result = subprocess.run([BASH, str(SCRIPT_PATH)], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "REGION is not set: render this script with constructs/user_data.py" in result.stderr


def test_metadata_is_only_read_through_imdsv2() -> None:
    script = render_gpu_node_user_data(make_params())
    metadata_lines = [line.strip() for line in script.splitlines() if "169.254.169.254" in line]
    assert metadata_lines == [
        "http://169.254.169.254/latest/api/token) || return 1",
        'curl -sf --max-time 5 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/$1"',
    ]
    assert "-X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 300'" in script
    assert "imds_get meta-data/spot/instance-action" in script
    assert "imds_get meta-data/autoscaling/target-lifecycle-state" in script


def test_script_verifies_gpu_and_pytorch_and_syncs_data() -> None:
    script = render_gpu_node_user_data(make_params())
    assert "nvidia-smi --query-gpu=" in script
    assert 'fail "no NVIDIA GPU is visible' in script
    assert "torch.cuda.is_available()" in script
    assert 'retry 3 aws s3 sync "$DATA_S3_URI" "$DATA_DIR"' in script
    assert "/var/log/ml-training-bootstrap.log" in script and "/dev/console" in script


def test_size_stays_under_the_ec2_limit_with_long_values() -> None:
    params = make_params(
        cluster_name="c" * 63,
        data_bucket="d" * 63,
        checkpoint_bucket="k" * 63,
        artifacts_bucket="a" * 63,
        lifecycle_hook_name="h" * 128,
        asg_name="g" * 128,
        data_prefix="p/" * 64,
        metrics_namespace="n" * 128,
    )
    assert len(render_gpu_node_user_data(params).encode()) < EC2_USER_DATA_LIMIT_BYTES


def test_oversized_script_is_rejected(tmp_path: Path) -> None:
    template = tmp_path / "big.sh"
    template.write_text("#!/bin/bash\nset -euo pipefail\n" + "# padding\n" * 2000)
    with pytest.raises(ValueError, match="over EC2's 16384-byte limit"):
        render_gpu_node_user_data(make_params(), script_path=template)


def test_template_without_set_line_is_rejected(tmp_path: Path) -> None:
    template = tmp_path / "bad.sh"
    template.write_text("#!/bin/bash\necho hi\n")
    with pytest.raises(ValueError, match="must have 'set -euo pipefail'"):
        render_gpu_node_user_data(make_params(), script_path=template)


# --- Terraform escaping ------------------------------------------------------------------------------


def test_terraform_escape() -> None:
    assert terraform_escape("a ${b} %{c} $d %e") == "a $${b} %%{c} $d %e"
    assert terraform_unescape(terraform_escape("$${x} %%{y} ${z}")) == "$${x} %%{y} ${z}"


def test_escaped_render_keeps_tokens_live_and_escapes_the_body() -> None:
    params = make_params(data_bucket=TOKEN)
    raw = render_gpu_node_user_data(params)
    escaped = render_gpu_node_user_data(params, escape_body=True)
    header_end = len(fields(params)) + 2
    header = escaped.splitlines()[2:header_end]
    body = "\n".join(escaped.splitlines()[header_end:])
    assert f"readonly DATA_BUCKET='{TOKEN}'" in header
    assert "$${CLUSTER_NAME}" in body and "\\$${aws:AutoScalingGroupName}" in body
    # Every ${ left in the body is preceded by the escaping $.
    assert not re.search(r"(?<!\$)\$\{", body.replace("$${", ""))
    assert "%{" not in body.replace("%%{", "")
    assert terraform_unescape(escaped) == raw


def terraform_output(workdir: Path, config: str, output: str) -> str:
    """Apply a provider-less configuration with data_bucket=my-data-bucket and return one output."""
    (workdir / "main.tf.json").write_text(config)
    (workdir / "cli.tfrc").write_text("")
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(workdir / "cli.tfrc"), "CHECKPOINT_DISABLE": "1"}
    for args in (
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color", "-var", "data_bucket=my-data-bucket"],
        ["output", "-raw", output],
    ):
        result = subprocess.run(["terraform", *args], cwd=workdir, env=env, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


@needs_terraform
def test_terraform_resolves_tokens_and_restores_the_body(tmp_path: Path) -> None:
    params = make_params(data_bucket="${var.data_bucket}")
    config = {
        "variable": {"data_bucket": {"type": "string"}},
        "output": {"user_data": {"value": render_gpu_node_user_data(params, escape_body=True)}},
    }
    rendered = terraform_output(tmp_path, json.dumps(config), "user_data")
    assert rendered == render_gpu_node_user_data(params).replace("${var.data_bucket}", "my-data-bucket")
    assert "readonly DATA_BUCKET='my-data-bucket'" in rendered


@needs_terraform
def test_cdktf_delivery_through_a_local_and_base64encode(tmp_path: Path) -> None:
    # Fn.base64encode() rejects a literal holding double quotes, so the escaped script goes into a
    # TerraformLocal (a plain JSON template string) and base64encode references the local.
    import cdktf

    stack = cdktf.TerraformStack(cdktf.Testing.app(), "user-data")
    data_bucket = cdktf.TerraformVariable(stack, "data_bucket", type="string")
    script = render_gpu_node_user_data(make_params(data_bucket=data_bucket.string_value), escape_body=True)
    local = cdktf.TerraformLocal(stack, "user_data", script)
    cdktf.TerraformOutput(stack, "user_data_base64", value=cdktf.Fn.base64encode(local.as_string))

    encoded = terraform_output(tmp_path, cdktf.Testing.synth(stack), "user_data_base64")
    expected = render_gpu_node_user_data(make_params(data_bucket="${var.data_bucket}"))
    assert base64.b64decode(encoded).decode() == expected.replace("${var.data_bucket}", "my-data-bucket")


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("data_bucket", "", "data_bucket must not be empty; expected an S3 bucket name"),
        ("checkpoint_bucket", "My_Bucket", "checkpoint_bucket must be an S3 bucket name"),
        ("artifacts_bucket", "a..b", "artifacts_bucket must be an S3 bucket name"),
        ("region", "us-east", "region must be an AWS region code such as 'us-east-1'"),
        ("region", "US-EAST-1", "region must be an AWS region code"),
        ("region", "", "region must not be empty"),
        ("cluster_name", "bad name", "cluster_name must be 1-63 letters"),
        ("asg_name", "", "asg_name must not be empty"),
        ("lifecycle_hook_name", "hook name", "lifecycle_hook_name must be 1-255 letters"),
        ("data_prefix", "/datasets", "data_prefix must be a relative S3 key prefix"),
        ("data_prefix", "a/../b", "data_prefix must be a relative S3 key prefix"),
        ("data_prefix", "data sets", "data_prefix must be an S3 key prefix"),
        ("metrics_namespace", "AWS/EC2", "metrics_namespace must not start with 'AWS/'"),
        ("checkpoint_grace_seconds", 0, "checkpoint_grace_seconds must be an integer from 5 to 110"),
        ("checkpoint_grace_seconds", True, "checkpoint_grace_seconds must be an integer"),
        ("data_bucket", 42, "data_bucket must be a string, got int"),
        ("data_bucket", "${lookup(var.m, 'k')}", "data_bucket is a token and must not contain"),
    ],
)
def test_invalid_parameters_raise_clear_errors(field: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"GpuNodeBootstrapParams.{message}")):
        make_params(**{field: value})


def test_valid_edge_values_are_accepted() -> None:
    params = make_params(region="us-gov-west-1", data_prefix="", metrics_namespace="", asg_name=TOKEN)
    assert params.shell_variables()["ASG_NAME"] == TOKEN
    assert make_params(region="ap-southeast-4", data_prefix="year=2024/").region == "ap-southeast-4"


def test_params_are_immutable() -> None:
    params = make_params()
    with pytest.raises(AttributeError):
        params.region = "eu-west-1"  # type: ignore[misc]


# --- behaviour of the script's functions -------------------------------------------------------------

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
    result = run_bash(code, env=stubs)
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
    result = run_bash(code, env=stubs)
    assert result.returncode == 0, result.stderr
    read = run_bash(f"set -a; source {env_file}; env", env={"PATH": "/usr/bin:/bin"})
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
    result = run_bash(f"source {script}; INSTANCE_ID=i-1 GPU_COUNT=1; write_env_file '/ckpt/$(reboot)'", env=stubs)
    assert result.returncode == 1
    assert "RESUME_FROM cannot be written to" in result.stderr
    assert not env_file.exists()


def test_cloudwatch_agent_config_publishes_gpu_utilization_by_asg() -> None:
    script = render_gpu_node_user_data(make_params())
    template = heredoc(script, 'cat >"$config" <<EOF')
    result = run_bash(f"METRICS_NAMESPACE=MLPlatform/GPUTraining\ncat <<EOF\n{template}EOF\n")
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
        result = run_bash(f"source {script}; declare -f log imds_get retry > {common}")
        assert result.returncode == 0, result.stderr
        watcher = heredoc(script.read_text(), "cat >\"$WATCHER\" <<'EOF'")
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


def wait_for(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for condition")
        time.sleep(0.05)


@pytest.fixture
def node(tmp_path: Path, stubs: dict[str, str]):
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
