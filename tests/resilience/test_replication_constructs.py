"""The standby's building blocks alone: region codes, the replication constructs' refusals, the region's props."""

from __future__ import annotations

import dataclasses

import pytest
from constructs.core.bindings import aws
from constructs.core.errors import ConfigurationError
from constructs.core.regions import RegionScope
from constructs.resilience.image_replication import ImageReplication, ImageReplicationProps, ReplicatedRepositories
from constructs.resilience.region import SecondaryRegion, SecondaryRegionProps, region_code
from constructs.resilience.replication import ArtifactReplication, ArtifactReplicationProps
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.keys import KeyAdministrators
from constructs.storage.settings import PlatformKeysSettings

from stacks.environment import ZONE_ID_PREFIXES
from stacks.matrix import MATRIX
from tests.support.stacks import DEPLOYER_ARN, TinyStack

ACCOUNT = "123456789012"


@pytest.mark.parametrize(("region", "prefix"), sorted(ZONE_ID_PREFIXES.items()))
def test_a_region_code_is_the_prefix_of_its_zone_ids(region, prefix) -> None:
    assert region_code(region) == prefix


@pytest.mark.parametrize(("region", "code"), [("us-gov-west-1", "usgw1"), ("ca-central-1", "cac1")])
def test_region_codes_outside_the_matrix_follow_aws_zone_ids(region, code) -> None:
    assert region_code(region) == code


@pytest.mark.parametrize("region", ["us-west", "uswest2", "us-upward-2", ""])
def test_a_name_that_is_no_region_has_no_code(region) -> None:
    with pytest.raises(ConfigurationError) as caught:
        region_code(region)
    assert "field 'region'" in str(caught.value)


def _images(*repositories: ReplicatedRepositories, source: str = "us-east-1") -> dict:
    tiny = TinyStack()
    ImageReplication(tiny.stack, "images", ImageReplicationProps(ACCOUNT, source, repositories))
    return tiny.synth()


def test_image_replication_has_one_rule_per_destination_with_each_environments_prefix() -> None:
    synthesized = _images(
        ReplicatedRepositories("p-prod/", "us-west-2"),
        ReplicatedRepositories("p-staging/", "us-west-2"),
        ReplicatedRepositories("p-eu/", "eu-west-1"),
        ReplicatedRepositories("p-prod/", "us-west-2"),
    )
    (configuration,) = synthesized["resource"]["aws_ecr_replication_configuration"].values()
    assert configuration["replication_configuration"]["rule"] == [
        {
            "destination": [{"region": "eu-west-1", "registry_id": ACCOUNT}],
            "repository_filter": [{"filter": "p-eu/", "filter_type": "PREFIX_MATCH"}],
        },
        {
            "destination": [{"region": "us-west-2", "registry_id": ACCOUNT}],
            "repository_filter": [
                {"filter": "p-prod/", "filter_type": "PREFIX_MATCH"},
                {"filter": "p-staging/", "filter_type": "PREFIX_MATCH"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("repositories", "field", "allowed"),
    [
        ((ReplicatedRepositories("p-prod/", "us-east-1"),), "destination_region", "other than the source"),
        ((ReplicatedRepositories("p-prod", "us-west-2"),), "repository_prefix", "ending in '/'"),
        ((ReplicatedRepositories("P-Prod/", "us-west-2"),), "repository_prefix", "ending in '/'"),
        ((), "repositories", "at least one"),
        (
            tuple(ReplicatedRepositories("p/", f"region-{n}") for n in range(11)),
            "repositories",
            "at most 10 destination regions",
        ),
    ],
)
def test_image_replication_refuses_what_ecr_would(repositories, field, allowed) -> None:
    with pytest.raises(ConfigurationError) as caught:
        _images(*repositories)
    assert f"field '{field}'" in str(caught.value)
    assert allowed in str(caught.value)


def _buckets(tiny: TinyStack, *, replica_key: bool = True) -> tuple[SecureBucket, SecureBucket]:
    west = aws.provider.AwsProvider(tiny.stack, "west", region="us-west-2", alias="west")
    scope = RegionScope(tiny.stack, "west-scope", west)
    source = SecureBucket(tiny.stack, "source", SecureBucketProps(bucket_name="p-test-source", kms_key=tiny.key))
    replica = SecureBucket(
        scope,
        "replica",
        SecureBucketProps(
            bucket_name="p-test-replica",
            kms_key=aws.kms_key.KmsKey(scope, "replica-key") if replica_key else None,
            log_delivery_source_account=None if replica_key else ACCOUNT,
        ),
    )
    return source, replica


def _replication(tiny: TinyStack, source: SecureBucket, replica: SecureBucket, prefix: str) -> ArtifactReplication:
    return ArtifactReplication(
        tiny.stack,
        "replication",
        ArtifactReplicationProps(
            context=tiny.context,
            replica_context=dataclasses.replace(tiny.context, region="us-west-2"),
            source=source,
            replica=replica,
            prefix=prefix,
        ),
    )


@pytest.mark.parametrize("prefix", ["models/churn", "/models/churn/", ""])
def test_artifact_replication_needs_a_key_prefix(prefix) -> None:
    tiny = TinyStack()
    source, replica = _buckets(tiny)
    with pytest.raises(ConfigurationError) as caught:
        _replication(tiny, source, replica, prefix)
    assert "field 'prefix'" in str(caught.value)


def test_artifact_replication_needs_sse_kms_on_both_sides() -> None:
    tiny = TinyStack()
    source, replica = _buckets(tiny, replica_key=False)
    with pytest.raises(ConfigurationError) as caught:
        _replication(tiny, source, replica, "models/churn/")
    assert "SSE-KMS buckets on both sides" in str(caught.value)


def test_the_replica_lives_where_its_scope_is_and_the_rule_where_the_source_is() -> None:
    tiny = TinyStack()
    source, replica = _buckets(tiny)
    _replication(tiny, source, replica, "models/churn/")
    synthesized = tiny.synth()
    (configuration,) = synthesized["resource"]["aws_s3_bucket_replication_configuration"].values()
    assert "provider" not in configuration
    buckets = {b["bucket"]: b.get("provider") for b in synthesized["resource"]["aws_s3_bucket"].values()}
    assert buckets == {"p-test-source": None, "p-test-replica": "aws.west"}
    (role,) = synthesized["resource"]["aws_iam_role"].values()
    assert role["name"] == "p-test-model-artifacts-replication"


def test_a_standby_region_needs_the_storage_settings_for_its_replica() -> None:
    tiny = TinyStack()
    west = aws.provider.AwsProvider(tiny.stack, "west", region="us-west-2", alias="west")
    props = SecondaryRegionProps(
        context=tiny.context,
        provider=west,
        region_name="us-west-2",
        key_administrators=KeyAdministrators(DEPLOYER_ARN),
        keys=PlatformKeysSettings(),
        failover=MATRIX["prod"].failover,
    )
    with pytest.raises(ConfigurationError) as caught:
        SecondaryRegion(tiny.stack, "secondary", props)
    assert "field 'storage'" in str(caught.value)
    # Without failover the region keeps copies only: no network, no logs key, no replica bucket.
    bare = SecondaryRegion(tiny.stack, "bare", dataclasses.replace(props, failover=None))
    assert (bare.network, bare.logs_key, bare.model_artifacts) == (None, None, None)
    assert bare.context.global_name("role") == "role-usw2"
