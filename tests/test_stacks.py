"""One stack per environment: names, provider and default tags, state backend, outputs, tag checks."""

from __future__ import annotations

import cdktf
import pytest
from constructs.provider_bindings import aws
from constructs.required_tags import RequiredTags
from constructs.synth_checks import SynthChecks, SynthesisCheckError

from stacks.environments import BASE_MATRIX
from stacks.ml_platform_stack import REQUIRED_TAGS, DeploymentSettings, MlPlatformStack
from tests.conftest import ENVIRONMENTS


def test_each_environment_is_its_own_stack(synth_dir) -> None:
    stacks_dir = synth_dir / "stacks"
    assert sorted(p.name for p in stacks_dir.iterdir()) == sorted(ENVIRONMENTS)
    for env in ENVIRONMENTS:
        assert (stacks_dir / env / "cdk.tf.json").is_file()


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_provider_region_and_default_tags(stacks, env) -> None:
    (provider,) = stacks[env]["provider"]["aws"]
    assert provider["region"] == BASE_MATRIX[env].region
    assert provider["default_tags"] == [
        {"tags": {"environment": env, "team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}}
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_s3_backend_has_own_key_encryption_and_locking(stacks, env) -> None:
    backend = stacks[env]["terraform"]["backend"]
    assert list(backend) == ["s3"]
    # No bucket unless ML_PLATFORM_STATE_BUCKET names one: a guessed global name could be someone else's.
    assert backend["s3"] == {
        "key": f"ml-platform/{env}/terraform.tfstate",
        "region": "us-east-1",
        "encrypt": True,
        "use_lockfile": True,
    }
    assert stacks[env]["terraform"]["required_providers"]["aws"]["version"] == "5.100.0"


def test_backend_is_configurable_and_has_a_local_switch() -> None:
    settings = DeploymentSettings.from_environ(
        {
            "ML_PLATFORM_STATE_BUCKET": "acme-tf-state",
            "ML_PLATFORM_STATE_REGION": "eu-west-1",
            "ML_PLATFORM_LOCK_TABLE": "tf-locks",
        }
    )
    app = cdktf.Testing.app()
    stack = MlPlatformStack(app, BASE_MATRIX["dev"], settings)
    backend = cdktf.Testing.synth(stack)
    assert '"bucket": "acme-tf-state"' in backend and '"dynamodb_table": "tf-locks"' in backend
    assert '"region": "eu-west-1"' in backend

    local = MlPlatformStack(cdktf.Testing.app(), BASE_MATRIX["dev"], DeploymentSettings(backend="local"))
    import json

    config = json.loads(cdktf.Testing.synth(local))
    assert config["terraform"]["backend"] == {"local": {"path": "terraform.dev.tfstate"}}


def test_bad_state_bucket_name_is_rejected() -> None:
    from constructs.validation import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"ML_PLATFORM_STATE_BUCKET.*S3 bucket name"):
        DeploymentSettings.from_environ({"ML_PLATFORM_STATE_BUCKET": "Not_A_Bucket"})


def test_unknown_backend_kind_is_rejected() -> None:
    from constructs.validation import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"ML_PLATFORM_BACKEND.*'s3', 'local'"):
        DeploymentSettings.from_environ({"ML_PLATFORM_BACKEND": "consul"})


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_platform_endpoints_are_outputs(stacks, env) -> None:
    outputs = stacks[env]["output"]
    for expected in ("vpc_id", "training_data_bucket", "model_artifacts_bucket", "checkpoints_bucket"):
        assert expected in outputs, sorted(outputs)
        assert outputs[expected]["description"]
    assert outputs["training_data_bucket"]["value"].startswith("${aws_s3_bucket.platform_storage_training-data_bucket_")
    assert ("gpu_training_asg_name" in outputs) is (env != "dev")
    assert {"eks_cluster_name", "eks_oidc_provider_arn", "sagemaker_endpoint_name"} <= set(outputs)


def _tiny_stack(default_tags: dict[str, str] | None) -> cdktf.TerraformStack:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "tiny")
    aws.provider.AwsProvider(
        stack,
        "aws",
        region="us-east-1",
        default_tags=[aws.provider.AwsProviderDefaultTags(tags=default_tags)] if default_tags else None,
    )
    cdktf.Aspects.of(stack).add(SynthChecks("required-tags", [RequiredTags(REQUIRED_TAGS)]))
    return stack


