"""The local AWS emulator: each patched moto action through boto3, then a real Terraform cycle.

The Terraform test runs ``init`` (offline provider mirror) -> ``apply`` -> ``plan -detailed-exitcode``
(must report no changes) -> ``destroy`` against the emulator with the hashicorp/aws 5.100.0 provider,
checking with boto3 that the resources exist after apply and are gone after destroy.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.support.moto_server import (
    ACCOUNT_ID,
    PROVIDER_ENDPOINT_KEYS,
    REGION,
    Emulator,
    start_emulator,
    terraform_provider_block,
)
from tests.support.terraform import MIRROR_ENV, TerraformError, run_terraform, terraform_cli_env

pytestmark = pytest.mark.emulator

REPO_ROOT = Path(__file__).resolve().parent.parent
# The test (not the product) falls back to where these machines keep the offline mirror.
DEFAULT_MIRROR = "/opt/tf-plugins"
MANAGED_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/emulator-test"
SAGEMAKER_PRINCIPAL = {"Service": "sagemaker.amazonaws.com"}
NOTIFICATION = {
    "NotificationType": "ACTUAL",
    "ComparisonOperator": "GREATER_THAN",
    "Threshold": 80.0,
    "ThresholdType": "PERCENTAGE",
}


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """One emulator for the module, always stopped at the end."""
    with start_emulator() as running:
        yield running


@pytest.fixture
def aws(emulator: Emulator) -> Iterator[Emulator]:
    """The emulator, emptied before each test so tests never see each other's resources."""
    emulator.reset()
    yield emulator


def client(emulator: Emulator, service: str) -> Any:
    """A boto3 client for ``service`` talking to the emulator with the fake credentials."""
    return boto3.client(
        service,
        endpoint_url=emulator.endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


# ------------------------------------------------------------------------------------------------
# The launcher itself
# ------------------------------------------------------------------------------------------------


def test_emulator_listens_on_loopback_and_free_port(emulator: Emulator) -> None:
    assert emulator.endpoint == f"http://127.0.0.1:{emulator.port}"
    assert emulator.port > 0


def test_reset_forgets_resources(aws: Emulator) -> None:
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="reset-me")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_provider_block_points_every_platform_service_at_emulator() -> None:
    block = terraform_provider_block("http://127.0.0.1:1234")
    assert block["region"] == "us-east-1"
    assert (block["access_key"], block["secret_key"]) == ("test", "test")
    assert block["max_retries"] == 3
    assert block["s3_use_path_style"] is True
    for switch in ("skip_credentials_validation", "skip_requesting_account_id", "skip_region_validation"):
        assert block[switch] is True
    assert block["skip_metadata_api_check"] == "true"
    (endpoints,) = block["endpoints"]
    assert set(endpoints.values()) == {"http://127.0.0.1:1234"}
    platform_services = {
        "s3", "ec2", "iam", "sts", "kms", "logs", "cloudwatch", "events", "sns", "sqs", "lambda",
        "autoscaling", "appautoscaling", "sagemaker", "ecr", "eks", "budgets", "ssm", "dynamodb",
        "elbv2", "route53",
    }  # fmt: skip
    assert set(endpoints) == platform_services == set(PROVIDER_ENDPOINT_KEYS)
    # The launcher keeps its own copy (importing the stack module would start the jsii kernel in the
    # launcher): it must name exactly the services the product's emulator switch points at it.
    from stacks.ml_platform_stack import EMULATED_SERVICES

    assert set(PROVIDER_ENDPOINT_KEYS) == {service.rstrip("_") for service in EMULATED_SERVICES}


