"""The RDS patches through boto3: resource IDs, engine lifecycle support, Performance Insights, parameter sources."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator
from emulator.patches.rds import DEFAULT_ENGINE_LIFECYCLE_SUPPORT

pytestmark = pytest.mark.emulator

INSTANCE = {"Engine": "postgres", "EngineVersion": "17", "DBInstanceClass": "db.t4g.micro", "AllocatedStorage": 20}


def _instance(rds: Any, identifier: str) -> dict[str, Any]:
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
    return instance


def test_rds_instances_have_their_own_resource_ids(aws: Emulator) -> None:
    rds = aws.client("rds")
    ids = [
        rds.create_db_instance(DBInstanceIdentifier=f"ids-{i}", **INSTANCE)["DBInstance"]["DbiResourceId"]
        for i in range(2)
    ]
    assert len(set(ids)) == 2 and all(re.fullmatch(r"db-[A-Z0-9]{26}", i) for i in ids)
    # The provider finds an instance by this filter: each ID now finds exactly its own.
    found = rds.describe_db_instances(Filters=[{"Name": "dbi-resource-id", "Values": [ids[1]]}])["DBInstances"]
    assert [i["DBInstanceIdentifier"] for i in found] == ["ids-1"]


def test_rds_keeps_engine_lifecycle_support_and_performance_insights(aws: Emulator) -> None:
    rds, kms = aws.client("rds"), aws.client("kms")
    key = kms.create_key()["KeyMetadata"]["Arn"]
    rds.create_db_instance(
        DBInstanceIdentifier="insights",
        EngineLifecycleSupport="open-source-rds-extended-support-disabled",
        EnablePerformanceInsights=True,
        PerformanceInsightsKMSKeyId=key,
        **INSTANCE,
    )
    created = _instance(rds, "insights")
    assert created["EngineLifecycleSupport"] == "open-source-rds-extended-support-disabled"
    # Without a retention, RDS keeps the free tier's 7 days.
    assert (created["PerformanceInsightsEnabled"], created["PerformanceInsightsKMSKeyId"]) == (True, key)
    assert created["PerformanceInsightsRetentionPeriod"] == 7

    rds.modify_db_instance(
        DBInstanceIdentifier="insights", EnablePerformanceInsights=True, PerformanceInsightsRetentionPeriod=31
    )
    assert _instance(rds, "insights")["PerformanceInsightsRetentionPeriod"] == 31
    rds.modify_db_instance(DBInstanceIdentifier="insights", EnablePerformanceInsights=False)
    assert _instance(rds, "insights")["PerformanceInsightsEnabled"] is False
    # A modification that does not mention insights leaves them as they are.
    rds.modify_db_instance(DBInstanceIdentifier="insights", DeletionProtection=False)
    assert _instance(rds, "insights")["PerformanceInsightsEnabled"] is False

    # Unset, AWS's defaults: enrolled in extended support, no insights.
    rds.create_db_instance(DBInstanceIdentifier="defaults", **INSTANCE)
    defaults = _instance(rds, "defaults")
    assert defaults["EngineLifecycleSupport"] == DEFAULT_ENGINE_LIFECYCLE_SUPPORT
    assert defaults["PerformanceInsightsEnabled"] is False
    assert "PerformanceInsightsKMSKeyId" not in defaults


def test_rds_reports_changed_parameters_as_the_user_s(aws: Emulator) -> None:
    rds = aws.client("rds")
    rds.create_db_parameter_group(DBParameterGroupName="tls", DBParameterGroupFamily="postgres17", Description="TLS")
    changed = [
        {"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"},
        {"ParameterName": "log_connections", "ParameterValue": "1", "ApplyMethod": "immediate"},
    ]
    rds.modify_db_parameter_group(DBParameterGroupName="tls", Parameters=changed)
    expected = [{**parameter, "Source": "user"} for parameter in changed]
    assert rds.describe_db_parameters(DBParameterGroupName="tls")["Parameters"] == expected
    assert rds.describe_db_parameters(DBParameterGroupName="tls", Source="user")["Parameters"] == expected
    # moto has none of the engine's defaults.
    for source in ("engine-default", "system"):
        assert rds.describe_db_parameters(DBParameterGroupName="tls", Source=source)["Parameters"] == []


def test_rds_replicates_automated_backups_into_the_requesting_region_and_stops(aws: Emulator) -> None:
    source = aws.client("rds")
    arn = source.create_db_instance(DBInstanceIdentifier="replicated", BackupRetentionPeriod=7, **INSTANCE)[
        "DBInstance"
    ]["DBInstanceArn"]
    # Started, as RDS requires, from the destination region.
    destination = aws.client("rds", region="us-west-2")
    key = "arn:aws:kms:us-west-2:123456789012:key/recovery"
    started = destination.start_db_instance_automated_backups_replication(
        SourceDBInstanceArn=arn, KmsKeyId=key, BackupRetentionPeriod=14
    )["DBInstanceAutomatedBackup"]
    backup_arn = started["DBInstanceAutomatedBackupsArn"]
    assert backup_arn.startswith("arn:aws:rds:us-west-2:123456789012:auto-backup:ab-")
    (found,) = destination.describe_db_instance_automated_backups(DBInstanceAutomatedBackupsArn=backup_arn)[
        "DBInstanceAutomatedBackups"
    ]
    assert (found["Status"], found["DBInstanceArn"], found["KmsKeyId"]) == ("replicating", arn, key)
    assert found["BackupRetentionPeriod"] == 14
    # The source region keeps its own backups only: the replication lives in the destination region.
    here = source.describe_db_instance_automated_backups(DBInstanceIdentifier="replicated")[
        "DBInstanceAutomatedBackups"
    ]
    assert [b["Status"] for b in here] == ["active"]
    destination.stop_db_instance_automated_backups_replication(SourceDBInstanceArn=arn)
    with pytest.raises(ClientError) as gone:
        destination.describe_db_instance_automated_backups(DBInstanceAutomatedBackupsArn=backup_arn)
    assert gone.value.response["Error"]["Code"] == "DBInstanceAutomatedBackupNotFound"
    with pytest.raises(ClientError) as stopped:
        destination.stop_db_instance_automated_backups_replication(SourceDBInstanceArn=arn)
    assert "not replicating to the current region" in stopped.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as unknown:
        destination.start_db_instance_automated_backups_replication(SourceDBInstanceArn=arn.replace("replicated", "x"))
    assert unknown.value.response["Error"]["Code"] == "DBInstanceNotFound"
