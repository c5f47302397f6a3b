"""What the training tests share: the matrix's cluster environments and what they promise, queries for the
cluster's resources in a synthesized stack, and a tiny stack to build one cluster in."""

from __future__ import annotations

from typing import Any

from constructs.core.context import PlatformContext
from constructs.storage.keys import PlatformKeys, PlatformKeysProps
from constructs.storage.ml_storage import MlStorage, MlStorageProps
from constructs.storage.settings import PlatformKeysSettings, StorageSettings
from constructs.training.cluster import GpuTrainingCluster, GpuTrainingClusterProps
from constructs.training.settings import GpuTrainingClusterSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import arn_parts, data_ref, only, ref

CLUSTER_ENVS = ("staging", "prod")
# What the matrix promises per environment (the values the lead and operators rely on).
EXPECTED = {
    "staging": {"max": 2, "on_demand_base": 0, "on_demand_pct": 0, "idle_periods": 6, "retention": 30},
    "prod": {"max": 8, "on_demand_base": 0, "on_demand_pct": 100, "idle_periods": 12, "retention": 365},
}
# The matrix's owner tags besides `environment`, written out so the tests do not read them from the product.
OWNER_TAGS = {"team": "ml-platform", "cost_center": "cc-4711", "project": "mlp"}
# The role that runs Terraform in the tiny stacks (a real platform reads it from aws_iam_session_context).


def training(stack: dict[str, Any], resource_type: str, suffix: str) -> dict[str, Any]:
    """The one cluster resource of ``resource_type`` whose construct path ends with ``training/<suffix>``."""
    return only(stack, resource_type, f"platform/training/{suffix}")


def asg_arn(stack: dict[str, Any], env: str) -> str:
    """The ARN of the environment's training Auto Scaling group, as the policies spell it."""
    partition, region, account = arn_parts(stack)
    return f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:autoScalingGroupName/mlp-{env}-training"


def user_data_local(stack: dict[str, Any]) -> str:
    """The name of the Terraform local holding the nodes' bootstrap script."""
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


def build_cluster(
    settings: GpuTrainingClusterSettings | None = None,
    *,
    context: PlatformContext | None = None,
    keys: PlatformKeysSettings | None = None,
    **overrides: Any,
) -> tuple[TinyStack, GpuTrainingCluster]:
    """A tiny stack named ``test`` with the platform's keys, storage and one cluster ``training`` in it.

    ``context`` replaces the stack's context (its name prefix names the buckets), ``keys`` the key settings
    and ``overrides`` any other prop of the cluster (its name is ``t-training`` unless overridden).
    """
    tiny = TinyStack("test")
    c = context or tiny.context
    key_settings = keys or PlatformKeysSettings()
    platform_keys = PlatformKeys(tiny.stack, "keys", PlatformKeysProps(context=c, settings=key_settings))
    storage = MlStorage(
        tiny.stack, "storage", MlStorageProps(context=c, data_key=platform_keys.data, settings=StorageSettings())
    )
    props: dict[str, Any] = {
        "name": "t-training",
        "settings": settings or GpuTrainingClusterSettings(),
        "context": c,
        "vpc_id": "vpc-0123",
        "subnet_id": "subnet-0123",
        "data_key": platform_keys.data,
        "logs_key": platform_keys.logs,
        "training_data": storage.training_data,
        "checkpoints": storage.checkpoints,
        "artifacts": storage.model_artifacts,
        "keys": key_settings,
        "key_administrators": platform_keys.administrators,
        **overrides,
    }
    return tiny, GpuTrainingCluster(tiny.stack, "training", GpuTrainingClusterProps(**props))
