"""The Kubernetes minors the platform runs, with the versions pinned for each and EKS's support windows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True)
class KubernetesRelease:
    """Versions pinned together for one Kubernetes minor version, and that minor's EKS support window.

    EKS add-on versions are builds EKS offers for that minor (``aws eks describe-addon-versions
    --kubernetes-version <v> --addon-name <name>`` lists them; the EKS user guide tables show the
    latest per minor). cluster-autoscaler's minor must equal the cluster's. The dates are the EKS
    release calendar's (``aws eks describe-cluster-versions``): standard support ends 14 months after
    EKS releases a minor, extended support 12 months later.
    """

    vpc_cni: str
    coredns: str
    kube_proxy: str
    ebs_csi_driver: str
    cluster_autoscaler_image: str
    end_of_standard_support: date
    end_of_extended_support: date


# The minors in EKS standard support when the table was last reviewed (2026-11-28): 1.35 is the
# one-step upgrade source and the fallback for a workload that breaks on 1.36; older minors could only
# run at the extended-support price. Adding a minor: docs/eks.md ("Upgrades") says where each value
# comes from.
KUBERNETES_RELEASES: dict[str, KubernetesRelease] = {
    "1.35": KubernetesRelease(
        vpc_cni="v1.21.1-eksbuild.7",
        coredns="v1.13.2-eksbuild.4",
        kube_proxy="v1.35.3-eksbuild.2",
        ebs_csi_driver="v1.66.0-eksbuild.1",
        cluster_autoscaler_image="v1.35.2",
        end_of_standard_support=date(2027, 3, 27),
        end_of_extended_support=date(2028, 3, 27),
    ),
    "1.36": KubernetesRelease(
        vpc_cni="v1.22.4-eksbuild.3",
        coredns="v1.14.3-eksbuild.23",
        kube_proxy="v1.36.0-eksbuild.25",
        ebs_csi_driver="v1.66.0-eksbuild.1",
        cluster_autoscaler_image="v1.36.1",
        end_of_standard_support=date(2027, 8, 2),
        end_of_extended_support=date(2028, 8, 2),
    ),
}
DEFAULT_KUBERNETES_VERSION = "1.36"


def synthesis_date() -> date:
    """Today in UTC: the day the EKS support windows are checked against when a cluster is synthesized."""
    return datetime.now(UTC).date()


def supported_versions(day: date, support_type: str) -> tuple[str, ...]:
    """The minors of :data:`KUBERNETES_RELEASES` EKS still runs on ``day`` under ``support_type``.

    ``STANDARD``: before the end of standard support; ``EXTENDED``: before the end of extended support.
    """
    return tuple(
        version
        for version, release in KUBERNETES_RELEASES.items()
        if day < (release.end_of_standard_support if support_type == "STANDARD" else release.end_of_extended_support)
    )
