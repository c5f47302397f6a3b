"""What the EKS tests share: the matrix's GPU environments, its IRSA roles, and a tiny cluster to build on."""

from __future__ import annotations

from typing import Any

from constructs.eks.cluster import EksCluster, EksClusterProps
from constructs.eks.node_group import EksGpuNodeGroup, EksGpuNodeGroupProps
from constructs.eks.settings import EksClusterSettings, EksGpuNodeGroupSettings

from tests.support.stacks import TinyStack
from tests.support.synth_json import ref

GPU_ENVIRONMENTS = ("staging", "prod")
# (namespace, service account) of every IRSA role of the platform, by the role construct's path.
IRSA = {
    "eks/addons/ebs-csi-irsa/role": ("kube-system", "ebs-csi-controller-sa"),
    "eks/components/cluster-autoscaler-irsa/role": ("kube-system", "cluster-autoscaler"),
    "eks/components/load-balancer-controller-irsa/role": ("kube-system", "aws-load-balancer-controller"),
    "mlflow/server-irsa/role": ("mlflow", "mlflow"),
    "mlflow/secrets-irsa/role": ("mlflow", "mlflow-secrets"),
}


def eks_cluster(
    tiny: TinyStack, settings: EksClusterSettings | None = None, *, id: str = "cluster", **overrides: Any
) -> EksCluster:
    """An EKS cluster called ``tiny`` in ``tiny``'s stack (two subnets, its one key), with ``overrides`` to props."""
    props: dict[str, Any] = {
        "name": "tiny",
        "settings": settings or EksClusterSettings(),
        "vpc_id": "vpc-1",
        "vpc_cidr": "10.0.0.0/16",
        "subnet_ids": ["subnet-1", "subnet-2"],
        "secrets_key": tiny.key,
        "logs_key": tiny.key,
        "context": tiny.context,
    }
    props.update(overrides)
    return EksCluster(tiny.stack, id, EksClusterProps(**props))


def issuer_host_local(stack: dict[str, Any], prefix: str = "") -> str:
    """Name of the one local holding a cluster's OIDC issuer host (the one whose name starts with ``prefix``)."""
    (local_name,) = [name for name in stack["locals"] if name.startswith(prefix) and "oidc-issuer-host" in name]
    return local_name


def web_identity_trust(federated: str, issuer_host: str, namespace: str, account: str) -> dict[str, Any]:
    """The trust policy of an IRSA role: one service account, through one cluster's OIDC provider, for STS."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ServiceAccountWebIdentity",
                "Effect": "Allow",
                "Principal": {"Federated": federated},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{account}",
                        f"{issuer_host}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def expected_irsa_trust(stack: dict[str, Any], role_path: str) -> dict[str, Any]:
    """The trust policy of the platform's IRSA role at ``role_path``: its one service account, via the issuer."""
    namespace, account = IRSA[role_path]
    provider = ref(stack, "aws_iam_openid_connect_provider", "eks/cluster/oidc-provider", "arn")
    return web_identity_trust(provider, f"${{local.{issuer_host_local(stack)}}}", namespace, account)


def gpu_node_group(tiny: TinyStack, cluster: EksCluster) -> EksGpuNodeGroup:
    """The default GPU node group ``tiny-gpu`` of ``cluster``, for features that place pods on GPU nodes."""
    return EksGpuNodeGroup(
        tiny.stack,
        "gpu-nodes",
        EksGpuNodeGroupProps(
            name="tiny-gpu",
            cluster=cluster,
            subnet_ids=["subnet-1"],
            settings=EksGpuNodeGroupSettings(),
            volume_key=tiny.key,
        ),
    )
