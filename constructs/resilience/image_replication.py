"""ECR replication of the environments' serving images to their secondary regions (an account-level setting)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cdktf import TerraformProvider
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require

# ECR's limits on one registry's replication configuration (ECR User Guide, "Private image replication").
MAX_RULES = 10
MAX_FILTERS_PER_RULE = 100
# ECR's pattern of a repository filter (API RepositoryFilterValue): namespaces, each ending in '/'.
_FILTER = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*")


@dataclass(frozen=True)
class ReplicatedRepositories:
    """One environment's image repositories replicated to its secondary region.

    repository_prefix: the start of the names of the environment's repositories (``mlp-prod/``: the endpoint's
      repository is ``<name prefix>/<model name>``); the trailing ``/`` keeps ``mlp-prod2/`` out.
    destination_region: the environment's secondary region.
    """

    repository_prefix: str
    destination_region: str


@dataclass(frozen=True)
class ImageReplicationProps:
    """Props for :class:`ImageReplication`.

    registry_id: the account whose registry replicates, and the destination registry (same account).
    source_region: the region of the replicating registry (the environments' primary region).
    repositories: what each environment replicates; one rule per destination region, one filter per environment.
    provider: the AWS provider of ``source_region`` (None: the stack's default provider, which must be there).
    """

    registry_id: str
    source_region: str
    repositories: Sequence[ReplicatedRepositories]
    provider: TerraformProvider | None = None


class ImageReplication(Construct):
    """The replication configuration of one region's private registry: the environments' images copied on push.

    ECR keeps one replication configuration per registry (account and region), so it is managed once, here, for
    every environment whose primary registry this is: one rule per destination region whose filters are the
    environments' repository prefixes. Applying it replaces any configuration set by hand. Only images pushed
    after it exists are copied, in under 30 minutes for most images; ECR never deletes a replica. Repository
    settings are not replicated, which is why each standby creates its own repository of the same name (tags
    immutable, scanned, encrypted with its region's key) before the first push: ECR replicates into it.
    """

    def __init__(self, scope: Construct, id: str, props: ImageReplicationProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(bool(props.repositories), where, "repositories", [], "at least one environment's repositories")
        by_destination: dict[str, list[str]] = {}
        for entry in props.repositories:
            require(
                entry.destination_region != props.source_region,
                where,
                "destination_region",
                entry.destination_region,
                f"a region other than the source registry's ({props.source_region})",
            )
            require(
                entry.repository_prefix.endswith("/")
                and 2 <= len(entry.repository_prefix) <= 256
                and bool(_FILTER.fullmatch(entry.repository_prefix)),
                where,
                "repository_prefix",
                entry.repository_prefix,
                "a repository name prefix ending in '/', such as 'mlp-prod/'",
            )
            filters = by_destination.setdefault(entry.destination_region, [])
            if entry.repository_prefix not in filters:
                filters.append(entry.repository_prefix)
        require(
            len(by_destination) <= MAX_RULES,
            where,
            "repositories",
            sorted(by_destination),
            f"at most {MAX_RULES} destination regions (ECR's rule limit per registry)",
        )
        for region, filters in by_destination.items():
            require(
                len(filters) <= MAX_FILTERS_PER_RULE,
                where,
                "repositories",
                len(filters),
                f"at most {MAX_FILTERS_PER_RULE} repository prefixes replicated to {region}",
            )
        self.rules = {region: tuple(filters) for region, filters in sorted(by_destination.items())}
        rc = aws.ecr_replication_configuration
        self.configuration = rc.EcrReplicationConfiguration(
            self,
            "configuration",
            provider=props.provider,
            replication_configuration=rc.EcrReplicationConfigurationReplicationConfiguration(
                rule=[
                    rc.EcrReplicationConfigurationReplicationConfigurationRule(
                        destination=[
                            rc.EcrReplicationConfigurationReplicationConfigurationRuleDestination(
                                region=region, registry_id=props.registry_id
                            )
                        ],
                        repository_filter=[
                            rc.EcrReplicationConfigurationReplicationConfigurationRuleRepositoryFilter(
                                filter=prefix, filter_type="PREFIX_MATCH"
                            )
                            for prefix in filters
                        ],
                    )
                    for region, filters in self.rules.items()
                ]
            ),
        )
