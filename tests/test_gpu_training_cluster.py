"""The GPU training cluster: synthesized resources per environment, IAM, user data, the idle-shutdown wiring,
the function package, and the validation of settings, props and the environment matrix."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.gpu_training_cluster import (
    DEFAULT_AMI_SSM_PARAMETER,
    FUNCTION_SOURCE,
    GpuTrainingCluster,
    GpuTrainingClusterProps,
    GpuTrainingClusterSettings,
    build_function_archive,
)
from constructs.ml_storage import MlStorage, MlStorageProps
from constructs.platform_keys import PlatformKeys, PlatformKeysProps
from constructs.provider_bindings import aws
from constructs.user_data import GpuNodeBootstrapParams, render_gpu_node_user_data
from constructs.validation import ConfigurationError

from stacks.environments import BASE_MATRIX, apply_overrides, load_environments, validate_environment
from tests.conftest import only, policy, resources

CLUSTER_ENVS = ("staging", "prod")
# What the matrix promises per environment (the values the lead and operators rely on).
EXPECTED = {
    "staging": {"max": 2, "on_demand_base": 0, "on_demand_pct": 0, "idle_periods": 6, "retention": 30},
    "prod": {"max": 8, "on_demand_base": 0, "on_demand_pct": 100, "idle_periods": 12, "retention": 365},
}
OWNER_TAGS = {"team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}


def name_of(stack: dict[str, Any], resource_type: str, path_suffix: str, block: str = "resource") -> str:
    """Logical name of the one resource (or data source) of ``resource_type`` whose path ends with the suffix."""
    names = [
        name
        for name, config in stack.get(block, {}).get(resource_type, {}).items()
        if config["//"]["metadata"]["path"].endswith(path_suffix)
    ]
    assert len(names) == 1, f"expected one {resource_type} ending in {path_suffix!r}, found {names}"
    return names[0]


def ref(stack: dict[str, Any], resource_type: str, path_suffix: str, attribute: str) -> str:
    """``${type.name.attribute}`` for the resource whose path ends with ``path_suffix``."""
    return f"${{{resource_type}.{name_of(stack, resource_type, path_suffix)}.{attribute}}}"


def data_ref(stack: dict[str, Any], data_type: str, path_suffix: str, attribute: str) -> str:
    """``${data.type.name.attribute}`` for the data source whose path ends with ``path_suffix``."""
    return f"${{data.{data_type}.{name_of(stack, data_type, path_suffix, block='data')}.{attribute}}}"


def training(stack: dict[str, Any], resource_type: str, suffix: str) -> dict[str, Any]:
    return only(stack, resource_type, f"platform/training/{suffix}")


def asg_arn(stack: dict[str, Any], env: str) -> str:
    partition = data_ref(stack, "aws_partition", "platform/partition", "partition")
    region = data_ref(stack, "aws_region", "platform/region", "name")
    account = data_ref(stack, "aws_caller_identity", "platform/account", "account_id")
    return f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/mlp-{env}-training"


def terraform_unescape(text: str) -> str:
    """What Terraform does to the literal text of a template string."""
    return re.sub(r"([$%])\1\{", r"\1{", text)


# --- what each environment gets ------------------------------------------------------------------------


def test_dev_has_no_training_cluster(stacks) -> None:
    dev = stacks["dev"]
    cluster_paths = [
        config["//"]["metadata"]["path"]
        for by_name in dev["resource"].values()
        for config in by_name.values()
        if "/platform/training/" in config["//"]["metadata"]["path"]
    ]
    assert cluster_paths == []
    for resource_type in ("aws_placement_group", "aws_autoscaling_lifecycle_hook", "aws_autoscaling_schedule"):
        assert resources(dev, resource_type) == {}
    alarms = [c["alarm_name"] for c in resources(dev, "aws_cloudwatch_metric_alarm").values()]
    assert not [name for name in alarms if name.endswith("-training-idle")]
    assert not [c for c in resources(dev, "aws_lambda_function").values() if "idle-shutdown" in c["function_name"]]
    assert not [name for name in dev["output"] if "gpu_training" in name]
    # Staging, by contrast, has the whole cluster: the check above is not vacuous.
    assert resources(stacks["staging"], "aws_placement_group")


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_placement_group_uses_the_cluster_strategy(stacks, env) -> None:
    group = training(stacks[env], "aws_placement_group", "placement-group")
    assert group["strategy"] == "cluster"
    assert group["name"] == f"mlp-{env}-training"


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_launch_template(stacks, env) -> None:
    stack = stacks[env]
    template = training(stack, "aws_launch_template", "launch-template")
    assert template["name"] == f"mlp-{env}-training"
    assert template["instance_type"] == "g5.12xlarge"
    assert template["image_id"] == f"resolve:ssm:{DEFAULT_AMI_SSM_PARAMETER}"
    assert template["block_device_mappings"] == [
        {
            "device_name": "/dev/xvda",
            "ebs": {
                "delete_on_termination": "true",
                "encrypted": "true",
                "kms_key_id": ref(stack, "aws_kms_key", "platform/keys/data", "arn"),
                "volume_size": 100,
                "volume_type": "gp3",
            },
        }
    ]
    assert template["metadata_options"] == {
        "http_endpoint": "enabled",
        "http_put_response_hop_limit": 1,
        "http_tokens": "required",
    }
    assert template["iam_instance_profile"] == {
        "arn": ref(stack, "aws_iam_instance_profile", "training/node-profile", "arn")
    }
    assert template["vpc_security_group_ids"] == [ref(stack, "aws_security_group", "training/nodes-sg", "id")]
    assert "key_name" not in template and "network_interfaces" not in template
    assert template["instance_initiated_shutdown_behavior"] == "terminate"
    assert template["monitoring"] == {"enabled": True}
    local = name_of_local(stack)
    assert template["user_data"] == f"${{base64encode(local.{local})}}"
    launched = {"environment": env, **OWNER_TAGS, "Name": f"mlp-{env}-training-node"}
    assert template["tag_specifications"] == [
        {"resource_type": kind, "tags": launched} for kind in ("instance", "volume", "network-interface")
    ]


def name_of_local(stack: dict[str, Any]) -> str:
    names = [name for name in stack.get("locals", {}) if "training_node-user-data" in name]
    assert len(names) == 1, names
    return names[0]


def header_references(stack: dict[str, Any]) -> dict[str, str]:
    """The script parameters Terraform fills in: the region and the three bucket names."""
    return {
        "region": data_ref(stack, "aws_region", "platform/region", "name"),
        "data_bucket": ref(stack, "aws_s3_bucket", "storage/training-data/bucket", "bucket"),
        "checkpoint_bucket": ref(stack, "aws_s3_bucket", "storage/checkpoints/bucket", "bucket"),
        "artifacts_bucket": ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "bucket"),
    }


def expected_script(stack: dict[str, Any], env: str) -> str:
    """The bootstrap script as the nodes must receive it, with Terraform references for the region and buckets."""
    params = GpuNodeBootstrapParams(
        cluster_name=f"mlp-{env}-training",
        lifecycle_hook_name="checkpoint-on-terminate",
        asg_name=f"mlp-{env}-training",
        data_prefix="datasets/",
        metrics_namespace="MLPlatform/GPUTraining",
        checkpoint_grace_seconds=60,
        **header_references(stack),
    )
    return render_gpu_node_user_data(params)


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_user_data_is_the_bootstrap_script_with_live_bucket_names(stacks, env) -> None:
    stack = stacks[env]
    template = stack["locals"][name_of_local(stack)]
    script = terraform_unescape(template)
    assert script == expected_script(stack, env)
    data_bucket = ref(stack, "aws_s3_bucket", "storage/training-data/bucket", "bucket")
    assert f"readonly DATA_BUCKET='{data_bucket}'\n" in script
    # Every interpolation left in the template is one of the header's references, nothing from the body.
    interpolations = set(re.findall(r"(?<!\$)\$\{[^}]*\}", template))
    assert interpolations == set(header_references(stack).values())


@pytest.mark.terraform
@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_decodes_the_user_data_to_the_script(stacks, tmp_path) -> None:
    from tests.support.terraform import run_terraform, terraform_cli_env

    stack = stacks["staging"]
    local = name_of_local(stack)
    concrete = {
        "region": "us-east-1",
        "data_bucket": "mlp-staging-training-data-123456789012",
        "checkpoint_bucket": "mlp-staging-checkpoints-123456789012",
        "artifacts_bucket": "mlp-staging-model-artifacts-123456789012",
    }
    template = stack["locals"][local]
    # The values Terraform would read from the bucket and region resources, substituted for the references.
    for field, reference in header_references(stack).items():
        template = template.replace(reference, concrete[field])
    launch_template = training(stack, "aws_launch_template", "launch-template")
    config = {"locals": {local: template}, "output": {"user_data": {"value": launch_template["user_data"]}}}
    (tmp_path / "main.tf.json").write_text(json.dumps(config))
    env = terraform_cli_env(tmp_path)
    run_terraform(["init", "-backend=false", "-no-color"], tmp_path, env)
    run_terraform(["apply", "-auto-approve", "-no-color"], tmp_path, env)
    encoded = run_terraform(["output", "-raw", "user_data"], tmp_path, env).stdout
    expected = expected_script(stack, "staging")
    for field, reference in header_references(stack).items():
        expected = expected.replace(reference, concrete[field])
    assert base64.b64decode(encoded).decode() == expected
    assert "readonly DATA_BUCKET='mlp-staging-training-data-123456789012'\n" in expected


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_nodes_accept_traffic_only_from_each_other(stacks, env) -> None:
    stack = stacks[env]
    group = training(stack, "aws_security_group", "nodes-sg")
    assert "ingress" not in group and "egress" not in group
    group_id = ref(stack, "aws_security_group", "training/nodes-sg", "id")
    ingress = [
        c
        for c in resources(stack, "aws_vpc_security_group_ingress_rule").values()
        if c["security_group_id"] == group_id
    ]
    egress = [
        c for c in resources(stack, "aws_vpc_security_group_egress_rule").values() if c["security_group_id"] == group_id
    ]
    strip = lambda rule: {k: v for k, v in rule.items() if k not in ("//", "description")}  # noqa: E731
    assert [strip(r) for r in ingress] == [
        {"ip_protocol": "-1", "referenced_security_group_id": group_id, "security_group_id": group_id}
    ]
    assert sorted((strip(r) for r in egress), key=json.dumps) == sorted(
        [
            {"ip_protocol": "-1", "referenced_security_group_id": group_id, "security_group_id": group_id},
            {
                "cidr_ipv4": "0.0.0.0/0",
                "from_port": 443,
                "ip_protocol": "tcp",
                "security_group_id": group_id,
                "to_port": 443,
            },
        ],
        key=json.dumps,
    )


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_auto_scaling_group(stacks, stack_json, env) -> None:
    stack = stacks[env]
    group = training(stack, "aws_autoscaling_group", "asg")
    expected = EXPECTED[env]
    template_name = name_of(stack, "aws_launch_template", "training/launch-template")
    assert group["mixed_instances_policy"] == {
        "instances_distribution": {
            "on_demand_allocation_strategy": "prioritized",
            "on_demand_base_capacity": expected["on_demand_base"],
            "on_demand_percentage_above_base_capacity": expected["on_demand_pct"],
            "spot_allocation_strategy": "price-capacity-optimized",
        },
        "launch_template": {
            "launch_template_specification": {
                "launch_template_id": f"${{aws_launch_template.{template_name}.id}}",
                "version": f"${{aws_launch_template.{template_name}.latest_version}}",
            },
            "override": [{"instance_type": "g5.12xlarge"}, {"instance_type": "g6.12xlarge"}],
        },
    }
    assert len(group["mixed_instances_policy"]["launch_template"]["override"]) >= 2
    assert (group["min_size"], group["desired_capacity"], group["max_size"]) == (0, 0, expected["max"])
    assert group["lifecycle"] == {"ignore_changes": ["desired_capacity"]}
    assert group["vpc_zone_identifier"] == [ref(stack, "aws_subnet", "network/private-0", "id")]
    assert group["placement_group"] == ref(stack, "aws_placement_group", "training/placement-group", "id")
    assert group["capacity_rebalance"] is True
    assert group["instance_refresh"] == {
        "strategy": "Rolling",
        "preferences": {"min_healthy_percentage": 0, "skip_matching": True},
    }
    assert group["tag"] == [
        {"key": key, "value": value, "propagate_at_launch": True}
        for key, value in {"environment": env, **OWNER_TAGS, "Name": f"mlp-{env}-training-node"}.items()
    ]
    assert cdktf.Testing.to_have_resource_with_properties(
        stack_json[env],
        aws.autoscaling_group.AutoscalingGroup.TF_RESOURCE_TYPE,
        {"name": f"mlp-{env}-training", "wait_for_capacity_timeout": "0", "default_cooldown": 300},
    )


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_termination_hook_gives_nodes_time_to_checkpoint(stacks, env) -> None:
    stack = stacks[env]
    hook = training(stack, "aws_autoscaling_lifecycle_hook", "termination-hook")
    assert {k: v for k, v in hook.items() if k != "//"} == {
        "name": "checkpoint-on-terminate",
        "autoscaling_group_name": ref(stack, "aws_autoscaling_group", "training/asg", "name"),
        "lifecycle_transition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "heartbeat_timeout": 300,
        "default_result": "CONTINUE",
    }
    # The script completes exactly this hook.
    assert "readonly LIFECYCLE_HOOK_NAME=checkpoint-on-terminate\n" in stack["locals"][name_of_local(stack)]


def test_staging_scales_to_zero_every_night_and_prod_does_not(stacks) -> None:
    staging = stacks["staging"]
    schedule = training(staging, "aws_autoscaling_schedule", "nightly-scale-to-zero")
    assert {k: v for k, v in schedule.items() if k != "//"} == {
        "scheduled_action_name": "mlp-staging-training-scale-to-zero",
        "autoscaling_group_name": ref(staging, "aws_autoscaling_group", "training/asg", "name"),
        "recurrence": "0 20 * * *",
        "time_zone": "America/New_York",
        "desired_capacity": 0,
        "min_size": -1,
        "max_size": -1,
    }
    assert resources(stacks["prod"], "aws_autoscaling_schedule") == {}


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_spot_interruptions_are_published_to_the_encrypted_topic(stacks, env) -> None:
    stack = stacks[env]
    rule = training(stack, "aws_cloudwatch_event_rule", "spot-interruption-rule")
    assert json.loads(rule["event_pattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation"],
    }
    topic_arn = ref(stack, "aws_sns_topic", "training/events-topic", "arn")
    target = training(stack, "aws_cloudwatch_event_target", "spot-interruption-to-topic")
    assert target["arn"] == topic_arn
    assert target["rule"] == ref(stack, "aws_cloudwatch_event_rule", "training/spot-interruption-rule", "name")
    assert target["input_transformer"]["input_paths"]["instance"] == "$.detail.instance-id"
    topic = training(stack, "aws_sns_topic", "events-topic")
    key_arn = ref(stack, "aws_kms_key", "training/notifications-key", "arn")
    assert topic["kms_master_key_id"] == key_arn
    topic_policy = training(stack, "aws_sns_topic_policy", "events-topic-policy")
    assert topic_policy["arn"] == topic_arn
    assert policy(topic_policy["policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InterruptionRulePublishes",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {
                    "ArnEquals": {
                        "aws:SourceArn": ref(
                            stack, "aws_cloudwatch_event_rule", "training/spot-interruption-rule", "arn"
                        )
                    }
                },
            }
        ],
    }
    subscription = training(stack, "aws_sns_topic_subscription", "events-email-0")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ml-platform-alerts@example.com")


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_notification_key_lets_eventbridge_and_the_function_publish(stacks, env) -> None:
    stack = stacks[env]
    key = training(stack, "aws_kms_key", "notifications-key")
    assert key["enable_key_rotation"] is True
    # The environment's key rule: 14 days in staging, the 30-day maximum in protected prod.
    assert key["deletion_window_in_days"] == {"staging": 14, "prod": 30}[env]
    region = data_ref(stack, "aws_region", "platform/region", "name")
    root = (
        f"arn:{data_ref(stack, 'aws_partition', 'platform/partition', 'partition')}:iam::"
        f"{data_ref(stack, 'aws_caller_identity', 'platform/account', 'account_id')}:root"
    )
    statements = policy(key["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == [
        "AccountAdministersKey",
        "AccountUsesKeyThroughSns",
        "EventBridgePublishesToTopic",
    ]
    assert statements[1] == {
        "Sid": "AccountUsesKeyThroughSns",
        "Effect": "Allow",
        "Principal": {"AWS": root},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
    }
    assert statements[2] == {
        "Sid": "EventBridgePublishesToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
    }


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_idle_alarm_invokes_the_shutdown_function(stacks, env) -> None:
    stack = stacks[env]
    periods = EXPECTED[env]["idle_periods"]
    function_arn = ref(stack, "aws_lambda_function", "training/idle-shutdown", "arn")
    alarm = training(stack, "aws_cloudwatch_metric_alarm", "idle-alarm")
    assert {k: v for k, v in alarm.items() if k not in ("//", "alarm_description")} == {
        "alarm_name": f"mlp-{env}-training-idle",
        "namespace": "MLPlatform/GPUTraining",
        "metric_name": "nvidia_smi_utilization_gpu",
        "dimensions": {"AutoScalingGroupName": f"mlp-{env}-training"},
        "statistic": "Maximum",
        "period": 300,
        "evaluation_periods": periods,
        "datapoints_to_alarm": periods,
        "threshold": 5,
        "comparison_operator": "LessThanThreshold",
        "treat_missing_data": "notBreaching",
        "alarm_actions": [function_arn],
    }
    permission = training(stack, "aws_lambda_permission", "idle-alarm-invokes-function")
    assert {k: v for k, v in permission.items() if k != "//"} == {
        "statement_id": "IdleAlarmInvokes",
        "action": "lambda:InvokeFunction",
        "function_name": ref(stack, "aws_lambda_function", "training/idle-shutdown", "function_name"),
        "principal": "lambda.alarms.cloudwatch.amazonaws.com",
        "source_arn": ref(stack, "aws_cloudwatch_metric_alarm", "training/idle-alarm", "arn"),
        "source_account": data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
    }


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_idle_shutdown_function(stacks, synth_dir, env) -> None:
    stack = stacks[env]
    function = training(stack, "aws_lambda_function", "idle-shutdown")
    topic_arn = ref(stack, "aws_sns_topic", "training/events-topic", "arn")
    assert function["function_name"] == f"mlp-{env}-training-idle-shutdown"
    assert (function["runtime"], function["handler"]) == ("python3.12", "handler.handler")
    # Reserving concurrency would fail on new accounts (default limit 10); the handler is idempotent.
    assert "reserved_concurrent_executions" not in function
    assert function["role"] == ref(stack, "aws_iam_role", "training/idle-shutdown-role", "arn")
    assert function["environment"] == {
        "variables": {
            "ASG_NAME": f"mlp-{env}-training",
            "SNS_TOPIC_ARN": topic_arn,
            "ALARM_NAME": f"mlp-{env}-training-idle",
            "IDLE_THRESHOLD": "5",
            "EVALUATION_PERIODS": str(EXPECTED[env]["idle_periods"]),
        }
    }
    assert function["dead_letter_config"] == {"target_arn": topic_arn}
    log_group = training(stack, "aws_cloudwatch_log_group", "idle-shutdown-logs")
    assert log_group["name"] == f"/aws/lambda/mlp-{env}-training-idle-shutdown"
    assert log_group["retention_in_days"] == EXPECTED[env]["retention"]
    assert log_group["kms_key_id"] == ref(stack, "aws_kms_key", "platform/keys/logs", "arn")
    assert function["logging_config"] == {
        "log_format": "Text",
        "log_group": ref(stack, "aws_cloudwatch_log_group", "training/idle-shutdown-logs", "name"),
    }
    # The package is shipped with the stack, holds exactly the handler, and its hash is what Lambda reports.
    package = synth_dir / "stacks" / env / function["filename"]
    data = package.read_bytes()
    assert function["source_code_hash"] == base64.b64encode(hashlib.sha256(data).digest()).decode()
    with zipfile.ZipFile(package) as archive:
        assert archive.namelist() == ["handler.py"]
        assert archive.read("handler.py") == (FUNCTION_SOURCE / "handler.py").read_bytes()


# --- IAM: the exact policies of both roles ------------------------------------------------------------------


def role_policies(stack: dict[str, Any], role_suffix: str) -> dict[str, dict[str, Any]]:
    role = ref(stack, "aws_iam_role", role_suffix, "name")
    return {
        c["name"]: policy(c["policy"]) for c in resources(stack, "aws_iam_role_policy").values() if c["role"] == role
    }


def role_attachments(stack: dict[str, Any], role_suffix: str) -> list[str]:
    role = ref(stack, "aws_iam_role", role_suffix, "name")
    return [c["policy_arn"] for c in resources(stack, "aws_iam_role_policy_attachment").values() if c["role"] == role]


def bucket_statements(bucket_arn: str, sid: str, prefix: str, key_arn: str, write: bool) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = [
        {
            "Sid": f"{sid}ListBucket",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        },
        {"Sid": f"{sid}LocateBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation", "Resource": bucket_arn},
        {
            "Sid": f"{sid}ReadObjects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
            "Resource": f"{bucket_arn}/{prefix}*",
        },
    ]
    if write:
        statements.append(
            {
                "Sid": f"{sid}WriteObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
                "Resource": f"{bucket_arn}/{prefix}*",
            }
        )
    statements.append(
        {
            "Sid": f"{sid}UseBucketKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"] if write else "kms:Decrypt",
            "Resource": key_arn,
            "Condition": {"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}},
        }
    )
    return statements


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_node_role_policies_are_exactly_least_privilege(stacks, env) -> None:
    stack = stacks[env]
    partition = data_ref(stack, "aws_partition", "platform/partition", "partition")
    region = data_ref(stack, "aws_region", "platform/region", "name")
    account = data_ref(stack, "aws_caller_identity", "platform/account", "account_id")
    data_key = ref(stack, "aws_kms_key", "platform/keys/data", "arn")
    bucket = lambda purpose: ref(stack, "aws_s3_bucket", f"storage/{purpose}/bucket", "arn")  # noqa: E731
    cluster = f"mlp-{env}-training"

    role = training(stack, "aws_iam_role", "node-role")
    assert policy(role["assume_role_policy"]) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrustedServices",
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    assert role_policies(stack, "training/node-role") == {
        "read-training-data": {
            "Version": "2012-10-17",
            "Statement": bucket_statements(bucket("training-data"), "TrainingData", "datasets/", data_key, write=False),
        },
        "read-write-checkpoints": {
            "Version": "2012-10-17",
            "Statement": bucket_statements(
                bucket("checkpoints"), "Checkpoints", f"checkpoints/{cluster}/", data_key, write=True
            ),
        },
        "read-write-model-artifacts": {
            "Version": "2012-10-17",
            "Statement": bucket_statements(
                bucket("model-artifacts"), "ModelArtifacts", f"artifacts/{cluster}/", data_key, write=True
            ),
        },
        "node-operations": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "EcrAuthorizationToken",
                    "Effect": "Allow",
                    "Action": "ecr:GetAuthorizationToken",
                    "Resource": "*",
                },
                {
                    "Sid": "EcrPullImages",
                    "Effect": "Allow",
                    "Action": ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    "Resource": f"arn:{partition}:ecr:{region}:{account}:repository/*",
                },
                {
                    "Sid": "PublishGpuMetrics",
                    "Effect": "Allow",
                    "Action": "cloudwatch:PutMetricData",
                    "Resource": "*",
                    "Condition": {"StringEquals": {"cloudwatch:namespace": "MLPlatform/GPUTraining"}},
                },
                {"Sid": "ReadOwnAutoScalingGroupTag", "Effect": "Allow", "Action": "ec2:DescribeTags", "Resource": "*"},
                {
                    "Sid": "CompleteTerminationLifecycleAction",
                    "Effect": "Allow",
                    "Action": "autoscaling:CompleteLifecycleAction",
                    "Resource": asg_arn(stack, env),
                },
            ],
        },
    }
    assert role_attachments(stack, "training/node-role") == [
        f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ]
    profile = training(stack, "aws_iam_instance_profile", "node-profile")
    assert profile["role"] == ref(stack, "aws_iam_role", "training/node-role", "name")


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_function_role_policy_is_exactly_least_privilege(stacks, env) -> None:
    stack = stacks[env]
    region = data_ref(stack, "aws_region", "platform/region", "name")
    role = training(stack, "aws_iam_role", "idle-shutdown-role")
    assert role["name"] == f"mlp-{env}-training-idle-shutdown"
    assert policy(role["assume_role_policy"])["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert role_policies(stack, "training/idle-shutdown-role") == {
        "idle-shutdown": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteOwnLogs",
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": ref(stack, "aws_cloudwatch_log_group", "training/idle-shutdown-logs", "arn") + ":*",
                },
                {
                    "Sid": "DescribeAutoScalingGroups",
                    "Effect": "Allow",
                    "Action": "autoscaling:DescribeAutoScalingGroups",
                    "Resource": "*",
                },
                {"Sid": "RecheckUtilization", "Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"},
                {
                    "Sid": "ScaleThisClusterToZero",
                    "Effect": "Allow",
                    "Action": "autoscaling:SetDesiredCapacity",
                    "Resource": asg_arn(stack, env),
                },
                {
                    "Sid": "NotifyOperators",
                    "Effect": "Allow",
                    "Action": "sns:Publish",
                    "Resource": ref(stack, "aws_sns_topic", "training/events-topic", "arn"),
                },
                {
                    "Sid": "UseNotificationKeyThroughSns",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                    "Resource": ref(stack, "aws_kms_key", "training/notifications-key", "arn"),
                    "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
                },
            ],
        }
    }
    assert role_attachments(stack, "training/idle-shutdown-role") == []


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_data_key_lets_auto_scaling_launch_encrypted_volumes(stacks, env) -> None:
    stack = stacks[env]
    key = only(stack, "aws_kms_key", "platform/keys/data")
    by_sid = {s["Sid"]: s for s in policy(key["policy"])["Statement"]}
    conditions = {
        "kms:CallerAccount": data_ref(stack, "aws_caller_identity", "platform/account", "account_id"),
        "kms:ViaService": f"ec2.{data_ref(stack, 'aws_region', 'platform/region', 'name')}.amazonaws.com",
    }
    assert by_sid["AccountServiceRolesUseKeyForVolumes"] == {
        "Sid": "AccountServiceRolesUseKeyForVolumes",
        "Effect": "Allow",
        "Principal": {"AWS": "*"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": conditions},
    }
    assert by_sid["AccountServiceRolesAttachEncryptedVolumes"]["Condition"]["StringEquals"] == conditions


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_cluster_outputs(stacks, env) -> None:
    stack = stacks[env]
    values = {name: output["value"] for name, output in stack["output"].items()}
    assert values["gpu_training_asg_name"] == ref(stack, "aws_autoscaling_group", "training/asg", "name")
    assert values["gpu_training_launch_template_id"] == ref(
        stack, "aws_launch_template", "training/launch-template", "id"
    )
    assert values["gpu_training_events_topic_arn"] == ref(stack, "aws_sns_topic", "training/events-topic", "arn")


# --- the function package ---------------------------------------------------------------------------------


def test_function_archive_is_reproducible_and_holds_only_python(tmp_path: Path) -> None:
    source = tmp_path / "fn"
    (source / "__pycache__").mkdir(parents=True)
    (source / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00stale")
    (source / "README.md").write_text("notes")
    first = build_function_archive(source)
    (source / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00other")
    second = build_function_archive(source)
    assert first == second
    with zipfile.ZipFile(first.path) as archive:
        assert archive.namelist() == ["handler.py"]
    assert first.sha256_base64 == base64.b64encode(hashlib.sha256(first.path.read_bytes()).digest()).decode()
    (source / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    assert build_function_archive(source).sha256_hex != first.sha256_hex


def test_function_archive_needs_python_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="function source"):
        build_function_archive(tmp_path)


# --- settings validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"min_size": 3, "max_size": 2}, "min_size", "a value <= max_size (2)"),
        ({"instance_types": ("g5.12xlarge", "p4d.24xlarge")}, "instance_types", "the same GPU count"),
        ({"instance_types": ("g5.12xlarge", "x9.huge")}, "instance_types", "one of 'g4dn.xlarge'"),
        ({"instance_types": ("m6i.large", "c6i.large")}, "instance_types", "one of 'g4dn.xlarge'"),
        ({"instance_types": ("p3.8xlarge", "g4dn.12xlarge")}, "instance_types", "Turing or newer GPUs: p3.8xlarge"),
        ({"instance_types": ("g6e.12xlarge", "g5.12xlarge")}, "instance_types", "at least the GPU memory"),
        ({"instance_types": ("g5.12xlarge",)}, "instance_types", "at least two types when spot is used"),
        ({"instance_types": ("g5.12xlarge", "g5.12xlarge")}, "instance_types", "each type at most once"),
        ({"instance_types": ["g5.12xlarge", "g6.12xlarge"]}, "instance_types", "a list of"),
        ({"max_size": 0}, "max_size", "from 1 to 100"),
        ({"on_demand_base_capacity": 3}, "on_demand_base_capacity", "from 0 to 2"),
        ({"on_demand_percentage_above_base": 101}, "on_demand_percentage_above_base", "from 0 to 100"),
        ({"root_volume_size_gb": 50}, "root_volume_size_gb", "from 100 to 16384"),
        ({"root_device_name": "/dev/sda1"}, "root_device_name", "'/dev/xvda', the root device of the AMI"),
        ({"ami_ssm_parameter": "ami-0123456789abcdef0"}, "ami_ssm_parameter", "the name of an SSM parameter"),
        ({"imds_hop_limit": 3}, "imds_hop_limit", "one of 1, 2"),
        (
            {"efa_enabled": True, "instance_types": ("g5.xlarge", "g6.xlarge")},
            "efa_enabled",
            "g5.xlarge, g6.xlarge have no EFA",
        ),
        ({"data_prefix": "/datasets"}, "data_prefix", "a relative S3 prefix ending in '/'"),
        ({"checkpoint_grace_seconds": 200}, "checkpoint_grace_seconds", "from 5 to 110"),
        ({"termination_heartbeat_seconds": 100}, "termination_heartbeat_seconds", "from 120 to 7200"),
        ({"idle_minutes": 42}, "idle_minutes", "a multiple of 5 from 15 to 1440"),
        ({"idle_gpu_utilization_percent": 0}, "idle_gpu_utilization_percent", "from 1 to 50"),
        ({"scale_to_zero_cron": "every night"}, "scale_to_zero_cron", "a 5-field cron expression"),
        ({"scale_to_zero_cron": "0 20 * * *", "schedule_time_zone": "CET+1"}, "schedule_time_zone", "IANA time zone"),
        ({"schedule_time_zone": ""}, "schedule_time_zone", "IANA time zone"),
        ({"scale_to_zero_cron": "0 20 * * *", "min_size": 1}, "min_size", "0 when scale_to_zero_cron is set"),
        ({"ecr_repository_arns": ("arn:aws:s3:::bucket",)}, "ecr_repository_arns", "ECR repository ARNs"),
        ({"log_retention_days": 10}, "log_retention_days", "one of 1, 3, 5"),
        ({"notification_emails": ("not-an-address",)}, "notification_emails", "e-mail addresses"),
    ],
)
def test_bad_settings_name_the_field(overrides: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        GpuTrainingClusterSettings(**overrides)
    assert caught.value.where == "GpuTrainingClusterSettings"
    assert caught.value.field == field
    assert fragment in str(caught.value)


def test_settings_accept_the_documented_alternatives() -> None:
    ubuntu = "/aws/service/deeplearning/ami/x86_64/oss-nvidia-driver-gpu-pytorch-2.13-ubuntu-24.04/latest/ami-id"
    settings = GpuTrainingClusterSettings(
        instance_types=("p4d.24xlarge", "p4de.24xlarge"),
        ami_ssm_parameter=ubuntu,
        root_device_name="/dev/sda1",
        efa_enabled=True,
        imds_hop_limit=2,
        data_prefix="",
        scale_to_zero_cron="30 19 * * MON-FRI",
        schedule_time_zone="Europe/Berlin",
    )
    assert settings.instance_types == ("p4d.24xlarge", "p4de.24xlarge")
    # On-demand only needs no second type, and a proprietary-driver AMI may run Volta GPUs.
    proprietary = "/ml-platform/amis/gpu-training-proprietary-driver"
    assert GpuTrainingClusterSettings(
        instance_types=("p3.8xlarge",), on_demand_percentage_above_base=100, ami_ssm_parameter=proprietary
    ).instance_types == ("p3.8xlarge",)


# --- the environment matrix ----------------------------------------------------------------------------------


def test_matrix_gives_training_to_staging_and_prod_only() -> None:
    assert BASE_MATRIX["dev"].training is None
    staging, prod = BASE_MATRIX["staging"].training, BASE_MATRIX["prod"].training
    assert staging is not None and prod is not None
    assert staging.max_size < prod.max_size
    assert staging.on_demand_percentage_above_base == 0 and prod.on_demand_percentage_above_base == 100
    assert staging.scale_to_zero_cron is not None and prod.scale_to_zero_cron is None


def test_gpu_cluster_in_dev_is_rejected() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(BASE_MATRIX, {"dev": {"training.instance_types": ["g5.12xlarge", "g6.12xlarge"]}})
    assert "environment 'dev'" in str(caught.value) and "enabled section" in str(caught.value)

    enabled = dataclasses.replace(BASE_MATRIX["dev"], training=GpuTrainingClusterSettings())
    with pytest.raises(ConfigurationError) as caught:
        validate_environment(enabled)
    assert caught.value.field == "training.instance_types"
    assert "non-GPU instance types only" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"staging": {"training.min_size": 3}}, "training.min_size", "a value <= max_size (2)"),
        (
            {"prod": {"training.instance_types": ["g5.12xlarge", "p3.16xlarge"]}},
            "training.instance_types",
            "same GPU count",
        ),
        ({"prod": {"training.instance_types": ["g5.12xlarge", "z1.gpu"]}}, "training.instance_types", "one of"),
        ({"staging": {"training.idle_minutes": 7}}, "training.idle_minutes", "a multiple of 5"),
    ],
)
def test_bad_training_overrides_fail_clearly(overrides: dict[str, Any], field: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    env = next(iter(overrides))
    assert f"environment '{env}'" in str(caught.value)
    assert f"field '{field}'" in str(caught.value)
    assert fragment in str(caught.value)


def test_training_overrides_apply() -> None:
    overrides = {"prod": {"training.max_size": 4}, "staging": {"training.scale_to_zero_cron": None}}
    configs = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})
    assert configs["prod"].training is not None and configs["prod"].training.max_size == 4
    assert configs["staging"].training is not None and configs["staging"].training.scale_to_zero_cron is None


# --- construct props -----------------------------------------------------------------------------------------


def build_cluster(**overrides: Any) -> cdktf.TerraformStack:
    """A stack with keys, storage and one cluster whose props take ``overrides``."""
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "test")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    keys = PlatformKeys(
        stack, "keys", PlatformKeysProps(name_prefix="t", account_id="123456789012", region="us-east-1")
    )
    storage = MlStorage(
        stack, "storage", MlStorageProps(name_prefix="t", account_id="123456789012", data_key=keys.data)
    )
    props = {
        "name": "t-training",
        "settings": GpuTrainingClusterSettings(),
        "vpc_id": "vpc-0123",
        "subnet_id": "subnet-0123",
        "data_key": keys.data,
        "logs_key": keys.logs,
        "training_data": storage.training_data,
        "checkpoints": storage.checkpoints,
        "artifacts": storage.model_artifacts,
        "account_id": "123456789012",
        "region": "us-east-1",
        "partition": "aws",
        "tags": {"environment": "t", **OWNER_TAGS},
        **overrides,
    }
    GpuTrainingCluster(stack, "training", GpuTrainingClusterProps(**props))
    return stack


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"name": "Training_Cluster"}, "name"),
        ({"name": "a" * 39}, "name"),
        ({"subnet_id": ""}, "subnet_id"),
        ({"tags": {}}, "tags"),
        ({"key_deletion_window_days": 3}, "key_deletion_window_days"),
    ],
)
def test_bad_props_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_cluster(**overrides)
    assert caught.value.where == "test/training"
    assert caught.value.field == field


def test_efa_and_repository_list_shape_the_nodes() -> None:
    repository = "arn:aws:ecr:us-east-1:123456789012:repository/trainers/pytorch"
    settings = GpuTrainingClusterSettings(efa_enabled=True, ecr_repository_arns=(repository,), imds_hop_limit=2)
    config = json.loads(cdktf.Testing.synth(build_cluster(settings=settings)))
    (template,) = config["resource"]["aws_launch_template"].values()
    (group,) = config["resource"]["aws_security_group"].values()
    group_name = next(iter(config["resource"]["aws_security_group"]))
    assert group["name"] == "t-training-nodes"
    assert template["network_interfaces"] == [
        {
            "delete_on_termination": "true",
            "device_index": 0,
            "interface_type": "efa",
            "security_groups": [f"${{aws_security_group.{group_name}.id}}"],
        }
    ]
    assert "vpc_security_group_ids" not in template
    assert template["metadata_options"]["http_put_response_hop_limit"] == 2
    operations = next(
        policy(c["policy"])
        for c in config["resource"]["aws_iam_role_policy"].values()
        if c["name"] == "node-operations"
    )
    pull = next(s for s in operations["Statement"] if s["Sid"] == "EcrPullImages")
    assert pull["Resource"] == repository
