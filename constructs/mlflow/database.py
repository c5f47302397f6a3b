"""The MLflow backend store: RDS for PostgreSQL in the private subnets, reachable only from the EKS cluster.

Terraform never sees a password: RDS generates the master user's password and keeps it in a Secrets Manager
secret of its own (``manage_master_user_password``), encrypted with a key of this construct; the configuration
and the state hold only the secret's ARN. Clients connect over TLS only (``rds.force_ssl``), and IAM
authentication is on for anyone who should not hold the master password at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.iam import PolicyStatement, grant, service_role
from constructs.core.logs import encrypted_log_group
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef, RoleRef
from constructs.mlflow.settings import MlflowDatabaseSettings
from constructs.resilience.region import SecondaryRegion
from constructs.storage.keys import KEY_USE_ACTIONS, KeyAdministrators, key_policy
from constructs.storage.settings import PlatformKeysSettings

POSTGRES_PORT = 5432
DATABASE_NAME = "mlflow"
MASTER_USERNAME = "mlflow"
# What RDS exports to CloudWatch Logs: the server log (connections, errors) and the major-upgrade log.
LOG_EXPORTS = ("postgresql", "upgrade")
# Performance Insights' free tier keeps 7 days of history.
PERFORMANCE_INSIGHTS_RETENTION_DAYS = 7
# Server parameters beyond AWS's defaults, each a reason a DBA would give in a review.
PARAMETERS = {
    # Refuse every connection without TLS (the endpoint is private, but pods share nodes and networks).
    "rds.force_ssl": "1",
    # Who connected from where, and for how long: the audit trail of a database holding the experiment history.
    "log_connections": "1",
    "log_disconnections": "1",
}
MONITORING_ROLE_SUFFIX = "-monitoring"
# RDS DB instance identifiers: letters, digits and hyphens, starting with a letter, without two hyphens in a row or a
# trailing hyphen; at most 63 characters, and 53 here so that the monitoring role's name fits IAM's 64.
MAX_IDENTIFIER_LENGTH = 64 - len(MONITORING_ROLE_SUFFIX)
_IDENTIFIER = re.compile(rf"(?=.{{1,{MAX_IDENTIFIER_LENGTH}}}$)[a-zA-Z](?:-?[a-zA-Z0-9])*")


@dataclass(frozen=True)
class MlflowDatabaseProps:
    """Props for :class:`MlflowDatabase`.

    context: the environment; its name prefix names the instance (``<prefix>-mlflow``), its ``protected`` flag
      protects the instance, its log groups and its key from ``terraform destroy``.
    settings: the environment's database shape (class, storage, availability, backups, monitoring).
    vpc_id: the platform VPC, home of the database's security group.
    subnet_ids: the private subnets the instance (and a multi-AZ standby) may run in, in two AZs or more.
    client_security_group_id: the only source allowed to reach PostgreSQL: the EKS cluster security group
      (:attr:`constructs.eks.cluster.EksCluster.node_security_group_id`), which every node and pod carries.
    data_key: KMS key encrypting the storage, its snapshots and Performance Insights.
    logs_key: KMS key encrypting the exported PostgreSQL and upgrade logs.
    keys: the environment's key settings, which the master-user secret's own key follows too.
    key_administrators: who administers that key: the platform's key administrators.
    recovery_region: the environment's secondary region, where the automated backups are replicated when
      ``settings.replicated_backup_retention_days`` is set (required then).
    """

    context: PlatformContext
    settings: MlflowDatabaseSettings
    vpc_id: str
    subnet_ids: Sequence[str]
    client_security_group_id: str
    data_key: KmsKeyRef
    logs_key: KmsKeyRef
    keys: PlatformKeysSettings
    key_administrators: KeyAdministrators
    recovery_region: SecondaryRegion | None = None


class MlflowDatabase(Construct):
    """One RDS for PostgreSQL instance for MLflow's tracking data, with the secure defaults of a data store.

    - A pinned major version (RDS applies minor versions in the maintenance window, never a major one), no
      extended-support enrollment: an end-of-support major fails loudly instead of costing extra.
    - Private subnets only, not publicly accessible, and a security group admitting TCP 5432 from the cluster
      security group and nothing else (no CIDR, no egress: RDS answers over the same connection).
    - Storage, snapshots and Performance Insights encrypted with the platform's data key; TLS required
      (``rds.force_ssl``); IAM database authentication on.
    - The master password generated and kept by RDS in Secrets Manager, under a key of its own that the
      account may use only through Secrets Manager; :meth:`grant_read_credentials` lets one role read it.
    - Connection and upgrade logs in CloudWatch Logs groups created here first (our retention and key).
    - Backups, multi-AZ, deletion protection, final snapshot, Performance Insights and Enhanced Monitoring
      from the environment's settings; ``prevent_destroy`` in a protected environment.
    - With ``replicated_backup_retention_days``, the automated backups (snapshots and transaction logs) replicated to
      the secondary region under its recovery key, for a point-in-time restore there when the region is lost.
    """

    def __init__(self, scope: Construct, id: str, props: MlflowDatabaseProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        self.props = props
        self.context = props.context
        self.settings = props.settings
        self.identifier = f"{props.context.name_prefix}-mlflow"
        require(
            bool(_IDENTIFIER.fullmatch(self.identifier)),
            where,
            "context.name_prefix",
            props.context.name_prefix,
            f"a prefix that makes '<prefix>-mlflow' a valid RDS instance identifier of at most {MAX_IDENTIFIER_LENGTH} "
            "letters, digits and single hyphens, starting with a letter (the monitoring role's name adds "
            f"'{MONITORING_ROLE_SUFFIX}' within IAM's 64)",
        )
        require(
            len(props.subnet_ids) >= 2,
            where,
            "subnet_ids",
            list(props.subnet_ids),
            "private subnets in at least two AZs (RDS requires two for a subnet group, and a standby needs one)",
        )
        self._secret_key()
        self._network()
        self._log_groups()
        self._instance()
        self.backup_replication = self._backup_replication()

    def _secret_key(self) -> None:
        p = self.props
        c = self.context
        # A key of its own: the secret holds the master password, so its readers are decided by this key policy
        # and each reader's IAM policy, not by whoever may use the data key.
        self.secret_key: KmsKeyRef = aws.kms_key.KmsKey(
            self,
            "secret-key",
            description=f"MLflow database {self.identifier}: master user secret",
            enable_key_rotation=True,
            deletion_window_in_days=p.keys.deletion_window_days,
            lifecycle=prevent_destroy(c.protected),
            policy=key_policy(
                c,
                p.key_administrators,
                # AWS's own aws/secretsmanager key policy: principals of this account, only through Secrets
                # Manager. RDS creates and rotates the secret with its service-linked role and a reader decrypts
                # it with its own role; both still need an IAM policy for the key and the secret.
                PolicyStatement(
                    sid="AccountUsesKeyThroughSecretsManager",
                    principals={"AWS": "*"},
                    actions=KEY_USE_ACTIONS,
                    resources=("*",),
                    conditions={
                        "StringEquals": {
                            "kms:CallerAccount": c.account_id,
                            "kms:ViaService": c.via_service("secretsmanager"),
                        }
                    },
                ),
            ),
        )
        aws.kms_alias.KmsAlias(
            self,
            "secret-key-alias",
            name=f"alias/{c.name_prefix}-mlflow-database-secret",
            target_key_id=self.secret_key.key_id,
        )

    def _network(self) -> None:
        p = self.props
        self.subnet_group = aws.db_subnet_group.DbSubnetGroup(
            self,
            "subnet-group",
            name=self.identifier,
            description=f"Private subnets of the MLflow database {self.identifier}",
            subnet_ids=list(p.subnet_ids),
        )
        self.security_group = aws.security_group.SecurityGroup(
            self,
            "security-group",
            name=f"{self.identifier}-db",
            description=f"PostgreSQL of the MLflow database {self.identifier}: only from the EKS cluster",
            vpc_id=p.vpc_id,
            tags={"Name": f"{self.identifier}-db"},
        )
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            self,
            "postgres-from-cluster",
            security_group_id=self.security_group.id,
            description="PostgreSQL from the EKS cluster security group (nodes and pods)",
            ip_protocol="tcp",
            from_port=POSTGRES_PORT,
            to_port=POSTGRES_PORT,
            referenced_security_group_id=p.client_security_group_id,
        )
        family = self.settings.parameter_group_family
        self.parameter_group = aws.db_parameter_group.DbParameterGroup(
            self,
            "parameter-group",
            # The family in the name: a major upgrade needs a group of the new family while the old one is
            # still attached, so the new group is created first under its own name.
            name=f"{self.identifier}-{family}",
            family=family,
            description=f"MLflow database {self.identifier}: TLS only, connections logged",
            parameter=[
                aws.db_parameter_group.DbParameterGroupParameter(name=name, value=value)
                for name, value in PARAMETERS.items()
            ],
            lifecycle=TerraformResourceLifecycle(create_before_destroy=True),
        )

    def _log_groups(self) -> None:
        c = self.context
        # Created before the instance, so RDS writes into groups with our retention and key instead of creating
        # unencrypted ones that keep events forever.
        self.log_groups = [
            encrypted_log_group(
                self,
                f"{export}-log-group",
                name=f"/aws/rds/instance/{self.identifier}/{export}",
                retention_days=self.settings.log_retention_days,
                key=self.props.logs_key,
                protected=c.protected,
            )
            for export in LOG_EXPORTS
        ]

    def _monitoring_role(self) -> tuple[RoleRef, Any]:
        c = self.context
        role = service_role(
            self,
            "monitoring-role",
            name=f"{self.identifier}{MONITORING_ROLE_SUFFIX}",
            services=("monitoring.rds.amazonaws.com",),
            description=f"Enhanced Monitoring of the MLflow database {self.identifier}",
            # AWS's confused-deputy guard for this role: only for this account's instance of this name.
            trust_conditions={
                "StringEquals": {
                    "aws:SourceAccount": c.account_id,
                    "aws:SourceArn": c.arn("rds", f"db:{self.identifier}"),
                }
            },
        )
        attachment = aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self,
            "monitoring-policy",
            role=role.name,
            policy_arn=c.managed_policy_arn("service-role/AmazonRDSEnhancedMonitoringRole"),
        )
        return role, attachment

    def _instance(self) -> None:
        p = self.props
        s = self.settings
        c = self.context
        depends_on: list[Any] = list(self.log_groups)
        monitoring: dict[str, Any] = {}
        self.monitoring_role: RoleRef | None = None
        if s.monitoring_interval_seconds > 0:
            self.monitoring_role, attachment = self._monitoring_role()
            # RDS checks the role's permissions when the instance is created.
            depends_on.append(attachment)
            monitoring = {
                "monitoring_interval": s.monitoring_interval_seconds,
                "monitoring_role_arn": self.monitoring_role.arn,
            }
        insights: dict[str, Any] = {}
        if s.performance_insights:
            insights = {
                "performance_insights_enabled": True,
                "performance_insights_kms_key_id": p.data_key.arn,
                "performance_insights_retention_period": PERFORMANCE_INSIGHTS_RETENTION_DAYS,
            }
        self.instance = aws.db_instance.DbInstance(
            self,
            "instance",
            identifier=self.identifier,
            engine="postgres",
            # The major version only: RDS picks the newest minor and upgrades minors by itself.
            engine_version=s.engine_version,
            auto_minor_version_upgrade=True,
            allow_major_version_upgrade=False,
            engine_lifecycle_support="open-source-rds-extended-support-disabled",
            # No ca_cert_identifier: new instances get RDS's current default, rds-ca-rsa2048-g1 (RSA 2048, valid
            # until 2061), and naming it makes the provider modify the instance again right after creating it.
            instance_class=s.instance_class,
            allocated_storage=s.allocated_storage_gib,
            max_allocated_storage=s.max_allocated_storage_gib,
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=p.data_key.arn,
            db_name=DATABASE_NAME,
            port=POSTGRES_PORT,
            username=MASTER_USERNAME,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=self.secret_key.arn,
            iam_database_authentication_enabled=True,
            multi_az=s.multi_az,
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            publicly_accessible=False,
            parameter_group_name=self.parameter_group.name,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            backup_retention_period=s.backup_retention_days,
            copy_tags_to_snapshot=True,
            # A protected environment keeps its automated backups after a deletion, for point-in-time recovery.
            delete_automated_backups=not c.protected,
            deletion_protection=s.deletion_protection,
            skip_final_snapshot=not s.final_snapshot,
            final_snapshot_identifier=f"{self.identifier}-final" if s.final_snapshot else None,
            # Changes wait for the maintenance window unless an operator applies them by hand: a changed class
            # or parameter must not restart the tracking server's database in the middle of the day.
            apply_immediately=False,
            depends_on=depends_on,
            lifecycle=prevent_destroy(c.protected),
            **insights,
            **monitoring,
        )

    def _backup_replication(self) -> Any | None:
        days = self.settings.replicated_backup_retention_days
        if days is None:
            return None
        region = self.props.recovery_region
        require(
            region is not None,
            self.node.path,
            "recovery_region",
            None,
            "the environment's secondary region when settings.replicated_backup_retention_days is set",
        )
        assert region is not None
        # Created by the secondary region's provider: RDS starts a replication from the destination region.
        return aws.db_instance_automated_backups_replication.DbInstanceAutomatedBackupsReplication(
            self,
            "backup-replication",
            provider=region.provider,
            source_db_instance_arn=self.instance.arn,
            kms_key_id=region.recovery_key.arn,
            retention_period=days,
        )

    @property
    def address(self) -> str:
        """Host name of the instance's endpoint (the primary's; it moves to the standby on a failover)."""
        return self.instance.address

    @property
    def port(self) -> int:
        """The PostgreSQL port."""
        return POSTGRES_PORT

    @property
    def database_name(self) -> str:
        """The database MLflow stores its tracking data in."""
        return DATABASE_NAME

    @property
    def username(self) -> str:
        """The master user, whose password is in :attr:`secret_arn`."""
        return MASTER_USERNAME

    @property
    def secret_arn(self) -> str:
        """ARN of the Secrets Manager secret RDS keeps the master user's credentials in (JSON: username, password)."""
        return self.instance.master_user_secret.get(0).secret_arn

    def credentials_read_statements(self) -> tuple[PolicyStatement, ...]:
        """What reading the master user's credentials takes: the secret's value, decrypted through Secrets Manager."""
        return (
            PolicyStatement(
                sid="ReadDatabaseCredentials",
                actions=("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"),
                resources=(self.secret_arn,),
            ),
            PolicyStatement(
                sid="DecryptDatabaseCredentials",
                actions=("kms:Decrypt",),
                resources=(self.secret_key.arn,),
                conditions={"StringEquals": {"kms:ViaService": self.context.via_service("secretsmanager")}},
            ),
        )

    def grant_read_credentials(self, role: RoleRef) -> Any:
        """Let ``role`` read the master user's credentials (one inline policy, ``read-mlflow-database-credentials``)."""
        return grant(
            self,
            f"grant-read-credentials-{role.friendly_unique_id}",
            role,
            *self.credentials_read_statements(),
            name="read-mlflow-database-credentials",
        )
