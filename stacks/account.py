"""The account-level configuration: what the bootstrap stack builds once per AWS account, for every environment.

Plain settings, no jsii: ``stacks/matrix.py`` holds the value (``BOOTSTRAP``), ``stacks/bootstrap_stack.py`` builds
the stack from it.
"""

from __future__ import annotations

from constructs.core.context import OWNER_TAG_KEYS
from constructs.core.settings import Settings
from constructs.cost.settings import CostAllocationSettings
from constructs.gitops.settings import GithubActionsSettings, StateStoreSettings

from stacks.environment import OwnerTags, ResourcePrefix

SHARED_ENVIRONMENT_TAG = "shared"
"""The ``environment`` tag of account-level resources, which serve every environment."""


class BootstrapConfig(Settings):
    """The account-level part of the matrix (``stacks/matrix.py``, ``BOOTSTRAP``).

    resource_prefix: starts the names of the bootstrap's roles (``<prefix>-github-deploy-<env>``) and key alias;
      the environments' prefixes are ``<their resource_prefix>-<env>``, so these names never fall inside them.
    tags: the cost-attribution tags of the bootstrap's resources; their ``environment`` tag is ``shared``.
    github: which workflows of the repository the roles trust.
    state: the state bucket's history and access-log retention.
    cost: the account's cost allocation tags and team cost category.
    """

    resource_prefix: ResourcePrefix
    tags: OwnerTags
    github: GithubActionsSettings = GithubActionsSettings()
    state: StateStoreSettings = StateStoreSettings()
    cost: CostAllocationSettings = CostAllocationSettings()

    @property
    def resource_tags(self) -> dict[str, str]:
        """The tag map every taggable bootstrap resource carries."""
        tags = {"environment": SHARED_ENVIRONMENT_TAG, **self.tags.model_dump()}
        return {key: tags[key] for key in OWNER_TAG_KEYS}
