"""Validate the environment matrix, the user's overrides and the deployment settings without synthesizing.

    python -m stacks.check_config        # or: make check-config

Prints what each environment provisions and exits 0, or prints the first problem (environment, dotted field,
value, what is allowed) and exits 2, the same code ``main.py`` uses for configuration errors. It loads no
provider binding, so it answers in well under a second.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from constructs.core.errors import ConfigurationError

from stacks.deployment import DeploymentSettings, load_deployment
from stacks.environment import EnvironmentConfig
from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, load_environments, read_overrides


def summary(config: EnvironmentConfig) -> str:
    """One environment in a few words: where, what is switched on, how it is protected."""
    sections = [
        name
        for name in ("eks", "training", "sagemaker", "sagemaker_training", "mlflow", "kubeflow")
        if getattr(config, name) is not None
    ]
    if config.kubeflow is not None:
        sections[-1] += f" ({len(config.kubeflow.teams)} teams)"
    if config.serving:
        count = len(config.serving)
        sections.append(f"serving ({count} model{'s' if count > 1 else ''})")
    flags = [
        "GPUs" if config.gpu_enabled else "no GPUs",
        "multi-AZ" if config.multi_az else "single NAT",
        "protected" if config.protected else "destroyable",
    ]
    return (
        f"{config.name}: {config.region}, {config.network.vpc_cidr} over {config.network.az_count} AZs, "
        f"{', '.join(flags)}; {', '.join(sections) or 'no compute'}; "
        f"budget {config.budget.monthly_limit_usd} USD/month"
    )


def report(configs: Mapping[str, EnvironmentConfig], deployment: DeploymentSettings, overridden: int) -> str:
    """The text printed for a valid configuration."""
    lines = [summary(config) for config in configs.values()]
    state = f"state: {deployment.backend}"
    if deployment.backend == "s3":
        state += (
            f" bucket {deployment.state_bucket or '(partial: -backend-config=bucket=...)'} in {deployment.state_region}"
        )
    lines.append(state)
    lines.append(f"overrides: {overridden} field(s) from {OVERRIDES_ENV} / {OVERRIDES_FILE_ENV}")
    return "\n".join(lines)


def main() -> int:
    """Entry point of ``make check-config``."""
    try:
        configs = load_environments()
        deployment = load_deployment()
        overridden = sum(len(fields) for fields in read_overrides().values())
    except ConfigurationError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    print(report(configs, deployment, overridden))
    return 0


if __name__ == "__main__":
    sys.exit(main())
