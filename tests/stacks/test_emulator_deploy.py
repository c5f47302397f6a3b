"""The product's own environment shapes, deployed end to end against the local AWS emulator.

Two shapes go through a real Terraform cycle, concurrently, against one in-process moto emulator
(``emulator``): staging, the GPU-bearing shape (GPU training cluster with its
placement group, spot ASG and idle-shutdown Lambda; EKS with CPU and g5 GPU node groups; a GPU
SageMaker endpoint), and dev (CPU-only EKS, serverless SageMaker). Each is synthesized in-process by
``main.build_app`` with the product's switches, ``ML_PLATFORM_EMULATOR_ENDPOINT`` (which changes only
the AWS provider block) and ``ML_PLATFORM_BACKEND=local``, then its AWS part (``aws_only``: the helm
and kubernetes providers have no binaries offline) goes through ``terraform init`` (offline mirror) ->
``apply`` -> ``plan -detailed-exitcode`` (must report no changes) -> a plan of the same shape synthesized
with ``tags.project`` renamed (dev: tags change in place; nothing is added, replaced or destroyed) -> ``destroy``.
boto3 checks the emulator after apply (every resource as the environment matrix configures it) and after destroy
(nothing left). Nothing is excluded from the AWS part: MLflow's database (with its RDS-managed password, which
must not appear in the Terraform state), its roles, its admin secret and its DNS-validated certificate are
applied too (tests/stacks/mlflow_checks.py); only the alias record of the controller-made load balancer reads an
in-cluster resource, and goes with the in-cluster part.

The shapes are the matrix's own, sizes included. Two overrides apply to both: a published model
version (``sagemaker.model_version``), which is what creates the SageMaker model, endpoint
configuration, endpoint and autoscaling (without it an environment has none of them), and the models of
examples/model-serving.json (dev's CPU model; staging's GPU model with the GPU node group it grows), whose AWS
side is applied and destroyed too: each model's IRSA role and policy, its DNS-validated certificate, and in
staging the access-log bucket's statement for the load balancers' logs (tests/stacks/serving_checks.py).

Alongside them, on the same emulator, prod's data resources go through tests/stacks/protection_cycle.py:
a destroy plan must fail on every one of them, and a renamed project must replace nothing.

Staging keeps its buckets on destroy (no ``force_destroy``) and its access-log bucket fills with S3
server access logs, so its teardown is an operator's: stop the log delivery (a targeted destroy of
the ``aws_s3_bucket_logging`` resources), empty the kept buckets, then destroy.

Slow (about 3 minutes here, mostly the provider's own waits): deselect with ``-m "not slow"``
(``make test-fast``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, REGION, Emulator
from gitops.terraform import aws_only, run_terraform
from stacks.emulator import emulator_provider_arguments
from stacks.environment import EnvironmentConfig
from stacks.overrides import load_environments
from tests.stacks.mlflow_checks import (
    assert_mlflow,
    create_hosted_zones,
    delete_hosted_zones,
    disable_deletion_protection,
    remove_final_snapshots,
)
from tests.stacks.protection_cycle import run_protection_cycle
from tests.stacks.serving_checks import assert_served, assert_served_gone, create_model_zones, without_models
from tests.support.mirror import emulator_terraform_env
from tests.support.synth_json import in_primary_region, resources

TestFunction = TypeVar("TestFunction", bound=Callable[..., None])


def deploy_cycle(test: TestFunction) -> TestFunction:
    """Mark a test that needs the running emulator and terraform; the configuration checks are fast."""
    for mark in (pytest.mark.slow, pytest.mark.emulator, pytest.mark.terraform, pytest.mark.longest):
        test = mark(test)
    return test


ROOT = Path(__file__).resolve().parents[2]

# Overrides per deployed shape (ML_PLATFORM_OVERRIDES): a published model version, and the models served on EKS
# (with what the example changes to make room for them) as examples/model-serving.json declares them.
SERVING_EXAMPLE: dict[str, dict[str, Any]] = json.loads((ROOT / "examples" / "model-serving.json").read_text())
SHAPES: dict[str, dict[str, Any]] = {
    shape: {"sagemaker.model_version": "1.0.0", **SERVING_EXAMPLE[shape]} for shape in ("staging", "dev")
}
DATA_BUCKETS = ("training-data", "model-artifacts", "checkpoints", "mlflow-artifacts")
PLATFORM_KEYS = ("data", "eks-secrets", "logs")
# Most of a cycle is the provider's own waits (S3 lifecycle rules settling, EKS deletions), not requests:
# more operations in flight than Terraform's default 10 overlap those waits.
PARALLELISM = "-parallelism=40"
# The destroys need no refresh: the state was written by the apply, and the plan after it found AWS identical.
NO_REFRESH = "-refresh=false"
# Seconds one terraform command may take; a full apply takes about 75 s here with both shapes running.
TERRAFORM_TIMEOUT = 420.0

Client = Callable[..., Any]
"""``client(service, region=REGION)``: a boto3 client of the emulator."""


@dataclass
class CycleReport:
    """What one shape's cycle did: resources applied and seconds per terraform step."""

    shape: str
    resources: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    kms_keys: dict[str, int] = field(default_factory=dict)


