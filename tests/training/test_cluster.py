"""The GPU training cluster as synthesized per environment (placement group, launch template, Auto Scaling,
termination hook, schedule, interruption events, keys, the node role's exact policies, outputs), and the
construct's own props checks."""

from __future__ import annotations

import json
from typing import Any

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.storage.settings import PlatformKeysSettings
from constructs.training.cluster import MAX_CLUSTER_NAME_LENGTH
from constructs.training.settings import DEFAULT_AMI_SSM_PARAMETER, GpuTrainingClusterSettings

from tests.support.stacks import DEPLOYER_ARN, context
from tests.support.stacks import OWNER_TAGS as TINY_OWNER_TAGS
from tests.support.synth_json import (
    allow,
    arn_parts,
    data_ref,
    doc,
    name_of,
    only,
    policy,
    ref,
    resources,
    role_attachments,
    role_policies,
)
from tests.training.clusters import (
    CLUSTER_ENVS,
    EXPECTED,
    OWNER_TAGS,
    asg_arn,
    build_cluster,
    training,
    user_data_local,
)

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
    assert template["user_data"] == f"${{base64encode(local.{user_data_local(stack)})}}"
    launched = {"environment": env, **OWNER_TAGS, "Name": f"mlp-{env}-training-node"}
    assert template["tag_specifications"] == [
        {"resource_type": kind, "tags": launched} for kind in ("instance", "volume", "network-interface")
    ]


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
    assert "readonly LIFECYCLE_HOOK_NAME=checkpoint-on-terminate\n" in stack["locals"][user_data_local(stack)]


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
    assert policy(topic_policy["policy"]) == doc(
        {
            "Sid": "InterruptionRulePublishes",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sns:Publish",
            "Resource": topic_arn,
            "Condition": {
                "ArnEquals": {
                    "aws:SourceArn": ref(stack, "aws_cloudwatch_event_rule", "training/spot-interruption-rule", "arn")
                }
            },
        }
    )
    subscription = training(stack, "aws_sns_topic_subscription", "events-email-0")
    assert (subscription["protocol"], subscription["endpoint"]) == ("email", "ml-platform-alerts@example.com")


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_notification_key_lets_eventbridge_and_the_function_publish(stacks, env) -> None:
    stack = stacks[env]
    key = training(stack, "aws_kms_key", "notifications-key")
    assert key["enable_key_rotation"] is True
    # The environment's key rule: 14 days in staging, the 30-day maximum in protected prod.
    assert key["deletion_window_in_days"] == {"staging": 14, "prod": 30}[env]
    partition, region, account = arn_parts(stack)
    statements = policy(key["policy"])["Statement"]
    assert [s["Sid"] for s in statements] == [
        "AccountReadsKey",
        "AdministratorsManageKey",
        "AccountUsesKeyThroughSns",
        "EventBridgePublishesToTopic",
    ]
    # Administered like the platform's own keys: by the deploying role, the account only reads.
    platform_data_key = policy(only(stack, "aws_kms_key", "platform/keys/data")["policy"])["Statement"]
    assert statements[:2] == platform_data_key[:2]
    assert statements[1]["Principal"] == {
        "AWS": [data_ref(stack, "aws_iam_session_context", "platform/deployer", "issuer_arn")]
    }
    assert statements[0]["Principal"] == {"AWS": f"arn:{partition}:iam::{account}:root"}
    assert statements[0]["Action"] == [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListGrants",
        "kms:ListKeyPolicies",
        "kms:ListResourceTags",
    ]
    assert statements[2] == {
        "Sid": "AccountUsesKeyThroughSns",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
        "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
    }
    # SNS supports no aws:SourceArn/aws:SourceAccount for EventBridge here: the topic's encryption context binds
    # the statement, to exactly the topic EventBridge publishes to (whose ARN the key cannot refer to).
    topic_arn = f"arn:{partition}:sns:{region}:{account}:mlp-{env}-training-events"
    assert training(stack, "aws_sns_topic", "events-topic")["name"] == f"mlp-{env}-training-events"
    assert statements[3] == {
        "Sid": "EventBridgePublishesToTopic",
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}},
    }


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


