"""Where a stack keeps its Terraform state: one function for the environment stacks and the bootstrap stack."""

from __future__ import annotations

from cdktf import LocalBackend, S3Backend, TerraformStack

from stacks.deployment import DeploymentSettings
from stacks.emulator import emulator_backend_arguments

STATE_KEY_PREFIX = "ml-platform"
"""Every stack's state lives under ``ml-platform/<stack>/terraform.tfstate`` in the state bucket."""


def state_key(stack: str) -> str:
    """The state bucket key of ``stack`` (an environment name, or ``bootstrap``)."""
    return f"{STATE_KEY_PREFIX}/{stack}/terraform.tfstate"


def configure_backend(stack: TerraformStack, name: str, deployment: DeploymentSettings) -> None:
    """Give ``stack`` (named ``name``) the state backend ``deployment`` asks for.

    ``s3``: the state bucket, locked with S3-native lock files, encrypted by the bucket's default encryption (the
    bootstrap's bucket: its own KMS key). ``encrypt`` stays off on purpose: on, Terraform asks S3 for SSE-S3
    (AES256) on every write, which would override the bucket's key, and the bootstrap's bucket refuses such
    writes. With an emulator endpoint, the state and its lock live in the emulator's S3 (the rehearsal and the
    deploy-fault tests). ``local``: a state file beside the synthesized stack, for offline rehearsals only.
    """
    if deployment.backend == "local":
        LocalBackend(stack, path=f"terraform.{name}.tfstate")
        return
    S3Backend(
        stack,
        bucket=deployment.state_bucket or "",
        key=state_key(name),
        region=deployment.state_region,
        encrypt=False,
        dynamodb_table=deployment.lock_table,
    )
    # S3-native state locking (Terraform >= 1.10); the prebuilt backend class predates the flag.
    stack.add_override("terraform.backend.s3.use_lockfile", True)
    if deployment.state_bucket is None:
        # The class requires a bucket; dropping it leaves Terraform's partial configuration, so
        # `terraform init` asks for -backend-config=bucket=... instead of using a guessed bucket.
        stack.add_override("terraform.backend.s3.bucket", None)
    if deployment.emulator_endpoint:
        # The prebuilt class has no `endpoints.s3`, so the emulator's settings are written as overrides.
        for argument, value in emulator_backend_arguments(deployment.emulator_endpoint).items():
            stack.add_override(f"terraform.backend.s3.{argument}", value)
