"""The serving standby: prod's SageMaker endpoint a second time in its secondary region, fed by replication.

Prod (``failover`` set) is read with a published model (``published``: every environment with
``sagemaker.model_version = "v1"``, so the endpoints exist): both regions' model, endpoint configuration, endpoint
and autoscaling, the standby's network and keys, the replica bucket, the replication rule and its role, and the
bootstrap stack's ECR replication. Dev and staging carry none of it.
"""

from __future__ import annotations

from typing import Any

import pytest
from constructs.core.errors import ConfigurationError

from stacks.matrix import MATRIX
from stacks.overrides import apply_overrides
from tests.gitops.bootstrap import synth_bootstrap
from tests.support.synth_json import address, arn_parts, data_ref, only, output, policy, ref, resources

SECONDARY = "aws.secondary"
STANDBY = "platform/secondary/standby"
SERVING_TYPES = (
    "aws_sagemaker_model",
    "aws_sagemaker_endpoint_configuration",
    "aws_sagemaker_endpoint",
    "aws_appautoscaling_target",
    "aws_appautoscaling_policy",
)
PROD = MATRIX["prod"]
FAILOVER = PROD.failover
assert FAILOVER is not None and PROD.sagemaker is not None
# What AWS calls the region's zone IDs' prefix (usw2-az1): the standby's global names end with it.
SECONDARY_CODE = FAILOVER.network.zone_ids[0].split("-az")[0]


def _by_provider(stack: dict[str, Any], resource_type: str) -> dict[str | None, list[dict[str, Any]]]:
    found: dict[str | None, list[dict[str, Any]]] = {}
    for config in resources(stack, resource_type).values():
        found.setdefault(config.get("provider"), []).append(config)
    return found


def _secondary_resources(stack: dict[str, Any]) -> dict[str, list[str]]:
    return {
        kind: [config["//"]["metadata"]["path"] for config in by_name.values() if config.get("provider") == SECONDARY]
        for kind, by_name in stack["resource"].items()
    }


@pytest.mark.parametrize("resource_type", SERVING_TYPES)
def test_prod_serves_from_both_regions_with_the_same_construct(published, resource_type) -> None:
    by_provider = _by_provider(published["prod"], resource_type)
    assert set(by_provider) == {None, SECONDARY}
    assert len(by_provider[None]) == len(by_provider[SECONDARY]) == 1
    (primary,), (standby,) = by_provider[None], by_provider[SECONDARY]
    assert primary["//"]["metadata"]["path"].startswith("prod/platform/sagemaker/")
    assert standby["//"]["metadata"]["path"].startswith(f"prod/{STANDBY}/")


def test_the_standby_endpoint_has_the_primarys_name_and_shape(published) -> None:
    stack = published["prod"]
    endpoints = _by_provider(stack, "aws_sagemaker_endpoint")
    (primary,), (standby,) = endpoints[None], endpoints[SECONDARY]
    assert standby["name"] == primary["name"] == f"{PROD.name_prefix}-{PROD.sagemaker.model_name}"
    assert standby["endpoint_config_name"] == ref(
        stack, "aws_sagemaker_endpoint_configuration", STANDBY + "/endpoint-configuration", "name"
    )
    configs = _by_provider(stack, "aws_sagemaker_endpoint_configuration")
    (primary_config,), (standby_config,) = configs[None], configs[SECONDARY]
    assert standby_config["production_variants"] == [
        {**variant, "model_name": ref(stack, "aws_sagemaker_model", STANDBY + "/model-v1", "name")}
        for variant in primary_config["production_variants"]
    ]
    recovery_key = ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn")
    capture = standby_config["data_capture_config"]
    assert capture["kms_key_id"] == recovery_key
    replica = ref(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "bucket")
    assert capture["destination_s3_uri"] == f"s3://{replica}/data-capture/{PROD.sagemaker.model_name}/"
    targets = _by_provider(stack, "aws_appautoscaling_target")
    (primary_target,), (standby_target,) = targets[None], targets[SECONDARY]
    assert (standby_target["min_capacity"], standby_target["max_capacity"]) == (
        primary_target["min_capacity"],
        primary_target["max_capacity"],
    )
    endpoint = address(stack, "aws_sagemaker_endpoint", STANDBY + "/endpoint")
    assert standby_target["resource_id"] == f"endpoint/${{{endpoint}.name}}/variant/primary"