@pytest.fixture(scope="module")
def synthesized(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Every stack synthesized for the emulator, and the validated matrix the stacks were built from."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("emulator-cdktf.out")
    with pytest.MonkeyPatch.context() as env:
        env.delenv("ML_PLATFORM_OVERRIDES_FILE", raising=False)
        env.setenv("ML_PLATFORM_EMULATOR_ENDPOINT", emulator.endpoint)
        env.setenv("ML_PLATFORM_BACKEND", "local")
        env.setenv("ML_PLATFORM_OVERRIDES", json.dumps(SHAPES))
        build_app(str(outdir)).synth()
        configs = load_environments()
    return outdir, configs


# A project renamed in the cost tags: after apply, the renamed stack must plan tag updates in place only. Dev
# (the example: it used to replace 84 resources) and prod (tests/stacks/protection_cycle.py) show it;
# the plan is the same kind in staging, where it would only lengthen the longest cycle.
RENAMED_PROJECT = "Renamed Project"
RENAMED_SHAPES = ("dev",)


@pytest.fixture(scope="module")
def renamed(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Path]]:
    """The same stacks with ``tags.project`` renamed in :data:`RENAMED_SHAPES` and in prod.

    Synthesized by ``python main.py`` in a process of its own, started at once and awaited where first needed
    (after an apply): the synth then overlaps the applies instead of delaying them.
    """
    outdir = tmp_path_factory.mktemp("emulator-renamed") / "cdktf.out"
    shapes = {shape: {**SHAPES.get(shape, {}), "tags.project": RENAMED_PROJECT} for shape in (*RENAMED_SHAPES, "prod")}
    env = {
        **os.environ,
        "ML_PLATFORM_EMULATOR_ENDPOINT": emulator.endpoint,
        "ML_PLATFORM_BACKEND": "local",
        "ML_PLATFORM_OVERRIDES": json.dumps(shapes),
        "CDKTF_OUTDIR": str(outdir),
    }
    env.pop("ML_PLATFORM_OVERRIDES_FILE", None)

    def synth() -> Path:
        result = subprocess.run(
            [sys.executable, "main.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr
        return outdir

    with ThreadPoolExecutor(max_workers=1) as background:
        yield background.submit(synth)


def _client_factory(emulator: Emulator) -> Client:
    """boto3 clients for the emulator; each call builds its own session, so threads never share one."""

    def client(service: str, region: str = REGION) -> Any:
        session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)
        return session.client(service, endpoint_url=emulator.endpoint)

    return client


def _state(workdir: Path) -> dict[str, list[dict[str, Any]]]:
    """The attributes of every managed resource in the local state, by resource type."""
    path = workdir / "terraform.tfstate"
    if not path.exists():
        return {}
    state = json.loads(path.read_text())
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in state["resources"]:
        if resource["mode"] == "managed":
            for instance in resource["instances"]:
                by_type.setdefault(resource["type"], []).append(instance["attributes"])
    return by_type


def _tags(tag_list: list[dict[str, str]] | None) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in tag_list or []}