def test_runs_as_a_script_with_a_port(tmp_path: Path) -> None:
    script = REPO_ROOT / "tests" / "support" / "moto_server.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("moto emulator listening on http://127.0.0.1:"), line
        endpoint = line.rsplit(" ", 1)[1]
        ec2 = boto3.client(
            "ec2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        # A patched action proves the script applies the patches too.
        ec2.create_placement_group(GroupName="from-script", Strategy="spread")
        assert ec2.describe_placement_groups()["PlacementGroups"][0]["GroupName"] == "from-script"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()


# ------------------------------------------------------------------------------------------------
# Each patched action through boto3
# ------------------------------------------------------------------------------------------------


def test_placement_group_create_describe_delete(aws: Emulator) -> None:
    ec2 = client(aws, "ec2")
    created = ec2.create_placement_group(
        GroupName="gpu-training",
        Strategy="cluster",
        TagSpecifications=[{"ResourceType": "placement-group", "Tags": [{"Key": "team", "Value": "ml"}]}],
    )["PlacementGroup"]
    assert created["GroupName"] == "gpu-training"
    assert created["GroupId"].startswith("pg-")
    assert created["Strategy"] == "cluster"
    assert created["State"] == "available"
    assert created["GroupArn"] == f"arn:aws:ec2:{REGION}:{ACCOUNT_ID}:placement-group/gpu-training"
    assert created["Tags"] == [{"Key": "team", "Value": "ml"}]

    ec2.create_placement_group(GroupName="spread", Strategy="spread", SpreadLevel="rack")
    partition = ec2.create_placement_group(GroupName="parts", Strategy="partition", PartitionCount=3)
    assert partition["PlacementGroup"]["PartitionCount"] == 3

    (by_name,) = ec2.describe_placement_groups(GroupNames=["gpu-training"])["PlacementGroups"]
    assert by_name == created
    (by_id,) = ec2.describe_placement_groups(GroupIds=[created["GroupId"]])["PlacementGroups"]
    assert by_id["GroupName"] == "gpu-training"
    spread_filter = [{"Name": "strategy", "Values": ["spread"]}]
    (spread,) = ec2.describe_placement_groups(Filters=spread_filter)["PlacementGroups"]
    assert spread["SpreadLevel"] == "rack"
    assert len(ec2.describe_placement_groups()["PlacementGroups"]) == 3

    # Tags set later go through moto's own EC2 tag store, which now knows the "pg-" prefix.
    ec2.create_tags(Resources=[created["GroupId"]], Tags=[{"Key": "cost-center", "Value": "42"}])
    (tagged,) = ec2.describe_placement_groups(Filters=[{"Name": "tag:cost-center", "Values": ["42"]}])[
        "PlacementGroups"
    ]
    assert {t["Key"] for t in tagged["Tags"]} == {"team", "cost-center"}

    with pytest.raises(ClientError) as duplicate:
        ec2.create_placement_group(GroupName="gpu-training", Strategy="cluster")
    assert duplicate.value.response["Error"]["Code"] == "InvalidPlacementGroup.Duplicate"
    with pytest.raises(ClientError) as invalid:
        ec2.create_placement_group(GroupName="bad", Strategy="cluster", PartitionCount=2)
    assert invalid.value.response["Error"]["Code"] == "InvalidParameterCombination"

    ec2.delete_placement_group(GroupName="gpu-training")
    with pytest.raises(ClientError) as missing:
        ec2.describe_placement_groups(GroupNames=["gpu-training"])
    assert missing.value.response["Error"]["Code"] == "InvalidPlacementGroup.Unknown"
    with pytest.raises(ClientError) as gone:
        ec2.delete_placement_group(GroupName="gpu-training")
    assert gone.value.response["Error"]["Code"] == "InvalidPlacementGroup.Unknown"
    assert created["GroupId"] not in {t["ResourceId"] for t in ec2.describe_tags()["Tags"]}


def test_budget_subscribers_and_tags(aws: Emulator) -> None:
    budgets = client(aws, "budgets")
    budgets.create_budget(
        AccountId=ACCOUNT_ID,
        Budget={
            "BudgetName": "ml-monthly",
            "BudgetLimit": {"Amount": "1000", "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
        },
        NotificationsWithSubscribers=[
            {
                "Notification": {**NOTIFICATION, "Threshold": 80},
                "Subscribers": [{"SubscriptionType": "EMAIL", "Address": "ml-team@example.com"}],
            }
        ],
        ResourceTags=[{"Key": "team", "Value": "ml"}],
    )
    subscribers = budgets.describe_subscribers_for_notification(
        AccountId=ACCOUNT_ID, BudgetName="ml-monthly", Notification=NOTIFICATION
    )["Subscribers"]
    assert subscribers == [{"SubscriptionType": "EMAIL", "Address": "ml-team@example.com"}]
    with pytest.raises(ClientError) as unknown:
        budgets.describe_subscribers_for_notification(
            AccountId=ACCOUNT_ID, BudgetName="ml-monthly", Notification={**NOTIFICATION, "Threshold": 99.0}
        )
    assert unknown.value.response["Error"]["Code"] == "NotFoundException"

    arn = f"arn:aws:budgets::{ACCOUNT_ID}:budget/ml-monthly"
    assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == [{"Key": "team", "Value": "ml"}]
    budgets.tag_resource(ResourceARN=arn, ResourceTags=[{"Key": "env", "Value": "dev"}])
    budgets.untag_resource(ResourceARN=arn, ResourceTagKeys=["team"])
    assert budgets.list_tags_for_resource(ResourceARN=arn)["ResourceTags"] == [{"Key": "env", "Value": "dev"}]

    budgets.delete_budget(AccountId=ACCOUNT_ID, BudgetName="ml-monthly")
    with pytest.raises(ClientError) as deleted:
        budgets.list_tags_for_resource(ResourceARN=arn)
    assert deleted.value.response["Error"]["Code"] == "NotFoundException"


def test_application_autoscaling_tags(aws: Emulator) -> None:
    autoscaling = client(aws, "application-autoscaling")
    arn = autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/llm/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
        Tags={"team": "ml"},
    )["ScalableTargetARN"]
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "ml"}
    autoscaling.tag_resource(ResourceARN=arn, Tags={"env": "dev"})
    autoscaling.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "dev"}

    autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/llm/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )
    with pytest.raises(ClientError) as gone:
        autoscaling.list_tags_for_resource(ResourceARN=arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_sagemaker_omits_unset_configs_and_accepts_gpu_instances(aws: Emulator) -> None:
    sagemaker = client(aws, "sagemaker")
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


def test_eks_nodegroup_reports_remote_access_only_when_requested(aws: Emulator) -> None:
    eks = client(aws, "eks")
    eks.create_cluster(name="ml", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    common = {"clusterName": "ml", "nodeRole": ROLE_ARN, "subnets": ["subnet-12345678"]}
    eks.create_nodegroup(nodegroupName="gpu", instanceTypes=["g5.xlarge"], **common)
    assert "remoteAccess" not in eks.describe_nodegroup(clusterName="ml", nodegroupName="gpu")["nodegroup"]

    eks.create_nodegroup(nodegroupName="ssh", remoteAccess={"ec2SshKey": "ops"}, **common)
    ssh = eks.describe_nodegroup(clusterName="ml", nodegroupName="ssh")["nodegroup"]
    assert ssh["remoteAccess"] == {"ec2SshKey": "ops"}


def test_aws_managed_policies_are_loaded(aws: Emulator) -> None:
    iam = client(aws, "iam")
    iam.create_role(RoleName="emulator-test", AssumeRolePolicyDocument=json.dumps(_assume_role_policy()))
    iam.attach_role_policy(RoleName="emulator-test", PolicyArn=MANAGED_POLICY_ARN)
    attached = iam.list_attached_role_policies(RoleName="emulator-test")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [MANAGED_POLICY_ARN]


def test_requests_are_handled_one_at_a_time(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sts.responses import TokenResponse

    running: list[int] = []
    overlaps: list[int] = []
    original = TokenResponse.get_caller_identity

    def slow_get_caller_identity(self: Any) -> Any:
        running.append(1)
        overlaps.append(len(running))
        time.sleep(0.05)
        running.pop()
        return original(self)

    monkeypatch.setattr(TokenResponse, "get_caller_identity", slow_get_caller_identity)
    with ThreadPoolExecutor(max_workers=6) as pool:
        accounts = list(pool.map(lambda _: client(aws, "sts").get_caller_identity()["Account"], range(6)))
    assert accounts == [ACCOUNT_ID] * 6
    assert overlaps == [1] * 6


def test_each_response_is_sent_in_one_write(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    sent: list[bytes] = []
    original_setup = MotoRequestHandler.setup

    def recording_setup(self: Any) -> None:
        original_setup(self)
        # The socket-level writer under the handler's wfile; unbuffered handlers have none.
        raw = getattr(self.wfile, "raw", None)
        if raw is not None:
            write = raw.write
            raw.write = lambda data: sent.append(bytes(data)) or write(data)

    monkeypatch.setattr(MotoRequestHandler, "setup", recording_setup)
    assert client(aws, "sts").get_caller_identity()["Account"] == ACCOUNT_ID
    (response,) = sent
    assert response.startswith(b"HTTP/1.1 200") and response.rstrip().endswith(b"</GetCallerIdentityResponse>")


def test_bucket_policy_conditions_are_evaluated(aws: Emulator) -> None:
    s3 = client(aws, "s3")

    def bucket_with_deny(name: str, condition: dict[str, Any] | None) -> None:
        s3.create_bucket(Bucket=name)
        statement = {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
        }
        if condition is not None:
            statement["Condition"] = condition
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))

    # A TLS-only policy denies nothing to a client of the emulator, which stands in for HTTPS.
    bucket_with_deny("tls-only", {"Bool": {"aws:SecureTransport": "false"}})
    s3.put_object(Bucket="tls-only", Key="data", Body=b"x")
    assert s3.get_object(Bucket="tls-only", Key="data")["Body"].read() == b"x"
    deleted = s3.delete_objects(Bucket="tls-only", Delete={"Objects": [{"Key": "data"}]})
    assert [d["Key"] for d in deleted["Deleted"]] == ["data"] and "Errors" not in deleted

    # A condition that holds, and no condition at all, still deny.
    for name, condition in (("deny-over-tls", {"Bool": {"aws:SecureTransport": "true"}}), ("deny-all", None)):
        bucket_with_deny(name, condition)
        refused = s3.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "data"}]})
        assert [e["Code"] for e in refused["Errors"]] == ["AccessDenied"]