def test_the_standby_model_serves_the_replicas_from_its_own_region(published) -> None:
    stack = published["prod"]
    models = _by_provider(stack, "aws_sagemaker_model")
    (primary,), (standby,) = models[None], models[SECONDARY]
    replica = ref(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "bucket")
    key = f"models/{PROD.sagemaker.model_name}/v1/model.tar.gz"
    assert standby["primary_container"]["model_data_url"] == f"s3://{replica}/{key}"
    assert primary["primary_container"]["model_data_url"].endswith(f"/{key}")
    assert replica not in primary["primary_container"]["model_data_url"]
    secondary_region = data_ref(stack, "aws_region", "platform/secondary/region", "name")
    # The AWS Deep Learning Container of the secondary region, from AWS's own registry there.
    assert standby["primary_container"]["image"] == primary["primary_container"]["image"].replace(
        arn_parts(stack)[1], secondary_region
    )
    assert standby["primary_container"]["environment"]["SAGEMAKER_REGION"] == secondary_region
    subnets = [ref(stack, "aws_subnet", f"platform/secondary/vpc/private-{i}", "id") for i in range(2)]
    assert standby["vpc_config"]["subnets"] == subnets
    assert standby["execution_role_arn"] == ref(stack, "aws_iam_role", STANDBY + "/execution-role", "arn")


def test_global_names_differ_between_the_regions_and_the_primarys_keep_theirs(published, stacks) -> None:
    stack = published["prod"]
    roles = resources(stack, "aws_iam_role")
    names = [config["name"] for config in roles.values()]
    assert len(names) == len(set(names))
    assert all(len(name) <= 64 for name in names)
    standby = sorted(
        config["name"]
        for config in roles.values()
        if config["//"]["metadata"]["path"].startswith("prod/platform/secondary/")
    )
    endpoint = f"{PROD.name_prefix}-{PROD.sagemaker.model_name}"
    assert standby == sorted(
        [f"{endpoint}-sagemaker-{SECONDARY_CODE}", f"{PROD.name_prefix}-vpc-flow-logs-{SECONDARY_CODE}"]
    )
    primary = {config["name"] for config in roles.values() if config.get("provider") is None}
    assert {f"{endpoint}-sagemaker", f"{PROD.name_prefix}-vpc-flow-logs"} <= primary
    assert not any(name.endswith(f"-{SECONDARY_CODE}") for name in primary)
    # Staging has a secondary region but no failover: its names are what they were.
    assert not any(
        c["name"].endswith(f"-{SECONDARY_CODE}") for c in resources(stacks["staging"], "aws_iam_role").values()
    )


def test_the_standby_has_a_minimal_network_of_its_own(published) -> None:
    stack = published["prod"]
    vpc = only(stack, "aws_vpc", "platform/secondary/vpc/vpc")
    assert (vpc["provider"], vpc["cidr_block"]) == (SECONDARY, FAILOVER.network.vpc_cidr)
    subnets = [
        only(stack, "aws_subnet", f"platform/secondary/vpc/{kind}-{i}")
        for kind in ("public", "private")
        for i in range(2)
    ]
    assert {s["availability_zone_id"] for s in subnets} == set(FAILOVER.network.zone_ids)
    assert all(s["provider"] == SECONDARY for s in subnets)
    # No cluster lives there: no EKS discovery tag.
    assert not any(key.startswith("kubernetes.io/cluster/") for s in subnets for key in s["tags"])
    nat = [c for c in resources(stack, "aws_nat_gateway").values() if c.get("provider") == SECONDARY]
    assert len(nat) == 1
    assert not [
        c
        for c in resources(stack, "aws_vpc_endpoint").values()
        if c.get("provider") == SECONDARY and c["vpc_endpoint_type"] == "Interface"
    ]
    flow_logs = only(stack, "aws_cloudwatch_log_group", "platform/secondary/vpc/flow-log-group")
    assert flow_logs["kms_key_id"] == ref(stack, "aws_kms_key", "platform/secondary/logs-key", "arn")
    endpoint_logs = only(stack, "aws_cloudwatch_log_group", STANDBY + "/log-group")
    assert endpoint_logs["kms_key_id"] == ref(stack, "aws_kms_key", "platform/secondary/logs-key", "arn")


