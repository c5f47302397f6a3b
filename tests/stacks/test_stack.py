"""One stack per environment: names, provider and default tags, state backend, outputs, the emulator switch."""

from __future__ import annotations

import json

import cdktf
import pytest

from stacks.bootstrap_stack import BOOTSTRAP_STACK
from stacks.deployment import DeploymentSettings
from stacks.emulator import EMULATED_SERVICES
from stacks.matrix import MATRIX
from stacks.ml_platform_stack import MlPlatformStack
from tests.support.synth_json import ENVIRONMENTS, default_provider


def test_each_environment_is_its_own_stack_beside_the_bootstrap(synth_dir) -> None:
    stacks_dir = synth_dir / "stacks"
    assert sorted(p.name for p in stacks_dir.iterdir()) == sorted([*ENVIRONMENTS, BOOTSTRAP_STACK])
    for env in ENVIRONMENTS:
        assert (stacks_dir / env / "cdk.tf.json").is_file()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_provider_region_and_default_tags(stacks, env) -> None:
    provider = default_provider(stacks[env])
    assert provider["region"] == MATRIX[env].region
    assert provider["default_tags"] == [
        {"tags": {"environment": env, "team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}}
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_s3_backend_has_own_key_encryption_and_locking(stacks, env) -> None:
    backend = stacks[env]["terraform"]["backend"]
    assert list(backend) == ["s3"]
    # No bucket unless ML_PLATFORM_STATE_BUCKET names one: a guessed global name could be someone else's. No
    # `encrypt`: on, Terraform would ask for SSE-S3 and override the state bucket's own KMS key.
    assert backend["s3"] == {
        "key": f"ml-platform/{env}/terraform.tfstate",
        "region": "us-east-1",
        "encrypt": False,
        "use_lockfile": True,
    }
    assert stacks[env]["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"


def test_backend_is_configurable_and_has_a_local_switch() -> None:
    settings = DeploymentSettings(state_bucket="acme-tf-state", state_region="eu-west-1", lock_table="tf-locks")
    backend = json.loads(cdktf.Testing.synth(MlPlatformStack(cdktf.Testing.app(), MATRIX["dev"], settings)))
    assert backend["terraform"]["backend"]["s3"] == {
        "bucket": "acme-tf-state",
        "dynamodb_table": "tf-locks",
        "encrypt": False,
        "key": "ml-platform/dev/terraform.tfstate",
        "region": "eu-west-1",
        "use_lockfile": True,
    }
    local = MlPlatformStack(cdktf.Testing.app(), MATRIX["dev"], DeploymentSettings(backend="local"))
    config = json.loads(cdktf.Testing.synth(local))
    assert config["terraform"]["backend"] == {"local": {"path": "terraform.dev.tfstate"}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_endpoints_are_outputs(stacks, env) -> None:
    outputs = stacks[env]["output"]
    for expected in ("vpc_id", "training_data_bucket", "model_artifacts_bucket", "checkpoints_bucket"):
        assert expected in outputs, sorted(outputs)
        assert outputs[expected]["description"]
    assert outputs["training_data_bucket"]["value"].startswith("${aws_s3_bucket.platform_storage_training-data_bucket_")
    assert ("gpu_training_asg_name" in outputs) is (env != "dev")
    assert {"eks_cluster_name", "eks_oidc_provider_arn", "sagemaker_endpoint_name"} <= set(outputs)


def test_emulator_switch_changes_only_the_provider_block() -> None:
    plain = json.loads(cdktf.Testing.synth(MlPlatformStack(cdktf.Testing.app(), MATRIX["dev"], DeploymentSettings())))
    emulated = json.loads(
        cdktf.Testing.synth(
            MlPlatformStack(
                cdktf.Testing.app(), MATRIX["dev"], DeploymentSettings(emulator_endpoint="http://127.0.0.1:4566")
            )
        )
    )
    assert emulated["resource"] == plain["resource"]
    assert emulated.get("data") == plain.get("data")
    assert emulated.get("output") == plain.get("output")
    (provider,) = emulated["provider"]["aws"]
    assert provider["max_retries"] == 3
    assert provider["skip_credentials_validation"] is True
    assert (provider["access_key"], provider["secret_key"]) == ("test", "test")
    # Every AWS API the platform calls goes to the emulator; the Python bindings spell `lambda` as `lambda_`.
    assert provider["endpoints"] == [dict.fromkeys(EMULATED_SERVICES, "http://127.0.0.1:4566")]
    assert "lambda" in provider["endpoints"][0]
