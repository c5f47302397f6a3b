"""The idle-shutdown Lambda handler, run for real against moto's EC2, Auto Scaling, CloudWatch, SNS and SQS.

Assertions read state back from moto (the ASG's capacity, the message that reached the SQS subscriber),
never the values the test wrote itself. One moto mock serves the whole module: before each test every moto
backend is reset and the cluster is built again from nothing, so no state crosses from one test to the next,
while botocore's service models are loaded once instead of once per test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import boto3
import pytest
from constructs.training.function_archive import FUNCTION_SOURCE
from moto import mock_aws
from moto.core.models import MockAWS

from tests.support.functions import load_handler as load_function_handler

REGION = "us-east-1"
ALARM = "gpu-training-idle"
NAMESPACE = "MLPlatform/GPUTraining"
METRIC = "nvidia_smi_utilization_gpu"


def load_handler() -> ModuleType:
    # Lambda imports the file as a top-level module; so do the tests, without touching sys.path.
    return load_function_handler(FUNCTION_SOURCE, "idle_shutdown_handler")


handler_module = load_handler()


def alarm_event(asg_name: str, *, state: str = "ALARM", name: str = ALARM, threshold: float = 5.0) -> dict:
    """A Lambda alarm-action event shaped like CloudWatch's (see the CloudWatch user guide's example)."""
    evaluated = [{"timestamp": f"2024-05-01T10:0{i}:00.000+0000", "value": 0.5} for i in range(5)]
    reason = {"version": "1.0", "statistic": "Average", "period": 60, "threshold": threshold}
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:{REGION}:123456789012:alarm:{name}",
        "accountId": "123456789012",
        "time": "2024-05-01T10:05:00.000+0000",
        "region": REGION,
        "alarmData": {
            "alarmName": name,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 5 datapoints were less than the threshold (5.0).",
                "reasonData": json.dumps({**reason, "evaluatedDatapoints": evaluated}),
                "timestamp": "2024-05-01T10:05:00.000+0000",
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": "2024-05-01T09:00:00.000+0000"},
            "configuration": {
                "description": "GPU cluster idle",
                "metrics": [
                    {
                        "id": "1234e046-06f0-a3da-9534-EXAMPLEe4c",
                        "metricStat": {
                            "metric": {
                                "namespace": NAMESPACE,
                                "name": METRIC,
                                "dimensions": {"AutoScalingGroupName": asg_name},
                            },
                            "period": 60,
                            "stat": "Average",
                        },
                        "returnData": True,
                    }
                ],
            },
        },
    }


@dataclass(frozen=True)
class Aws:
    """The module's moto mock and the clients the tests read state back with."""

    mock: MockAWS
    ec2: Any
    autoscaling: Any
    cloudwatch: Any
    sns: Any
    sqs: Any


class Cluster:
    """A GPU training ASG with two running instances and an SNS topic with an SQS subscriber."""

    def __init__(self, aws: Aws, min_size: int = 0) -> None:
        ec2 = aws.ec2
        vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
        image = ec2.register_image(Name="gpu-node-image", RootDeviceName="/dev/xvda")["ImageId"]
        ec2.create_launch_template(
            LaunchTemplateName="gpu-node", LaunchTemplateData={"ImageId": image, "InstanceType": "g5.xlarge"}
        )
        self.asg_name = "gpu-training-asg"
        self.autoscaling = aws.autoscaling
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=self.asg_name,
            LaunchTemplate={"LaunchTemplateName": "gpu-node", "Version": "$Latest"},
            MinSize=min_size,
            MaxSize=4,
            DesiredCapacity=2,
            VPCZoneIdentifier=subnet,
        )
        self.topic_arn = aws.sns.create_topic(Name="gpu-cluster-events")["TopicArn"]
        self.sqs = aws.sqs
        self.queue_url = self.sqs.create_queue(QueueName="ops-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        aws.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn["Attributes"]["QueueArn"])
        self.cloudwatch = aws.cloudwatch

    def group(self) -> dict[str, Any]:
        groups = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[self.asg_name])
        return groups["AutoScalingGroups"][0]

    def put_utilization(self, values: list[float], minutes_ago_start: int = 1, asg_name: str | None = None) -> None:
        now = datetime.now(UTC)
        self.cloudwatch.put_metric_data(
            Namespace=NAMESPACE,
            MetricData=[
                {
                    "MetricName": METRIC,
                    "Dimensions": [{"Name": "AutoScalingGroupName", "Value": asg_name or self.asg_name}],
                    "Timestamp": now - timedelta(minutes=minutes_ago_start + i),
                    "Value": value,
                    "Unit": "Percent",
                }
                for i, value in enumerate(values)
            ],
        )

    def notifications(self) -> list[dict[str, Any]]:
        received = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


