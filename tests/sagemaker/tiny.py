"""A tiny platform to build one SageMaker construct in: a data key, a logs key, a VPC with two private subnets
and secure buckets, with literal account, region and partition."""

from __future__ import annotations

from typing import Any

from constructs.core.bindings import aws
from constructs.sagemaker.endpoint import SageMakerEndpoint, SageMakerEndpointProps
from constructs.sagemaker.settings import SageMakerEndpointSettings
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.settings import BucketLifecycle

from tests.support.stacks import TinyStack

DATA_KEY = "test/key"
"""Construct path of the data key (:attr:`TinyStack.key`)."""


class TinyPlatform(TinyStack):
    """A stack named ``test`` with the parts SageMaker constructs attach to."""

    def __init__(self) -> None:
        super().__init__("test")
        self.logs_key = aws.kms_key.KmsKey(self.stack, "logs-key", enable_key_rotation=True)
        self.vpc = aws.vpc.Vpc(self.stack, "vpc", cidr_block="10.0.0.0/16")
        self.private_subnets = tuple(
            aws.subnet.Subnet(self.stack, f"private-{i}", vpc_id=self.vpc.id, cidr_block=f"10.0.{i}.0/24")
            for i in range(2)
        )

    def bucket(self, purpose: str) -> SecureBucket:
        """A bucket encrypted with the data key that Terraform may destroy."""
        return SecureBucket(
            self.stack,
            purpose,
            SecureBucketProps(
                bucket_name=f"test-{purpose}", kms_key=self.key, lifecycle=BucketLifecycle(prevent_destroy=False)
            ),
        )


def endpoint_stack(settings: SageMakerEndpointSettings, **overrides: Any) -> tuple[dict[str, Any], SageMakerEndpoint]:
    """The endpoint construct ``test/sagemaker`` alone (props replaced by ``overrides``), and its configuration."""
    platform = TinyPlatform()
    props: dict[str, Any] = {
        "context": platform.context,
        "settings": settings,
        "model_artifacts": platform.bucket("model-artifacts"),
        "data_key": platform.key,
        "logs_key": platform.logs_key,
        "vpc": platform.vpc,
        "private_subnets": platform.private_subnets,
    }
    props.update(overrides)
    endpoint = SageMakerEndpoint(platform.stack, "sagemaker", SageMakerEndpointProps(**props))
    return platform.synth_with_paths(), endpoint
