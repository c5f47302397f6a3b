"""A real-time endpoint for the idle handler's tests, built through boto3 in moto or in the emulator, the events
that invoke the handler, and the handler itself, loaded the way Lambda loads it (a top-level module)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

from botocore.exceptions import ClientError
from constructs.sagemaker.idle import FUNCTION_SOURCE
from constructs.sagemaker.idle_settings import IDLE_TAG, PARK_EVENT

from tests.support.functions import load_handler as load_function_handler

ACCOUNT = "123456789012"
REGION = "us-east-1"
ENDPOINT = "mlp-test-inference"
ALARM = f"{ENDPOINT}-primary-idle"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/mlp-test-inference-sagemaker"
SERVICES = ("sagemaker", "cloudwatch", "sns", "sqs", "application-autoscaling")


def load_handler() -> ModuleType:
    """``functions/endpoint_idle/handler.py`` as Lambda imports it, without touching ``sys.path``."""
    return load_function_handler(FUNCTION_SOURCE, "endpoint_idle_handler")


def alarm_event(alarm: str = ALARM, state: str = "ALARM") -> dict[str, Any]:
    """A Lambda alarm-action event shaped like CloudWatch's (see the CloudWatch user guide's example)."""
    return {
        "source": "aws.cloudwatch",
        "alarmArn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm}",
        "accountId": ACCOUNT,
        "time": "2026-05-01T20:05:00.000+0000",
        "region": REGION,
        "alarmData": {
            "alarmName": alarm,
            "state": {
                "value": state,
                "reason": "Threshold Crossed: 12 datapoints were less than the threshold (1.0).",
                "timestamp": "2026-05-01T20:05:00.000+0000",
            },
            "previousState": {"value": "OK", "reason": "", "timestamp": "2026-05-01T18:00:00.000+0000"},
            "configuration": {
                "metrics": [
                    {
                        "id": "1",
                        "metricStat": {
                            "metric": {
                                "namespace": "AWS/SageMaker",
                                "name": "Invocations",
                                "dimensions": {"EndpointName": ENDPOINT, "VariantName": "primary"},
                            },
                            "period": 300,
                            "stat": "Sum",
                        },
                        "returnData": True,
                    }
                ]
            },
        },
    }


def park_event() -> dict[str, str]:
    """The parking schedule's payload, as the construct configures it."""
    return dict(PARK_EVENT)


@dataclass(frozen=True)
class Clients:
    """boto3 clients of one AWS (moto or the emulator), for building the endpoint and reading state back."""

    sagemaker: Any
    cloudwatch: Any
    sns: Any
    sqs: Any
    scaling: Any


