"""The local AWS emulator switch: which AWS APIs the platform calls, and the provider settings that send them
to an emulator on the loopback interface instead of AWS.

Plain data, no jsii and no provider binding: the stack turns it into the AWS provider's arguments, and the
test launcher of the emulator (``emulator``) reads the same service list, so the two cannot drift.
"""

from __future__ import annotations

import re
from typing import Any

LOOPBACK_ENDPOINT = re.compile(
    r"http://(?:127(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}|localhost|\[::1\]):(?P<port>[1-9]\d{0,4})"
)
"""An http URL on the loopback interface, such as ``http://127.0.0.1:4566``."""

# The `endpoints` keys of the hashicorp/aws 5.100.0 provider for every AWS API the platform calls. Each
# service has exactly one key: the provider also accepts aliases (eventbridge/cloudwatchevents for events,
# applicationautoscaling for appautoscaling, cloudwatchlogs for logs, elasticloadbalancingv2 for elbv2), but
# when several equivalent keys are set it silently keeps the first, so aliases only add ambiguity.
# Verified with `terraform providers schema -json` against the offline 5.100.0 provider.
EMULATED_SERVICES: tuple[str, ...] = (
    "acm",
    "apigateway",
    "appautoscaling",
    "autoscaling",
    "budgets",
    "ce",
    "cloudwatch",
    "dynamodb",
    "ec2",
    "ecr",
    "eks",
    "elbv2",
    "events",
    "iam",
    "kms",
    "lambda",
    "logs",
    "rds",
    "route53",
    "s3",
    "sagemaker",
    "scheduler",
    "secretsmanager",
    "sns",
    "sqs",
    "ssm",
    "sts",
    "wafv2",
)

# IAM's name of a service whose endpoint key differs from it; the others share the name.
_IAM_PREFIXES = {"appautoscaling": "application-autoscaling", "elbv2": "elasticloadbalancing"}
# Global services and S3, whose resources a deploy role reaches by name rather than by region.
_NOT_REGIONAL = ("budgets", "ce", "iam", "route53", "s3", "sts")


def iam_service_prefixes() -> tuple[str, ...]:
    """IAM action prefixes (``ec2``, ``elasticloadbalancing``) of the regional services in :data:`EMULATED_SERVICES`.

    The same list as the emulator's: the AWS APIs the platform calls, which its deploy roles may use in their
    environment's region (``stacks/bootstrap_stack.py``).
    """
    return tuple(_IAM_PREFIXES.get(service, service) for service in EMULATED_SERVICES if service not in _NOT_REGIONAL)


EMULATOR_CREDENTIALS = {"access_key": "test", "secret_key": "test"}
"""Credentials an emulator accepts; requests signed with access key ``test`` land in moto's default account."""


def emulator_backend_arguments(endpoint: str) -> dict[str, Any]:
    """S3 backend arguments, in Terraform's names, that keep the state in the emulator at ``endpoint``.

    The backend is configured apart from the provider: it has its own credentials, endpoints (S3 for the state and
    its lock file, STS and IAM for the identity checks it skips) and path-style switch.
    """
    return {
        **EMULATOR_CREDENTIALS,
        "skip_credentials_validation": True,
        "skip_metadata_api_check": True,
        "skip_region_validation": True,
        "skip_requesting_account_id": True,
        "use_path_style": True,
        "endpoints": {"s3": endpoint, "sts": endpoint, "iam": endpoint, "dynamodb": endpoint},
    }


def emulator_provider_arguments(endpoint: str) -> dict[str, Any]:
    """AWS provider arguments, in Terraform's names, that send every call to the emulator at ``endpoint``.

    ``endpoints`` is one block mapping each service of :data:`EMULATED_SERVICES` to ``endpoint``.
    """
    return {
        **EMULATOR_CREDENTIALS,
        "skip_credentials_validation": True,
        "skip_metadata_api_check": "true",
        # The account id is requested (sts:GetCallerIdentity, answered by the emulator): without it
        # the provider reads same-account references, such as a security group rule's referenced
        # group, as cross-account "<account>/<id>" and plans to change them on every run.
        "skip_region_validation": True,
        "s3_use_path_style": True,
        # An emulator answers unimplemented actions with HTTP 500; the default retries take 10+ minutes.
        "max_retries": 3,
        "endpoints": [dict.fromkeys(EMULATED_SERVICES, endpoint)],
    }