# --- the node role's exact policies --------------------------------------------------------------------------


def bucket_statements(bucket_arn: str, sid: str, prefix: str, key_arn: str, write: bool) -> list[dict[str, Any]]:
    """The statements of a SecureBucket grant scoped to ``prefix`` (read, or read-write)."""
    objects = f"{bucket_arn}/{prefix}*"
    statements = [
        allow(f"{sid}ListBucket", "s3:ListBucket", bucket_arn, StringLike={"s3:prefix": [f"{prefix}*"]}),
        allow(f"{sid}LocateBucket", "s3:GetBucketLocation", bucket_arn),
        allow(f"{sid}ReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], objects),
    ]
    if write:
        writes = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
        statements.append(allow(f"{sid}WriteObjects", writes, objects))
    key_actions = ["kms:Decrypt", "kms:GenerateDataKey"] if write else "kms:Decrypt"
    via_s3 = {"kms:ViaService": "s3.*.amazonaws.com"}
    return [*statements, allow(f"{sid}UseBucketKey", key_actions, key_arn, StringLike=via_s3)]


@pytest.mark.parametrize("env", CLUSTER_ENVS)
def test_node_role_policies_are_exactly_least_privilege(stacks, env) -> None:
    stack = stacks[env]
    partition, region, account = arn_parts(stack)
    data_key = ref(stack, "aws_kms_key", "platform/keys/data", "arn")
    bucket = lambda purpose: ref(stack, "aws_s3_bucket", f"storage/{purpose}/bucket", "arn")  # noqa: E731
    cluster = f"mlp-{env}-training"

    role = training(stack, "aws_iam_role", "node-role")
    assert policy(role["assume_role_policy"]) == doc(
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )
    assert role_policies(stack, "training/node-role") == {
        "read-training-data": doc(
            *bucket_statements(bucket("training-data"), "TrainingData", "datasets/", data_key, write=False)
        ),
        "read-write-checkpoints": doc(
            *bucket_statements(bucket("checkpoints"), "Checkpoints", f"checkpoints/{cluster}/", data_key, write=True)
        ),
        "read-write-model-artifacts": doc(
            *bucket_statements(
                bucket("model-artifacts"), "ModelArtifacts", f"artifacts/{cluster}/", data_key, write=True
            )
        ),
        "node-operations": doc(
            allow("EcrAuthorizationToken", "ecr:GetAuthorizationToken", "*"),
            allow(
                "EcrPullImages",
                ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                f"arn:{partition}:ecr:{region}:{account}:repository/*",
            ),
            allow(
                "PublishGpuMetrics",
                "cloudwatch:PutMetricData",
                "*",
                StringEquals={"cloudwatch:namespace": "MLPlatform/GPUTraining"},
            ),
            allow("ReadOwnAutoScalingGroupTag", "ec2:DescribeTags", "*"),
            allow("CompleteTerminationLifecycleAction", "autoscaling:CompleteLifecycleAction", asg_arn(stack, env)),
        ),
    }
    assert role_attachments(stack, "training/node-role") == [
        f"arn:{partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
    ]
    profile = training(stack, "aws_iam_instance_profile", "node-profile")
    assert profile["role"] == ref(stack, "aws_iam_role", "training/node-role", "name")


# --- construct props -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"name": "Training_Cluster"},
        {"name": "bad name"},
        {"name": ""},
        {"name": "-training"},
        {"name": "a" * (MAX_CLUSTER_NAME_LENGTH + 1)},
        {"subnet_id": ""},
    ],
)
def test_bad_props_name_the_field(overrides: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_cluster(**overrides)
    assert caught.value.where == "test/training"
    (field,) = overrides
    assert caught.value.field == field
    if field == "name":
        assert "1-45 lowercase letters, digits and '-'" in caught.value.allowed


def test_longest_cluster_name_fits_every_name_built_from_it() -> None:
    # The spot interruption rule's name is the longest one; EventBridge allows 64 characters.
    assert MAX_CLUSTER_NAME_LENGTH == 45
    name = "a" * MAX_CLUSTER_NAME_LENGTH
    tiny, _ = build_cluster(name=name)
    config = tiny.synth_with_paths()
    built = {
        "aws_cloudwatch_event_rule": next(iter(resources(config, "aws_cloudwatch_event_rule").values()))["name"],
        "aws_lambda_function": next(iter(resources(config, "aws_lambda_function").values()))["function_name"],
        "aws_iam_role": max((c["name"] for c in resources(config, "aws_iam_role").values()), key=len),
    }
    assert built["aws_cloudwatch_event_rule"] == f"{name}-spot-interruptions"
    assert all(value.startswith(name) and len(value) <= 64 for value in built.values()), built
    assert len(built["aws_cloudwatch_event_rule"]) == 64


def test_cluster_context_needs_every_owner_tag() -> None:
    # Launched instances and volumes carry the context's owner tags; a context without them cannot be built.
    partial = {key: value for key, value in TINY_OWNER_TAGS.items() if key != "cost_center"}
    with pytest.raises(ConfigurationError) as caught:
        context(owner_tags=partial)
    assert (caught.value.where, caught.value.field) == ("PlatformContext", "owner_tags")
    with pytest.raises(ConfigurationError) as caught:
        context(owner_tags={})
    assert caught.value.field == "owner_tags"


def test_notification_key_follows_the_key_settings() -> None:
    with pytest.raises(ConfigurationError) as caught:
        PlatformKeysSettings(deletion_window_days=3)
    assert (caught.value.where, caught.value.field) == ("PlatformKeysSettings", "deletion_window_days")
    assert "a whole number from 7 to 30" in caught.value.allowed
    tiny, _ = build_cluster(keys=PlatformKeysSettings(deletion_window_days=7))
    config = tiny.synth_with_paths()
    assert only(config, "aws_kms_key", "training/notifications-key")["deletion_window_in_days"] == 7


def test_notification_key_is_administered_by_the_platform_key_administrators() -> None:
    admins = ("arn:aws:iam::123456789012:role/break-glass", "arn:aws:iam::123456789012:role/ci/deploy")
    tiny, _ = build_cluster(keys=PlatformKeysSettings(admin_role_arns=admins))
    config = tiny.synth_with_paths()
    notifications = policy(only(config, "aws_kms_key", "training/notifications-key")["policy"])["Statement"]
    data = policy(only(config, "aws_kms_key", "keys/data")["policy"])["Statement"]
    assert notifications[1]["Sid"] == "AdministratorsManageKey"
    assert notifications[1]["Principal"] == {"AWS": [DEPLOYER_ARN, *admins]}
    assert notifications[:2] == data[:2]


def test_efa_and_repository_list_shape_the_nodes() -> None:
    repository = "arn:aws:ecr:us-east-1:123456789012:repository/trainers/pytorch"
    settings = GpuTrainingClusterSettings(efa_enabled=True, ecr_repository_arns=(repository,), imds_hop_limit=2)
    tiny, _ = build_cluster(settings)
    config = tiny.synth_with_paths()
    template = only(config, "aws_launch_template", "training/launch-template")
    group = only(config, "aws_security_group", "training/nodes-sg")
    assert group["name"] == "t-training-nodes"
    assert template["network_interfaces"] == [
        {
            "delete_on_termination": "true",
            "device_index": 0,
            "interface_type": "efa",
            "security_groups": [ref(config, "aws_security_group", "training/nodes-sg", "id")],
        }
    ]
    assert "vpc_security_group_ids" not in template
    assert template["metadata_options"]["http_put_response_hop_limit"] == 2
    operations = next(
        policy(c["policy"]) for c in resources(config, "aws_iam_role_policy").values() if c["name"] == "node-operations"
    )
    pull = next(s for s in operations["Statement"] if s["Sid"] == "EcrPullImages")
    assert pull["Resource"] == repository
