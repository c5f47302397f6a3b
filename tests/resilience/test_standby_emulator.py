"""The standby's replication applied to the local AWS emulator in two regions, and read back with boto3.

A small stack holds what feeds the standby: the source bucket with its key in the primary region, the replica
bucket with its own key in the secondary region (built below a :class:`RegionScope`, as the platform builds it),
the replication rule and its role, an image repository of the same name in each region and the registry's ECR
replication configuration. ``terraform apply`` creates all of it against the emulator (moto stores both
configurations and answers Terraform's reads; it does not copy objects or images), and boto3 reads back what
S3, ECR and IAM of each region now hold; a plan after the apply finds nothing to change.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import cdktf
import pytest

from emulator import ACCOUNT_ID, Emulator
from gitops.terraform import run_terraform
from stacks.emulator import emulator_provider_arguments
from tests.support.mirror import emulator_terraform_env
from tests.support.stacks import context

pytestmark = [pytest.mark.emulator, pytest.mark.terraform]

PRIMARY, SECONDARY = "us-east-1", "us-west-2"
SOURCE, REPLICA = "p-test-model-artifacts", "p-test-model-artifacts-usw2"
REPOSITORY = "p-test/churn"
PREFIX = "models/churn/"
TIMEOUT = 600.0


def synthesize(endpoint: str, outdir: Path) -> Path:
    """The replication pieces in a stack of their own with both regions' providers pointed at the emulator."""
    from constructs.core.bindings import aws
    from constructs.core.regions import RegionScope
    from constructs.resilience.image_replication import (
        ImageReplication,
        ImageReplicationProps,
        ReplicatedRepositories,
    )
    from constructs.resilience.replication import ArtifactReplication, ArtifactReplicationProps
    from constructs.sagemaker.image_repository import ModelImageRepository, ModelImageRepositoryProps
    from constructs.storage.bucket import SecureBucket, SecureBucketProps
    from constructs.storage.settings import BucketLifecycle

    app = cdktf.App(outdir=str(outdir))
    stack = cdktf.TerraformStack(app, "standby")
    arguments = emulator_provider_arguments(endpoint)
    aws.provider.AwsProvider(stack, "aws", region=PRIMARY, **arguments)
    secondary = aws.provider.AwsProvider(stack, "aws-secondary", region=SECONDARY, alias="secondary", **arguments)
    west = RegionScope(stack, "secondary", secondary)
    primary_context = context(region=PRIMARY, account_id=ACCOUNT_ID)
    data_key = aws.kms_key.KmsKey(stack, "data-key")
    recovery_key = aws.kms_key.KmsKey(west, "recovery-key")
    throwaway = BucketLifecycle(force_destroy=True, prevent_destroy=False)
    source = SecureBucket(stack, "source", SecureBucketProps(SOURCE, data_key, throwaway))
    replica = SecureBucket(west, "model-artifacts", SecureBucketProps(REPLICA, recovery_key, throwaway))
    ArtifactReplication(
        stack,
        "replication",
        ArtifactReplicationProps(
            context=primary_context,
            replica_context=dataclasses.replace(primary_context, region=SECONDARY),
            source=source,
            replica=replica,
            prefix=PREFIX,
        ),
    )
    ModelImageRepository(stack, "images", ModelImageRepositoryProps(name=REPOSITORY, kms_key=data_key))
    ModelImageRepository(west, "images", ModelImageRepositoryProps(name=REPOSITORY, kms_key=recovery_key))
    ImageReplication(
        stack,
        "image-replication",
        ImageReplicationProps(ACCOUNT_ID, PRIMARY, (ReplicatedRepositories("p-test/", SECONDARY),)),
    )
    app.synth()
    return outdir / "stacks" / "standby"


