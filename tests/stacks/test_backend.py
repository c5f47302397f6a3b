"""The state backend every stack gets from ``stacks/backend.py``, synthesized on a bare stack (no provider bindings).

tests/stacks/test_stack.py checks the backend of the synthesized environment stacks and tests/stacks/test_deployment.py
the ``ML_PLATFORM_*`` settings; here: the backend block itself for every stack name, with and without a bucket, the
local switch, and where the emulator's settings may and may not appear. tests/gitops/test_deploy_faults.py runs
Terraform against the emulator with it.
"""

from __future__ import annotations

import json
from typing import Any

import cdktf
import pytest

from stacks.backend import configure_backend
from stacks.deployment import DeploymentSettings
from tests.support.synth_json import ENVIRONMENTS

ENDPOINT = "http://127.0.0.1:4566"
EMULATOR_SETTINGS = {
    "access_key": "test",
    "secret_key": "test",
    "skip_credentials_validation": True,
    "skip_metadata_api_check": True,
    "skip_region_validation": True,
    "skip_requesting_account_id": True,
    "use_path_style": True,
    "endpoints": {"s3": ENDPOINT, "sts": ENDPOINT, "iam": ENDPOINT, "dynamodb": ENDPOINT},
}


def _backend(name: str, deployment: DeploymentSettings) -> dict[str, Any]:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), name)
    configure_backend(stack, name, deployment)
    backend: dict[str, Any] = json.loads(cdktf.Testing.synth(stack))["terraform"]["backend"]
    return backend


@pytest.mark.parametrize("name", [*ENVIRONMENTS, "bootstrap"])
def test_each_stack_keeps_its_state_under_its_own_key_and_locks_it(name: str) -> None:
    # Exactly these arguments: no emulator setting reaches a backend without an emulator endpoint. `encrypt` is off
    # so that the state bucket's own default encryption (its KMS key) applies: on, Terraform would ask for SSE-S3.
    assert _backend(name, DeploymentSettings(state_bucket="acme-tf-state")) == {
        "s3": {
            "bucket": "acme-tf-state",
            "key": f"ml-platform/{name}/terraform.tfstate",
            "region": "us-east-1",
            "encrypt": False,
            "use_lockfile": True,
        }
    }


@pytest.mark.parametrize("endpoint", [None, ENDPOINT])
def test_without_a_bucket_the_backend_is_partial(endpoint: str | None) -> None:
    backend = _backend("dev", DeploymentSettings(emulator_endpoint=endpoint))["s3"]
    # `terraform init` then needs -backend-config=bucket=<name>: no guessed bucket, with or without an emulator.
    assert "bucket" not in backend
    assert (backend["key"], backend["encrypt"], backend["use_lockfile"]) == (
        "ml-platform/dev/terraform.tfstate",
        False,
        True,
    )


def test_the_local_switch_keeps_the_state_beside_the_stack_and_ignores_the_s3_settings() -> None:
    deployment = DeploymentSettings(
        backend="local", state_bucket="acme-tf-state", lock_table="tf-locks", emulator_endpoint=ENDPOINT
    )
    assert _backend("staging", deployment) == {"local": {"path": "terraform.staging.tfstate"}}


def test_an_emulator_endpoint_sends_the_state_and_its_lock_file_to_the_emulator() -> None:
    backend = _backend("prod", DeploymentSettings(state_bucket="acme-tf-state", emulator_endpoint=ENDPOINT))
    assert backend == {
        "s3": {
            "bucket": "acme-tf-state",
            "key": "ml-platform/prod/terraform.tfstate",
            "region": "us-east-1",
            "encrypt": False,
            "use_lockfile": True,
            **EMULATOR_SETTINGS,
        }
    }


def test_a_lock_table_adds_dynamodb_locking_beside_the_lock_file() -> None:
    deployment = DeploymentSettings(
        state_bucket="acme-tf-state", state_region="eu-west-1", lock_table="tf-locks", emulator_endpoint=ENDPOINT
    )
    backend = _backend("dev", deployment)["s3"]
    # Terraform then takes both locks, and both must succeed; with an emulator, the table is the emulator's too.
    assert (backend["dynamodb_table"], backend["use_lockfile"]) == ("tf-locks", True)
    assert backend["endpoints"]["dynamodb"] == ENDPOINT
    assert backend["region"] == "eu-west-1"
