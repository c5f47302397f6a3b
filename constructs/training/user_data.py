"""User data for GPU training nodes: rendering the bootstrap script and escaping it for Terraform.

The script itself is ``assets/gpu_training_node.sh``, a plain bash file that can be linted on its own.
Rendering inserts the parameters as ``readonly NAME=<value>`` lines right after its ``set -euo pipefail``
line, each value quoted with :func:`shlex.quote`, so any value is safe for bash.

Parameter values may be Terraform interpolations or CDKTF tokens (any string containing ``${``), for
example ``${aws_s3_bucket.data.bucket}``: they are inserted verbatim, so they stay live when the construct
puts the script into a Terraform JSON string. The script body, which uses ``${VAR}`` as bash syntax, is
escaped with ``escape_body=True`` so Terraform leaves it alone. The values themselves are checked where they
come from (the cluster's settings and names, the buckets), not here.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, fields
from pathlib import Path

SCRIPT_PATH = Path(__file__).resolve().parent.parent.parent / "assets" / "gpu_training_node.sh"

#: EC2 rejects user data larger than this (before base64 encoding).
EC2_USER_DATA_LIMIT_BYTES = 16 * 1024

_SET_LINE = "set -euo pipefail"


def is_token(value: str) -> bool:
    """Return True for a value Terraform or CDKTF resolves later (it contains ``${``)."""
    return "${" in value


@dataclass(frozen=True)
class GpuNodeBootstrapParams:
    """Parameters of the GPU training node bootstrap script (each becomes a ``readonly`` shell variable).

    Attributes:
        region: AWS region of the cluster, e.g. ``us-east-1``.
        cluster_name: Cluster name; checkpoints live under ``s3://<checkpoint_bucket>/checkpoints/<cluster_name>/``
            and artifacts under ``s3://<artifacts_bucket>/artifacts/<cluster_name>/``.
        data_bucket: Bucket holding the training dataset.
        checkpoint_bucket: Bucket holding checkpoints.
        artifacts_bucket: Bucket where jobs write their outputs (exported as ARTIFACTS_S3_URI).
        lifecycle_hook_name: The ASG's termination lifecycle hook, completed after checkpoints are synced.
        asg_name: Name of the Auto Scaling group the nodes belong to.
        data_prefix: Dataset key prefix in ``data_bucket`` (no leading '/'; empty means the whole bucket).
        metrics_namespace: CloudWatch namespace for the agent's GPU metrics; empty disables them.
        checkpoint_grace_seconds: How long the node waits for the training process to save a checkpoint after
            SIGUSR1 before syncing to S3. A spot interruption notice leaves about 120 s in all.
    """

    region: str
    cluster_name: str
    data_bucket: str
    checkpoint_bucket: str
    artifacts_bucket: str
    lifecycle_hook_name: str
    asg_name: str
    data_prefix: str = "datasets/"
    metrics_namespace: str = "MLPlatform/GPUTraining"
    checkpoint_grace_seconds: int = 60

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            # shlex.quote would split a quote out of a token and break the interpolation.
            if isinstance(value, str) and is_token(value) and "'" in value:
                raise ValueError(
                    f'GpuNodeBootstrapParams.{field.name} is a token and must not contain "\'", got {value!r}'
                )

    def shell_variables(self) -> dict[str, str]:
        """Return the script's parameters as ``{SHELL_NAME: value}``, in declaration order."""
        return {field.name.upper(): str(getattr(self, field.name)) for field in fields(self)}


def terraform_escape(text: str) -> str:
    """Escape Terraform template sequences so Terraform renders ``text`` literally.

    ``${`` becomes ``$${`` and ``%{`` becomes ``%%{``; Terraform turns them back when it evaluates the string.
    """
    return text.replace("${", "$${").replace("%{", "%%{")


def render_gpu_node_user_data(
    params: GpuNodeBootstrapParams, *, escape_body: bool = False, script_path: Path = SCRIPT_PATH
) -> str:
    """Return the bootstrap script with ``params`` inserted as ``readonly`` shell variables.

    Args:
        params: Validated parameters; values containing ``${`` are Terraform/CDKTF tokens, kept verbatim.
        escape_body: Escape Terraform template sequences in the script body (not in the parameter values).
            Use True when the result goes into Terraform configuration, such as a launch template's user data;
            use False to get the script exactly as bash will run it.
        script_path: The script template; defaults to ``assets/gpu_training_node.sh``.

    Raises:
        ValueError: if the template lacks its ``set -euo pipefail`` line, or the rendered script exceeds EC2's
            16 KiB user data limit.
    """
    lines = script_path.read_text(encoding="utf-8").splitlines(keepends=True)
    try:
        set_index = next(i for i, line in enumerate(lines[:5]) if line.strip() == _SET_LINE)
    except StopIteration:
        raise ValueError(f"{script_path} must have '{_SET_LINE}' within its first lines") from None
    head = "".join(lines[: set_index + 1])
    body = "".join(lines[set_index + 1 :])
    header = "".join(f"readonly {name}={shlex.quote(value)}\n" for name, value in params.shell_variables().items())
    rendered = head + header + body
    size = len(rendered.encode("utf-8"))
    if size > EC2_USER_DATA_LIMIT_BYTES:
        raise ValueError(
            f"rendered user data is {size} bytes, over EC2's {EC2_USER_DATA_LIMIT_BYTES}-byte limit; "
            "shorten the script or deliver it gzip-compressed"
        )
    if escape_body:
        return terraform_escape(head) + header + terraform_escape(body)
    return rendered
