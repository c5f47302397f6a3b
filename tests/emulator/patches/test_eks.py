"""The EKS patches through boto3: node groups, cluster settings and identity, the cluster security group, access
entries, add-ons."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, REGION, Emulator
from emulator.patches.eks import CLUSTER_SECURITY_GROUP_DESCRIPTION

pytestmark = pytest.mark.emulator

ROLE_ARN = f"arn:aws:iam::{ACCOUNT_ID}:role/emulator-test"


def test_eks_nodegroup_reports_remote_access_only_when_requested(aws: Emulator) -> None:
    eks = aws.client("eks")
    eks.create_cluster(name="ml-remote", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    common = {"clusterName": "ml-remote", "nodeRole": ROLE_ARN, "subnets": ["subnet-12345678"]}
    eks.create_nodegroup(nodegroupName="gpu", instanceTypes=["g5.xlarge"], **common)
    assert "remoteAccess" not in eks.describe_nodegroup(clusterName="ml-remote", nodegroupName="gpu")["nodegroup"]

    eks.create_nodegroup(nodegroupName="ssh", remoteAccess={"ec2SshKey": "ops"}, **common)
    ssh = eks.describe_nodegroup(clusterName="ml-remote", nodegroupName="ssh")["nodegroup"]
    assert ssh["remoteAccess"] == {"ec2SshKey": "ops"}


def test_eks_cluster_settings_identity_and_nodegroup_settings(aws: Emulator) -> None:
    eks = aws.client("eks")
    vpc = {"subnetIds": ["subnet-12345678"]}
    eks.create_cluster(
        name="ml-settings",
        roleArn=ROLE_ARN,
        resourcesVpcConfig=vpc,
        accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
        upgradePolicy={"supportType": "STANDARD"},
    )
    eks.create_cluster(name="defaults", roleArn=ROLE_ARN, resourcesVpcConfig=vpc)
    ml = eks.describe_cluster(name="ml-settings")["cluster"]
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

    common = {"clusterName": "ml-settings", "nodeRole": ROLE_ARN, "subnets": ["subnet-12345678"]}
    eks.create_nodegroup(
        nodegroupName="gpu", updateConfig={"maxUnavailablePercentage": 33}, nodeRepairConfig={"enabled": True}, **common
    )
    eks.create_nodegroup(nodegroupName="cpu", **common)
    gpu = eks.describe_nodegroup(clusterName="ml-settings", nodegroupName="gpu")["nodegroup"]
    assert (gpu["updateConfig"], gpu["nodeRepairConfig"]) == ({"maxUnavailablePercentage": 33}, {"enabled": True})
    cpu = eks.describe_nodegroup(clusterName="ml-settings", nodegroupName="cpu")["nodegroup"]
    assert (cpu["updateConfig"], cpu["nodeRepairConfig"]) == ({"maxUnavailable": 1}, {"enabled": False})


def test_eks_cluster_security_group_is_created_reported_and_deleted(aws: Emulator) -> None:
    ec2, eks = aws.client("ec2"), aws.client("eks")
    vpc_id = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"]
        for i, zone in enumerate("ab")
    ]
    vpc = {"subnetIds": [subnet["SubnetId"] for subnet in subnets], "endpointPrivateAccess": True}
    eks.create_cluster(name="ml-sg", roleArn=ROLE_ARN, resourcesVpcConfig=vpc)
    config = eks.describe_cluster(name="ml-sg")["cluster"]["resourcesVpcConfig"]
    assert config["vpcId"] == vpc_id
    group_id = config["clusterSecurityGroupId"]
    (group,) = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert group["VpcId"] == vpc_id
    assert re.fullmatch(r"eks-cluster-sg-ml-sg-\d{10}", group["GroupName"])
    assert group["Description"] == CLUSTER_SECURITY_GROUP_DESCRIPTION
    assert {t["Key"]: t["Value"] for t in group["Tags"]} == {
        "Name": group["GroupName"],
        "aws:eks:cluster-name": "ml-sg",
        "kubernetes.io/cluster/ml-sg": "owned",
    }
    # All traffic from itself in (nodes and control plane talk freely), everything out.
    (ingress,) = group["IpPermissions"]
    assert ingress["IpProtocol"] == "-1"
    assert [pair["GroupId"] for pair in ingress["UserIdGroupPairs"]] == [group_id]
    assert [r["CidrIp"] for e in group["IpPermissionsEgress"] for r in e["IpRanges"]] == ["0.0.0.0/0"]

    # Another group can admit it as a source, as the MLflow database's does.
    database = ec2.create_security_group(GroupName="db", Description="database", VpcId=vpc_id)["GroupId"]
    rule = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "UserIdGroupPairs": [{"GroupId": group_id}]}
    ec2.authorize_security_group_ingress(GroupId=database, IpPermissions=[rule])
    ec2.revoke_security_group_ingress(GroupId=database, IpPermissions=[rule])

    # Changing the endpoint settings keeps what EKS owns.
    eks.update_cluster_config(name="ml-sg", resourcesVpcConfig={"endpointPublicAccess": False})
    updated = eks.describe_cluster(name="ml-sg")["cluster"]["resourcesVpcConfig"]
    assert (updated["clusterSecurityGroupId"], updated["vpcId"]) == (group_id, vpc_id)

    eks.delete_cluster(name="ml-sg")
    with pytest.raises(ClientError) as gone:
        ec2.describe_security_groups(GroupIds=[group_id])
    assert gone.value.response["Error"]["Code"] == "InvalidGroup.NotFound"

    # Subnets EC2 does not know leave no VPC to put a group in.
    eks.create_cluster(name="ml-no-vpc", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    assert "clusterSecurityGroupId" not in eks.describe_cluster(name="ml-no-vpc")["cluster"]["resourcesVpcConfig"]


def test_eks_access_entries_and_policies(aws: Emulator) -> None:
    eks = aws.client("eks")
    eks.create_cluster(name="ml-access", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/deployer"
    policy_arn = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"
    with pytest.raises(ClientError) as no_cluster:
        eks.create_access_entry(clusterName="missing", principalArn=user_arn)
    assert no_cluster.value.response["Error"]["Code"] == "ResourceNotFoundException"

    created = eks.create_access_entry(clusterName="ml-access", principalArn=user_arn, tags={"team": "ml-access"})[
        "accessEntry"
    ]
    assert (created["type"], created["username"], created["tags"]) == ("STANDARD", user_arn, {"team": "ml-access"})
    assert created["accessEntryArn"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:access-entry/ml-access/user/")
    role_entry = eks.create_access_entry(clusterName="ml-access", principalArn=ROLE_ARN)["accessEntry"]
    assert role_entry["username"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/emulator-test/{{{{SessionName}}}}"
    with pytest.raises(ClientError) as duplicate:
        eks.create_access_entry(clusterName="ml-access", principalArn=user_arn)
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUseException"
    assert eks.describe_access_entry(clusterName="ml-access", principalArn=user_arn)["accessEntry"] == created

    associated = eks.associate_access_policy(
        clusterName="ml-access", principalArn=user_arn, policyArn=policy_arn, accessScope={"type": "cluster"}
    )
    assert associated["associatedAccessPolicy"]["policyArn"] == policy_arn
    listed = eks.list_associated_access_policies(clusterName="ml-access", principalArn=user_arn)[
        "associatedAccessPolicies"
    ]
    assert [(p["policyArn"], p["accessScope"]) for p in listed] == [(policy_arn, {"type": "cluster"})]
    eks.disassociate_access_policy(clusterName="ml-access", principalArn=user_arn, policyArn=policy_arn)
    assert (
        eks.list_associated_access_policies(clusterName="ml-access", principalArn=user_arn)["associatedAccessPolicies"]
        == []
    )
    with pytest.raises(ClientError) as not_associated:
        eks.disassociate_access_policy(clusterName="ml-access", principalArn=user_arn, policyArn=policy_arn)
    assert not_associated.value.response["Error"]["Code"] == "ResourceNotFoundException"

    eks.delete_access_entry(clusterName="ml-access", principalArn=user_arn)
    with pytest.raises(ClientError) as gone:
        eks.describe_access_entry(clusterName="ml-access", principalArn=user_arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # Entries go with their cluster: a new cluster of the same name starts without any.
    eks.delete_cluster(name="ml-access")
    eks.create_cluster(name="ml-access", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    with pytest.raises(ClientError) as forgotten:
        eks.describe_access_entry(clusterName="ml-access", principalArn=ROLE_ARN)
    assert forgotten.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_eks_addons(aws: Emulator) -> None:
    eks = aws.client("eks")
    eks.create_cluster(name="ml-addons", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    created = eks.create_addon(
        clusterName="ml-addons",
        addonName="aws-ebs-csi-driver",
        addonVersion="v1.41.0-eksbuild.1",
        serviceAccountRoleArn=ROLE_ARN,
        resolveConflicts="OVERWRITE",
        tags={"team": "ml-addons"},
    )["addon"]
    assert (created["status"], created["addonVersion"], created["serviceAccountRoleArn"]) == (
        "ACTIVE",
        "v1.41.0-eksbuild.1",
        ROLE_ARN,
    )
    assert created["addonArn"].startswith(f"arn:aws:eks:{REGION}:{ACCOUNT_ID}:addon/ml-addons/aws-ebs-csi-driver/")
    described = eks.describe_addon(clusterName="ml-addons", addonName="aws-ebs-csi-driver")["addon"]
    assert described == created
    with pytest.raises(ClientError) as duplicate:
        eks.create_addon(clusterName="ml-addons", addonName="aws-ebs-csi-driver")
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUseException"
    with pytest.raises(ClientError) as no_cluster:
        eks.create_addon(clusterName="missing", addonName="coredns")
    assert no_cluster.value.response["Error"]["Code"] == "ResourceNotFoundException"

    assert eks.delete_addon(clusterName="ml-addons", addonName="aws-ebs-csi-driver")["addon"]["status"] == "DELETING"
    with pytest.raises(ClientError) as gone:
        eks.describe_addon(clusterName="ml-addons", addonName="aws-ebs-csi-driver")
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"

    eks.create_addon(clusterName="ml-addons", addonName="coredns")
    eks.delete_cluster(name="ml-addons")
    eks.create_cluster(name="ml-addons", roleArn=ROLE_ARN, resourcesVpcConfig={"subnetIds": ["subnet-12345678"]})
    with pytest.raises(ClientError) as forgotten:
        eks.describe_addon(clusterName="ml-addons", addonName="coredns")
    assert forgotten.value.response["Error"]["Code"] == "ResourceNotFoundException"
