"""The deploy gate: no deploy on top of unexplained drift, unless the change is labelled as its correction."""

from __future__ import annotations

import json

import pytest

from gitops.gate import main

ISSUES = json.dumps(
    [
        {"number": 31, "url": "https://github.com/acme/ml-platform/issues/31"},
        {"number": 12, "url": "https://github.com/acme/ml-platform/issues/12"},
    ]
)


def gate(issues: str, labels: str, env: str = "prod") -> int:
    """The gate's exit code for these inputs."""
    return main(["--env", env, "--open-drift-issues", issues, "--labels", labels])


def test_no_open_drift_issue_lets_the_deploy_go(capsys: pytest.CaptureFixture[str]) -> None:
    assert gate("[]", "[]") == 0
    assert capsys.readouterr().out == "No open drift issue for prod: the deploy may go ahead.\n"


def test_an_open_drift_issue_blocks_and_names_the_issues_and_the_way_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert gate(ISSUES, '["enhancement"]') == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("Deploy of prod blocked: something changed in prod outside Terraform")
    assert (
        "Open drift issues:\n  #12 https://github.com/acme/ml-platform/issues/12\n"
        "  #31 https://github.com/acme/ml-platform/issues/31\n" in captured.err
    )
    assert "add the label `drift-correction` to its pull request before merging" in captured.err


def test_a_push_without_a_pull_request_is_blocked_by_an_open_issue() -> None:
    assert gate('[{"number": 7}]', "[]") == 1


@pytest.mark.parametrize("label", ["drift-correction", "Drift-Correction"])
def test_the_correction_label_lets_the_deploy_go_over_open_drift(
    label: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate(ISSUES, json.dumps(["infra", label])) == 0
    assert "labelled drift-correction, so it deploys" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("issues", "labels", "message"),
    [
        ("not json", "[]", "--open-drift-issues is not JSON"),
        ('{"number": 12}', "[]", "--open-drift-issues: expected a JSON list"),
        ('[{"number": "12"}]', "[]", "is not an issue with a positive integer 'number'"),
        ('[{"number": true}]', "[]", "is not an issue with a positive integer 'number'"),
        ('[{"number": 12, "url": 5}]', "[]", "the url of issue 12 is not a string"),
        ("[]", "drift-correction", "--labels is not JSON"),
        ("[]", '[{"name": "drift-correction"}]', "--labels: expected a JSON list of label names"),
    ],
)
def test_malformed_input_is_a_usage_error_not_a_block(
    issues: str, labels: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gate(issues, labels) == 2
    assert message in capsys.readouterr().err


def test_the_environment_must_be_a_name() -> None:
    with pytest.raises(SystemExit) as exited:
        gate("[]", "[]", env="prod; echo")
    assert exited.value.code == 2
