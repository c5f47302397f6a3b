"""Pull-request plans: touched environments, the sticky comment, its failure variant and the fingerprint.

The plans are real Terraform 1.11.4 output recorded against the emulator (``tests/gitops/record.py``).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gitops import plans
from gitops.plan_json import environment, fingerprint, load_plan
from gitops.plans import COMMENT_LIMIT, STATEFUL_TYPES, comment, failure, main, touched

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path(__file__).resolve().parent / "recorded"


def recorded(name: str) -> str:
    """The text of one recording."""
    return (RECORDED / name).read_text(encoding="utf-8")


def pr_comment(name: str, env: str = "dev", commit: str | None = None) -> str:
    """The comment for the recorded pull-request plan ``pr-<name>``."""
    return comment(env, recorded(f"pr-{name}.json"), recorded(f"pr-{name}.txt"), commit)


# --- touched ---------------------------------------------------------------------------------------------


def synthesized(root: Path, stacks: dict[str, dict[str, str]]) -> Path:
    """A cdktf output directory holding ``{stack: {relative path: text}}``."""
    for stack, files in stacks.items():
        for relative, text in files.items():
            path = root / "stacks" / stack / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    (root / "manifest.json").write_text(json.dumps({"stacks": sorted(stacks)}))
    return root


STACKS = {
    env: {"cdk.tf.json": f'{{"env": "{env}"}}', "assets/lambda/asset.zip": f"code of {env}"}
    for env in ("bootstrap", "dev", "prod", "staging")
}


def test_identical_outputs_touch_nothing(tmp_path: Path) -> None:
    base = synthesized(tmp_path / "base", STACKS)
    head = synthesized(tmp_path / "head", STACKS)
    (head / "manifest.json").write_text("{}")  # outside stacks/<env>/: not part of any environment
    assert touched(base, head) == []


def test_a_changed_asset_or_file_set_touches_its_environment_only(tmp_path: Path) -> None:
    base = synthesized(tmp_path / "base", STACKS)
    head = synthesized(tmp_path / "head", STACKS)
    (head / "stacks" / "staging" / "assets" / "lambda" / "asset.zip").write_text("new code")
    (head / "stacks" / "prod" / "assets" / "extra.txt").write_text("added")
    assert touched(base, head) == ["prod", "staging"]


def test_an_environment_only_at_head_is_touched_and_bootstrap_never(tmp_path: Path) -> None:
    base = synthesized(tmp_path / "base", {env: STACKS[env] for env in ("bootstrap", "dev")})
    head = synthesized(tmp_path / "head", STACKS)
    (head / "stacks" / "bootstrap" / "cdk.tf.json").write_text('{"changed": true}')
    assert touched(base, head) == ["prod", "staging"]


def test_a_base_without_stacks_touches_every_environment(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    assert touched(tmp_path / "base", synthesized(tmp_path / "head", STACKS)) == ["dev", "prod", "staging"]


def test_touched_prints_one_json_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthesized(tmp_path / "base", STACKS)
    head = synthesized(tmp_path / "head", {**STACKS, "dev": {"cdk.tf.json": "{}"}})
    assert main(["touched", str(base), str(head)]) == 0
    assert capsys.readouterr().out == '["dev"]\n'


def test_a_head_without_stacks_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = synthesized(tmp_path / "base", STACKS)
    (tmp_path / "head").mkdir()
    assert main(["touched", str(base), str(tmp_path / "head")]) == 1
    assert "holds no synthesized stacks" in capsys.readouterr().err


# --- the plan comment ------------------------------------------------------------------------------------


def test_a_comment_starts_with_its_environments_marker_then_the_counts() -> None:
    lines = pr_comment("change", env="staging").splitlines()
    assert lines[0] == "<!-- ml-platform-plan:staging -->"
    assert lines[1] == "### Plan for `staging`: 0 to add, 1 to change, 0 to destroy"


def test_an_in_place_change_has_no_warning_and_the_full_plan_in_details() -> None:
    text = pr_comment("change", commit="0123abcd4567")
    assert "[!CAUTION]" not in text
    assert "Replaced" not in text
    assert "Planned at commit 0123abcd4567." in text
    details = text[text.index("<details><summary>Full plan</summary>") :]
    assert details.endswith("</details>\n")
    assert recorded("pr-change.txt").strip("\n") in details
    assert "[!NOTE]" not in text


def test_a_replaced_bucket_is_warned_about_at_the_top_and_every_replacement_named() -> None:
    text = pr_comment("replace")
    lines = text.splitlines()
    assert lines[1] == "### Plan for `dev`: 3 to add, 0 to change, 3 to destroy"
    assert lines[3] == "> [!CAUTION]"
    # Only the bucket holds data: the versioning setting and the topic are replaced without a warning.
    assert [line for line in lines if line.startswith("> - ")] == ["> - `aws_s3_bucket.data`: replaced"]
    assert (
        "Replaced (destroyed and created again): `aws_s3_bucket.data`, `aws_s3_bucket_versioning.data`, "
        "`aws_sns_topic.alerts`" in lines
    )
    assert text.index("[!CAUTION]") < text.index("<details>")


def test_a_destroyed_bucket_is_warned_about() -> None:
    lines = pr_comment("destroy").splitlines()
    assert lines[1] == "### Plan for `dev`: 0 to add, 0 to change, 2 to destroy"
    assert lines[3] == "> [!CAUTION]"
    assert [line for line in lines if line.startswith("> - ")] == ["> - `aws_s3_bucket.data`: destroyed"]


def test_a_plan_without_changes_says_so() -> None:
    plan = json.loads(recorded("pr-change.json"))
    for entry in plan["resource_changes"]:
        entry["change"]["actions"] = ["no-op"]
    text = comment("prod", json.dumps(plan), "No changes. Your infrastructure matches the configuration.\n")
    assert text.splitlines()[:2] == ["<!-- ml-platform-plan:prod -->", "### Plan for `prod`: no changes"]


def test_a_huge_plan_is_cut_to_the_comment_limit_with_a_note() -> None:
    plan_text = recorded("pr-replace.txt")
    huge = plan_text * (3 * COMMENT_LIMIT // len(plan_text))
    text = comment("dev", recorded("pr-replace.json"), huge)
    assert COMMENT_LIMIT - 2_000 < len(text.encode("utf-8")) <= COMMENT_LIMIT
    note = re.search(r"The plan was cut to fit GitHub's 65,536-character comment limit: ([\d,]+) of its ([\d,]+)", text)
    assert note is not None
    shown, total = (int(group.replace(",", "")) for group in note.groups())
    assert total == len(huge.strip("\n").splitlines())
    assert 0 < shown < total
    # The start of the plan is kept and the block is closed: the warning and the layout survive the cut.
    assert "[!CAUTION]" in text
    assert plan_text.strip("\n").splitlines()[0] in text
    assert text.endswith("```\n\n</details>\n")


def test_backticks_and_wide_characters_in_a_plan_cannot_break_the_block_or_the_limit() -> None:
    plan_text = "".join(f'  ~ description = "``` résumé 模型 {number}"\n' for number in range(5_000))
    text = comment("dev", recorded("pr-change.json"), plan_text)
    assert len(text.encode("utf-8")) <= COMMENT_LIMIT
    assert "\n````text\n" in text
    assert text.endswith("\n````\n\n</details>\n")


def test_comment_writes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "comment.md"
    arguments = ["--plan-json", str(RECORDED / "pr-destroy.json"), "--plan-text", str(RECORDED / "pr-destroy.txt")]
    assert main(["comment", "--env", "prod", *arguments, "--commit", "abcdef1", "--out", str(out)]) == 0
    assert out.read_text() == comment("prod", recorded("pr-destroy.json"), recorded("pr-destroy.txt"), "abcdef1")


def test_comment_refuses_what_is_not_a_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stream = str(RECORDED / "pr-change.jsonl")
    assert main(["comment", "--env", "dev", "--plan-json", stream, "--plan-text", stream]) == 1
    assert capsys.readouterr().err.startswith("error: the plan is not JSON")


@pytest.mark.parametrize(
    "arguments",
    [["--env", "Prod -->"], ["--env", "dev", "--commit", "main; rm"]],
)
def test_comment_arguments_are_checked(arguments: list[str]) -> None:
    files = ["--plan-json", str(RECORDED / "pr-change.json"), "--plan-text", str(RECORDED / "pr-change.txt")]
    with pytest.raises(SystemExit) as exited:
        main(["comment", *arguments, *files])
    assert exited.value.code == 2


# --- the failure comment ---------------------------------------------------------------------------------


def test_a_failed_plan_names_its_errors_and_shows_the_end_of_the_log() -> None:
    text = failure("staging", recorded("pr-error.log"))
    lines = text.splitlines()
    assert lines[:2] == ["<!-- ml-platform-plan:staging -->", "### The plan of `staging` failed"]
    assert "- Reference to undeclared resource" in lines
    block = text[text.index("```text\n") :]
    assert 'A managed resource "aws_s3_bucket" "missing" has not been declared in the' in block
    assert block.endswith("```\n")


def test_a_long_colored_log_keeps_its_end(tmp_path: Path) -> None:
    log = "".join(f"line {number}\n" for number in range(10_000))
    log += "\x1b[31m│\x1b[0m \x1b[1m\x1b[31mError: \x1b[0m\x1b[1mInvalid provider configuration\x1b[0m\n"
    out = tmp_path / "failure.md"
    (tmp_path / "plan.log").write_text(log)
    assert main(["failure", "--env", "dev", "--log", str(tmp_path / "plan.log"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "- Invalid provider configuration" in text
    assert "line 9999\n│ Error: Invalid provider configuration\n```" in text
    assert "line 9000\n" not in text
    assert "\x1b" not in text


# --- the fingerprint -------------------------------------------------------------------------------------


def plan(name: str) -> dict[str, Any]:
    """A recorded plan, parsed."""
    return load_plan(recorded(f"{name}.json"))


def test_the_same_plan_made_twice_has_the_same_fingerprint() -> None:
    first, again = plan("pr-change"), plan("pr-change-again")
    assert first["timestamp"] != again["timestamp"]
    assert fingerprint(first) == fingerprint(again)


def test_a_plan_with_another_value_has_another_fingerprint() -> None:
    assert fingerprint(plan("pr-change")) != fingerprint(plan("pr-change-other"))


def test_no_op_entries_and_drift_do_not_count_but_output_changes_do() -> None:
    base = plan("pr-destroy")
    noisy = copy.deepcopy(base)
    noisy["resource_drift"] = plan("check-drift.refresh")["resource_drift"]
    noisy["resource_changes"].append({**base["resource_changes"][0], "change": {"actions": ["no-op"]}})
    assert fingerprint(noisy) == fingerprint(base)
    fewer_outputs = copy.deepcopy(base)
    fewer_outputs["output_changes"] = {}
    assert fingerprint(fewer_outputs) != fingerprint(base)


def test_a_sensitive_value_counts_only_as_changed_or_not() -> None:
    def with_tag(value: str, sensitive: bool) -> dict[str, Any]:
        changed = copy.deepcopy(plan("pr-change"))
        change = changed["resource_changes"][0]["change"]
        assert change["before"]["tags"]["purpose"] == "training"
        change["after"]["tags"]["purpose"] = value
        change["after_sensitive"]["tags"] = {"purpose": True} if sensitive else {}
        return changed

    # Which new value a sensitive attribute gets is hidden from the reviewer, so it is from the fingerprint too.
    assert fingerprint(with_tag("secret-1", True)) == fingerprint(with_tag("secret-2", True))
    # Whether it changes is shown in the plan text (`~ purpose = (sensitive value)`), and counts.
    assert fingerprint(with_tag("training", True)) != fingerprint(with_tag("secret-1", True))
    assert fingerprint(with_tag("secret-1", True)) != fingerprint(with_tag("secret-1", False))
    assert fingerprint(with_tag("secret-1", False)) != fingerprint(with_tag("secret-2", False))


def test_fingerprint_prints_one_sha256_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fingerprint", str(RECORDED / "pr-change.json")]) == 0
    assert re.fullmatch(r"[0-9a-f]{64}\n", capsys.readouterr().out)


# --- what the commands build on ---------------------------------------------------------------------------


def test_stateful_types_cover_every_type_rule_prot_1_protects() -> None:
    from constructs.policy.rules import ProtectedData

    missing = sorted(ProtectedData.PROTECTED_TYPES - STATEFUL_TYPES)
    assert missing == []


def test_every_environment_of_the_matrix_is_a_valid_name() -> None:
    from stacks.overrides import load_environments

    names = list(load_environments())
    assert names and all(environment(name) == name for name in names)
    assert plans.BOOTSTRAP_STACK not in names


def test_the_commands_load_no_cdktf_and_no_jsii() -> None:
    probe = (
        "import sys\nimport gitops.plans, gitops.drift, gitops.gate\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('cdktf', 'jsii', 'constructs')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"
