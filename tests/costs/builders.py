"""Known inputs for the estimator's arithmetic: a price table with round figures and small hand-built stacks.

The table is written to a temporary directory, so the tests never depend on the real, dated prices in
costs/prices/ (which change when someone updates them) and every expected figure follows from the numbers here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from costs.estimate import estimate_stack
from costs.model import Estimate

HOURS = 730
PRICES: dict[str, Any] = {
    "region": "us-east-1",
    "currency": "USD",
    "retrieved": "2026-01-15",
    "hours_per_month": HOURS,
    "source": {"all": "test prices"},
    "notes": ["known inputs for the tests"],
    "ec2": {
        "m6i.xlarge": {"hourly": 0.2},
        "t3.large": {"hourly": 0.1},
        "g5.xlarge": {"hourly": 1.0, "gpus": 1},
        "g5.12xlarge": {"hourly": 5.0, "gpus": 4},
        "g6.12xlarge": {"hourly": 4.0, "gpus": 4},
    },
    "sagemaker_hosting": {"ml.g5.xlarge": {"hourly": 1.5, "gpus": 1}},
    "rds": {"postgres": {"db.m7g.large": 0.2}},
    "rds_storage_gb_month": {"gp3": 0.1},
    "ebs_gb_month": {"gp3": 0.08, "gp2": 0.1},
    "hourly": {
        "eks_standard_support": 0.1,
        "eks_extended_support": 0.6,
        "nat_gateway": 0.045,
        "public_ipv4": 0.005,
        "interface_endpoint_az": 0.01,
        "application_load_balancer": 0.02,
        "network_load_balancer": 0.03,
    },
    "monthly": {
        "kms_key": 1.0,
        "waf_web_acl": 5.0,
        "waf_rule": 1.0,
        "secret": 0.4,
        "alarm_standard": 0.1,
        "alarm_high_resolution": 0.3,
        "alarm_composite": 0.5,
    },
    "usage": {
        key: {"price": 0.01, "unit": "unit"}
        for key in (
            "nat_gateway_data",
            "interface_endpoint_data",
            "internet_egress",
            "inter_az_transfer",
            "alb_lcu",
            "nlb_lcu",
            "waf_requests",
            "secrets_api",
            "kms_requests",
            "s3_standard",
            "ecr_storage",
            "logs_ingestion",
            "logs_storage",
            "lambda_requests",
            "lambda_duration_arm64",
            "lambda_duration_x86_64",
            "budget_day",
            "sagemaker_serverless_compute",
            "sagemaker_serverless_data",
            "rds_backup_storage",
            "ebs_gp3_volumes",
            "burstable_cpu_credits",
        )
    },
    "spot_discount": {"g5": 0.6, "m6i": 0.5},
    "commitment_discount": {
        "ec2_compute_savings_plan": 0.25,
        "sagemaker_savings_plan": 0.2,
        "rds_reserved_instance": 0.3,
    },
}


def write_prices(directory: Path, **changes: Any) -> Path:
    """Write the known price table (with top-level ``changes``) as ``<region>.json`` in ``directory``."""
    table = {**PRICES, **changes}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{table['region']}.json").write_text(json.dumps(table))
    return directory


def stack(resources: dict[str, dict[str, dict[str, Any]]], region: str = "us-east-1") -> dict[str, Any]:
    """A synthesized-stack dict: a provider in ``region`` and ``resources`` by type and name."""
    return {"provider": {"aws": [{"region": region}]}, "resource": resources}


def estimate(prices_dir: Path, resources: dict[str, dict[str, dict[str, Any]]], region: str = "us-east-1") -> Estimate:
    """The estimate of a hand-built stack with the known prices."""
    return estimate_stack("test", stack(resources, region), prices_dir)


def template(size: int, volume_type: str = "gp3", **extra: Any) -> dict[str, Any]:
    """A launch template with one root volume of ``size`` GB."""
    return {
        "block_device_mappings": [
            {"device_name": "/dev/xvda", "ebs": {"volume_size": size, "volume_type": volume_type}}
        ],
        **extra,
    }


def node_group(types: list[str], minimum: Any, maximum: Any, desired: Any = None, **extra: Any) -> dict[str, Any]:
    """An EKS managed node group using the launch template ``aws_launch_template.lt``."""
    scaling = {"min_size": minimum, "max_size": maximum, **({"desired_size": desired} if desired is not None else {})}
    return {
        "instance_types": types,
        "scaling_config": scaling,
        "launch_template": {
            "id": "${aws_launch_template.lt.id}",
            "version": "${aws_launch_template.lt.latest_version}",
        },
        "node_group_name_prefix": "group-",
        **extra,
    }


def training_group(maximum: int, on_demand_percentage: int, base: int = 0, minimum: int = 0) -> dict[str, Any]:
    """A GPU training Auto Scaling group with a mixed instances policy over g5.12xlarge and g6.12xlarge."""
    return {
        "name": "training",
        "min_size": minimum,
        "max_size": maximum,
        "desired_capacity": minimum,
        "mixed_instances_policy": {
            "instances_distribution": {
                "on_demand_base_capacity": base,
                "on_demand_percentage_above_base_capacity": on_demand_percentage,
            },
            "launch_template": {
                "launch_template_specification": {"launch_template_id": "${aws_launch_template.lt.id}"},
                "override": [{"instance_type": "g5.12xlarge"}, {"instance_type": "g6.12xlarge"}],
            },
        },
    }
