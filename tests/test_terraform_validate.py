"""Every stack's AWS part passes the real `terraform validate` against the pinned AWS provider (5.100.0).

Offline, only the AWS provider binary is available (see README, "What runs offline"), so the helm
and kubernetes providers and their resources are left out of the validated copy; everything else
is validated exactly as synthesized.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENVIRONMENTS
from tests.support.terraform import run_terraform, terraform_cli_env

IN_CLUSTER_PROVIDERS = ("helm", "kubernetes")

pytestmark = pytest.mark.terraform


# A reference to an in-cluster resource or data source inside an expression: `helm_release.x`,
# `data.kubernetes_namespace_v1.y` (but not an attribute such as `.kubernetes_network_config`).
IN_CLUSTER_REFERENCE = re.compile(rf"(?<![\w.])(?:data\.)?(?:{'|'.join(IN_CLUSTER_PROVIDERS)})_\w+\.[\w-]+")


def is_in_cluster_address(address: str) -> bool:
    """Whether a ``depends_on`` address (``type.name`` or ``data.type.name``) names an in-cluster resource."""
    resource_type = address.removeprefix("data.").split(".", 1)[0]
    return resource_type.startswith(tuple(f"{provider}_" for provider in IN_CLUSTER_PROVIDERS))


def _drop_in_cluster_dependencies(body: dict[str, Any]) -> None:
    if "depends_on" in body:
        kept = [address for address in body["depends_on"] if not is_in_cluster_address(address)]
        if kept:
            body["depends_on"] = kept
        else:
            del body["depends_on"]


def aws_only(config: dict[str, Any]) -> dict[str, Any]:
    """The stack without its backend and without the in-cluster (helm, kubernetes) providers.

    References to what is removed go with it: ``depends_on`` entries naming an in-cluster resource
    are dropped from the remaining resources, data sources and outputs, and outputs whose value reads
    an in-cluster resource are dropped (they describe the in-cluster part). Any other reference is
    left as it is, so that terraform reports it.
    """
    config = json.loads(json.dumps(config))
    config["terraform"].pop("backend", None)
    for provider in IN_CLUSTER_PROVIDERS:
        config["terraform"].get("required_providers", {}).pop(provider, None)
        config.get("provider", {}).pop(provider, None)
        for block in ("resource", "data"):
            for resource_type in [t for t in config.get(block, {}) if t.startswith(f"{provider}_")]:
                del config[block][resource_type]
    for block in ("resource", "data"):
        for bodies in config.get(block, {}).values():
            for body in bodies.values():
                _drop_in_cluster_dependencies(body)
    outputs = config.get("output", {})
    for name in list(outputs):
        if IN_CLUSTER_REFERENCE.search(json.dumps(outputs[name].get("value"))):
            del outputs[name]
        else:
            _drop_in_cluster_dependencies(outputs[name])
    return config


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


@pytest.mark.parametrize("env_name", ENVIRONMENTS)
def test_stack_validates_with_the_real_terraform(synth_dir: Path, stacks, terraform_env, tmp_path, env_name) -> None:
    workdir = tmp_path / env_name
    shutil.copytree(synth_dir / "stacks" / env_name, workdir)
    (workdir / "cdk.tf.json").write_text(json.dumps(aws_only(stacks[env_name]), indent=2))
    run_terraform(["init", "-backend=false", "-input=false", "-no-color"], workdir, terraform_env)
    result = run_terraform(["validate", "-no-color", "-json"], workdir, terraform_env, ok_returncodes=(0, 1))
    report = json.loads(result.stdout)
    problems = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]]
    assert report["valid"], "\n".join(problems)
    # Deprecated or ignored arguments show up as warnings: the product keeps none.
    assert problems == [], "\n".join(problems)


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
