"""One Terraform stack per environment: provider, state backend, security checks and the platform."""

from __future__ import annotations

import keyword
from typing import Any

from cdktf import TerraformStack
from constructs import Construct
from constructs.core.bindings import aws
from constructs.platform import MlPlatform
from constructs.policy.pack import security_checks

from stacks.backend import configure_backend
from stacks.deployment import DeploymentSettings
from stacks.emulator import emulator_provider_arguments
from stacks.environment import EnvironmentConfig


def emulator_arguments(endpoint: str) -> dict[str, Any]:
    """The emulator's provider arguments as the Python bindings take them (``lambda`` is spelled ``lambda_``)."""
    arguments = emulator_provider_arguments(endpoint)
    arguments["endpoints"] = [
        aws.provider.AwsProviderEndpoints(**{f"{k}_" if keyword.iskeyword(k) else k: v for k, v in block.items()})
        for block in arguments["endpoints"]
    ]
    return arguments


class MlPlatformStack(TerraformStack):
    """The stack of one environment; ``cdktf deploy <env>`` deploys it.

    It configures the AWS provider (region, default tags) and, with a secondary region, that region's aliased
    provider, the state backend and the security checks, and hands the environment's configuration to the
    :class:`MlPlatform` construct.
    """

    def __init__(self, scope: Construct, config: EnvironmentConfig, deployment: DeploymentSettings) -> None:
        super().__init__(scope, config.name)
        self.config = config
        emulator = emulator_arguments(deployment.emulator_endpoint) if deployment.emulator_endpoint else {}
        self.provider = aws.provider.AwsProvider(
            self,
            "aws",
            region=config.region,
            default_tags=[aws.provider.AwsProviderDefaultTags(tags=config.resource_tags)],
            **emulator,
        )
        # The secondary region's provider: an alias, so nothing lands there unless a construct asks for it.
        self.secondary_provider = (
            aws.provider.AwsProvider(
                self,
                "aws-secondary",
                alias="secondary",
                region=config.secondary_region,
                default_tags=[aws.provider.AwsProviderDefaultTags(tags=config.resource_tags)],
                **emulator,
            )
            if config.secondary_region is not None
            else None
        )
        configure_backend(self, config.name, deployment)
        self.platform = MlPlatform(self, "platform", config, secondary_provider=self.secondary_provider)
        # The whole security policy (docs/security.md), run once on the final configuration.
        self.security_checks = security_checks(gpu_enabled=config.gpu_enabled, protected=config.protected)
        self.security_checks.apply_to(self)