def test_the_standbys_logs_key_serves_cloudwatch_logs_of_the_secondary_region(published) -> None:
    stack = published["prod"]
    key = only(stack, "aws_kms_key", "platform/secondary/logs-key")
    assert key["provider"] == SECONDARY and key["enable_key_rotation"] is True
    assert key["lifecycle"] == {"prevent_destroy": True}
    region = data_ref(stack, "aws_region", "platform/secondary/region", "name")
    partition, _, account = arn_parts(stack)
    (logs,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "CloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": f"logs.{region}.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:{partition}:logs:{region}:{account}:*"}
    }
    alias = only(stack, "aws_kms_alias", "platform/secondary/logs-key-alias")
    assert (alias["provider"], alias["name"]) == (SECONDARY, f"alias/{PROD.name_prefix}-logs")


@pytest.mark.parametrize(("env", "services"), [("staging", ["rds", "s3"]), ("prod", ["rds", "s3", "sagemaker", "ecr"])])
def test_the_recovery_key_serves_the_standby_only_where_there_is_one(stacks, env, services) -> None:
    stack = stacks[env]
    key = only(stack, "aws_kms_key", "platform/secondary/recovery-key")
    region = data_ref(stack, "aws_region", "platform/secondary/region", "name")
    (use,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AccountUsesKeyThroughServices"]
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]}}


def test_the_replica_bucket_is_versioned_and_encrypted_with_the_recovery_key(published) -> None:
    stack = published["prod"]
    _, _, account = arn_parts(stack)
    bucket = only(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket")
    assert bucket["bucket"] == f"{PROD.name_prefix}-model-artifacts-{account}-{SECONDARY_CODE}"
    assert len(bucket["bucket"].replace(account, "0" * 12)) <= 63
    assert (bucket["provider"], bucket["lifecycle"]) == (SECONDARY, {"prevent_destroy": True})
    versioning = only(stack, "aws_s3_bucket_versioning", "platform/secondary/artifact-replica/versioning")
    assert versioning["versioning_configuration"] == {"status": "Enabled"}
    (rule,) = only(
        stack, "aws_s3_bucket_server_side_encryption_configuration", "platform/secondary/artifact-replica/encryption"
    )["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn"),
    }
    assert rule["bucket_key_enabled"] is True
    # Its server access logs go to a log bucket of its own region, as S3 requires.
    logging = only(stack, "aws_s3_bucket_logging", "platform/secondary/artifact-replica/access-logging")
    assert logging["provider"] == SECONDARY
    assert logging["target_bucket"] == ref(stack, "aws_s3_bucket", "platform/secondary/replica-logs/bucket", "id")
    logs = only(stack, "aws_s3_bucket", "platform/secondary/replica-logs/bucket")
    assert (logs["provider"], logs["bucket"]) == (
        SECONDARY,
        f"{PROD.name_prefix}-access-logs-{account}-{SECONDARY_CODE}",
    )
    # The standby's execution role reads its models there, decrypting through S3 only.
    read = [
        config
        for config in resources(stack, "aws_iam_role_policy").values()
        if config["role"] == ref(stack, "aws_iam_role", STANDBY + "/execution-role", "name")
        and config["name"] == "read-artifact-replica"
    ]
    (grant,) = read
    statements = {s["Sid"]: s for s in policy(grant["policy"])["Statement"]}
    replica_arn = ref(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "arn")
    assert statements["ArtifactReplicaReadObjects"]["Resource"] == f"{replica_arn}/models/{PROD.sagemaker.model_name}/*"


