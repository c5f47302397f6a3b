"""Every stack's AWS part passes the real `terraform validate` against the pinned AWS provider (5.100.0).

Offline, only the AWS provider binary is available (see README, "What runs offline"), so the helm
and kubernetes providers and their resources are left out of the validated copy; everything else
is validated exactly as synthesized.
"""

from __future__ import annotations

import json
import shutil

import pytest

from gitops.terraform import aws_only, terraform_cli_env, validate_offline
from tests.support.synth_json import ENVIRONMENTS


@pytest.fixture(scope="session")
def terraform_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A terraform environment with an isolated CLI config and a shared plugin cache."""
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    home = tmp_path_factory.mktemp("terraform")
    env = terraform_cli_env(home)
    cache = home / "plugin-cache"
    cache.mkdir()
    env["TF_PLUGIN_CACHE_DIR"] = str(cache)
    return env


@pytest.mark.terraform
def test_every_stack_validates_with_the_real_terraform(stacks, terraform_env, tmp_path) -> None:
    problems = validate_offline({env: aws_only(stacks[env]) for env in ENVIRONMENTS}, tmp_path, terraform_env)
    assert problems == {env: [] for env in ENVIRONMENTS}, json.dumps(problems, indent=2)


def test_aws_only_copy_keeps_every_aws_resource(stacks) -> None:
    for env_name in ENVIRONMENTS:
        original = stacks[env_name]
        trimmed = aws_only(original)
        aws_types = {t for t in original.get("resource", {}) if t.startswith("aws_")}
        assert aws_types and aws_types == set(trimmed["resource"])
        assert "backend" not in trimmed["terraform"]


def test_aws_only_drops_every_reference_to_the_in_cluster_part() -> None:
    config = {
        "terraform": {
            "backend": {"s3": {"bucket": "state"}},
            "required_providers": {
                "aws": {"source": "aws", "version": "5.100.0"},
                "helm": {"source": "helm", "version": "3.1.1"},
                "kubernetes": {"source": "kubernetes", "version": "2.38.0"},
            },
        },
        "provider": {"aws": [{"region": "us-east-1"}], "helm": [{}], "kubernetes": [{}]},
        "data": {
            "aws_region": {"here": {}},
            "kubernetes_namespace_v1": {"system": {"metadata": {"name": "kube-system"}}},
        },
        "resource": {
            "aws_eks_cluster": {
                "ml": {"name": "ml", "depends_on": ["aws_iam_role.cluster", "helm_release.cni"]},
            },
            "aws_iam_role": {"cluster": {"name": "cluster"}},
            "aws_sns_topic": {
                "alerts": {
                    "name": "alerts",
                    "depends_on": ["kubernetes_service_account_v1.sa", "data.kubernetes_namespace_v1.system"],
                },
            },
            "helm_release": {"cni": {"name": "cni", "depends_on": ["aws_eks_cluster.ml"]}},
            "kubernetes_service_account_v1": {"sa": {"metadata": {"name": "sa"}}},
        },
        "output": {
            "cluster_name": {"value": "${aws_eks_cluster.ml.name}", "depends_on": ["helm_release.cni"]},
            "service_cidr": {"value": "${aws_eks_cluster.ml.kubernetes_network_config[0].service_ipv4_cidr}"},
            "cni_status": {"value": "${helm_release.cni.status}"},
            "namespace_uid": {"value": "${data.kubernetes_namespace_v1.system.metadata[0].uid}"},
        },
    }
    trimmed = aws_only(config)
    assert trimmed["terraform"] == {"required_providers": {"aws": {"source": "aws", "version": "5.100.0"}}}
    assert trimmed["provider"] == {"aws": [{"region": "us-east-1"}]}
    assert trimmed["data"] == {"aws_region": {"here": {}}}
    assert trimmed["resource"] == {
        "aws_eks_cluster": {"ml": {"name": "ml", "depends_on": ["aws_iam_role.cluster"]}},
        "aws_iam_role": {"cluster": {"name": "cluster"}},
        "aws_sns_topic": {"alerts": {"name": "alerts"}},
    }
    assert trimmed["output"] == {
        "cluster_name": {"value": "${aws_eks_cluster.ml.name}"},
        "service_cidr": {"value": "${aws_eks_cluster.ml.kubernetes_network_config[0].service_ipv4_cidr}"},
    }
    # The input is left untouched.
    assert config["resource"]["aws_eks_cluster"]["ml"]["depends_on"] == ["aws_iam_role.cluster", "helm_release.cni"]