@pytest.fixture(scope="module")
def aws() -> Iterator[Aws]:
    """One moto mock for the module, with test credentials and without the catalogues these tests never read."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        # Neither catalogue is needed here, and loading them costs seconds: the public AMIs, and the
        # AWS-managed IAM policies (the emulator launcher turns those on for the whole process).
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        patch.setenv("MOTO_IAM_LOAD_MANAGED_POLICIES", "false")
        # The handler's clients are created on first use; they must talk to this mock, and nothing after it.
        handler_module._clients.clear()
        with mock_aws() as mock:
            services = ("ec2", "autoscaling", "cloudwatch", "sns", "sqs")
            yield Aws(mock, *(boto3.client(service, region_name=REGION) for service in services))
        handler_module._clients.clear()


@pytest.fixture
def cluster(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """A fresh cluster in emptied moto backends, and the function's environment pointing at it."""
    aws.mock.reset()
    for name in ("IDLE_THRESHOLD", "EVALUATION_PERIODS"):
        monkeypatch.delenv(name, raising=False)
    fake = Cluster(aws)
    monkeypatch.setenv("ASG_NAME", fake.asg_name)
    monkeypatch.setenv("SNS_TOPIC_ARN", fake.topic_arn)
    monkeypatch.setenv("ALARM_NAME", ALARM)
    assert fake.group()["DesiredCapacity"] == 2
    assert len(fake.group()["Instances"]) == 2
    assert fake.notifications() == []
    return fake


def assert_untouched(cluster: Cluster) -> None:
    group = cluster.group()
    assert group["DesiredCapacity"] == 2
    assert len(group["Instances"]) == 2
    assert cluster.notifications() == []


def test_idle_cluster_is_scaled_to_zero_and_notified(cluster: Cluster) -> None:
    cluster.put_utilization([0.0, 1.5, 2.0, 0.5])

    outcome = handler_module.handler(alarm_event(cluster.asg_name))

    group = cluster.group()
    assert group["DesiredCapacity"] == 0
    assert group["MinSize"] == 0
    assert outcome["action"] == "scaled_to_zero"
    assert outcome["previous_desired_capacity"] == 2
    assert outcome["peak"] == 2.0
    (notification,) = cluster.notifications()
    assert notification["TopicArn"] == cluster.topic_arn
    assert notification["Subject"] == "GPU cluster gpu-training-asg scaled to 0 (idle)"
    assert "gpu-training-asg" in notification["Message"]
    assert "from 2 to 0" in notification["Message"]
    assert f"Alarm: {ALARM}" in notification["Message"]


def test_busy_cluster_is_left_alone(cluster: Cluster) -> None:
    cluster.put_utilization([0.5, 87.0, 1.0])

    outcome = handler_module.handler(alarm_event(cluster.asg_name))

    assert outcome["action"] == "none"
    assert outcome["reason"] == "cluster is busy"
    assert outcome["peak"] == 87.0
    assert_untouched(cluster)


def test_only_the_evaluation_window_counts(cluster: Cluster) -> None:
    # Busy 20 minutes ago, idle for the last five one-minute periods the alarm evaluates.
    cluster.put_utilization([95.0], minutes_ago_start=20)
    cluster.put_utilization([1.0, 0.0, 2.0])

    outcome = handler_module.handler(alarm_event(cluster.asg_name))

    assert outcome["action"] == "scaled_to_zero"
    assert cluster.group()["DesiredCapacity"] == 0


def test_other_clusters_metrics_are_ignored(cluster: Cluster) -> None:
    cluster.put_utilization([99.0], asg_name="some-other-asg")
    cluster.put_utilization([1.0])

    assert handler_module.handler(alarm_event(cluster.asg_name))["action"] == "scaled_to_zero"
    assert cluster.group()["DesiredCapacity"] == 0