def test_the_served_models_prefix_is_replicated_with_the_replicas_own_key(published) -> None:
    stack = published["prod"]
    configuration = only(
        stack, "aws_s3_bucket_replication_configuration", "platform/artifact-replication/configuration"
    )
    assert "provider" not in configuration  # set on the source bucket, in the primary region
    assert configuration["bucket"] == ref(stack, "aws_s3_bucket", "platform/storage/model-artifacts/bucket", "id")
    assert configuration["role"] == ref(stack, "aws_iam_role", "platform/artifact-replication/role", "arn")
    assert configuration["rule"] == [
        {
            "id": "model-artifacts-to-secondary-region",
            "status": "Enabled",
            "priority": 1,
            "filter": {"prefix": f"models/{PROD.sagemaker.model_name}/"},
            "delete_marker_replication": {"status": "Disabled"},
            "source_selection_criteria": {"sse_kms_encrypted_objects": {"status": "Enabled"}},
            "destination": {
                "bucket": ref(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "arn"),
                "storage_class": "STANDARD",
                "encryption_configuration": {
                    "replica_kms_key_id": ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn")
                },
            },
        }
    ]
    assert set(configuration["depends_on"]) >= {
        address(stack, "aws_s3_bucket_versioning", "platform/storage/model-artifacts/versioning"),
        address(stack, "aws_s3_bucket_versioning", "platform/secondary/artifact-replica/versioning"),
    }


def test_the_replication_role_may_only_replicate_that_prefix(published) -> None:
    stack = published["prod"]
    role = only(stack, "aws_iam_role", "platform/artifact-replication/role")
    assert role["name"] == f"{PROD.name_prefix}-model-artifacts-replication"
    assert policy(role["assume_role_policy"])["Statement"] == [
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ]
    (permissions,) = [
        c
        for c in resources(stack, "aws_iam_role_policy").values()
        if c["role"] == ref(stack, "aws_iam_role", "platform/artifact-replication/role", "name")
    ]
    source = ref(stack, "aws_s3_bucket", "platform/storage/model-artifacts/bucket", "arn")
    replica = ref(stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "arn")
    prefix = f"models/{PROD.sagemaker.model_name}/"
    region = arn_parts(stack)[1]
    secondary_region = data_ref(stack, "aws_region", "platform/secondary/region", "name")
    assert policy(permissions["policy"])["Statement"] == [
        {
            "Sid": "ReadReplicationConfiguration",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": source,
        },
        {
            "Sid": "ReadSourceVersions",
            "Effect": "Allow",
            "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"],
            "Resource": f"{source}/{prefix}*",
        },
        {"Sid": "WriteReplicas", "Effect": "Allow", "Action": "s3:ReplicateObject", "Resource": f"{replica}/{prefix}*"},
        {
            "Sid": "DecryptSourceThroughS3",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": ref(stack, "aws_kms_key", "platform/keys/data", "arn"),
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [source, f"{source}/{prefix}*"]},
            },
        },
        {
            "Sid": "EncryptReplicasThroughS3",
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt"],
            "Resource": ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn"),
            "Condition": {
                "StringEquals": {"kms:ViaService": f"s3.{secondary_region}.amazonaws.com"},
                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [replica, f"{replica}/{prefix}*"]},
            },
        },
    ]
    # Nothing may delete a replica: delete markers are not replicated, so the role has no ReplicateDelete.
    assert "s3:ReplicateDelete" not in permissions["policy"]


def test_the_standby_outputs_name_its_endpoint_and_replica(published) -> None:
    stack = published["prod"]
    assert (
        output(stack, "sagemaker_standby_endpoint_name")["value"] == f"{PROD.name_prefix}-{PROD.sagemaker.model_name}"
    )
    assert output(stack, "model_artifacts_replica_bucket")["value"] == ref(
        stack, "aws_s3_bucket", "platform/secondary/artifact-replica/bucket", "bucket"
    )


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_dev_and_staging_pay_for_no_standby(published, stacks, env) -> None:
    for stack in (published[env], stacks[env]):
        secondary = _secondary_resources(stack)
        assert not any(
            secondary.get(kind)
            for kind in (*SERVING_TYPES, "aws_vpc", "aws_s3_bucket", "aws_nat_gateway", "aws_ecr_repository")
        )
        assert not resources(stack, "aws_s3_bucket_replication_configuration")
        assert "sagemaker_standby_endpoint_name" not in stack.get("output", {})
        assert len(resources(stack, "aws_sagemaker_endpoint")) == (1 if stack is published[env] else 0)