class FakeEndpoint:
    """An InService endpoint of instance variants (or one serverless variant), its model, configuration and
    (optionally) autoscaling, and an SNS topic with an SQS subscriber standing in for operators."""

    def __init__(
        self,
        aws: Clients,
        *,
        variants: dict[str, int] | None = None,
        tag: str | None = "delete_endpoint",
        serverless: bool = False,
        autoscaling: bool = False,
    ) -> None:
        self.aws = aws
        self.name = ENDPOINT
        self.variants = variants or {"primary": 3, "candidate": 2}
        self.model = f"{ENDPOINT}-v1-0a1b2c3d"
        self.config = f"{ENDPOINT}-20260501200000000000000001"
        sm = aws.sagemaker
        sm.create_model(
            ModelName=self.model,
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={"Image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/inference:1"},
        )
        if serverless:
            self.variants = {"primary": 0}
            production = [
                {
                    "VariantName": "primary",
                    "ModelName": self.model,
                    "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                }
            ]
        else:
            production = [
                {
                    "VariantName": variant,
                    "ModelName": self.model,
                    "InstanceType": "ml.m5.xlarge",
                    "InitialInstanceCount": count,
                    "InitialVariantWeight": 1.0,
                }
                for variant, count in self.variants.items()
            ]
        sm.create_endpoint_config(EndpointConfigName=self.config, ProductionVariants=production)
        tags = [{"Key": IDLE_TAG, "Value": tag}] if tag else []
        sm.create_endpoint(EndpointName=self.name, EndpointConfigName=self.config, Tags=tags)
        if autoscaling:
            for variant in self.variants:
                self._autoscaling(variant)
        self.topic_arn = aws.sns.create_topic(Name="serving-events")["TopicArn"]
        self.queue_url = aws.sqs.create_queue(QueueName="ops-inbox")["QueueUrl"]
        queue = aws.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
        aws.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue["Attributes"]["QueueArn"])

    def _autoscaling(self, variant: str) -> None:
        target = {
            "ServiceNamespace": "sagemaker",
            "ResourceId": f"endpoint/{self.name}/variant/{variant}",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        }
        self.aws.scaling.register_scalable_target(**target, MinCapacity=1, MaxCapacity=4)
        self.aws.scaling.put_scaling_policy(
            **target,
            PolicyName=f"{self.name}-{variant}-invocations-per-instance",
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": 100.0,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            },
        )

    def describe(self) -> dict[str, Any] | None:
        """DescribeEndpoint, or None once it is gone."""
        try:
            endpoint: dict[str, Any] = self.aws.sagemaker.describe_endpoint(EndpointName=self.name)
        except ClientError as error:
            assert "Could not find endpoint" in error.response["Error"]["Message"]
            return None
        return endpoint

    def counts(self) -> dict[str, int]:
        """Desired instance count of each variant, read back from SageMaker."""
        endpoint = self.describe()
        assert endpoint is not None
        return {v["VariantName"]: v["DesiredInstanceCount"] for v in endpoint["ProductionVariants"]}

    def kept(self) -> tuple[str, str]:
        """The configuration and model, read back: the next deploy needs both."""
        config = self.aws.sagemaker.describe_endpoint_config(EndpointConfigName=self.config)
        model = self.aws.sagemaker.describe_model(ModelName=self.model)
        return config["EndpointConfigName"], model["ModelName"]

    def scalable_targets(self) -> list[str]:
        """Resource IDs of the scalable targets of this endpoint's variants."""
        targets = self.aws.scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
        return sorted(t["ResourceId"] for t in targets if t["ResourceId"].startswith(f"endpoint/{self.name}/"))

    def scaling_policies(self) -> list[str]:
        """Names of the scaling policies of this endpoint's variants."""
        policies = self.aws.scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
        return sorted(p["PolicyName"] for p in policies if p["ResourceId"].startswith(f"endpoint/{self.name}/"))

    def set_status(self, status: str) -> None:
        """Put the endpoint in ``status`` (``Updating`` while a deploy runs), as moto cannot be asked to."""
        from moto.sagemaker.models import sagemaker_backends

        sagemaker_backends[ACCOUNT][REGION].endpoints[self.name].endpoint_status = status

    def put_invocations(self, count: float, minutes_ago: int, variant: str = "primary", endpoint: str = "") -> None:
        """Publish ``count`` invocations of ``variant`` ``minutes_ago`` minutes ago, as SageMaker does."""
        self.aws.cloudwatch.put_metric_data(
            Namespace="AWS/SageMaker",
            MetricData=[
                {
                    "MetricName": "Invocations",
                    "Dimensions": [
                        {"Name": "EndpointName", "Value": endpoint or self.name},
                        {"Name": "VariantName", "Value": variant},
                    ],
                    "Timestamp": datetime.now(UTC) - timedelta(minutes=minutes_ago),
                    "Value": count,
                    "Unit": "None",
                }
            ],
        )

    def notifications(self) -> list[dict[str, Any]]:
        """The notices that reached the operators' queue."""
        received = self.aws.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        return [json.loads(m["Body"]) for m in received.get("Messages", [])]


def function_environment(endpoint: FakeEndpoint, action: str = "delete_endpoint", **extra: str) -> dict[str, str]:
    """The function's environment variables as the construct sets them (plus the topic this test provides)."""
    variables = {
        "ENDPOINT_NAME": endpoint.name,
        "IDLE_ACTION": action,
        "IDLE_MINUTES": "60",
        "ALARM_NAMES": ",".join(f"{endpoint.name}-{v}-idle" for v in endpoint.variants),
        "SNS_TOPIC_ARN": endpoint.topic_arn,
    }
    if action == "scale_to_minimum":
        variables["MIN_INSTANCE_COUNT"] = "1"
    variables.update(extra)
    return variables