@pytest.fixture(scope="module")
def applied(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Emulator:
    workdir = synthesize(emulator.endpoint, tmp_path_factory.mktemp("standby"))
    env = emulator_terraform_env(tmp_path_factory.mktemp("standby-terraform"))
    run_terraform(["init", "-input=false", "-no-color"], workdir, env, timeout=TIMEOUT)
    run_terraform(["apply", "-auto-approve", "-input=false", "-no-color"], workdir, env, timeout=TIMEOUT)
    # What AWS holds reads back as configured (emulator/patches/s3.py): the next plan changes nothing.
    run_terraform(
        ["plan", "-detailed-exitcode", "-input=false", "-no-color"], workdir, env, timeout=TIMEOUT, ok_returncodes=(0,)
    )
    return emulator


def _key_arn(emulator: Emulator, region: str) -> str:
    kms = emulator.client("kms", region=region)
    (key,) = kms.list_keys()["Keys"]
    return str(kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]["Arn"])


def test_the_replica_bucket_lives_in_the_secondary_region_encrypted_with_its_key(applied: Emulator) -> None:
    s3 = applied.client("s3", region=SECONDARY)
    assert s3.get_bucket_location(Bucket=REPLICA)["LocationConstraint"] == SECONDARY
    assert s3.get_bucket_location(Bucket=SOURCE)["LocationConstraint"] in (None, PRIMARY)
    assert s3.get_bucket_versioning(Bucket=REPLICA)["Status"] == "Enabled"
    (rule,) = s3.get_bucket_encryption(Bucket=REPLICA)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": _key_arn(applied, SECONDARY),
    }


def test_the_source_replicates_the_prefix_to_the_replica_with_the_replicas_key(applied: Emulator) -> None:
    s3 = applied.client("s3", region=PRIMARY)
    configuration: dict[str, Any] = s3.get_bucket_replication(Bucket=SOURCE)["ReplicationConfiguration"]
    assert configuration["Role"] == f"arn:aws:iam::{ACCOUNT_ID}:role/p-test-model-artifacts-replication"
    (rule,) = configuration["Rules"]
    assert rule["ID"] == "model-artifacts-to-secondary-region"
    assert rule["Status"] == "Enabled"
    assert rule["Filter"] == {"Prefix": PREFIX}
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    assert rule["SourceSelectionCriteria"]["SseKmsEncryptedObjects"] == {"Status": "Enabled"}
    assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{REPLICA}"
    assert rule["Destination"]["EncryptionConfiguration"] == {"ReplicaKmsKeyID": _key_arn(applied, SECONDARY)}


def test_the_replication_role_is_s3s_with_its_permissions(applied: Emulator) -> None:
    iam = applied.client("iam")
    role = iam.get_role(RoleName="p-test-model-artifacts-replication")["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Principal"], trust["Action"]) == ({"Service": "s3.amazonaws.com"}, "sts:AssumeRole")
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName="replicate-model-artifacts")["PolicyDocument"]
    statements = {s["Sid"]: s for s in document["Statement"]}
    assert statements["WriteReplicas"]["Resource"] == f"arn:aws:s3:::{REPLICA}/{PREFIX}*"
    assert statements["EncryptReplicasThroughS3"]["Resource"] == _key_arn(applied, SECONDARY)
    assert statements["DecryptSourceThroughS3"]["Resource"] == _key_arn(applied, PRIMARY)
    assert statements["EncryptReplicasThroughS3"]["Condition"]["StringEquals"] == {
        "kms:ViaService": f"s3.{SECONDARY}.amazonaws.com"
    }


def test_the_registry_replicates_the_environments_repositories_to_the_secondary_region(applied: Emulator) -> None:
    registry = applied.client("ecr", region=PRIMARY).describe_registry()
    assert registry["replicationConfiguration"]["rules"] == [
        {
            "destinations": [{"region": SECONDARY, "registryId": ACCOUNT_ID}],
            "repositoryFilters": [{"filter": "p-test/", "filterType": "PREFIX_MATCH"}],
        }
    ]
    # The secondary region's registry replicates nothing itself.
    assert applied.client("ecr", region=SECONDARY).describe_registry()["replicationConfiguration"]["rules"] == []


@pytest.mark.parametrize("region", [PRIMARY, SECONDARY])
def test_each_region_has_the_repository_encrypted_with_its_own_key(applied: Emulator, region: str) -> None:
    (repository,) = applied.client("ecr", region=region).describe_repositories()["repositories"]
    assert repository["repositoryName"] == REPOSITORY
    assert repository["imageTagMutability"] == "IMMUTABLE"
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": _key_arn(applied, region)}
