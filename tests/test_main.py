"""main.py: a failed check stops the synth cleanly and leaves no partial output behind."""

from __future__ import annotations

import cdktf
from constructs.provider_bindings import aws
from constructs.required_tags import RequiredTags
from constructs.synth_checks import SynthChecks

import main
from stacks.ml_platform_stack import REQUIRED_TAGS


def _app_with_an_untagged_second_stack(outdir: str) -> cdktf.App:
    app = cdktf.App(outdir=outdir)
    for name, tags in (("good", {k: "x" for k in REQUIRED_TAGS}), ("bad", {"environment": "x"})):
        stack = cdktf.TerraformStack(app, name)
        default_tags = [aws.provider.AwsProviderDefaultTags(tags=tags)]
        aws.provider.AwsProvider(stack, "aws", region="us-east-1", default_tags=default_tags)
        aws.sns_topic.SnsTopic(stack, "topic", name=name)
        cdktf.Aspects.of(stack).add(SynthChecks("required-tags", [RequiredTags(REQUIRED_TAGS)]))
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
