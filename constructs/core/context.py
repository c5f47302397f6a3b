"""The platform context: where one environment's resources live and whom they belong to.

One object per environment, built by the platform construct from its data sources (account, region,
partition) and the environment's names and owner tags, then handed to every feature construct instead of
five separate props each.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from constructs.core.errors import ConfigurationError

OWNER_TAG_KEYS = ("environment", "team", "cost_center", "project")
"""The cost-attribution tags every resource carries (security rule TAG-1 requires them)."""


@dataclass(frozen=True)
class PlatformContext:
    """Where and for whom one environment's platform is built.

    environment: the environment's name (``dev``, ``staging``, ``prod``).
    name_prefix: start of every resource name (``<project>-<environment>``).
    account_id, region, partition: the AWS account, region and partition; usually data-source tokens.
    owner_tags: the cost-attribution tags every resource carries (``environment``, ``team``, ``cost_center``,
      ``project``); constructs copy them where provider default_tags cannot reach (launched instances and
      volumes, dynamically provisioned volumes, API-created jobs).
    deployer_arn: the IAM role (or user) that runs Terraform, as the ``issuer_arn`` of an
      ``aws_iam_session_context`` of the caller (a policy or access entry names a role, never an assumed-role
      session): it administers every KMS key and, where the EKS settings ask, the cluster.
    protected: the environment's data and history must survive Terraform (the environment's ``protected``):
      constructs give their stateful resources ``prevent_destroy`` (see :mod:`constructs.core.protection`), which
      rule PROT-1 checks. False, the default, keeps resources destroyable, as throw-away environments and
      construct tests need.
    global_name_suffix: ends the names of resources that are global rather than regional (IAM roles), through
      :meth:`global_name`. Empty in the environment's region; the context of its secondary region sets one
      (``-usw2``), so a construct built in both regions creates two roles, not one role twice.
    """

    environment: str
    name_prefix: str
    account_id: str
    region: str
    partition: str
    owner_tags: Mapping[str, str]
    deployer_arn: str
    protected: bool = False
    global_name_suffix: str = ""

    def __post_init__(self) -> None:
        missing = [key for key in OWNER_TAG_KEYS if not self.owner_tags.get(key)]
        if missing or not self.name_prefix:
            raise ConfigurationError(
                "PlatformContext",
                "owner_tags" if missing else "name_prefix",
                dict(self.owner_tags) if missing else self.name_prefix,
                f"owner tags with every one of {OWNER_TAG_KEYS}" if missing else "a non-empty name prefix",
            )

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        """``arn:<partition>:<service>:<region>:<account>:<resource>`` (region or account left empty on request)."""
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account_id if account else ''}:{resource}"
        )

    @property
    def account_root(self) -> str:
        """The account's root principal ARN, as key and resource policies name the account."""
        return f"arn:{self.partition}:iam::{self.account_id}:root"

    def managed_policy_arn(self, name: str) -> str:
        """ARN of an AWS-managed IAM policy (``AmazonSSMManagedInstanceCore``, ``service-role/...``)."""
        return f"arn:{self.partition}:iam::aws:policy/{name}"

    def global_name(self, name: str) -> str:
        """``name`` for a resource whose names are global across regions (an IAM role): with the region's suffix."""
        return f"{name}{self.global_name_suffix}"

    def via_service(self, service: str) -> str:
        """The ``kms:ViaService`` value of ``service`` in this region (``s3.us-east-1.amazonaws.com``)."""
        return f"{service}.{self.region}.amazonaws.com"
