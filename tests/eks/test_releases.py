"""Kubernetes releases and the EKS support calendar: pinned builds per minor, versions EKS still runs."""

from __future__ import annotations

import json
import re
from datetime import date

import constructs.eks.cluster as eks_cluster_module
import pytest
from constructs.core.errors import ConfigurationError
from constructs.eks.addons import EksAddons, EksAddonsProps
from constructs.eks.releases import KUBERNETES_RELEASES, supported_versions
from constructs.eks.settings import EksClusterSettings

from stacks.overrides import load_environments
from tests.eks.clusters import eks_cluster
from tests.support.stacks import TinyStack


def test_every_release_pins_builds_for_its_own_minor_and_the_eks_support_windows() -> None:
    build = re.compile(r"^v\d+\.\d+\.\d+-eksbuild\.\d+$")
    for minor, release in KUBERNETES_RELEASES.items():
        for addon in ("vpc_cni", "coredns", "kube_proxy", "ebs_csi_driver"):
            assert build.match(getattr(release, addon)), (minor, addon)
        # kube-proxy and cluster-autoscaler are released per Kubernetes minor and must match the cluster's.
        assert release.kube_proxy.startswith(f"v{minor}."), minor
        assert re.fullmatch(rf"v{re.escape(minor)}\.\d+", release.cluster_autoscaler_image), minor
        # Extended support is the 12 months after standard support.
        end = release.end_of_standard_support
        assert release.end_of_extended_support == end.replace(year=end.year + 1), minor


def test_the_default_is_the_newest_minor_which_has_the_longest_standard_support() -> None:
    newest = max(KUBERNETES_RELEASES, key=lambda minor: tuple(int(part) for part in minor.split(".")))
    assert EksClusterSettings().kubernetes_version == newest == "1.36"
    assert EksClusterSettings().release == KUBERNETES_RELEASES[newest]
    assert KUBERNETES_RELEASES[newest].end_of_standard_support == max(
        release.end_of_standard_support for release in KUBERNETES_RELEASES.values()
    )


@pytest.mark.parametrize(
    "day, support_type, versions",
    [
        (date(2026, 11, 28), "STANDARD", ("1.35", "1.36")),
        (date(2027, 3, 26), "STANDARD", ("1.35", "1.36")),
        (date(2027, 3, 27), "STANDARD", ("1.36",)),
        (date(2027, 8, 1), "STANDARD", ("1.36",)),
        (date(2027, 8, 2), "STANDARD", ()),
        (date(2027, 8, 2), "EXTENDED", ("1.35", "1.36")),
        (date(2028, 3, 27), "EXTENDED", ("1.36",)),
        (date(2028, 8, 2), "EXTENDED", ()),
    ],
)
def test_supported_versions_follow_the_eks_calendar(day, support_type, versions) -> None:
    assert supported_versions(day, support_type) == versions


def test_standard_support_type_rejects_a_version_once_its_standard_support_ended() -> None:
    settings = EksClusterSettings(kubernetes_version="1.35")
    settings.require_supported_on(date(2027, 3, 26), "here")
    with pytest.raises(ConfigurationError) as error:
        settings.require_supported_on(date(2027, 3, 27), "here")
    assert (error.value.where, error.value.field, error.value.value) == ("here", "kubernetes_version", "1.35")
    assert "('1.36',)" in error.value.allowed
    assert "support_type 'EXTENDED'" in error.value.allowed


def test_extended_support_type_keeps_a_version_until_extended_support_ends() -> None:
    settings = EksClusterSettings(kubernetes_version="1.35", support_type="EXTENDED")
    settings.require_supported_on(date(2027, 3, 27), "here")
    with pytest.raises(ConfigurationError) as error:
        settings.require_supported_on(date(2028, 3, 27), "here")
    assert (error.value.field, error.value.value) == ("kubernetes_version", "1.35")
    assert "('1.36',)" in error.value.allowed


def test_a_table_without_any_supported_minor_asks_for_the_next_one() -> None:
    with pytest.raises(ConfigurationError) as error:
        EksClusterSettings().require_supported_on(date(2027, 8, 2), "here")
    assert "add the next Kubernetes minor" in error.value.allowed


def test_cluster_refuses_a_version_eks_would_upgrade_by_itself_on_the_day_of_synthesis(monkeypatch) -> None:
    monkeypatch.setattr(eks_cluster_module, "synthesis_date", lambda: date(2027, 3, 27))
    with pytest.raises(ConfigurationError) as error:
        eks_cluster(TinyStack(), EksClusterSettings(kubernetes_version="1.35"))
    assert (error.value.where, error.value.field) == ("tiny/cluster", "kubernetes_version")
    tiny = TinyStack()
    eks_cluster(tiny, EksClusterSettings(kubernetes_version="1.35", support_type="EXTENDED"))
    (cluster,) = tiny.synth()["resource"]["aws_eks_cluster"].values()
    assert (cluster["version"], cluster["upgrade_policy"]) == ("1.35", {"support_type": "EXTENDED"})


def test_an_override_to_the_other_minor_brings_its_own_addon_builds(monkeypatch) -> None:
    monkeypatch.setattr(eks_cluster_module, "synthesis_date", lambda: date(2026, 11, 28))
    overrides = {"staging": {"eks.kubernetes_version": "1.35"}}
    settings = load_environments(environ={"ML_PLATFORM_OVERRIDES": json.dumps(overrides)})["staging"].eks
    tiny = TinyStack()
    cluster = eks_cluster(tiny, settings)
    assert cluster.release == KUBERNETES_RELEASES["1.35"]
    EksAddons(tiny.stack, "addons", EksAddonsProps(cluster=cluster, volume_key=tiny.key))
    stack = tiny.synth()
    (synthesized,) = stack["resource"]["aws_eks_cluster"].values()
    assert synthesized["version"] == "1.35"
    assert {a["addon_name"]: a["addon_version"] for a in stack["resource"]["aws_eks_addon"].values()} == {
        "vpc-cni": "v1.21.1-eksbuild.7",
        "kube-proxy": "v1.35.3-eksbuild.2",
        "coredns": "v1.13.2-eksbuild.4",
        "aws-ebs-csi-driver": "v1.66.0-eksbuild.1",
    }