# ------------------------------------------------------------------------------------------------
# What apply must have created, checked against the environment matrix
# ------------------------------------------------------------------------------------------------


def _assert_network(config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client) -> list[str]:
    ec2 = aws("ec2")
    (vpc_state,) = state["aws_vpc"]
    (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_state["id"]])["Vpcs"]
    assert vpc["CidrBlock"] == config.network.vpc_cidr
    assert _tags(vpc.get("Tags"))["environment"] == config.name
    in_vpc = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    subnets = ec2.describe_subnets(Filters=in_vpc)["Subnets"]
    # A public and a private subnet in each pinned zone, and in no other.
    assert len(subnets) == 2 * config.network.az_count
    assert sorted(subnet["AvailabilityZoneId"] for subnet in subnets) == sorted(2 * config.network.zone_ids)
    nat_gateways = [n for n in ec2.describe_nat_gateways(Filters=in_vpc)["NatGateways"] if n["State"] == "available"]
    assert len(nat_gateways) == (config.network.az_count if config.network.nat_gateways == "per_az" else 1)
    private = [s["SubnetId"] for s in subnets if _tags(s.get("Tags")).get("kubernetes.io/role/internal-elb") == "1"]
    assert len(private) == config.network.az_count
    nat_ids = {n["NatGatewayId"] for n in nat_gateways}
    for subnet_id in private:
        # Private: the only way out is a NAT gateway.
        associated = [{"Name": "association.subnet-id", "Values": [subnet_id]}]
        (table,) = ec2.describe_route_tables(Filters=associated)["RouteTables"]
        (default_route,) = [r for r in table["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        assert default_route.get("NatGatewayId") in nat_ids
        assert "GatewayId" not in default_route or default_route["GatewayId"] == "local"
    return private


def _assert_keys_and_storage(config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client) -> str:
    kms, s3 = aws("kms"), aws("s3")
    keys = {}
    for purpose in PLATFORM_KEYS:
        key = kms.describe_key(KeyId=f"alias/{config.name_prefix}-{purpose}")["KeyMetadata"]
        assert key["KeyState"] == "Enabled"
        assert key["KeyManager"] == "CUSTOMER"
        assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
        keys[purpose] = key["Arn"]

    buckets = {bucket["bucket"] for bucket in state["aws_s3_bucket"]}
    listed = {b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(f"{config.name_prefix}-")}
    data_buckets = {f"{config.name_prefix}-{purpose}-{ACCOUNT_ID}" for purpose in DATA_BUCKETS}
    log_bucket = f"{config.name_prefix}-access-logs-{ACCOUNT_ID}"
    assert listed == buckets == (data_buckets | {log_bucket} if config.storage.access_logging else data_buckets)
    for bucket in data_buckets:
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        by_default = rule["ApplyServerSideEncryptionByDefault"]
        assert (by_default["SSEAlgorithm"], by_default["KMSMasterKeyID"]) == ("aws:kms", keys["data"])
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        statements = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]
        assert any(
            s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s.get("Condition")) for s in statements
        )
        logging_enabled = s3.get_bucket_logging(Bucket=bucket).get("LoggingEnabled")
        if config.storage.access_logging:
            assert logging_enabled["TargetBucket"] == log_bucket
        else:
            assert logging_enabled is None
    return keys["eks-secrets"]


def _assert_budget(config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client) -> None:
    (budget_state,) = state["aws_budgets_budget"]
    budget = aws("budgets").describe_budget(AccountId=ACCOUNT_ID, BudgetName=budget_state["name"])["Budget"]
    assert budget["BudgetName"].startswith(config.name_prefix)
    assert float(budget["BudgetLimit"]["Amount"]) == config.budget.monthly_limit_usd
    assert (budget["BudgetType"], budget["TimeUnit"]) == ("COST", "MONTHLY")


