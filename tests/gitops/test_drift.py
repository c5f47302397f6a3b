"""The drift check on recorded Terraform output: the stream parser, attribute paths, outcomes and reports.

Terraform is replaced by :class:`Replay`, which answers each command with what Terraform 1.11.4 printed for the
same command against the emulator (``tests/gitops/recorded``, made by ``tests/gitops/record.py``). Malformed,
truncated and empty outputs are derived from those recordings here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from gitops import drift
from gitops.drift import TerraformRun
from gitops.plan_json import changed_paths, ignored_changes, load_plan, parse_plan_stream, resource_drift

RECORDED = Path(__file__).resolve().parent / "recorded"
MANIFEST: dict[str, Any] = json.loads((RECORDED / "manifest.json").read_text())["files"]


def recorded(name: str) -> str:
    """The text of one recording."""
    return (RECORDED / name).read_text(encoding="utf-8")


class Replay:
    """Stands in for ``gitops.drift.terraform``: answers with the recorded output of one scenario.

    ``overrides`` replaces the answer to ``init``, ``refresh`` (the refresh-only plan), ``code`` (the plan of
    the code) or ``show-refresh`` / ``show-code``.
    """

    def __init__(self, scenario: str, **overrides: TerraformRun) -> None:
        self.scenario = scenario
        self.overrides = overrides
        self.calls: list[list[str]] = []
        self.saved: dict[str, str] = {}
        self.lock = threading.Lock()

    def __call__(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout: float) -> TerraformRun:
        with self.lock:
            self.calls.append(list(args))
        if args[0] == "init":
            return self.overrides.get("init", TerraformRun(0, "Terraform has been successfully initialized!\n"))
        if args[0] == "plan":
            kind = "refresh" if "-refresh-only" in args else "code"
            with self.lock:
                self.saved[args[-1].removeprefix("-out=")] = kind
            name = f"check-{self.scenario}.{kind}.jsonl"
            return self.overrides.get(kind) or TerraformRun(MANIFEST[name]["exit_code"], recorded(name))
        if list(args[:2]) == ["show", "-json"]:
            kind = self.saved[args[2]]
            return self.overrides.get(f"show-{kind}") or TerraformRun(0, recorded(f"check-{self.scenario}.{kind}.json"))
        raise AssertionError(f"unexpected terraform command: {args}")


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    """A stacks directory holding a (never read) synthesized ``dev`` stack."""
    (tmp_path / "stacks" / "dev").mkdir(parents=True)
    (tmp_path / "stacks" / "dev" / "cdk.tf.json").write_text("{}")
    return tmp_path / "stacks"


def check(
    monkeypatch: pytest.MonkeyPatch, stacks: Path, replay: Replay, *extra: str
) -> tuple[int, dict[str, Any], str]:
    """Run ``python -m gitops.drift dev`` against ``replay``: exit code, JSON report, Markdown report."""
    monkeypatch.setattr(drift, "terraform", replay)
    report, markdown = stacks.parent / "report.json", stacks.parent / "report.md"
    code = drift.main(
        ["dev", "--stacks-dir", str(stacks), "--report", str(report), "--markdown", str(markdown), *extra]
    )
    return code, json.loads(report.read_text()), markdown.read_text()


# --- the stream parser -----------------------------------------------------------------------------------


def test_a_recorded_refresh_only_stream_lists_the_drift_and_ends_complete() -> None:
    stream = parse_plan_stream(recorded("check-drift.refresh.jsonl"))
    assert not stream.failed
    assert stream.terraform_version == "1.11.4"
    assert sorted((change.address, change.action) for change in stream.drifted) == [
        ("aws_s3_bucket.data", "update"),
        ("aws_s3_bucket_versioning.data", "update"),
        ("aws_sns_topic.alerts", "delete"),
    ]
    assert stream.planned == []
    assert stream.summary == {"add": 0, "change": 0, "import": 0, "remove": 0, "operation": "plan"}


def test_a_recorded_plan_stream_lists_planned_changes_and_output_changes() -> None:
    stream = parse_plan_stream(recorded("pr-destroy.jsonl"))
    assert [(change.address, change.action) for change in stream.planned] == [
        ("aws_s3_bucket.data", "delete"),
        ("aws_s3_bucket_versioning.data", "delete"),
    ]
    assert [(change.address, change.action) for change in stream.outputs] == [("output.bucket_arn", "delete")]


def test_an_error_diagnostic_is_an_error_with_its_summary_detail_and_place() -> None:
    stream = parse_plan_stream(recorded("check-error.code.jsonl"))
    assert stream.failed
    assert stream.errors == [
        'Reference to undeclared resource: A managed resource "aws_s3_bucket" "missing" has not been declared '
        "in the root module. (main.tf.json:85)"
    ]
    # The error explains the missing change_summary; it is not reported as a truncation on top.
    assert stream.problems == []


def test_a_line_that_is_not_json_is_reported_with_its_number() -> None:
    lines = recorded("check-clean.code.jsonl").splitlines()
    stream = parse_plan_stream("\n".join([*lines[:2], "panic: runtime error", *lines[2:]]))
    assert stream.failed
    assert stream.problems == ["line 3 is not JSON: 'panic: runtime error'"]
    assert stream.stray_lines == ["panic: runtime error"]


def test_a_stream_cut_mid_line_is_malformed_and_truncated() -> None:
    text = recorded("check-drift.refresh.jsonl")
    lines = text.splitlines()
    cut = text[: text.index(lines[-2]) + len(lines[-2]) // 2]
    problems = parse_plan_stream(cut).problems
    assert problems[0].startswith(f"line {len(lines) - 1} is not JSON: ")
    assert "ends without a change_summary" in problems[1]


def test_a_stream_without_its_change_summary_is_truncated() -> None:
    lines = recorded("check-drift.refresh.jsonl").splitlines()
    complete = [line for line in lines if '"type":"change_summary"' not in line and '"type":"outputs"' not in line]
    stream = parse_plan_stream("\n".join(complete) + "\n")
    assert stream.failed
    assert len(stream.problems) == 1
    assert "ends without a change_summary" in stream.problems[0]


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_empty_output_is_an_error(text: str) -> None:
    assert parse_plan_stream(text).problems == ["terraform printed nothing"]


def test_another_major_version_of_the_ui_stream_is_refused() -> None:
    lines = recorded("check-clean.code.jsonl").splitlines()
    version = json.loads(lines[0])
    version["ui"] = "2.0"
    stream = parse_plan_stream("\n".join([json.dumps(version), *lines[1:]]))
    assert stream.problems == ["unsupported UI stream version '2.0' (this reads 1.x)"]


def test_a_message_missing_its_parts_is_named_by_line() -> None:
    lines = recorded("check-drift.refresh.jsonl").splitlines()
    drifted = next(number for number, line in enumerate(lines) if '"type":"resource_drift"' in line)
    lines[drifted] = json.dumps({"type": "resource_drift", "change": {"action": "update"}})
    assert parse_plan_stream("\n".join(lines)).problems == [
        f"line {drifted + 1} (resource_drift): a change without a resource address or action"
    ]


# --- attribute paths -------------------------------------------------------------------------------------


def test_recorded_drift_names_the_attribute_paths_that_differ() -> None:
    drifts = {item.address: item for item in resource_drift(load_plan(recorded("check-drift.refresh.json")))}
    assert drifts["aws_s3_bucket.data"].attributes == ("tags.purpose", "tags_all.purpose", "versioning[0].enabled")
    assert drifts["aws_s3_bucket_versioning.data"].attributes == ("versioning_configuration[0].status",)
    assert (drifts["aws_sns_topic.alerts"].actions, drifts["aws_sns_topic.alerts"].attributes) == (("delete",), ())


def test_changed_paths_quote_keys_that_are_not_identifiers_and_name_resized_lists_whole() -> None:
    before = {"tags": {"ml-platform:owner": "a", "team": "ml"}, "grant": [{"id": 1}], "rules": [{"days": 7}]}
    after = {"tags": {"ml-platform:owner": "b", "team": "ml"}, "grant": [{"id": 1}, {"id": 2}], "rules": [{"days": 9}]}
    assert changed_paths(before, after) == ["grant", "rules[0].days", 'tags["ml-platform:owner"]']


def test_changed_paths_name_added_and_removed_keys_and_changed_types() -> None:
    before = {"a": {"x": 1}, "b": "text", "c": None}
    after = {"a": {"y": 1}, "b": ["text"], "c": None}
    assert changed_paths(before, after) == ["a.x", "a.y", "b"]


def test_null_and_an_empty_collection_are_not_a_difference() -> None:
    before = {"tags": None, "rules": [], "grant": None, "name": None}
    after = {"tags": {}, "rules": None, "grant": [], "name": ""}
    assert changed_paths(before, after) == ["name"]


def test_drift_that_is_only_null_against_empty_is_left_out() -> None:
    plan = load_plan(recorded("check-drift.refresh.json"))
    bucket = next(entry for entry in plan["resource_drift"] if entry["address"] == "aws_s3_bucket.data")
    bucket["change"]["before"] = {**bucket["change"]["after"], "tags": None}
    bucket["change"]["after"] = {**bucket["change"]["after"], "tags": {}}
    assert [item.address for item in resource_drift(plan)] == [
        "aws_s3_bucket_versioning.data",
        "aws_sns_topic.alerts",
    ]


def test_a_database_moving_its_latest_restorable_time_forward_is_not_drift() -> None:
    # Seen by `make rehearse` right after a clean plan: RDS advances it every few minutes, and no code sets it.
    plan = load_plan(recorded("check-drift.refresh.json"))
    topic = next(entry for entry in plan["resource_drift"] if entry["address"] == "aws_sns_topic.alerts")
    database = {
        "address": "aws_db_instance.mlflow",
        "change": {
            "actions": ["update"],
            "before": {"identifier": "mlp-dev-mlflow", "latest_restorable_time": "2026-12-02T10:00:00Z"},
            "after": {"identifier": "mlp-dev-mlflow", "latest_restorable_time": "2026-12-02T10:05:00Z"},
        },
    }
    plan["resource_drift"] = [database, topic]
    assert [item.address for item in resource_drift(plan)] == ["aws_sns_topic.alerts"]
    # Alongside a real change it is named, with the change that makes the entry drift.
    database["change"]["after"] = {"identifier": "renamed", "latest_restorable_time": "2026-12-02T10:05:00Z"}
    (drifted, _) = resource_drift(plan)
    assert drifted.attributes == ("identifier", "latest_restorable_time")


def test_what_the_configuration_ignores_is_not_drift(synth_dir) -> None:
    # cluster-autoscaler moved the desired size and staging's off-hours stop the bounds: the configuration leaves both
    # to them (lifecycle.ignore_changes), and the refresh-only plan reports them all the same.
    staging = json.loads((synth_dir / "stacks" / "staging" / "cdk.tf.json").read_text())
    ignored = ignored_changes(staging)
    (group,) = [address for address in ignored if address.startswith("aws_eks_node_group.platform_eks_gpu-nodes")]
    assert ignored[group] == (
        "scaling_config[0].desired_size",
        "scaling_config[0].min_size",
        "scaling_config[0].max_size",
    )
    plan = load_plan(recorded("check-drift.refresh.json"))
    topic = next(entry for entry in plan["resource_drift"] if entry["address"] == "aws_sns_topic.alerts")
    scaling = {"desired_size": 0, "max_size": 4, "min_size": 0}
    node_group = {
        "address": group,
        "change": {
            "actions": ["update"],
            "before": {"node_group_name": "mlp-staging-gpu-1", "scaling_config": [scaling]},
            "after": {
                "node_group_name": "mlp-staging-gpu-1",
                "scaling_config": [{"desired_size": 0, "max_size": 0, "min_size": 0}],
            },
        },
    }
    plan["resource_drift"] = [node_group, topic]
    assert [item.address for item in resource_drift(plan)] == [group, "aws_sns_topic.alerts"]
    assert [item.address for item in resource_drift(plan, ignored)] == ["aws_sns_topic.alerts"]
    # A change the configuration does not ignore is still drift, and names every path that differs.
    node_group["change"]["after"]["node_group_name"] = "renamed"
    (drifted, _) = resource_drift(plan, ignored)
    assert drifted.attributes == ("node_group_name", "scaling_config[0].max_size")
    # "ignore_changes = all" leaves a resource's updates to whoever changes it.
    assert ignored_changes({"resource": {"t": {"n": {"lifecycle": {"ignore_changes": "all"}}}}}) == {"t.n": ("",)}
    assert [item.address for item in resource_drift(plan, {group: ("",)})] == ["aws_sns_topic.alerts"]


def test_changed_paths_stop_at_a_sensitive_value() -> None:
    before = {"secret": {"user": "a", "password": "old"}, "name": "n"}
    after = {"secret": {"user": "a", "password": "new"}, "name": "n"}
    assert changed_paths(before, after, {"secret": True}, {"secret": True}) == ["secret"]
    assert changed_paths(before, after, {}, {"secret": {"password": True}}) == ["secret.password"]


# --- outcomes and exit codes -----------------------------------------------------------------------------


def test_clean(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    replay = Replay("clean")
    code, report, markdown = check(monkeypatch, stacks, replay)
    assert code == 0
    assert report == {"environment": "dev", "outcome": "clean", "drifted": [], "unapplied": [], "errors": []}
    assert markdown.startswith("No drift in `dev`")
    # The refresh-only plan exits 2 here though nothing drifted (the recorded state differed in what the plan
    # does not report), so it is shown and its empty resource_drift decides; the plan of the code is not shown.
    assert [call[:2] for call in replay.calls if call[0] == "show"] == [["show", "-json"]]


def test_the_two_plans_read_without_the_lock_and_separate_drift_from_code(
    monkeypatch: pytest.MonkeyPatch, stacks: Path
) -> None:
    replay = Replay("clean")
    check(monkeypatch, stacks, replay, "--init")
    assert replay.calls[0] == ["init", "-input=false", "-no-color"]
    plans = sorted((call for call in replay.calls if call[0] == "plan"), key=lambda call: call[1])
    for plan in plans:
        assert {"-detailed-exitcode", "-json", "-lock=false"} <= set(plan)
        assert plan[-1].startswith("-out=")
    assert [plan[1] for plan in plans] == ["-refresh-only", "-refresh=false"]


def test_drift(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    code, report, _ = check(monkeypatch, stacks, Replay("drift"))
    assert code == 2
    assert report["outcome"] == "drift"
    assert report["drifted"] == [
        {
            "address": "aws_s3_bucket.data",
            "action": "update",
            "attributes": ["tags.purpose", "tags_all.purpose", "versioning[0].enabled"],
        },
        {
            "address": "aws_s3_bucket_versioning.data",
            "action": "update",
            "attributes": ["versioning_configuration[0].status"],
        },
        {"address": "aws_sns_topic.alerts", "action": "delete", "attributes": []},
    ]
    assert report["unapplied"] == []


def test_unapplied(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    code, report, markdown = check(monkeypatch, stacks, Replay("unapplied"))
    assert code == 3
    assert (report["outcome"], report["drifted"]) == ("unapplied", [])
    assert report["unapplied"] == [{"address": "aws_s3_bucket.data", "actions": ["update"]}]
    assert markdown == (
        "No drift in `dev`, but code is not applied yet: 1 change.\n\n"
        "Code not yet applied:\n- `aws_s3_bucket.data`: update\n"
    )


def test_drift_and_unapplied_code_report_drift_and_list_both(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    code, report, markdown = check(monkeypatch, stacks, Replay("both"))
    assert code == 2
    assert report["outcome"] == "drift"
    assert [item["address"] for item in report["drifted"]] == [
        "aws_s3_bucket.data",
        "aws_s3_bucket_versioning.data",
        "aws_sns_topic.alerts",
    ]
    # Only the code's change: the plan of the code does not refresh, so undoing the drift is not listed.
    assert report["unapplied"] == [{"address": "aws_s3_bucket.data", "actions": ["update"]}]
    assert markdown == (
        "Drift in `dev`: 3 resources changed outside Terraform.\n\n"
        "Changed outside Terraform (attribute paths only, never values):\n"
        "- `aws_s3_bucket.data`: update of `tags.purpose`, `tags_all.purpose`, `versioning[0].enabled`\n"
        "- `aws_s3_bucket_versioning.data`: update of `versioning_configuration[0].status`\n"
        "- `aws_sns_topic.alerts`: deleted\n\n"
        "Also in the code but not applied yet:\n"
        "- `aws_s3_bucket.data`: update\n\n"
        "Deploys to `dev` wait until this is explained: undo the change, or merge its correction in a pull "
        "request labelled `drift-correction`. `make drift ENV=dev` runs this check locally.\n"
    )


def test_the_report_names_no_value(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    _, report, markdown = check(monkeypatch, stacks, Replay("both"))
    # "training" is the removed tag's value, "Suspended" the versioning's new status.
    for value in ("training", "Suspended", "Enabled", "serving"):
        assert value not in json.dumps(report)
        assert value not in markdown


def test_the_short_report_on_stdout(
    monkeypatch: pytest.MonkeyPatch, stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check(monkeypatch, stacks, Replay("both"))
    assert capsys.readouterr().out == (
        "Drift in dev: 3 resources changed outside Terraform.\n"
        "Changed outside Terraform:\n"
        "  aws_s3_bucket.data: update of tags.purpose, tags_all.purpose, versioning[0].enabled\n"
        "  aws_s3_bucket_versioning.data: update of versioning_configuration[0].status\n"
        "  aws_sns_topic.alerts: deleted\n"
        "Code not yet applied:\n"
        "  aws_s3_bucket.data: update\n"
    )


def test_a_terraform_error_is_an_error_not_drift(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    code, report, markdown = check(monkeypatch, stacks, Replay("error"))
    assert code == 1
    assert (report["outcome"], report["drifted"], report["unapplied"]) == ("error", [], [])
    assert "refresh-only plan: terraform exited with 1" in report["errors"]
    assert any(error.startswith("plan of the code: Reference to undeclared resource") for error in report["errors"])
    assert markdown.startswith("The drift check of `dev` failed, so nothing is known about drift:\n\n```text\n")


def test_exit_code_1_without_a_diagnostic_quotes_the_output(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    crashed = TerraformRun(1, "Error: Invalid -out flag\nUsage: terraform plan [options]\n")
    code, report, _ = check(monkeypatch, stacks, Replay("drift", refresh=crashed))
    assert code == 1
    assert report["errors"][:2] == [
        "refresh-only plan: terraform exited with 1",
        "refresh-only plan: its output ended with:\nError: Invalid -out flag\nUsage: terraform plan [options]",
    ]


def test_a_malformed_stream_is_an_error_even_with_exit_code_0(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    lines = recorded("check-clean.code.jsonl").splitlines()
    malformed = TerraformRun(0, "\n".join([lines[0], "{not json", *lines[1:]]))
    code, report, _ = check(monkeypatch, stacks, Replay("clean", code=malformed))
    assert code == 1
    assert report["errors"] == ["plan of the code: line 2 is not JSON: '{not json'"]


def test_a_truncated_stream_is_an_error(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    text = recorded("check-drift.refresh.jsonl")
    truncated = TerraformRun(2, text[: len(text) * 2 // 3])
    code, report, _ = check(monkeypatch, stacks, Replay("drift", refresh=truncated))
    assert code == 1
    assert report["drifted"] == []
    assert any("ends without a change_summary" in error for error in report["errors"])


def test_empty_output_is_an_error_exit(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    code, report, _ = check(monkeypatch, stacks, Replay("clean", refresh=TerraformRun(0, "")))
    assert code == 1
    assert report["errors"] == ["refresh-only plan: terraform printed nothing"]


def test_a_timeout_is_an_error(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    killed = TerraformRun(None, recorded("check-clean.code.jsonl").splitlines()[0])
    code, report, _ = check(monkeypatch, stacks, Replay("unapplied", code=killed))
    assert code == 1
    assert report["errors"][0].startswith("plan of the code: timed out and was killed")


def test_changes_listed_under_exit_code_0_are_an_error(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    contradicting = TerraformRun(0, recorded("check-drift.refresh.jsonl"))
    code, report, _ = check(monkeypatch, stacks, Replay("drift", refresh=contradicting))
    assert code == 1
    assert "exit code 0 (no changes) but the output lists changes" in report["errors"][0]


@pytest.mark.parametrize(
    ("shown", "message"),
    [
        (TerraformRun(1, "Error: Failed to read plan"), "`terraform show -json` of the saved plan failed"),
        (TerraformRun(0, '{"format_version": "1.2", "resource_dr'), "the plan is not JSON"),
        (TerraformRun(0, '{"format_version": "2.0"}'), "unsupported plan format '2.0'"),
    ],
)
def test_a_failed_or_unreadable_show_is_an_error(
    monkeypatch: pytest.MonkeyPatch, stacks: Path, shown: TerraformRun, message: str
) -> None:
    code, report, _ = check(monkeypatch, stacks, Replay("drift", **{"show-refresh": shown}))
    assert code == 1
    assert message in report["errors"][0]


def test_a_failed_init_is_an_error_and_no_plan_runs(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    replay = Replay("clean", init=TerraformRun(1, "Error: Failed to query available provider packages\n"))
    code, report, _ = check(monkeypatch, stacks, replay, "--init")
    assert code == 1
    assert report["errors"] == ["terraform init exited with 1:\nError: Failed to query available provider packages"]
    assert [call[0] for call in replay.calls] == ["init"]


def test_a_missing_stack_is_an_error(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    replay = Replay("clean")
    monkeypatch.setattr(drift, "terraform", replay)
    assert drift.main(["prod", "--stacks-dir", str(stacks)]) == 1
    assert replay.calls == []


def test_the_environment_must_be_a_name(stacks: Path) -> None:
    with pytest.raises(SystemExit) as exited:
        drift.main(["../prod", "--stacks-dir", str(stacks)])
    assert exited.value.code == 2


# --- an endpoint parked by its idle policy ----------------------------------------------------------------

PARKED_RECORDED = Path(__file__).resolve().parent / "recorded_parked"
PARKED_MANIFEST: dict[str, Any] = json.loads((PARKED_RECORDED / "manifest.json").read_text())["files"]
PARKED_SCENARIO = {
    "aws_appautoscaling_policy.parked": "recorded-parked",
    "aws_appautoscaling_target.parked": "recorded-parked",
    "aws_sagemaker_endpoint.parked": "recorded-parked",
}
UNTAGGED_SCENARIO = [
    "aws_appautoscaling_policy.untagged",
    "aws_appautoscaling_target.untagged",
    "aws_sagemaker_endpoint.untagged",
]


def parked_plan() -> dict[str, Any]:
    """``show -json`` of the refresh-only plan recorded after the idle function parked ``recorded-parked`` and
    ``recorded-untagged`` was deleted by hand (``tests/gitops/record_parked.py``)."""
    return load_plan((PARKED_RECORDED / "check-parked.refresh.json").read_text())


def parked_replay(plan: dict[str, Any] | None = None) -> Replay:
    """The recorded check of the parked scenario, with ``plan`` as the shown refresh-only plan if given."""

    def run(name: str) -> TerraformRun:
        return TerraformRun(PARKED_MANIFEST[name]["exit_code"], (PARKED_RECORDED / name).read_text())

    shown = TerraformRun(0, json.dumps(plan)) if plan is not None else run("check-parked.refresh.json")
    return Replay(
        "clean",
        refresh=run("check-parked.refresh.jsonl"),
        code=run("check-parked.code.jsonl"),
        **{"show-refresh": shown},
    )


def _without_untagged(plan: dict[str, Any]) -> dict[str, Any]:
    plan["resource_drift"] = [e for e in plan["resource_drift"] if e["address"] not in UNTAGGED_SCENARIO]
    return plan


def _entry(plan: dict[str, Any], address: str) -> dict[str, Any]:
    return next(entry for entry in plan["resource_drift"] if entry["address"] == address)


def test_the_drift_check_knows_the_tag_the_idle_policy_sets() -> None:
    from constructs.sagemaker.idle_settings import IDLE_TAG

    assert drift.IDLE_TAG == IDLE_TAG


def test_the_recorded_parking_is_the_endpoint_its_scaling_and_nothing_else() -> None:
    assert drift.parked_resources(parked_plan()) == PARKED_SCENARIO


def test_a_parked_endpoint_is_reported_as_parked_beside_real_drift(
    monkeypatch: pytest.MonkeyPatch, stacks: Path
) -> None:
    code, report, markdown = check(monkeypatch, stacks, parked_replay())
    assert code == 2
    # The endpoint deleted by hand, and the scaling AWS removed with it, stay drift.
    assert report["drifted"] == [
        {"address": address, "action": "delete", "attributes": []} for address in UNTAGGED_SCENARIO
    ]
    assert report["parked"] == [{"address": a, "endpoint": e} for a, e in PARKED_SCENARIO.items()]
    assert "- `aws_sagemaker_endpoint.parked`: parked by the idle policy: the next deploy recreates it " in markdown
    assert "- `aws_sagemaker_endpoint.untagged`: deleted" in markdown


def test_parking_alone_is_no_drift(
    monkeypatch: pytest.MonkeyPatch, stacks: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report, markdown = check(monkeypatch, stacks, parked_replay(_without_untagged(parked_plan())))
    assert code == 0
    assert (report["outcome"], report["drifted"], report["unapplied"]) == ("clean", [], [])
    assert [item["address"] for item in report["parked"]] == list(PARKED_SCENARIO)
    assert markdown.startswith("No drift in `dev`: all is as last applied but 1 endpoint parked by the idle policy.")
    assert "Deploys to `dev` wait" not in markdown
    assert capsys.readouterr().out.splitlines()[1:3] == [
        "Parked endpoints:",
        "  aws_appautoscaling_policy.parked: parked by the idle policy: the next deploy recreates it (recorded-parked)",
    ]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda before: before.update(tags={}, tags_all={}), id="untagged"),
        pytest.param(
            lambda before: before.update(
                tags={"ml-platform:idle-policy": "scale_to_minimum"},
                tags_all={"ml-platform:idle-policy": "scale_to_minimum"},
            ),
            id="tagged-for-scaling-only",
        ),
    ],
)
def test_an_endpoint_without_the_delete_tag_is_drift_with_its_scaling(
    monkeypatch: pytest.MonkeyPatch, stacks: Path, change: Any
) -> None:
    plan = _without_untagged(parked_plan())
    change(_entry(plan, "aws_sagemaker_endpoint.parked")["change"]["before"])
    assert drift.parked_resources(plan) == {}
    code, report, _ = check(monkeypatch, stacks, parked_replay(plan))
    assert code == 2
    assert [item["address"] for item in report["drifted"]] == list(PARKED_SCENARIO)
    assert "parked" not in report


def test_a_tagged_endpoint_changed_rather_than_deleted_is_drift(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    plan = _without_untagged(parked_plan())
    plan["resource_drift"] = [e for e in plan["resource_drift"] if e["address"] == "aws_sagemaker_endpoint.parked"]
    endpoint = plan["resource_drift"][0]["change"]
    endpoint["actions"] = ["update"]
    endpoint["after"] = {**endpoint["before"], "endpoint_config_name": "changed-by-hand"}
    code, report, _ = check(monkeypatch, stacks, parked_replay(plan))
    assert code == 2
    assert report["drifted"] == [
        {"address": "aws_sagemaker_endpoint.parked", "action": "update", "attributes": ["endpoint_config_name"]}
    ]
    assert "parked" not in report


def test_scaling_removed_without_its_endpoint_is_drift(monkeypatch: pytest.MonkeyPatch, stacks: Path) -> None:
    plan = _without_untagged(parked_plan())
    plan["resource_drift"] = [e for e in plan["resource_drift"] if e["type"] != "aws_sagemaker_endpoint"]
    code, report, _ = check(monkeypatch, stacks, parked_replay(plan))
    assert code == 2
    assert [item["address"] for item in report["drifted"]] == [
        "aws_appautoscaling_policy.parked",
        "aws_appautoscaling_target.parked",
    ]