FULL_TAGS = {"environment": "dev", "team": "t", "cost_center": "c", "project": "p"}


def test_required_tags_pass_when_default_tags_cover_resources() -> None:
    stack = _tiny_stack(FULL_TAGS)
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    assert cdktf.Testing.to_have_resource(cdktf.Testing.synth(stack), "aws_sns_topic")


def test_required_tags_fail_synth_naming_path_rule_and_missing_keys() -> None:
    stack = _tiny_stack({"environment": "dev", "team": "t"})
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    with pytest.raises(Exception, match=r"\[tiny/topic\] TAG-1: .*\['cost_center', 'project'\]"):
        cdktf.Testing.synth(stack)


def test_required_tags_reach_launched_instances_and_volumes() -> None:
    stack = _tiny_stack(FULL_TAGS)
    lt = aws.launch_template
    aws.launch_template.LaunchTemplate(
        stack,
        "lt",
        tag_specifications=[lt.LaunchTemplateTagSpecifications(resource_type="instance", tags=FULL_TAGS)],
    )
    with pytest.raises(Exception, match=r"tag_specifications for volume lack"):
        cdktf.Testing.synth(stack)


def test_required_tags_need_propagating_asg_tags() -> None:
    stack = _tiny_stack(FULL_TAGS)
    asg = aws.autoscaling_group
    asg.AutoscalingGroup(
        stack,
        "asg",
        max_size=1,
        min_size=0,
        tag=[asg.AutoscalingGroupTag(key=k, value=v, propagate_at_launch=k != "project") for k, v in FULL_TAGS.items()],
    )
    with pytest.raises(Exception, match=r"propagate_at_launch=true for \['project'\]"):
        cdktf.Testing.synth(stack)


def test_check_error_type_is_exposed_for_callers() -> None:
    checks = SynthChecks("required-tags", [RequiredTags(REQUIRED_TAGS)])
    stack = _tiny_stack(None)
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    violations = checks.violations(stack)
    assert violations == [
        "[tiny/topic] TAG-1: aws_sns_topic.topic lacks tags ['environment', 'team', 'cost_center', 'project'] "
        "(set default_tags on its provider)"
    ]
    assert issubclass(SynthesisCheckError, Exception)


def test_emulator_switch_changes_only_the_provider_block() -> None:
    import json

    plain = json.loads(
        cdktf.Testing.synth(MlPlatformStack(cdktf.Testing.app(), BASE_MATRIX["dev"], DeploymentSettings()))
    )
    emulated = json.loads(
        cdktf.Testing.synth(
            MlPlatformStack(
                cdktf.Testing.app(), BASE_MATRIX["dev"], DeploymentSettings(emulator_endpoint="http://127.0.0.1:4566")
            )
        )
    )
    assert emulated["resource"] == plain["resource"]
    assert emulated.get("data") == plain.get("data")
    assert emulated.get("output") == plain.get("output")
    (provider,) = emulated["provider"]["aws"]
    assert provider["max_retries"] == 3
    assert provider["skip_credentials_validation"] is True
    assert set(provider["endpoints"][0].values()) == {"http://127.0.0.1:4566"}
    assert {"s3", "ec2", "iam", "sagemaker", "eks", "budgets"} <= set(provider["endpoints"][0])


@pytest.mark.parametrize("endpoint", ["http://10.0.0.5:4566", "https://s3.amazonaws.com", "127.0.0.1:4566"])
def test_emulator_endpoint_must_be_loopback(endpoint) -> None:
    from constructs.validation import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"ML_PLATFORM_EMULATOR_ENDPOINT.*loopback"):
        DeploymentSettings.from_environ({"ML_PLATFORM_EMULATOR_ENDPOINT": endpoint})
