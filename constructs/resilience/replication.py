"""Cross-region replication of the served model artifacts to the secondary region's replica bucket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.refs import RoleRef
from constructs.storage.bucket import SecureBucket

REPLICATION_RULE_ID = "model-artifacts-to-secondary-region"


@dataclass(frozen=True)
class ArtifactReplicationProps:
    """Props for :class:`ArtifactReplication`.

    context: the environment in its primary region, where the source bucket and the replication configuration live.
    replica_context: the environment in the secondary region, where the replica bucket and its key live.
    source: the primary model-artifacts bucket (SSE-KMS, versioned).
    replica: the replica bucket in the secondary region (SSE-KMS with a key of that region, versioned).
    prefix: the key prefix replicated (``models/<model_name>/``): what the standby endpoint serves, and nothing
      else (captured data and other models stay in the primary region).
    """

    context: PlatformContext
    replica_context: PlatformContext
    source: SecureBucket
    replica: SecureBucket
    prefix: str


class ArtifactReplication(Construct):
    """S3 replication of one prefix of the model-artifacts bucket to its replica, with a least-privilege role.

    - The role, assumable by S3 only, reads the source's object versions for replication under ``prefix``, decrypts
      them with the source's key through S3 of the primary region, writes replicas under the same prefix of the
      replica bucket and encrypts them with the replica's key through S3 of the secondary region (the S3 User
      Guide's permissions for replicating SSE-KMS objects). Both buckets use S3 Bucket Keys, so the KMS
      encryption context is the bucket ARN; the object ARNs below the prefix are allowed too, for objects uploaded
      with bucket keys switched off. The destination key also needs ``kms:Decrypt``: S3 checks the integrity of
      the replica's bucket key with it.
    - One rule, for SSE-KMS objects under ``prefix`` (the buckets hold no others), re-encrypted with the replica's
      key. Delete markers are not replicated: deleting a model version in the primary region (by mistake or by an
      intruder) leaves the standby's copy, which the replica's lifecycle expires like the source's old versions.
    - No Replication Time Control: it guarantees 99.99 % of objects within 15 minutes for $0.015 per GB on top of
      the transfer, while model artifacts change only when a version is published, which is followed by a
      configuration change; publishing waits until the replica exists (docs/disaster-recovery.md), so an SLA on
      the delay buys nothing.
    """

    def __init__(self, scope: Construct, id: str, props: ArtifactReplicationProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            props.source.kms_key is not None and props.replica.kms_key is not None,
            where,
            "source",
            props.source.node.path,
            "SSE-KMS buckets on both sides (the rule replicates SSE-KMS objects)",
        )
        require(
            bool(props.prefix) and props.prefix.endswith("/") and not props.prefix.startswith("/"),
            where,
            "prefix",
            props.prefix,
            "a key prefix ending in '/', such as 'models/churn/'",
        )
        replica_key = props.replica.kms_key
        assert replica_key is not None
        self.props = props
        c = props.context
        self.role: RoleRef = service_role(
            self,
            "role",
            name=c.global_name(f"{c.name_prefix}-model-artifacts-replication"),
            services=("s3.amazonaws.com",),
            description=f"S3 replication of {props.prefix} of the model artifacts to the secondary region",
        )
        self.policy = grant(self, "permissions", self.role, *self.statements(), name="replicate-model-artifacts")
        rc = aws.s3_bucket_replication_configuration
        self.configuration: Any = rc.S3BucketReplicationConfigurationA(
            self,
            "configuration",
            bucket=props.source.bucket.id,
            role=self.role.arn,
            rule=[
                rc.S3BucketReplicationConfigurationRule(
                    id=REPLICATION_RULE_ID,
                    status="Enabled",
                    priority=1,
                    filter=rc.S3BucketReplicationConfigurationRuleFilter(prefix=props.prefix),
                    delete_marker_replication=rc.S3BucketReplicationConfigurationRuleDeleteMarkerReplication(
                        status="Disabled"
                    ),
                    source_selection_criteria=rc.S3BucketReplicationConfigurationRuleSourceSelectionCriteria(
                        sse_kms_encrypted_objects=rc.S3BucketReplicationConfigurationRuleSourceSelectionCriteriaSseKmsEncryptedObjects(
                            status="Enabled"
                        )
                    ),
                    destination=rc.S3BucketReplicationConfigurationRuleDestination(
                        bucket=props.replica.arn,
                        storage_class="STANDARD",
                        encryption_configuration=rc.S3BucketReplicationConfigurationRuleDestinationEncryptionConfiguration(
                            replica_kms_key_id=replica_key.arn
                        ),
                    ),
                )
            ],
            # S3 refuses a replication configuration until both buckets are versioned, and replicates nothing the
            # role may not read yet.
            depends_on=[props.source.versioning, props.replica.versioning, self.policy],
        )

    def statements(self) -> list[PolicyStatement]:
        """The replication role's permissions (S3 User Guide, "Setting up permissions for live replication")."""
        p = self.props
        assert p.source.kms_key is not None and p.replica.kms_key is not None
        source, replica = p.source.arn, p.replica.arn
        return [
            PolicyStatement(
                sid="ReadReplicationConfiguration",
                actions=("s3:GetReplicationConfiguration", "s3:ListBucket"),
                resources=(source,),
            ),
            # Tags travel with the object only when S3 may read them; ReplicateObject covers writing them.
            PolicyStatement(
                sid="ReadSourceVersions",
                actions=("s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"),
                resources=(f"{source}/{p.prefix}*",),
            ),
            PolicyStatement(
                sid="WriteReplicas",
                actions=("s3:ReplicateObject",),
                resources=(f"{replica}/{p.prefix}*",),
            ),
            PolicyStatement(
                sid="DecryptSourceThroughS3",
                actions=("kms:Decrypt",),
                resources=(p.source.kms_key.arn,),
                conditions={
                    "StringEquals": {"kms:ViaService": p.context.via_service("s3")},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [source, f"{source}/{p.prefix}*"]},
                },
            ),
            PolicyStatement(
                sid="EncryptReplicasThroughS3",
                actions=("kms:Encrypt", "kms:Decrypt"),
                resources=(p.replica.kms_key.arn,),
                conditions={
                    "StringEquals": {"kms:ViaService": p.replica_context.via_service("s3")},
                    "StringLike": {"kms:EncryptionContext:aws:s3:arn": [replica, f"{replica}/{p.prefix}*"]},
                },
            ),
        ]