def test_launch_template_data_keeps_only_its_own_tag_specifications(aws: Emulator) -> None:
    ec2 = client(aws, "ec2")
    instance_tags = {"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ml"}]}
    template_tags = [{"ResourceType": "launch-template", "Tags": [{"Key": "env", "Value": "dev"}]}]
    created = ec2.create_launch_template(
        LaunchTemplateName="gpu",
        LaunchTemplateData={"InstanceType": "g5.xlarge", "TagSpecifications": [instance_tags]},
        TagSpecifications=template_tags,
    )["LaunchTemplate"]
    assert created["Tags"] == [{"Key": "env", "Value": "dev"}]
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateName="gpu")["LaunchTemplateVersions"]
    assert version["LaunchTemplateData"]["TagSpecifications"] == [instance_tags]

    ec2.create_launch_template(
        LaunchTemplateName="cpu", LaunchTemplateData={"InstanceType": "m6i.large"}, TagSpecifications=template_tags
    )
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateName="cpu")["LaunchTemplateVersions"]
    assert "TagSpecifications" not in version["LaunchTemplateData"]


def test_security_group_rule_referencing_a_group_keeps_its_description(aws: Emulator) -> None:
    ec2 = client(aws, "ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc_id)["GroupId"]
    pair = {"GroupId": group_id, "Description": "from the cluster's own nodes"}
    ec2.authorize_security_group_ingress(
        GroupId=group_id, IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [pair]}]
    )
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])[
        "SecurityGroupRules"
    ]
    ingress = {
        rule.get("ReferencedGroupInfo", {}).get("GroupId", rule.get("CidrIpv4")): rule
        for rule in rules
        if not rule["IsEgress"]
    }
    assert ingress[group_id]["Description"] == "from the cluster's own nodes"
    assert "Description" not in ingress["10.0.0.0/16"]