def _assert_training_cluster(
    config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client, private: list[str]
) -> None:
    training = config.training
    if training is None:
        assert "aws_autoscaling_group" not in state and "aws_placement_group" not in state
        return
    ec2, autoscaling = aws("ec2"), aws("autoscaling")
    (group_state,) = state["aws_placement_group"]
    (group,) = ec2.describe_placement_groups(GroupNames=[group_state["name"]])["PlacementGroups"]
    assert group["Strategy"] == "cluster"

    (asg_state,) = state["aws_autoscaling_group"]
    (asg,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_state["name"]])["AutoScalingGroups"]
    # Costs nothing until a run scales it up.
    assert (asg["MinSize"], asg["DesiredCapacity"], asg["MaxSize"]) == (0, 0, training.max_size)
    assert asg["PlacementGroup"] == group["GroupName"]
    assert set(asg["VPCZoneIdentifier"].split(",")) <= set(private)
    policy = asg["MixedInstancesPolicy"]
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == list(training.instance_types)
    distribution = policy["InstancesDistribution"]
    assert distribution["OnDemandPercentageAboveBaseCapacity"] == training.on_demand_percentage_above_base
    template_id = policy["LaunchTemplate"]["LaunchTemplateSpecification"]["LaunchTemplateId"]
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Latest"])[
        "LaunchTemplateVersions"
    ]
    data = version["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    (disk,) = data["BlockDeviceMappings"]
    assert disk["Ebs"]["Encrypted"] is True
    # Owner tags reach what default_tags cannot: the instances and volumes the ASG launches.
    assert {"instance", "volume"} <= {spec["ResourceType"] for spec in data["TagSpecifications"]}

    # Staging also has the SageMaker idle function and the budgets' topic: the training cluster's are found by name.
    (function_state,) = [f for f in state["aws_lambda_function"] if f["function_name"].endswith("-idle-shutdown")]
    function = aws("lambda").get_function(FunctionName=function_state["function_name"])["Configuration"]
    (topic_state,) = [t for t in state["aws_sns_topic"] if t["name"] == f"{config.name_prefix}-training-events"]
    assert function["DeadLetterConfig"]["TargetArn"] == topic_state["arn"]
    assert function["Environment"]["Variables"]["ASG_NAME"] == asg["AutoScalingGroupName"]
    alarms = aws("cloudwatch").describe_alarms(AlarmNamePrefix=config.name_prefix)["MetricAlarms"]
    (idle_alarm,) = [alarm for alarm in alarms if function["FunctionArn"] in alarm["AlarmActions"]]
    assert idle_alarm["ActionsEnabled"] is True
    assert idle_alarm["ComparisonOperator"].startswith("LessThan")


def _assert_sagemaker(
    config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client, private: list[str]
) -> None:
    settings = config.sagemaker
    assert settings is not None and settings.deployed
    sagemaker = aws("sagemaker")
    (endpoint_state,) = state["aws_sagemaker_endpoint"]
    endpoint = sagemaker.describe_endpoint(EndpointName=endpoint_state["name"])
    assert endpoint["EndpointStatus"] == "InService"
    endpoint_config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    (variant,) = endpoint_config["ProductionVariants"]
    (variant_settings,) = settings.variants
    if settings.serverless:
        serverless = variant["ServerlessConfig"]
        assert serverless["MemorySizeInMB"] == variant_settings.memory_size_in_mb
        assert serverless["MaxConcurrency"] == variant_settings.max_concurrency
    else:
        assert variant["InstanceType"] == variant_settings.instance_type
        assert variant["InitialInstanceCount"] == variant_settings.initial_instance_count
    if settings.data_capture_percentage is None:
        assert "DataCaptureConfig" not in endpoint_config
    else:
        capture = endpoint_config["DataCaptureConfig"]
        assert capture["InitialSamplingPercentage"] == settings.data_capture_percentage

    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    assert model["EnableNetworkIsolation"] is settings.network_isolation
    if settings.vpc:
        assert set(model["VpcConfig"]["Subnets"]) == set(private)
    else:
        assert "VpcConfig" not in model

    targets = aws("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    mine = [t for t in targets if t["ResourceId"].startswith(f"endpoint/{endpoint['EndpointName']}/")]
    if settings.autoscaling:
        (target,) = mine
        assert (target["MinCapacity"], target["MaxCapacity"]) == (
            settings.min_instance_count,
            settings.max_instance_count,
        )
    else:
        assert mine == []


def _assert_eks(
    config: EnvironmentConfig,
    state: dict[str, list[dict[str, Any]]],
    aws: Client,
    private: list[str],
    secrets_key_arn: str,
) -> None:
    settings = config.eks
    assert settings is not None
    eks = aws("eks")
    (cluster_state,) = state["aws_eks_cluster"]
    cluster = eks.describe_cluster(name=cluster_state["name"])["cluster"]
    assert cluster["status"] == "ACTIVE"
    vpc_config = cluster["resourcesVpcConfig"]
    assert (vpc_config["endpointPrivateAccess"], vpc_config["endpointPublicAccess"]) == (True, False)
    assert set(vpc_config["subnetIds"]) == set(private)
    (encryption,) = cluster["encryptionConfig"]
    assert (encryption["resources"], encryption["provider"]["keyArn"]) == (["secrets"], secrets_key_arn)
    assert cluster["accessConfig"]["authenticationMode"] == "API"

    groups = {
        name: eks.describe_nodegroup(clusterName=cluster["name"], nodegroupName=name)["nodegroup"]
        for name in eks.list_nodegroups(clusterName=cluster["name"])["nodegroups"]
    }
    expected = {"cpu": settings.cpu_node_group, "gpu": settings.gpu_node_group}
    expected = {kind: group for kind, group in expected.items() if group is not None}
    assert len(groups) == len(expected)
    for kind, group_settings in expected.items():
        (group,) = [g for g in groups.values() if g["labels"].get("ml-platform/node-type") == kind]
        scaling = group["scalingConfig"]
        assert (scaling["minSize"], scaling["desiredSize"], scaling["maxSize"]) == (
            group_settings.min_size,
            group_settings.desired_size,
            group_settings.max_size,
        )
        assert group["instanceTypes"] == list(group_settings.instance_types)
        assert group["capacityType"] == group_settings.capacity_type
        assert set(group["subnets"]) == set(private)
    if settings.gpu_node_group is not None:
        (gpu,) = [g for g in groups.values() if g["labels"].get("ml-platform/node-type") == "gpu"]
        assert {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"} in gpu["taints"]

    addons = {addon["addon_name"] for addon in state["aws_eks_addon"]}
    assert {"vpc-cni", "coredns", "kube-proxy"} <= addons
    for name in addons:
        assert eks.describe_addon(clusterName=cluster["name"], addonName=name)["addon"]["status"] == "ACTIVE"
    (entry_state,) = state["aws_eks_access_entry"]
    entry = eks.describe_access_entry(clusterName=cluster["name"], principalArn=entry_state["principal_arn"])
    assert entry["accessEntry"]["type"] == "STANDARD"
    policies = eks.list_associated_access_policies(
        clusterName=cluster["name"], principalArn=entry_state["principal_arn"]
    )
    ((policy_arn, scope),) = [(p["policyArn"], p["accessScope"]["type"]) for p in policies["associatedAccessPolicies"]]
    assert (policy_arn.rsplit("/", 1)[-1], scope) == ("AmazonEKSClusterAdminPolicy", "cluster")

    (oidc_state,) = state["aws_iam_openid_connect_provider"]
    oidc = aws("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=oidc_state["arn"])
    assert oidc["Url"] == cluster["identity"]["oidc"]["issuer"].removeprefix("https://")
    assert oidc["ClientIDList"] == ["sts.amazonaws.com"]


def _assert_applied(
    config: EnvironmentConfig, state: dict[str, list[dict[str, Any]]], aws: Client, state_text: str
) -> None:
    """Check through boto3 that the emulator holds the environment as the matrix configures it."""
    private = _assert_network(config, state, aws)
    secrets_key_arn = _assert_keys_and_storage(config, state, aws)
    _assert_budget(config, state, aws)
    _assert_training_cluster(config, state, aws, private)
    _assert_sagemaker(config, state, aws, private)
    _assert_eks(config, state, aws, private, secrets_key_arn)
    assert_mlflow(config, without_models(config, state), aws, private, state_text)
    assert_served(config, state, aws)


# ------------------------------------------------------------------------------------------------
# What destroy must have removed
# ------------------------------------------------------------------------------------------------


def _assert_emulator_empty(aws: Client, kms_keys: dict[str, int]) -> None:
    """After both destroys, nothing the platform creates is left (a KMS key only schedules its deletion)."""
    ec2 = aws("ec2")
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] != "deleted"] == []
    assert ec2.describe_addresses()["Addresses"] == []
    assert ec2.describe_launch_templates()["LaunchTemplates"] == []
    assert ec2.describe_placement_groups()["PlacementGroups"] == []
    assert [
        g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"
    ] == []
    assert aws("s3").list_buckets()["Buckets"] == []
    iam = aws("iam")
    assert iam.list_roles()["Roles"] == []
    assert iam.list_instance_profiles()["InstanceProfiles"] == []
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"] == []
    assert aws("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []
    assert aws("lambda").list_functions()["Functions"] == []
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert aws("logs").describe_log_groups()["logGroups"] == []
    assert aws("events").list_rules()["Rules"] == []
    assert aws("sns").list_topics()["Topics"] == []
    assert aws("ecr").describe_repositories()["repositories"] == []
    assert aws("eks").list_clusters()["clusters"] == []
    sagemaker = aws("sagemaker")
    assert sagemaker.list_endpoints()["Endpoints"] == []
    assert sagemaker.list_endpoint_configs()["EndpointConfigs"] == []
    assert sagemaker.list_models()["Models"] == []
    autoscaling = aws("application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aws("budgets").describe_budgets(AccountId=ACCOUNT_ID).get("Budgets", []) == []
    rds = aws("rds")
    assert rds.describe_db_instances()["DBInstances"] == []
    assert rds.describe_db_snapshots()["DBSnapshots"] == []
    assert rds.describe_db_subnet_groups()["DBSubnetGroups"] == []
    assert [
        g
        for g in rds.describe_db_parameter_groups()["DBParameterGroups"]
        if not g["DBParameterGroupName"].startswith("default.")
    ] == []
    # Deleted secrets wait out their recovery window (the admin secret); the RDS-managed one goes with its instance.
    assert [s["Name"] for s in aws("secretsmanager").list_secrets()["SecretList"] if "DeletedDate" not in s] == []
    assert aws("acm").list_certificates()["CertificateSummaryList"] == []
    assert aws("route53").list_hosted_zones()["HostedZones"] == []
    now = datetime.now(UTC)
    # By ARN: the secondary region's keys (staging's and prod's recovery keys) are asked in their own region.
    for key_arn, window_days in kms_keys.items():
        metadata = aws("kms", key_arn.split(":")[3]).describe_key(KeyId=key_arn)["KeyMetadata"]
        assert metadata["KeyState"] == "PendingDeletion"
        # The deletion can still be cancelled for the environment's configured window.
        assert abs((metadata["DeletionDate"] - now).total_seconds() / 86400 - window_days) < 1


# ------------------------------------------------------------------------------------------------
# One shape's cycle
# ------------------------------------------------------------------------------------------------


def _empty_bucket(s3: Any, bucket: str) -> None:
    """Delete every object version and delete marker, as an operator does before destroying kept data."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        if versions:
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
            result = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
            assert not result.get("Errors"), f"{bucket}: {result['Errors'][:3]}"


def _terraform_env(cli_dir: Path) -> dict[str, str]:
    """The environment of terraform commands against the emulator, with its CLI config in ``cli_dir``."""
    cli_dir.mkdir()
    return emulator_terraform_env(cli_dir)


def _run_cycle(
    shape: str,
    config: EnvironmentConfig,
    stack_dir: Path,
    workdir: Path,
    aws: Client,
    renamed: Future[Path],
) -> CycleReport:
    """init -> apply -> checks -> plan (no changes) -> plan of the renamed project (tags only) -> destroy."""
    report = CycleReport(shape)
    shutil.copytree(stack_dir, workdir)
    stack = aws_only(json.loads((stack_dir / "cdk.tf.json").read_text()))
    (workdir / "cdk.tf.json").write_text(json.dumps(stack, indent=2))
    expected = sum(len(bodies) for bodies in stack["resource"].values())

    env = _terraform_env(workdir.parent / f"{shape}-cli")

    def terraform(step: str, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = run_terraform(
            [*args, "-input=false", "-no-color"], workdir, env, timeout=TERRAFORM_TIMEOUT, ok_returncodes=ok
        )
        report.timings[step] = round(report.timings.get(step, 0.0) + time.monotonic() - started, 1)
        return result

    def count(output: str, verb: str) -> int:
        match = re.search(rf"Resources: (?:\d+ added, \d+ changed, )?(\d+) {verb}", output)
        assert match, f"{shape}: no resource count in the output:\n{output[-2000:]}"
        return int(match.group(1))

    destroyed = 0
    terraform("init", "init")
    try:
        report.resources = count(terraform("apply", "apply", "-auto-approve", PARALLELISM).stdout, "added")
        assert report.resources == expected, f"{shape}: applied {report.resources} of {expected} resources"
        state = _state(workdir)
        report.kms_keys = {key["arn"]: key["deletion_window_in_days"] for key in state["aws_kms_key"]}
        _assert_applied(config, state, aws, (workdir / "terraform.tfstate").read_text())
        plan = terraform("plan", "plan", "-detailed-exitcode", PARALLELISM, ok=(0, 2))
        assert plan.returncode == 0, f"{shape}: perpetual diff after apply:\n{plan.stdout}"
        if shape in RENAMED_SHAPES:
            # The project is a cost tag, not a name: renaming it updates tags in place and replaces nothing.
            renamed_stack = aws_only(json.loads((renamed.result() / "stacks" / shape / "cdk.tf.json").read_text()))
            (workdir / "cdk.tf.json").write_text(json.dumps(renamed_stack, indent=2))
            rename = terraform("plan-renamed", "plan", "-detailed-exitcode", "-refresh=false", PARALLELISM, ok=(2,))
            (workdir / "cdk.tf.json").write_text(json.dumps(stack, indent=2))
            changes = re.search(r"Plan: 0 to add, [1-9]\d* to change, 0 to destroy", rename.stdout)
            assert changes, f"{shape}:\n{rename.stdout[-3000:]}"
            assert RENAMED_PROJECT in rename.stdout and "must be replaced" not in rename.stdout
    finally:
        # Destroy even when a check failed, so the emulator is left clean. Buckets the environment
        # keeps (no force_destroy) must be emptied first, and S3 keeps delivering access logs while
        # the source buckets log: stop the delivery, then empty them, then destroy.
        kept = [b["bucket"] for b in _state(workdir).get("aws_s3_bucket", []) if not b["force_destroy"]]
        delivery = [
            f"-target=aws_s3_bucket_logging.{name}" for name in stack["resource"].get("aws_s3_bucket_logging", {})
        ]
        if kept and delivery:
            destroyed += count(
                terraform("destroy", "destroy", "-auto-approve", NO_REFRESH, PARALLELISM, *delivery).stdout, "destroyed"
            )
        for bucket in kept:
            _empty_bucket(aws("s3"), bucket)
        # A database with deletion protection is the operator's to unprotect; destroy then takes its final snapshot.
        snapshots = disable_deletion_protection(_state(workdir), aws)
        destroyed += count(
            terraform("destroy", "destroy", "-auto-approve", NO_REFRESH, PARALLELISM).stdout, "destroyed"
        )
        remove_final_snapshots(snapshots, aws)
    assert destroyed == expected, f"{shape}: destroyed {destroyed} of {expected} resources"
    assert _state(workdir) == {}, f"{shape}: resources left in state after destroy"
    assert_served_gone(config, aws)
    return report


@deploy_cycle
def test_environment_shapes_apply_replan_clean_and_destroy(
    emulator: Emulator, synthesized: tuple[Path, dict[str, Any]], renamed: Future[Path], tmp_path: Path
) -> None:
    outdir, configs = synthesized
    assert configs["staging"].gpu_enabled and configs["staging"].training is not None
    assert [spec.gpus > 0 for shape in SHAPES for spec in configs[shape].serving] == [True, False]
    aws = _client_factory(emulator)
    # The public zones the load balancers' names and certificates live in exist before any deploy.
    zones = create_hosted_zones(list(configs.values()), aws)
    zones += create_model_zones([configs[shape] for shape in SHAPES], aws)
    started = time.monotonic()
    # The cycles spend most of their time in the provider's own waits, so they overlap well.
    with ThreadPoolExecutor(max_workers=len(SHAPES) + 1) as pool:
        futures = {
            shape: pool.submit(
                _run_cycle,
                shape,
                configs[shape],
                outdir / "stacks" / shape,
                tmp_path / shape,
                aws,
                renamed,
            )
            for shape in SHAPES
        }
        # Prod's data resources, on the same emulator: a destroy plan fails, a project rename replaces nothing.
        protection = pool.submit(
            run_protection_cycle,
            outdir / "stacks" / "prod",
            lambda: renamed.result() / "stacks" / "prod",
            RENAMED_PROJECT,
            tmp_path / "prod",
            _terraform_env(tmp_path / "prod-cli"),
        )
        reports = [futures[shape].result() for shape in SHAPES]
        kms_keys = {key: days for report in reports for key, days in report.kms_keys.items()}
        protected_keys, kept_log_groups = protection.result()
        kms_keys.update(protected_keys)
    for log_group in kept_log_groups:
        aws("logs").delete_log_group(logGroupName=log_group)
    total = round(time.monotonic() - started, 1)
    delete_hosted_zones(zones, aws)
    _assert_emulator_empty(aws, kms_keys)
    for report in reports:
        print(f"emulator cycle {report.shape}: {report.resources} resources, seconds {report.timings}")
    print(f"emulator cycles, both shapes concurrently: {total} s")


@deploy_cycle
def test_emptying_a_bucket_removes_every_version(emulator: Emulator) -> None:
    s3 = _client_factory(emulator)("s3")
    s3.create_bucket(Bucket="emulator-deploy-empty-me")
    s3.put_bucket_versioning(Bucket="emulator-deploy-empty-me", VersioningConfiguration={"Status": "Enabled"})
    for body in (b"one", b"two"):
        s3.put_object(Bucket="emulator-deploy-empty-me", Key="log", Body=body)
    s3.delete_object(Bucket="emulator-deploy-empty-me", Key="log")
    _empty_bucket(s3, "emulator-deploy-empty-me")
    listing = s3.list_object_versions(Bucket="emulator-deploy-empty-me")
    assert listing.get("Versions", []) == listing.get("DeleteMarkers", []) == []
    s3.delete_bucket(Bucket="emulator-deploy-empty-me")
    with pytest.raises(ClientError):
        s3.head_bucket(Bucket="emulator-deploy-empty-me")


def test_emulator_provider_requests_the_account_id() -> None:
    settings = emulator_provider_arguments("http://127.0.0.1:4566")
    # Without the account id the provider reads same-account security group references as
    # "<account>/<id>" and plans to change them on every run.
    assert "skip_requesting_account_id" not in settings
    assert (settings["skip_credentials_validation"], settings["max_retries"]) == (True, 3)


def test_access_logging_waits_for_the_log_bucket_policy(stacks: dict[str, Any]) -> None:
    for env_name in ("staging", "prod"):
        policies = {
            name: body
            for name, body in resources(stacks[env_name], "aws_s3_bucket_policy").items()
            if body["//"]["metadata"]["path"].endswith("/storage/access-logs/policy")
        }
        ((policy_name, _),) = policies.items()
        # The primary region's buckets (the standby's replica logs to a bucket of its own region).
        loggings = resources(in_primary_region(stacks[env_name]), "aws_s3_bucket_logging")
        assert len(loggings) == len(DATA_BUCKETS)
        for logging in loggings.values():
            # S3 rejects PutBucketLogging until the target bucket lets the logging service write.
            assert f"aws_s3_bucket_policy.{policy_name}" in logging["depends_on"]
    assert resources(stacks["dev"], "aws_s3_bucket_logging") == {}