def test_env_threshold_overrides_the_alarm_threshold(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLE_THRESHOLD", "1")
    cluster.put_utilization([2.0])

    outcome = handler_module.handler(alarm_event(cluster.asg_name, threshold=5.0))

    assert outcome["reason"] == "cluster is busy"
    assert_untouched(cluster)


def test_ok_state_does_nothing(cluster: Cluster) -> None:
    cluster.put_utilization([0.0])

    outcome = handler_module.handler(alarm_event(cluster.asg_name, state="OK"))

    assert outcome == {
        "action": "none",
        "reason": "alarm state is OK",
        "alarm": ALARM,
        "asg": cluster.asg_name,
    }
    assert_untouched(cluster)


def test_missing_metric_data_leaves_the_cluster_alone(cluster: Cluster) -> None:
    outcome = handler_module.handler(alarm_event(cluster.asg_name))

    assert outcome["reason"] == "no metric data in the evaluation window"
    assert_untouched(cluster)


def test_nonzero_min_size_is_respected(cluster: Cluster) -> None:
    cluster.autoscaling.update_auto_scaling_group(AutoScalingGroupName=cluster.asg_name, MinSize=1)
    cluster.put_utilization([0.0])

    outcome = handler_module.handler(alarm_event(cluster.asg_name))

    assert outcome["action"] == "none"
    assert outcome["reason"] == "MinSize is 1, not 0"
    assert_untouched(cluster)


def _without_alarm_data(event: dict) -> dict:
    del event["alarmData"]
    return event


def _with_numeric_state(event: dict) -> dict:
    event["alarmData"]["state"]["value"] = 1
    return event


def _with_unknown_state(event: dict) -> dict:
    event["alarmData"]["state"]["value"] = "FIRING"
    return event


def _with_state_string(event: dict) -> dict:
    event["alarmData"]["state"] = "ALARM"
    return event


def _with_metric_math(event: dict) -> dict:
    event["alarmData"]["configuration"]["metrics"].insert(0, {"id": "e1", "expression": "m1/2"})
    return event


def _without_period(event: dict) -> dict:
    del event["alarmData"]["configuration"]["metrics"][0]["metricStat"]["period"]
    return event


def _from_another_alarm(event: dict) -> dict:
    event["alarmData"]["alarmName"] = "someone-elses-alarm"
    return event


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            _without_alarm_data,
            "alarmData is missing (this function must be invoked as a CloudWatch alarm action)",
        ),
        (_with_numeric_state, "alarmData.state.value must be a non-empty string, got 1"),
        (_with_unknown_state, "alarmData.state.value must be one of ('OK', 'ALARM', 'INSUFFICIENT_DATA')"),
        (_with_state_string, "alarmData.state must be an object, got 'ALARM'"),
        (_with_metric_math, "must hold exactly one metricStat (metric math alarms are not supported)"),
        (_without_period, "alarmData.configuration.metrics[0].metricStat.period is missing"),
        (
            _from_another_alarm,
            "alarm 'someone-elses-alarm' is not the expected 'gpu-training-idle' (ALARM_NAME)",
        ),
    ],
)
def test_malformed_events_raise_and_change_nothing(cluster: Cluster, mutate: Any, message: str) -> None:
    cluster.put_utilization([0.0])

    with pytest.raises(ValueError) as raised:
        handler_module.handler(mutate(alarm_event(cluster.asg_name)))

    assert message in str(raised.value)
    assert str(raised.value).startswith("invalid alarm event: ")
    assert_untouched(cluster)


def test_non_object_event_is_rejected(cluster: Cluster) -> None:
    with pytest.raises(ValueError, match="expected a JSON object, got list"):
        handler_module.handler([])
    assert_untouched(cluster)


def test_missing_configuration_is_reported_before_any_change(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNS_TOPIC_ARN")
    cluster.put_utilization([0.0])

    with pytest.raises(RuntimeError, match="environment variable SNS_TOPIC_ARN is not set"):
        handler_module.handler(alarm_event(cluster.asg_name))

    assert cluster.group()["DesiredCapacity"] == 2
