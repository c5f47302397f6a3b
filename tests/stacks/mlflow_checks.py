"""What the emulator must hold for MLflow's AWS side after an apply, and what its teardown involves.

Used by tests/stacks/test_emulator_deploy.py. The AWS side of MLflow is its PostgreSQL database (subnet group,
parameter group, security group, log groups, the RDS-managed master user secret and its key), the IRSA roles
of the tracking server and of its SecretStore, the admin secret, and (with a load balancer) the ACM
certificate with its DNS validation record. The Helm releases, the Ingress and the alias record to the
controller's load balancer need a Kubernetes API, which the emulator does not have.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stacks.environment import EnvironmentConfig

Client = Callable[[str], Any]
State = dict[str, list[dict[str, Any]]]


def create_hosted_zones(configs: list[EnvironmentConfig], aws: Client) -> list[str]:
    """The public hosted zones the environments' load balancers are named in (they exist before a deploy)."""
    names = sorted({c.mlflow.ingress.hosted_zone_name for c in configs if c.mlflow and c.mlflow.ingress})
    route53 = aws("route53")
    return [
        route53.create_hosted_zone(Name=name, CallerReference=f"ml-platform-{name}")["HostedZone"]["Id"]
        for name in names
    ]


def delete_hosted_zones(zone_ids: list[str], aws: Client) -> None:
    """Remove the zones (and anything left in them) once every environment is destroyed."""
    route53 = aws("route53")
    for zone_id in zone_ids:
        records = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        leftovers = [r for r in records if r["Type"] not in ("NS", "SOA")]
        assert leftovers == [], f"records left in {zone_id}: {leftovers}"
        route53.delete_hosted_zone(Id=zone_id)


def assert_mlflow(config: EnvironmentConfig, state: State, aws: Client, private: list[str], state_text: str) -> None:
    """The database and its secret as the matrix configures them; no password in the Terraform state."""
    mlflow = config.mlflow
    if mlflow is None:
        assert "aws_db_instance" not in state
        return
    settings = mlflow.database
    rds = aws("rds")
    (instance_state,) = state["aws_db_instance"]
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=instance_state["identifier"])["DBInstances"]
    assert instance["DBInstanceIdentifier"] == f"{config.name_prefix}-mlflow"
    assert (instance["Engine"], instance["EngineVersion"].split(".")[0]) == ("postgres", settings.engine_version)
    assert instance["DBInstanceClass"] == settings.instance_class
    assert instance["MultiAZ"] is settings.multi_az
    assert instance["BackupRetentionPeriod"] == settings.backup_retention_days
    assert instance["DeletionProtection"] is settings.deletion_protection
    assert instance["PubliclyAccessible"] is False
    assert instance["StorageEncrypted"] is True
    data_key = aws("kms").describe_key(KeyId=f"alias/{config.name_prefix}-data")["KeyMetadata"]["Arn"]
    assert instance["KmsKeyId"] == data_key
    assert instance["IAMDatabaseAuthenticationEnabled"] is True
    subnets = {s["SubnetIdentifier"] for s in instance["DBSubnetGroup"]["Subnets"]}
    assert subnets == set(private)

    # TLS only.
    (group,) = instance["DBParameterGroups"]
    parameters = rds.describe_db_parameters(DBParameterGroupName=group["DBParameterGroupName"])["Parameters"]
    assert {p["ParameterName"]: p.get("ParameterValue") for p in parameters}.get("rds.force_ssl") == "1"

    # Only the cluster's nodes (and so its pods) reach 5432.
    (security_group,) = instance["VpcSecurityGroups"]
    ec2 = aws("ec2")
    (group_description,) = ec2.describe_security_groups(GroupIds=[security_group["VpcSecurityGroupId"]])[
        "SecurityGroups"
    ]
    (rule,) = group_description["IpPermissions"]
    assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 5432, 5432)
    assert rule["IpRanges"] == [] and rule.get("Ipv6Ranges", []) == []
    (source,) = rule["UserIdGroupPairs"]
    (cluster_state,) = state["aws_eks_cluster"]
    cluster = aws("eks").describe_cluster(name=cluster_state["name"])["cluster"]
    assert source["GroupId"] == cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]

    # RDS keeps the password in Secrets Manager under the MLflow key; Terraform holds only the secret's ARN.
    secret_arn = instance["MasterUserSecret"]["SecretArn"]
    secrets = aws("secretsmanager")
    secret = secrets.describe_secret(SecretId=secret_arn)
    secret_key = aws("kms").describe_key(KeyId=secret["KmsKeyId"])["KeyMetadata"]
    assert secret_key["KeyManager"] == "CUSTOMER" and secret_key["Arn"] != data_key
    credentials = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
    assert set(credentials) >= {"username", "password"} and credentials["password"]
    assert credentials["password"] not in state_text, "the database password reached the Terraform state"
    assert secret_arn in state_text

    if mlflow.authentication == "basic-auth":
        (admin_state,) = state["aws_secretsmanager_secret"]
        admin = secrets.describe_secret(SecretId=admin_state["arn"])
        assert admin["KmsKeyId"] in (secret_key["Arn"], secret_key["KeyId"])
        assert {t["Key"]: t["Value"] for t in admin.get("Tags", [])}["managed-by"] == "external-secrets"
        # Empty until the operator pushes the generated password: Terraform never writes a value.
        assert "AWSCURRENT" not in json.dumps(admin.get("VersionIdsToStages", {}))

    if mlflow.ingress is not None:
        (certificate_state,) = state["aws_acm_certificate"]
        certificate = aws("acm").describe_certificate(CertificateArn=certificate_state["arn"])["Certificate"]
        assert certificate["DomainName"] == mlflow.ingress.hostname
        assert certificate["Status"] == "ISSUED"


def disable_deletion_protection(state: State, aws: Client) -> list[str]:
    """The operator's first teardown step for a protected database; returns the final snapshots destroy will take."""
    rds = aws("rds")
    snapshots = []
    for instance in state.get("aws_db_instance", []):
        if instance["deletion_protection"]:
            rds.modify_db_instance(
                DBInstanceIdentifier=instance["identifier"], DeletionProtection=False, ApplyImmediately=True
            )
        if not instance["skip_final_snapshot"]:
            snapshots.append(instance["final_snapshot_identifier"])
    return snapshots


def remove_final_snapshots(snapshots: list[str], aws: Client) -> None:
    """Check that destroy kept each database's final snapshot, then remove it (the emulator starts clean)."""
    rds = aws("rds")
    for snapshot in snapshots:
        (found,) = rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"]
        assert found["Encrypted"] is True
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot)
