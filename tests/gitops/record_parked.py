#!/usr/bin/env python3
"""Record the drift check of an endpoint parked by its idle policy (``tests/gitops/recorded_parked/``).

Everything recorded is real: Terraform 1.11.4 with the offline hashicorp/aws 5.100.0 provider against the
local AWS emulator. Two endpoints share one model and configuration, each with a scalable target and a
target-tracking policy on its variant, as the platform deploys them; ``recorded-parked`` carries the idle tag
(``ml-platform:idle-policy = delete_endpoint``), ``recorded-untagged`` does not. After the apply:

* the idle function itself (``functions/endpoint_idle/handler.py``, invoked as the parking schedule invokes it,
  its boto3 clients pointed at the emulator) deletes ``recorded-parked``; the emulator, like SageMaker,
  deregisters the endpoint's scalable target and policy with it;
* ``recorded-untagged`` is deleted by hand with boto3, which is drift.

Then the two plans of ``gitops.drift`` run: ``check-parked.refresh`` (``.jsonl`` stream and ``.json`` of the
saved plan, without the parts no command reads) and ``check-parked.code``. Kept apart from ``recorded/``, whose
recorder replaces that whole folder. ``manifest.json`` names the command and exit code behind each file.

    .venv/bin/python tests/gitops/record_parked.py      # from the repository root, about a minute
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    # Run as a script: make the project's packages importable.
    sys.path.insert(0, str(ROOT))

from emulator import Emulator, terraform_provider_block  # noqa: E402
from stacks.emulator import EMULATOR_CREDENTIALS  # noqa: E402
from tests.gitops.record import Recorder, record_into  # noqa: E402
from tests.sagemaker.idle_endpoint import load_handler, park_event  # noqa: E402
from tests.support.mirror import emulator_terraform_env  # noqa: E402

RECORDED = Path(__file__).resolve().parent / "recorded_parked"
PARKED = "recorded-parked"
UNTAGGED = "recorded-untagged"
IDLE_TAG = {"ml-platform:idle-policy": "delete_endpoint"}


def configuration(endpoint: str) -> dict[str, Any]:
    """The recorded Terraform JSON configuration: a model, its configuration, two endpoints with autoscaling."""
    resources: dict[str, Any] = {
        "aws_sagemaker_model": {
            "model": {
                "name": "recorded-model",
                "execution_role_arn": "arn:aws:iam::123456789012:role/recorded-sagemaker",
                "primary_container": {"image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/inference:1"},
            }
        },
        "aws_sagemaker_endpoint_configuration": {
            "config": {
                "name": "recorded-config",
                "production_variants": {
                    "variant_name": "primary",
                    "model_name": "${aws_sagemaker_model.model.name}",
                    "instance_type": "ml.m5.xlarge",
                    "initial_instance_count": 1,
                },
            }
        },
        "aws_sagemaker_endpoint": {},
        "aws_appautoscaling_target": {},
        "aws_appautoscaling_policy": {},
    }
    for key, name, tags in (("parked", PARKED, IDLE_TAG), ("untagged", UNTAGGED, None)):
        body: dict[str, Any] = {
            "name": name,
            "endpoint_config_name": "${aws_sagemaker_endpoint_configuration.config.name}",
        }
        if tags:
            body["tags"] = tags
        resources["aws_sagemaker_endpoint"][key] = body
        resources["aws_appautoscaling_target"][key] = {
            "service_namespace": "sagemaker",
            "scalable_dimension": "sagemaker:variant:DesiredInstanceCount",
            "resource_id": f"endpoint/${{aws_sagemaker_endpoint.{key}.name}}/variant/primary",
            "min_capacity": 1,
            "max_capacity": 2,
        }
        resources["aws_appautoscaling_policy"][key] = {
            "name": f"{name}-primary-invocations-per-instance",
            "policy_type": "TargetTrackingScaling",
            "service_namespace": f"${{aws_appautoscaling_target.{key}.service_namespace}}",
            "scalable_dimension": f"${{aws_appautoscaling_target.{key}.scalable_dimension}}",
            "resource_id": f"${{aws_appautoscaling_target.{key}.resource_id}}",
            "target_tracking_scaling_policy_configuration": {
                "target_value": 100,
                "predefined_metric_specification": {"predefined_metric_type": "SageMakerVariantInvocationsPerInstance"},
            },
        }
    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}},
        "provider": {"aws": [terraform_provider_block(endpoint)]},
        "resource": resources,
    }


class ParkedRecorder(Recorder):
    """The shared recorder, writing under :data:`RECORDED`."""

    def save(self, name: str, text: str, args: list[str], exit_code: int) -> None:
        """Write ``text`` to ``recorded_parked/name`` and note the command behind it."""
        (RECORDED / name).write_text(text, encoding="utf-8")
        self.manifest[name] = {"command": ["terraform", *args], "exit_code": exit_code}


def park(emulator: Emulator) -> dict[str, Any]:
    """Run the idle function on ``recorded-parked`` as the parking schedule does, against the emulator."""
    handler = load_handler()
    variables = {
        "AWS_ENDPOINT_URL": emulator.endpoint,
        "AWS_ACCESS_KEY_ID": EMULATOR_CREDENTIALS["access_key"],
        "AWS_SECRET_ACCESS_KEY": EMULATOR_CREDENTIALS["secret_key"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "ENDPOINT_NAME": PARKED,
        "IDLE_ACTION": "delete_endpoint",
        "IDLE_MINUTES": "60",
    }
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        outcome: dict[str, Any] = handler.handler(park_event())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return outcome


def record(emulator: Emulator, scratch: Path) -> dict[str, dict[str, Any]]:
    """Apply the configuration, park one endpoint, delete the other, record the check; the manifest."""
    workdir = scratch / "stack"
    workdir.mkdir()
    recorder = ParkedRecorder(workdir, emulator_terraform_env(scratch))
    recorder.configure(configuration(emulator.endpoint))
    recorder.run("init", "-input=false", "-no-color")
    recorder.run("apply", "-auto-approve", "-input=false", "-no-color")
    recorder.run("apply", "-refresh-only", "-auto-approve", "-input=false", "-no-color")
    outcome = park(emulator)
    assert outcome["action"] == "deleted", outcome
    emulator.client("sagemaker").delete_endpoint(EndpointName=UNTAGGED)
    recorder.drift_check("parked")
    return recorder.manifest


def main() -> int:
    """Record everything into :data:`RECORDED` (replacing what is there)."""
    return record_into(RECORDED, record)


if __name__ == "__main__":
    sys.exit(main())
