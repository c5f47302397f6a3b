"""The SageMaker patches through boto3: unset configs, GPU instance types, requested settings."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, REGION, Emulator

pytestmark = pytest.mark.emulator

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/emulator-test"


def test_sagemaker_omits_unset_configs_and_accepts_gpu_instances(aws: Emulator) -> None:
    sagemaker = aws.client("sagemaker")
    sagemaker.create_model(
        ModelName="llm",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/llm:1"},
    )
    assert "VpcConfig" not in sagemaker.describe_model(ModelName="llm")

    sagemaker.create_model(
        ModelName="llm-vpc",
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/llm:1"},
        VpcConfig={"SecurityGroupIds": ["sg-12345678"], "Subnets": ["subnet-12345678"]},
    )
    assert sagemaker.describe_model(ModelName="llm-vpc")["VpcConfig"]["Subnets"] == ["subnet-12345678"]

    variant = {"VariantName": "primary", "ModelName": "llm", "InitialInstanceCount": 1}
    for instance_type in ("ml.g5.xlarge", "ml.g6.2xlarge", "ml.p4d.24xlarge", "ml.p5.48xlarge"):
        sagemaker.create_endpoint_config(
            EndpointConfigName=f"cfg-{instance_type.replace('.', '-')}",
            ProductionVariants=[{**variant, "InstanceType": instance_type}],
        )
    config = sagemaker.describe_endpoint_config(EndpointConfigName="cfg-ml-g5-xlarge")
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    assert "DataCaptureConfig" not in config
    with pytest.raises(ClientError) as bogus:
        sagemaker.create_endpoint_config(
            EndpointConfigName="bogus", ProductionVariants=[{**variant, "InstanceType": "ml.bogus.xlarge"}]
        )
    assert bogus.value.response["Error"]["Code"] == "ValidationException"

    sagemaker.create_endpoint(EndpointName="llm", EndpointConfigName="cfg-ml-g5-xlarge")
    assert "DataCaptureConfig" not in sagemaker.describe_endpoint(EndpointName="llm")


def test_sagemaker_keeps_network_isolation_and_deployment_config(aws: Emulator) -> None:
    sagemaker = aws.client("sagemaker")
    container = {"Image": f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/llm:1"}
    sagemaker.create_model(
        ModelName="isolated", ExecutionRoleArn=ROLE_ARN, PrimaryContainer=container, EnableNetworkIsolation=True
    )
    sagemaker.create_model(ModelName="open", ExecutionRoleArn=ROLE_ARN, PrimaryContainer=container)
    assert sagemaker.describe_model(ModelName="isolated")["EnableNetworkIsolation"] is True
    assert sagemaker.describe_model(ModelName="open")["EnableNetworkIsolation"] is False

    variant = {
        "VariantName": "primary",
        "ModelName": "isolated",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.g5.xlarge",
    }
    sagemaker.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=[variant])
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600},
            "TerminationWaitInSeconds": 300,
            "MaximumExecutionTimeoutInSeconds": 2700,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "llm-5xx-errors"}]},
    }
    sagemaker.create_endpoint(EndpointName="llm", EndpointConfigName="cfg", DeploymentConfig=deployment)
    sagemaker.create_endpoint(EndpointName="plain", EndpointConfigName="cfg")
    # DescribeEndpoint reports the configuration of the last deployment under this name.
    assert sagemaker.describe_endpoint(EndpointName="llm")["LastDeploymentConfig"] == deployment
    assert "LastDeploymentConfig" not in sagemaker.describe_endpoint(EndpointName="plain")
