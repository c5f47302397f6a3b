"""Every stack's AWS part passes the real `terraform validate` against the pinned AWS provider (5.100.0).

Offline, only the AWS provider binary is available (see README, "What runs offline"), so the helm
and kubernetes providers and their resources are left out of the validated copy; everything else
is validated exactly as synthesized.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ENVIRONMENTS
from tests.support.terraform import run_terraform, terraform_cli_env

IN_CLUSTER_PROVIDERS = ("helm", "kubernetes")

pytestmark = pytest.mark.terraform


def aws_only(config: dict[str, Any]) -> dict[str, Any]:
    """The stack without its backend and without the in-cluster (helm, kubernetes) providers."""
    config = json.loads(json.dumps(config))
    config["terraform"].pop("backend", None)
    for provider in IN_CLUSTER_PROVIDERS:
        config["terraform"].get("required_providers", {}).pop(provider, None)
        config.get("provider", {}).pop(provider, None)
        for block in ("resource", "data"):
            for resource_type in [t for t in config.get(block, {}) if t.startswith(f"{provider}_")]:
                del config[block][resource_type]
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
