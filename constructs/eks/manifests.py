"""Kubernetes objects applied through a Helm release of a small chart kept in this repository.

Custom resources of an operator installed in the same apply (the External Secrets Operator's SecretStores and
ExternalSecrets) cannot be the Kubernetes provider's generic manifest resources: those read the CRD's schema at
plan time, so the first plan on a new cluster fails. A Helm release renders and applies them at apply time, after the
operator's release (and its CRDs) exist, and deletes them before it on destroy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cdktf import AssetType, ITerraformDependable, TerraformAsset
from constructs import Construct
from constructs.core.errors import ConfigurationError, require
from constructs.eks.components import install_chart
from constructs.eks.irsa import require_dns1123_label

MANIFESTS_CHART = Path(__file__).resolve().parent.parent.parent / "charts" / "platform-manifests"
"""The chart: it renders ``.Values.manifests``, one YAML document per object, and nothing else."""

HELM_RELEASE_NAME_MAX = 53
Manifest = Mapping[str, Any]
"""One complete Kubernetes object: ``apiVersion``, ``kind``, ``metadata`` (``name``, ``namespace``) and its body."""


def chart_digest(chart: Path = MANIFESTS_CHART) -> str:
    """SHA-256 over the chart's files (relative path and content, sorted): the asset's hash."""
    digest = hashlib.sha256()
    for path in sorted(p for p in chart.rglob("*") if p.is_file()):
        digest.update(path.relative_to(chart).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ManifestsReleaseProps:
    """Props for :class:`ManifestsRelease`.

    name: the Helm release name (a DNS-1123 label).
    namespace: the namespace every object belongs to; it must exist (the release does not create it).
    manifests: the objects, in the order they are applied.
    depends_on: what must exist first: the operator's release whose CRDs these objects use, the namespace (None
      entries, for what a configuration does not create, are skipped).
    cluster_scoped: the objects are cluster-scoped (ClusterQueues, cluster-wide runtimes) and name no namespace;
      ``namespace`` is then only where Helm keeps the release.
    """

    name: str
    namespace: str
    manifests: Sequence[Manifest]
    depends_on: Sequence[ITerraformDependable | None] = ()
    cluster_scoped: bool = False


class ManifestsRelease(Construct):
    """A Helm release of ``charts/platform-manifests`` applying ``manifests`` in one namespace.

    Every object must name its ``apiVersion``, ``kind`` and ``metadata.name``, and sit in ``namespace`` (or, for a
    release of cluster-scoped objects, in none): one release never reaches into another namespace. The values are
    the objects as JSON with sorted keys, so the same objects always give the same plan. The chart travels with the
    stack as a Terraform asset.
    """

    def __init__(self, scope: Construct, id: str, props: ManifestsReleaseProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require_dns1123_label(where, "name", props.name)
        # Helm keeps a release in a Secret labelled with its name, which caps release names at 53 characters.
        require(len(props.name) <= HELM_RELEASE_NAME_MAX, where, "name", props.name, "at most 53 characters")
        require_dns1123_label(where, "namespace", props.namespace)
        require(bool(props.manifests), where, "manifests", props.manifests, "at least one Kubernetes object")
        for index, manifest in enumerate(props.manifests):
            metadata = manifest.get("metadata")
            if not isinstance(metadata, Mapping):
                raise ConfigurationError(
                    where, f"manifests[{index}].metadata", metadata, "a mapping with name and namespace"
                )
            require(
                bool(manifest.get("apiVersion")) and bool(manifest.get("kind")) and bool(metadata.get("name")),
                where,
                f"manifests[{index}]",
                manifest,
                "an object with apiVersion, kind and metadata.name",
            )
            expected = None if props.cluster_scoped else props.namespace
            require(
                metadata.get("namespace") == expected,
                where,
                f"manifests[{index}].metadata.namespace",
                metadata.get("namespace"),
                "no namespace (a release of cluster-scoped objects)"
                if props.cluster_scoped
                else f"{props.namespace!r} (the release's namespace)",
            )
        self.props = props
        self.manifests = tuple(props.manifests)
        chart = TerraformAsset(
            self, "chart", path=str(MANIFESTS_CHART), type=AssetType.DIRECTORY, asset_hash=chart_digest()
        )
        self.release = install_chart(
            self,
            props.name,
            chart.path,
            id="release",
            namespace=props.namespace,
            values={"manifests": list(self.manifests)},
            depends_on=props.depends_on,
            timeout=300,
        )