def test_revoking_an_unknown_security_group_rule_id_says_so(aws: Emulator) -> None:
    ec2 = client(aws, "ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group_id = ec2.create_security_group(GroupName="nodes", Description="nodes", VpcId=vpc_id)["GroupId"]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
    (rule,) = ec2.authorize_security_group_egress(GroupId=group_id, IpPermissions=[https])["SecurityGroupRules"]
    ec2.revoke_security_group_egress(GroupId=group_id, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    for revoke in (ec2.revoke_security_group_egress, ec2.revoke_security_group_ingress):
        with pytest.raises(ClientError) as unknown:
            revoke(GroupId=group_id, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
        assert unknown.value.response["Error"]["Code"] == "InvalidSecurityGroupRuleId.NotFound"
    # A rule given by its permissions keeps moto's (and AWS's) InvalidPermission.NotFound.
    with pytest.raises(ClientError) as by_permissions:
        ec2.revoke_security_group_egress(GroupId=group_id, IpPermissions=[https])
    assert by_permissions.value.response["Error"]["Code"] == "InvalidPermission.NotFound"


def test_nat_gateway_creation_is_idempotent_on_its_client_token(aws: Emulator) -> None:
    ec2 = client(aws, "ec2")
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    first_ip, second_ip = (ec2.allocate_address(Domain="vpc")["AllocationId"] for _ in range(2))
    request = {"SubnetId": subnet_id, "AllocationId": first_ip, "ClientToken": "terraform-nat-0"}
    created = ec2.create_nat_gateway(**request)["NatGateway"]["NatGatewayId"]
    repeated = ec2.create_nat_gateway(**request)
    assert (repeated["NatGateway"]["NatGatewayId"], repeated["ClientToken"]) == (created, "terraform-nat-0")
    other = ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=second_ip, ClientToken="terraform-nat-1")
    assert other["NatGateway"]["NatGatewayId"] != created
    gateways = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["NatGateways"]
    assert len(gateways) == 2
    # Without a token every request creates a gateway; the Elastic IP is then already in use.
    with pytest.raises(ClientError) as in_use:
        ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=first_ip)
    assert in_use.value.response["Error"]["Code"] == "Resource.AlreadyAssociated"


def test_lifecycle_hook_reports_only_the_requested_targets(aws: Emulator) -> None:
    ec2, autoscaling = client(aws, "ec2"), client(aws, "autoscaling")
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


def test_lambda_reports_dead_letter_and_logging_configs(aws: Emulator) -> None:
    iam, awslambda = client(aws, "iam"), client(aws, "lambda")
    trust = {
        **_assume_role_policy(),
        "Statement": [{**_assume_role_policy()["Statement"][0], "Principal": {"Service": "lambda.amazonaws.com"}}],
    }
    role_arn = iam.create_role(RoleName="idle-shutdown", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handler(event, context):\n    return None\n")
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:training-events"
    common = {
        "Runtime": "python3.12",
        "Role": role_arn,
        "Handler": "handler.handler",
        "Code": {"ZipFile": archive.getvalue()},
    }
    awslambda.create_function(FunctionName="idle-shutdown", DeadLetterConfig={"TargetArn": topic_arn}, **common)
    awslambda.create_function(FunctionName="plain", **common)

    configuration = awslambda.get_function(FunctionName="idle-shutdown")["Configuration"]
    assert configuration["DeadLetterConfig"] == {"TargetArn": topic_arn}
    assert configuration["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/idle-shutdown"}
    plain = awslambda.get_function(FunctionName="plain")["Configuration"]
    assert "DeadLetterConfig" not in plain

    awslambda.update_function_configuration(
        FunctionName="idle-shutdown", DeadLetterConfig={"TargetArn": ""}, LoggingConfig={"LogFormat": "JSON"}
    )
    configuration = awslambda.get_function(FunctionName="idle-shutdown")["Configuration"]
    assert "DeadLetterConfig" not in configuration
    assert configuration["LoggingConfig"] == {
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": "/aws/lambda/idle-shutdown",
    }


def test_sagemaker_keeps_network_isolation_and_deployment_config(aws: Emulator) -> None:
    sagemaker = client(aws, "sagemaker")
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


def test_eks_cluster_settings_identity_and_nodegroup_settings(aws: Emulator) -> None:
    eks = client(aws, "eks")
    vpc = {"subnetIds": ["subnet-12345678"]}
    eks.create_cluster(
        name="ml",
        roleArn=ROLE_ARN,
        resourcesVpcConfig=vpc,
        accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        upgradePolicy={"supportType": "STANDARD"},
    )
    eks.create_cluster(name="defaults", roleArn=ROLE_ARN, resourcesVpcConfig=vpc)
    ml = eks.describe_cluster(name="ml")["cluster"]
    assert ml["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    assert ml["upgradePolicy"] == {"supportType": "STANDARD"}
    defaults = eks.describe_cluster(name="defaults")["cluster"]
    assert defaults["accessConfig"] == {
        "authenticationMode": "CONFIG_MAP",
        "bootstrapClusterCreatorAdminPermissions": True,
    }
    assert defaults["upgradePolicy"] == {"supportType": "EXTENDED"}
    issuers = {cluster["identity"]["oidc"]["issuer"] for cluster in (ml, defaults)}
    assert len(issuers) == 2 and all(
        re.fullmatch(rf"https://oidc\.eks\.{REGION}\.amazonaws\.com/id/[0-9A-F]{{32}}", i) for i in issuers
    )
    assert ml["endpoint"] != defaults["endpoint"]

    common = {"clusterName": "ml", "nodeRole": ROLE_ARN, "subnets": ["subnet-12345678"]}
    eks.create_nodegroup(
        nodegroupName="gpu", updateConfig={"maxUnavailablePercentage": 33}, nodeRepairConfig={"enabled": True}, **common
    )
    eks.create_nodegroup(nodegroupName="cpu", **common)
    gpu = eks.describe_nodegroup(clusterName="ml", nodegroupName="gpu")["nodegroup"]
    assert (gpu["updateConfig"], gpu["nodeRepairConfig"]) == ({"maxUnavailablePercentage": 33}, {"enabled": True})
    cpu = eks.describe_nodegroup(clusterName="ml", nodegroupName="cpu")["nodegroup"]
    assert (cpu["updateConfig"], cpu["nodeRepairConfig"]) == ({"maxUnavailable": 1}, {"enabled": False})


def test_eks_access_entries_and_policies(aws: Emulator) -> None:
    eks = client(aws, "eks")
    eks.create_cluster(name="ml", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/deployer"
    policy_arn = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    with pytest.raises(ClientError) as no_cluster:
        eks.create_access_entry(clusterName="missing", principalArn=user_arn)
    assert no_cluster.value.response["Error"]["Code"] == "ResourceNotFoundException"

    created = eks.create_access_entry(clusterName="ml", principalArn=user_arn, tags={"team": "ml"})["accessEntry"]
    assert (created["type"], created["username"], created["tags"]) == ("STANDARD", user_arn, {"team": "ml"})
    assert created["accessEntryArn"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:access-entry/ml/user/")
    role_entry = eks.create_access_entry(clusterName="ml", principalArn=ROLE_ARN)["accessEntry"]
    assert role_entry["username"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/emulator-test/{{{{SessionName}}}}"
    with pytest.raises(ClientError) as duplicate:
        eks.create_access_entry(clusterName="ml", principalArn=user_arn)
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUseException"
    assert eks.describe_access_entry(clusterName="ml", principalArn=user_arn)["accessEntry"] == created

    associated = eks.associate_access_policy(
        clusterName="ml", principalArn=user_arn, policyArn=policy_arn, accessScope={"type": "cluster"}
    )
    assert associated["associatedAccessPolicy"]["policyArn"] == policy_arn
    listed = eks.list_associated_access_policies(clusterName="ml", principalArn=user_arn)["associatedAccessPolicies"]
    assert [(p["policyArn"], p["accessScope"]) for p in listed] == [(policy_arn, {"type": "cluster"})]
    eks.disassociate_access_policy(clusterName="ml", principalArn=user_arn, policyArn=policy_arn)
    assert (
        eks.list_associated_access_policies(clusterName="ml", principalArn=user_arn)["associatedAccessPolicies"] == []
    )
    with pytest.raises(ClientError) as not_associated:
        eks.disassociate_access_policy(clusterName="ml", principalArn=user_arn, policyArn=policy_arn)
    assert not_associated.value.response["Error"]["Code"] == "ResourceNotFoundException"

    eks.delete_access_entry(clusterName="ml", principalArn=user_arn)
    with pytest.raises(ClientError) as gone:
        eks.describe_access_entry(clusterName="ml", principalArn=user_arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # Entries go with their cluster: a new cluster of the same name starts without any.
    eks.delete_cluster(name="ml")
    eks.create_cluster(name="ml", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    with pytest.raises(ClientError) as forgotten:
        eks.describe_access_entry(clusterName="ml", principalArn=ROLE_ARN)
    assert forgotten.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_eks_addons(aws: Emulator) -> None:
    eks = client(aws, "eks")
    eks.create_cluster(name="ml", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    created = eks.create_addon(
        clusterName="ml",
        addonName="aws-ebs-csi-driver",
        addonVersion="v1.41.0-eksbuild.1",
        serviceAccountRoleArn=ROLE_ARN,
        resolveConflicts="OVERWRITE",
        tags={"team": "ml"},
    )["addon"]
    assert (created["status"], created["addonVersion"], created["serviceAccountRoleArn"]) == (
        "ACTIVE",
        "v1.41.0-eksbuild.1",
        ROLE_ARN,
    )
    assert created["addonArn"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:addon/ml/aws-ebs-csi-driver/")
    described = eks.describe_addon(clusterName="ml", addonName="aws-ebs-csi-driver")["addon"]
    assert described == created
    with pytest.raises(ClientError) as duplicate:
        eks.create_addon(clusterName="ml", addonName="aws-ebs-csi-driver")
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(ClientError) as no_cluster:
        eks.create_addon(clusterName="missing", addonName="coredns")
    assert no_cluster.value.response["Error"]["Code"] == "ResourceNotFoundException"

    assert eks.delete_addon(clusterName="ml", addonName="aws-ebs-csi-driver")["addon"]["status"] == "DELETING"
    with pytest.raises(ClientError) as gone:
        eks.describe_addon(clusterName="ml", addonName="aws-ebs-csi-driver")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"

    eks.create_addon(clusterName="ml", addonName="coredns")
    eks.delete_cluster(name="ml")
    eks.create_cluster(name="ml", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    with pytest.raises(ClientError) as forgotten:
        eks.describe_addon(clusterName="ml", addonName="coredns")
    assert forgotten.value.response["Error"]["Code"] == "ResourceNotFoundException"


# ------------------------------------------------------------------------------------------------
# terraform init -> apply -> plan -detailed-exitcode -> destroy
# ------------------------------------------------------------------------------------------------


def test_terraform_cli_env_isolates_the_cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    env = terraform_cli_env(tmp_path)
    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config.parent == tmp_path
    assert "provider_installation" not in config.read_text()
    assert (env["TF_INPUT"], env["CHECKPOINT_DISABLE"]) == ("0", "1")

    monkeypatch.setenv(MIRROR_ENV, "/srv/mirror with space")
    text = Path(terraform_cli_env(tmp_path)["TF_CLI_CONFIG_FILE"]).read_text()
    assert 'path    = "/srv/mirror with space"' in text
    assert 'include = ["registry.terraform.io/hashicorp/*"]' in text


def test_run_terraform_raises_with_the_output(tmp_path: Path) -> None:
    env = terraform_cli_env(tmp_path, mirror="")
    assert "Terraform v1." in run_terraform(["version"], cwd=tmp_path, env=env, timeout=60).stdout
    with pytest.raises(TerraformError) as failed:
        run_terraform(["no-such-subcommand"], cwd=tmp_path, env=env, timeout=60)
    assert failed.value.returncode not in (None, 0)
    assert "no-such-subcommand" in str(failed.value)


def _assume_role_policy() -> dict[str, Any]:
    """A trust policy letting SageMaker assume the role."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": SAGEMAKER_PRINCIPAL, "Action": "sts:AssumeRole"},
        ],
    }


def _terraform_config(endpoint: str) -> dict[str, Any]:
    """A hand-written Terraform JSON config covering the resource kinds the emulator patches."""
    tags = {"project": "ml-platform", "purpose": "emulator-test"}
    placement_group = {"name": "gpu-training", "strategy": "cluster", "tags": tags}
    attachment = {"role": "${aws_iam_role.sagemaker.name}", "policy_arn": MANAGED_POLICY_ARN}
    return {
        "terraform": {"required_providers": {"aws": {"source": "hashicorp/aws", "version": "5.100.0"}}},
        "provider": {"aws": [terraform_provider_block(endpoint)]},
        "resource": {
            "aws_placement_group": {"training": placement_group},
            "aws_s3_bucket": {"artifacts": {"bucket": "ml-platform-artifacts", "tags": tags}},
            "aws_s3_bucket_versioning": {
                "artifacts": {
                    "bucket": "${aws_s3_bucket.artifacts.id}",
                    "versioning_configuration": [{"status": "Enabled"}],
                }
            },
            "aws_kms_key": {
                "data": {
                    "description": "ml-platform data key",
                    "deletion_window_in_days": 7,
                    "enable_key_rotation": True,
                    "tags": tags,
                }
            },
            "aws_iam_role": {
                "sagemaker": {
                    "name": "emulator-test",
                    "assume_role_policy": json.dumps(_assume_role_policy()),
                    "tags": tags,
                }
            },
            "aws_iam_role_policy_attachment": {"sagemaker_managed": attachment},
            "aws_budgets_budget": {
                "monthly": {
                    "name": "ml-platform-monthly",
                    "account_id": ACCOUNT_ID,
                    "budget_type": "COST",
                    "limit_amount": "1000",
                    "limit_unit": "USD",
                    "time_unit": "MONTHLY",
                    "notification": [
                        {
                            "comparison_operator": "GREATER_THAN",
                            "threshold": 80,
                            "threshold_type": "PERCENTAGE",
                            "notification_type": "ACTUAL",
                            "subscriber_email_addresses": ["ml-team@example.com"],
                        }
                    ],
                    "tags": tags,
                }
            },
            "aws_dynamodb_table": {
                "features": {
                    "name": "feature-store",
                    "billing_mode": "PROVISIONED",
                    "read_capacity": 5,
                    "write_capacity": 5,
                    "hash_key": "id",
                    "attribute": [{"name": "id", "type": "S"}],
                    "tags": tags,
                }
            },
            "aws_appautoscaling_target": {
                "features_read": {
                    "service_namespace": "dynamodb",
                    "resource_id": "table/${aws_dynamodb_table.features.name}",
                    "scalable_dimension": "dynamodb:table:ReadCapacityUnits",
                    "min_capacity": 5,
                    "max_capacity": 50,
                    "tags": tags,
                }
            },
        },
        "output": {
            "kms_key_id": {"value": "${aws_kms_key.data.key_id}"},
            "scalable_target_arn": {"value": "${aws_appautoscaling_target.features_read.arn}"},
        },
    }


def _assert_applied(emulator: Emulator, outputs: dict[str, Any]) -> None:
    """Check through boto3 that every resource of the config exists as configured."""
    ec2 = client(emulator, "ec2")
    (group,) = ec2.describe_placement_groups(GroupNames=["gpu-training"])["PlacementGroups"]
    assert group["Strategy"] == "cluster"
    assert {"Key": "purpose", "Value": "emulator-test"} in group["Tags"]

    s3 = client(emulator, "s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["ml-platform-artifacts"]
    assert s3.get_bucket_versioning(Bucket="ml-platform-artifacts")["Status"] == "Enabled"

    kms = client(emulator, "kms")
    key = kms.describe_key(KeyId=outputs["kms_key_id"]["value"])["KeyMetadata"]
    assert key["KeyState"] == "Enabled"
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True

    iam = client(emulator, "iam")
    attached = iam.list_attached_role_policies(RoleName="emulator-test")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [MANAGED_POLICY_ARN]

    budgets = client(emulator, "budgets")
    budget = budgets.describe_budget(AccountId=ACCOUNT_ID, BudgetName="ml-platform-monthly")["Budget"]
    assert budget["BudgetLimit"]["Amount"] in ("1000", "1000.0")
    subscribers = budgets.describe_subscribers_for_notification(
        AccountId=ACCOUNT_ID, BudgetName="ml-platform-monthly", Notification=NOTIFICATION
    )["Subscribers"]
    assert subscribers == [{"SubscriptionType": "EMAIL", "Address": "ml-team@example.com"}]

    dynamodb = client(emulator, "dynamodb")
    assert dynamodb.list_tables()["TableNames"] == ["feature-store"]
    autoscaling = client(emulator, "application-autoscaling")
    (target,) = autoscaling.describe_scalable_targets(ServiceNamespace="dynamodb")["ScalableTargets"]
    scaling = (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"])
    assert scaling == ("table/feature-store", 5, 50)
    arn = outputs["scalable_target_arn"]["value"]
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"]["purpose"] == "emulator-test"


def _assert_destroyed(emulator: Emulator, kms_key_id: str) -> None:
    """Check through boto3 that destroy removed every resource (a KMS key only schedules deletion)."""
    assert client(emulator, "ec2").describe_placement_groups()["PlacementGroups"] == []
    assert client(emulator, "s3").list_buckets()["Buckets"] == []
    key = client(emulator, "kms").describe_key(KeyId=kms_key_id)["KeyMetadata"]
    assert key["KeyState"] == "PendingDeletion"
    iam = client(emulator, "iam")
    assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == []
    assert client(emulator, "budgets").describe_budgets(AccountId=ACCOUNT_ID).get("Budgets", []) == []
    assert client(emulator, "dynamodb").list_tables()["TableNames"] == []
    autoscaling = client(emulator, "application-autoscaling")
    assert autoscaling.describe_scalable_targets(ServiceNamespace="dynamodb")["ScalableTargets"] == []


@pytest.mark.slow
@pytest.mark.terraform
def test_terraform_apply_plan_destroy_cycle(aws: Emulator, tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    workdir.mkdir()
    (workdir / "main.tf.json").write_text(json.dumps(_terraform_config(aws.endpoint), indent=2))
    env = terraform_cli_env(tmp_path, mirror=os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR)
    # A profile or session token from the developer's shell must not reach the provider.
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env["AWS_EC2_METADATA_DISABLED"] = "true"

    timings: dict[str, float] = {}

    def step(name: str, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        started = time.monotonic()
        result = run_terraform([*args, "-no-color"], cwd=workdir, env=env, timeout=300, ok_returncodes=ok)
        timings[name] = round(time.monotonic() - started, 1)
        return result

    step("init", "init", "-input=false")
    step("apply", "apply", "-auto-approve", "-input=false")
    try:
        outputs = json.loads(step("output", "output", "-json").stdout)
        _assert_applied(aws, outputs)
        plan = step("plan", "plan", "-detailed-exitcode", "-input=false", ok=(0, 2))
        assert plan.returncode == 0, f"perpetual diff after apply:\n{plan.stdout}"
    finally:
        # Destroy even when an assertion above failed, so the emulator is left clean.
        step("destroy", "destroy", "-auto-approve", "-input=false")
    _assert_destroyed(aws, outputs["kms_key_id"]["value"])
    print(f"terraform cycle timings (s): {timings}")