def test_the_bootstrap_replicates_the_standbys_images_to_its_region(published) -> None:
    bootstrap = synth_bootstrap()
    (configuration,) = resources(bootstrap, "aws_ecr_replication_configuration").values()
    assert "provider" not in configuration  # prod's region is the state's region
    account = f"${{{'data.aws_caller_identity.' + next(iter(bootstrap['data']['aws_caller_identity']))}.account_id}}"
    assert configuration["replication_configuration"] == {
        "rule": [
            {
                "destination": [{"region": PROD.secondary_region, "registry_id": account}],
                "repository_filter": [{"filter": f"{PROD.name_prefix}/", "filter_type": "PREFIX_MATCH"}],
            }
        ]
    }
    # The filter takes both regions' repository, which share their name, and no other environment's.
    stack = published["prod"]
    repositories = _by_provider(stack, "aws_ecr_repository")
    (primary,), (standby,) = repositories[None], repositories[SECONDARY]
    assert primary["name"] == standby["name"]
    assert primary["name"].startswith(f"{PROD.name_prefix}/")
    assert standby["encryption_configuration"] == [
        {"encryption_type": "KMS", "kms_key": ref(stack, "aws_kms_key", "platform/secondary/recovery-key", "arn")}
    ]
    assert standby["image_tag_mutability"] == "IMMUTABLE"
    for env in ("dev", "staging"):
        (other,) = resources(published[env], "aws_ecr_repository").values()
        assert not other["name"].startswith(f"{PROD.name_prefix}/")


STAGING_FAILOVER = {
    "failover": {
        "hostname": "models-staging.ml.example.com",
        "hosted_zone_name": "ml.example.com",
        "network": {"vpc_cidr": "10.131.0.0/16", "zone_ids": ["usw2-az1", "usw2-az2"], "nat_gateways": "single"},
    }
}


def test_two_environments_with_failover_share_one_rule_per_destination() -> None:
    configs = apply_overrides(MATRIX, {"staging": STAGING_FAILOVER})
    bootstrap = synth_bootstrap(environments=configs)
    (configuration,) = resources(bootstrap, "aws_ecr_replication_configuration").values()
    (rule,) = configuration["replication_configuration"]["rule"]
    assert [f["filter"] for f in rule["repository_filter"]] == [
        f"{configs['staging'].name_prefix}/",
        f"{PROD.name_prefix}/",
    ]


def test_an_environment_in_another_region_replicates_through_a_provider_of_that_region() -> None:
    # Only the bootstrap reads the moved region, so the copy skips the environment model's checks.
    configs = {
        name: config.model_copy(update={"region": "eu-west-1"}) if name == "prod" else config
        for name, config in MATRIX.items()
    }
    bootstrap = synth_bootstrap(environments=configs)
    (configuration,) = resources(bootstrap, "aws_ecr_replication_configuration").values()
    providers = {p.get("alias"): p for p in bootstrap["provider"]["aws"]}
    assert providers["eu-west-1"]["region"] == "eu-west-1"
    assert configuration["provider"] == "aws.eu-west-1"


def test_no_environment_with_failover_means_no_image_replication() -> None:
    configs = {name: config.model_copy(update={"failover": None}) for name, config in MATRIX.items()}
    assert not resources(synth_bootstrap(environments=configs), "aws_ecr_replication_configuration")


def test_failover_without_sagemaker_is_refused() -> None:
    with pytest.raises(ConfigurationError) as caught:
        apply_overrides(MATRIX, {"staging": {**STAGING_FAILOVER, "sagemaker": None}})
    assert "field 'failover'" in str(caught.value)
