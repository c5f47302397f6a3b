"""Resources in another region: a scope whose resources and data sources use that region's provider.

A construct written for the environment's region (a key, an endpoint) is reused unchanged in the secondary region
by building it under a :class:`RegionScope`: an Aspect gives every resource and data source below it the scope's
provider, unless one was chosen explicitly.
"""

from __future__ import annotations

import jsii
from cdktf import Aspects, IAspect, TerraformDataSource, TerraformProvider, TerraformResource
from constructs import Construct, IConstruct


@jsii.implements(IAspect)
class _UseProvider:
    """Sets ``provider`` on every resource and data source that has none."""

    def __init__(self, provider: TerraformProvider) -> None:
        self.provider = provider

    def visit(self, node: IConstruct) -> None:
        if isinstance(node, TerraformResource | TerraformDataSource) and node.provider is None:
            node.provider = self.provider


class RegionScope(Construct):
    """A construct scope in the region of ``provider`` (an aliased AWS provider of the same stack).

    Everything created below it, however deep, is created with that provider; a resource given its own
    provider keeps it.
    """

    def __init__(self, scope: Construct, id: str, provider: TerraformProvider) -> None:
        super().__init__(scope, id)
        self.provider = provider
        Aspects.of(self).add(_UseProvider(provider))
