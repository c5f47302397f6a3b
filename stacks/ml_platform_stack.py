"""One Terraform stack per environment: provider, state backend, checks and the platform."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdktf import Aspects, LocalBackend, S3Backend, TerraformStack
from constructs import Construct
from constructs.ml_platform import MlPlatform, MlPlatformProps
from constructs.provider_bindings import aws
from constructs.security_rules import security_pack
from constructs.synth_checks import SynthChecks
from constructs.validation import ConfigurationError, require_one_of

from stacks.environments import EnvironmentConfig

REQUIRED_TAGS = ("environment", "team", "cost_center", "project")
_STATE_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
LOOPBACK_ENDPOINT = re.compile(r"^http://(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\]):\d{1,5}$")
# AWS APIs the platform calls, by the provider's canonical endpoint names.
EMULATED_SERVICES = (
    "appautoscaling",
    "autoscaling",
    "budgets",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "eks",
    "elbv2",
    "events",
    "iam",
    "kms",
    "lambda_",
    "logs",
    "route53",
    "s3",
    "sagemaker",
    "sns",
    "sqs",
    "ssm",
    "sts",
)


def emulator_provider_settings(endpoint: str) -> dict[str, Any]:
    """AWS provider arguments that send every call to a local emulator instead of AWS."""
    return {
        "access_key": "test",
        "secret_key": "test",
        "skip_credentials_validation": True,
        "skip_metadata_api_check": "true",
        # The account id is requested (sts:GetCallerIdentity, answered by the emulator): without it
        # the provider reads same-account references, such as a security group rule's referenced
        # group, as cross-account "<account>/<id>" and plans to change them on every run.
        "skip_region_validation": True,
        "s3_use_path_style": True,
        # An emulator answers unimplemented actions with HTTP 500; the default retries take 10+ minutes.
        "max_retries": 3,
        "endpoints": [aws.provider.AwsProviderEndpoints(**dict.fromkeys(EMULATED_SERVICES, endpoint))],
    }


@dataclass(frozen=True)
class DeploymentSettings:
    """Where state lives; the same for every environment of one installation.

    backend: ``"s3"`` (remote, locked state; the default) or ``"local"`` (offline rehearsal: state
      in ``terraform.<env>.tfstate`` beside the synthesized stack).
    state_bucket: S3 bucket holding every environment's state (see docs/state-bootstrap.md). There is
      no default: a guessed global bucket name could belong to someone else. Unset, the stacks get a
      partial S3 backend and ``terraform init`` needs ``-backend-config=bucket=<name>``.
    state_region: region of that bucket.
    lock_table: optional DynamoDB lock table, for Terraform versions before S3-native locking.
    emulator_endpoint: a local AWS emulator (``http://127.0.0.1:<port>``) to send every AWS API
      call to instead of AWS. Only the provider block changes; the resources are exactly those of
      the real environment. Used by the emulator deploy test; loopback addresses only.
    """

    backend: str = "s3"
    state_bucket: str | None = None
    state_region: str = "us-east-1"
    lock_table: str | None = None
    emulator_endpoint: str | None = None

    def __post_init__(self) -> None:
        require_one_of("deployment", "ML_PLATFORM_BACKEND", self.backend, ("s3", "local"))
        if self.emulator_endpoint is not None and not LOOPBACK_ENDPOINT.match(self.emulator_endpoint):
            raise ConfigurationError(
                "deployment",
                "ML_PLATFORM_EMULATOR_ENDPOINT",
                self.emulator_endpoint,
                "an http URL on the loopback interface, such as 'http://127.0.0.1:5000'",
            )
        if self.state_bucket is not None and not _STATE_BUCKET.match(self.state_bucket):
            raise ConfigurationError(
                "deployment",
                "ML_PLATFORM_STATE_BUCKET",
                self.state_bucket,
                "an S3 bucket name (3-63 lowercase characters)",
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DeploymentSettings:
        """Read ML_PLATFORM_BACKEND, ML_PLATFORM_STATE_BUCKET, ML_PLATFORM_STATE_REGION, ML_PLATFORM_LOCK_TABLE."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            backend=env.get("ML_PLATFORM_BACKEND", defaults.backend),
            state_bucket=env.get("ML_PLATFORM_STATE_BUCKET") or defaults.state_bucket,
            state_region=env.get("ML_PLATFORM_STATE_REGION", defaults.state_region),
            lock_table=env.get("ML_PLATFORM_LOCK_TABLE") or None,
            emulator_endpoint=env.get("ML_PLATFORM_EMULATOR_ENDPOINT") or None,
        )


class MlPlatformStack(TerraformStack):
    """The stack of one environment; ``cdktf deploy <env>`` deploys it.

    It configures the AWS provider (region, default tags), the state backend and the synthesis
    checks, and maps the environment's settings to the :class:`MlPlatform` construct.
    """

    def __init__(self, scope: Construct, config: EnvironmentConfig, deployment: DeploymentSettings) -> None:
        super().__init__(scope, config.name)
        self.config = config
        self.tags = config.tags.as_tags(config.name)
        self.provider = aws.provider.AwsProvider(
            self,
            "aws",
            region=config.region,
            default_tags=[aws.provider.AwsProviderDefaultTags(tags=self.tags)],
            **(emulator_provider_settings(deployment.emulator_endpoint) if deployment.emulator_endpoint else {}),
        )
        self._backend(deployment)
        self.platform = MlPlatform(
            self,
            "platform",
            MlPlatformProps(
                environment=config.name,
                name_prefix=config.name_prefix,
                tags=self.tags,
                network=config.network,
                keys=config.keys,
                storage=config.storage,
                budget=config.budget,
                training=config.training,
                eks=config.eks,
                sagemaker=config.sagemaker,
                sagemaker_training=config.sagemaker_training,
            ),
        )
        # One aspect runs the whole security policy (docs/security.md) on the final configuration.
        Aspects.of(self).add(
            SynthChecks(
                "ml-platform-security",
                security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=config.gpu_enabled, protected=config.protected),
            )
        )

    def _backend(self, deployment: DeploymentSettings) -> None:
        if deployment.backend == "local":
            LocalBackend(self, path=f"terraform.{self.config.name}.tfstate")
            return
        S3Backend(
            self,
            bucket=deployment.state_bucket or "",
            key=f"ml-platform/{self.config.name}/terraform.tfstate",
            region=deployment.state_region,
            encrypt=True,
            dynamodb_table=deployment.lock_table,
        )
        # S3-native state locking (Terraform >= 1.10); the prebuilt backend class predates the flag.
        self.add_override("terraform.backend.s3.use_lockfile", True)
        if deployment.state_bucket is None:
            # The class requires a bucket; dropping it leaves Terraform's partial configuration, so
            # `terraform init` asks for -backend-config=bucket=... instead of using a guessed bucket.
            self.add_override("terraform.backend.s3.bucket", None)
