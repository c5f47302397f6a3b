"""main.py: bad input stops it with exit 2 and a failed check with exit 3, and neither leaves output behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.checks import SynthChecks
from constructs.core.context import OWNER_TAG_KEYS
from constructs.policy.required_tags import RequiredTags

import main
from stacks.overrides import OVERRIDES_ENV

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _app_with_an_untagged_second_stack(outdir: str) -> cdktf.App:
    app = cdktf.App(outdir=outdir)
    for name, tags in (("good", dict.fromkeys(OWNER_TAG_KEYS, "x")), ("bad", {"environment": "x"})):
        stack = cdktf.TerraformStack(app, name)
        default_tags = [aws.provider.AwsProviderDefaultTags(tags=tags)]
        aws.provider.AwsProvider(stack, "aws", region="us-east-1", default_tags=default_tags)
        aws.sns_topic.SnsTopic(stack, "topic", name=name)
        cdktf.Aspects.of(stack).add(SynthChecks("required-tags", [RequiredTags(OWNER_TAG_KEYS)]))
    return app


def test_check_failure_exits_3_with_path_and_rule_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    outdir = tmp_path / "cdktf.out"
    monkeypatch.setenv("CDKTF_OUTDIR", str(outdir))
    monkeypatch.setattr(main, "build_app", _app_with_an_untagged_second_stack)
    assert main.main() == 3
    err = capsys.readouterr().err
    assert err.startswith("synthesis checks failed: required-tags: 1 violation(s) in stack 'bad'")
    assert "[bad/topic] TAG-1" in err
    # The first stack was already written to the scratch directory; none of it may survive.
    assert not outdir.exists()
    assert list(tmp_path.iterdir()) == []


def test_successful_synth_replaces_previous_output(tmp_path, monkeypatch) -> None:
    outdir = tmp_path / "cdktf.out"
    (outdir / "stale").mkdir(parents=True)

    def good_app(path: str) -> cdktf.App:
        app = cdktf.App(outdir=path)
        stack = cdktf.TerraformStack(app, "only")
        aws.provider.AwsProvider(stack, "aws", region="us-east-1")
        return app

    monkeypatch.setattr(main, "build_app", good_app)
    main.synth(outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["manifest.json", "stacks"]
    assert (outdir / "stacks" / "only" / "cdk.tf.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("overrides", "env", "field", "allowed"),
    [
        ('{"prod": {"storage.access_logging": "yes"}}', "prod", "storage.access_logging", "a boolean"),
        ('{"dev": {"network.az_count": 12}}', "dev", "network.az_count", "a whole number from 2 to 6"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, clean_env, capsys, overrides, env, field, allowed) -> None:
    outdir = tmp_path / "cdktf.out"
    clean_env.setenv("CDKTF_OUTDIR", str(outdir))
    clean_env.setenv(OVERRIDES_ENV, overrides)
    assert main.main() == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuration error: environment '{env}': field '{field}'")
    assert f"allowed: {allowed}" in err
    assert not outdir.exists()
    # No scratch directory of the aborted synth is left beside it either.
    assert list(tmp_path.iterdir()) == []


def test_bad_deployment_setting_exits_2_naming_the_variable(tmp_path, clean_env, capsys) -> None:
    clean_env.setenv("CDKTF_OUTDIR", str(tmp_path / "cdktf.out"))
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", "Not_A_Bucket")
    assert main.main() == 2
    assert "deployment: field 'ML_PLATFORM_STATE_BUCKET' = 'Not_A_Bucket'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_python_main_leaves_an_existing_output_untouched(tmp_path) -> None:
    """The user's own command, as a separate process: a bad override, a clean message, nothing changed."""
    outdir = tmp_path / "cdktf.out"
    (outdir / "stacks" / "dev").mkdir(parents=True)
    (outdir / "stacks" / "dev" / "cdk.tf.json").write_text('{"previous": "synth"}')
    (outdir / "manifest.json").write_text("{}")
    before = _snapshot(outdir)
    env = {key: value for key, value in os.environ.items() if not key.startswith("ML_PLATFORM_")}
    env.update({"CDKTF_OUTDIR": str(outdir), OVERRIDES_ENV: '{"staging": {"budget.alert_emails": "ops@example.com"}}'})
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "environment 'staging': field 'budget.alert_emails'" in result.stderr and "allowed: " in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]
