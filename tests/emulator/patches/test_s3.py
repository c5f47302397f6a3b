"""The S3 patch: a bucket's replication configuration is read back with its filter and selection criteria."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator.server import apply_patches

ROLE = "arn:aws:iam::123456789012:role/replication"


def _versioned_buckets() -> Any:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="source")
    west = boto3.client("s3", region_name="us-west-2")
    west.create_bucket(Bucket="replica", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
    for bucket in ("source", "replica"):
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return s3


@mock_aws
def test_a_prefix_rule_for_sse_kms_objects_is_read_back_whole() -> None:
    apply_patches()
    s3 = _versioned_buckets()
    rule = {
        "ID": "models",
        "Priority": 1,
        "Filter": {"Prefix": "models/churn/"},
        "Status": "Enabled",
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        "Destination": {
            "Bucket": "arn:aws:s3:::replica",
            "StorageClass": "STANDARD",
            "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-west-2:123456789012:key/replica"},
        },
        "DeleteMarkerReplication": {"Status": "Disabled"},
    }
    s3.put_bucket_replication(Bucket="source", ReplicationConfiguration={"Role": ROLE, "Rules": [rule]})
    configuration = s3.get_bucket_replication(Bucket="source")["ReplicationConfiguration"]
    assert configuration == {"Role": ROLE, "Rules": [rule]}


@mock_aws
def test_a_rule_without_filter_or_delete_marker_element_reads_as_before() -> None:
    apply_patches()
    s3 = _versioned_buckets()
    rule = {"ID": "all", "Prefix": "", "Status": "Enabled", "Destination": {"Bucket": "arn:aws:s3:::replica"}}
    s3.put_bucket_replication(Bucket="source", ReplicationConfiguration={"Role": ROLE, "Rules": [rule]})
    (read,) = s3.get_bucket_replication(Bucket="source")["ReplicationConfiguration"]["Rules"]
    assert read["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert "Filter" not in read and "SourceSelectionCriteria" not in read
    assert read["Destination"] == {"Bucket": "arn:aws:s3:::replica"}


@mock_aws
def test_a_bucket_without_replication_says_so() -> None:
    apply_patches()
    s3 = _versioned_buckets()
    with pytest.raises(ClientError) as caught:
        s3.get_bucket_replication(Bucket="source")
    assert caught.value.response["Error"]["Code"] == "ReplicationConfigurationNotFoundError"
