"""The Auto Scaling patch through boto3: lifecycle hooks report the targets they were given."""

from __future__ import annotations

import pytest

from emulator import ACCOUNT_ID, REGION, Emulator

pytestmark = pytest.mark.emulator

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/emulator-test"


def test_lifecycle_hook_reports_only_the_requested_targets(aws: Emulator) -> None:
    ec2, autoscaling = aws.client("ec2"), aws.client("autoscaling")
    ec2.create_launch_template(LaunchTemplateName="nodes", LaunchTemplateData={"InstanceType": "g5.xlarge"})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="training",
        LaunchTemplate={"LaunchTemplateName": "nodes"},
        MinSize=0,
        MaxSize=2,
        AvailabilityZones=[f"{REGION}a"],
    )
    hook = {"AutoScalingGroupName": "training", "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING"}
    autoscaling.put_lifecycle_hook(LifecycleHookName="to-eventbridge", **hook)
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:drain"
    autoscaling.put_lifecycle_hook(
        LifecycleHookName="to-sqs", NotificationTargetARN=queue_arn, RoleARN=ROLE_ARN, **hook
    )
    hooks = {
        h["LifecycleHookName"]: h
        for h in autoscaling.describe_lifecycle_hooks(AutoScalingGroupName="training")["LifecycleHooks"]
    }
    assert "NotificationTargetARN" not in hooks["to-eventbridge"] and "RoleARN" not in hooks["to-eventbridge"]
    assert (hooks["to-sqs"]["NotificationTargetARN"], hooks["to-sqs"]["RoleARN"]) == (queue_arn, ROLE_ARN)
