"""The environment's secondary region: its context, the key that encrypts what is copied there and, for a serving
standby, its minimal network, logs key and replica of the model artifacts."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from cdktf import TerraformProvider
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef
from constructs.core.regions import RegionScope
from constructs.network.network import PlatformNetwork, PlatformNetworkProps
from constructs.resilience.settings import ServingFailoverSettings
from constructs.storage.bucket import SecureBucket, SecureBucketProps
from constructs.storage.keys import KEY_USE_ACTIONS, KeyAdministrators, key_policy, logs_key_statement
from constructs.storage.settings import PlatformKeysSettings, StorageSettings

# Services that write the environment's copies in the secondary region with the recovery key.
RECOVERY_KEY_SERVICES = ("rds", "s3")
# With a serving standby, the services that also use it there: SageMaker for the endpoint's storage volumes and
# captured data, ECR for the replicated serving images in the standby's repository.
STANDBY_KEY_SERVICES = ("sagemaker", "ecr")

_REGION = re.compile(r"(?P<area>[a-z]{2})-(?P<gov>gov-)?(?P<direction>[a-z]+)-(?P<number>\d+)")
_DIRECTIONS = ("north", "south", "east", "west", "central")


def region_code(region: str) -> str:
    """The short form of a region name that its availability zone IDs start with (``us-west-2`` -> ``usw2``).

    Each compass word contributes its initial (``southeast`` -> ``se``), ``central`` a ``c``.
    """
    match = _REGION.fullmatch(region)
    require(match is not None, "region_code", "region", region, "an AWS region name such as 'us-west-2'")
    assert match is not None
    direction = match["direction"]
    initials = ""
    while direction:
        word = next((w for w in _DIRECTIONS if direction.startswith(w)), None)
        require(word is not None, "region_code", "region", region, "a region whose middle part is a compass direction")
        assert word is not None
        initials += word[0]
        direction = direction[len(word) :]
    return f"{match['area']}{'g' if match['gov'] else ''}{initials}{match['number']}"


@dataclass(frozen=True)
class SecondaryRegionProps:
    """Props for :class:`SecondaryRegion`.

    context: the environment in its primary region; the secondary context differs in its region and in the suffix
      of its global names (``-<region code>``, see :meth:`PlatformContext.global_name`).
    provider: the AWS provider of the secondary region (an alias of the stack).
    region_name: the secondary region's name (``us-west-2``), the provider's region: it names the replica bucket
      and the suffix of global names, which must be known when the configuration is synthesized.
    key_administrators: who administers the recovery key (the platform's key administrators).
    keys: the environment's key settings (deletion window), which the recovery key follows.
    failover: the serving standby's settings, or None for a region that only keeps copies (no network there).
    storage: the environment's storage settings, which the replica bucket's lifecycle follows (with ``failover``).
    """

    context: PlatformContext
    provider: TerraformProvider
    region_name: str
    key_administrators: KeyAdministrators
    keys: PlatformKeysSettings
    failover: ServingFailoverSettings | None = None
    storage: StorageSettings | None = None


class SecondaryRegion(RegionScope):
    """Where the environment recovers when its region fails: not a second platform, only what recovery needs.

    It holds the secondary region's context (the same names, account and tags, that region, and global names that
    end in the region's code) and the recovery key, a customer-managed key of that region (a KMS key never leaves
    its region) that RDS and S3 of the account use for the copies they write there: the MLflow database's
    replicated backups, and replicated model artifacts.

    With ``failover``, it also holds what the standby SageMaker endpoint needs there (the endpoint itself is built
    below this scope by the platform): a logs key (CloudWatch Logs of that region), a minimal
    :class:`PlatformNetwork` from ``failover.network`` (no EKS tags, no cluster lives there) and
    :attr:`model_artifacts`, the replica of the model-artifacts bucket, encrypted with the recovery key, which
    SageMaker and ECR then also use there, with :attr:`access_logs` receiving its server access logs where the
    environment's storage settings log access.
    """

    def __init__(self, scope: Construct, id: str, props: SecondaryRegionProps) -> None:
        super().__init__(scope, id, props.provider)
        region = aws.data_aws_region.DataAwsRegion(self, "region")
        self.region_code = region_code(props.region_name)
        self.context = dataclasses.replace(props.context, region=region.name, global_name_suffix=f"-{self.region_code}")
        c = self.context
        self.props = props
        services = RECOVERY_KEY_SERVICES + (STANDBY_KEY_SERVICES if props.failover is not None else ())
        self.recovery_key: KmsKeyRef = aws.kms_key.KmsKey(
            self,
            "recovery-key",
            description=f"{c.name_prefix}: copies kept in the secondary region (database backups, model artifacts)",
            enable_key_rotation=True,
            deletion_window_in_days=props.keys.deletion_window_days,
            policy=key_policy(
                c,
                props.key_administrators,
                PolicyStatement(
                    sid="AccountUsesKeyThroughServices",
                    principals={"AWS": c.account_root},
                    actions=(*KEY_USE_ACTIONS, "kms:CreateGrant"),
                    resources=("*",),
                    conditions={"StringEquals": {"kms:ViaService": [c.via_service(s) for s in services]}},
                ),
            ),
            # Deleting it makes every copy unreadable, and the copies are for the day the primary region is gone.
            lifecycle=prevent_destroy(c.protected),
        )
        aws.kms_alias.KmsAlias(
            self, "recovery-key-alias", name=f"alias/{c.name_prefix}-recovery", target_key_id=self.recovery_key.key_id
        )
        self.logs_key: KmsKeyRef | None = None
        self.network: PlatformNetwork | None = None
        self.model_artifacts: SecureBucket | None = None
        self.access_logs: SecureBucket | None = None
        if props.failover is not None:
            self._standby(props.failover)

    def _standby(self, failover: ServingFailoverSettings) -> None:
        p = self.props
        c = self.context
        require(
            p.storage is not None, self.node.path, "storage", None, "the environment's storage settings with failover"
        )
        assert p.storage is not None
        logs_key: KmsKeyRef = aws.kms_key.KmsKey(
            self,
            "logs-key",
            description=f"{c.name_prefix}: CloudWatch Logs of the serving standby in the secondary region",
            enable_key_rotation=True,
            deletion_window_in_days=p.keys.deletion_window_days,
            policy=key_policy(c, p.key_administrators, logs_key_statement(c)),
            lifecycle=prevent_destroy(c.protected),
        )
        aws.kms_alias.KmsAlias(
            self, "logs-key-alias", name=f"alias/{c.name_prefix}-logs", target_key_id=logs_key.key_id
        )
        self.logs_key = logs_key
        # Ids that no path of the primary's resources ends with ("vpc", not "network"), so a path suffix names one.
        self.network = PlatformNetwork(
            self, "vpc", PlatformNetworkProps(context=c, settings=failover.network, logs_key=logs_key)
        )
        # S3 delivers server access logs only to a bucket of the same region: the replica gets a log bucket there.
        if p.storage.access_logging:
            self.access_logs = SecureBucket(
                self,
                "replica-logs",
                SecureBucketProps(
                    bucket_name=f"{c.name_prefix}-access-logs-{c.account_id}-{self.region_code}",
                    kms_key=None,
                    log_delivery_source_account=c.account_id,
                    lifecycle=p.storage.bucket_lifecycle(expire_objects_after_days=p.storage.backup_retention_days),
                ),
            )
        # The account ID makes the name globally unique, the region code tells it from the primary's bucket.
        self.model_artifacts = SecureBucket(
            self,
            "artifact-replica",
            SecureBucketProps(
                bucket_name=f"{c.name_prefix}-model-artifacts-{c.account_id}-{self.region_code}",
                kms_key=self.recovery_key,
                lifecycle=p.storage.bucket_lifecycle(),
                access_log_bucket=self.access_logs,
            ),
        )
