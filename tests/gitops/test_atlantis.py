"""The Atlantis alternative: atlantis.yaml (read from the pull request) and atlantis/repos.yaml (the server's).

No JSON schema of Atlantis' configuration is vendored by check-jsonschema (nor published in SchemaStore), so the
keys are checked against those Atlantis v0.47 parses (server/core/config/raw; it rejects unknown keys), and the two
rules Atlantis applies between the files (restricted keys, custom workflows; server/core/config/valid) are
reproduced. The autoplan is checked the way Atlantis matches it: each `when_modified` pattern joined to the
project's dir (server/events/project_finder.go), a file matching when it or one of its parent directories does.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from stacks.output import DEFAULT_OUTDIR, STACKS
from tests.gitops.workflows import ROOT, make_invocations
from tests.support.synth_json import ENVIRONMENTS

REPO_KEYS = frozenset(
    {
        "version", "projects", "workflows", "policies", "autodiscover", "automerge", "parallel_apply",
        "parallel_plan", "delete_source_branch_on_merge", "emoji_reaction", "allowed_regexp_prefixes",
        "abort_on_execution_order_fail", "repo_locks", "silence_pr_comments",
    }
)  # fmt: skip
PROJECT_KEYS = frozenset(
    {
        "name", "branch", "dir", "workspace", "workflow", "terraform_distribution", "terraform_version", "autoplan",
        "plan_requirements", "apply_requirements", "import_requirements", "depends_on",
        "delete_source_branch_on_merge", "repo_locking", "repo_locks", "execution_order_group", "policy_check",
        "custom_policy_check", "silence_pr_comments",
    }
)  # fmt: skip
SERVER_REPO_KEYS = frozenset(
    {
        "id", "branch", "repo_config_file", "plan_requirements", "apply_requirements", "import_requirements",
        "pre_workflow_hooks", "workflow", "post_workflow_hooks", "allowed_workflows", "allowed_overrides",
        "allow_custom_workflows", "delete_source_branch_on_merge", "repo_locking", "repo_locks", "policy_check",
        "custom_policy_check", "autodiscover", "silence_pr_comments",
    }
)  # fmt: skip
HOOK_KEYS = frozenset({"run", "description", "shell", "shellArgs", "commands"})
STAGES = frozenset({"plan", "apply", "policy_check", "import", "state_rm"})
STEPS = frozenset({"run", "plan", "show", "policy_check", "apply", "init", "env", "multienv", "import", "state_rm"})
# What a repo-level project may set only when the server's allowed_overrides names it.
RESTRICTED = frozenset(
    {
        "workflow", "apply_requirements", "plan_requirements", "import_requirements", "delete_source_branch_on_merge",
        "repo_locking", "repo_locks", "custom_policy_check", "silence_pr_comments",
    }
)  # fmt: skip

# Changes that must plan every environment (inputs of the synth), and changes that must not.
SYNTH_INPUTS = [
    "main.py",
    "cdktf.json",
    "stacks/matrix.py",
    "constructs/eks/cluster.py",
    "functions/idle_shutdown/handler.py",
    "assets/gpu_training_node.sh",
    "charts/platform-manifests/Chart.yaml",
    "requirements.txt",
    "package-lock.json",
]
NOT_SYNTH_INPUTS = ["README.md", "docs/architecture.md", "tests/conftest.py", ".github/workflows/deploy.yml"]


def load(path: Path) -> dict[str, Any]:
    """A YAML file, parsed."""
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def repo_cfg() -> dict[str, Any]:
    """atlantis.yaml."""
    return load(ROOT / "atlantis.yaml")


@pytest.fixture(scope="module")
def server_cfg() -> dict[str, Any]:
    """atlantis/repos.yaml."""
    return load(ROOT / "atlantis" / "repos.yaml")


def unknown_keys(mapping: dict[str, Any], allowed: frozenset[str], where: str) -> list[str]:
    """The keys of ``mapping`` Atlantis would reject."""
    return [f"{where}: unknown key {key!r}" for key in sorted(set(mapping) - allowed)]


def key_problems(repo_cfg: dict[str, Any], server_cfg: dict[str, Any]) -> list[str]:
    """Every key of both files is one Atlantis parses, down to the workflow steps and hooks."""
    problems = unknown_keys(repo_cfg, REPO_KEYS, "atlantis.yaml")
    for project in repo_cfg.get("projects", []):
        problems += unknown_keys(project, PROJECT_KEYS, f"atlantis.yaml project {project.get('name')}")
        problems += unknown_keys(project.get("autoplan", {}), frozenset({"when_modified", "enabled"}), "autoplan")
    problems += unknown_keys(server_cfg, frozenset({"repos", "workflows", "policies", "metrics"}), "repos.yaml")
    for repo in server_cfg.get("repos", []):
        problems += unknown_keys(repo, SERVER_REPO_KEYS, f"repos.yaml repo {repo.get('id')}")
        for hook in repo.get("pre_workflow_hooks", []) + repo.get("post_workflow_hooks", []):
            problems += unknown_keys(hook, HOOK_KEYS, "workflow hook")
    for name, workflow in {**server_cfg.get("workflows", {}), **repo_cfg.get("workflows", {})}.items():
        problems += unknown_keys(workflow, STAGES, f"workflow {name}")
        for stage in workflow.values():
            for step in stage.get("steps", []):
                step_name = step if isinstance(step, str) else next(iter(step))
                if step_name not in STEPS:
                    problems.append(f"workflow {name}: unknown step {step_name!r}")
    return problems


def override_problems(repo_cfg: dict[str, Any], server_repo: dict[str, Any], server_workflows: set[str]) -> list[str]:
    """What Atlantis refuses in a repo config, given the server's entry for the repository."""
    allowed = set(server_repo.get("allowed_overrides") or [])
    problems = [
        f"project {project.get('name')} sets {key!r}, which the server does not allow to override"
        for project in repo_cfg.get("projects", [])
        for key in sorted((set(project) & RESTRICTED) - allowed)
    ]
    if repo_cfg.get("workflows") and not server_repo.get("allow_custom_workflows"):
        problems.append("atlantis.yaml defines workflows, the server does not allow custom workflows")
    named = {server_repo.get("workflow")} | {p["workflow"] for p in repo_cfg.get("projects", []) if "workflow" in p}
    available = server_workflows | set(repo_cfg.get("workflows") or {})
    problems += [f"workflow {name!r} is not defined anywhere" for name in sorted(named - {None} - available)]
    allowed_workflows = server_repo.get("allowed_workflows")
    if allowed_workflows:
        problems += [f"workflow {name!r} is not allowed" for name in sorted(named - {None} - set(allowed_workflows))]
    return problems


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A `when_modified` pattern as a regular expression: `**` any directories, `*` and `?` within one name."""
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        else:
            parts.append({"*": "[^/]*", "?": "[^/]"}.get(pattern[index], re.escape(pattern[index])))
            index += 1
    return re.compile("".join(parts) + r"\Z")


def autoplans(project: dict[str, Any], changed: str) -> bool:
    """Whether Atlantis autoplans ``project`` for a change of ``changed`` (a path from the repository root)."""
    patterns = [
        glob_regex(posixpath.normpath(posixpath.join(project["dir"], p))) for p in project["autoplan"]["when_modified"]
    ]
    candidates = [changed] + [str(parent) for parent in Path(changed).parents if str(parent) != "."]
    return project["autoplan"].get("enabled", True) and any(p.match(c) for p in patterns for c in candidates)


def test_both_files_use_only_keys_atlantis_parses(repo_cfg: dict[str, Any], server_cfg: dict[str, Any]) -> None:
    assert repo_cfg["version"] == 3
    assert key_problems(repo_cfg, server_cfg) == []
    broken_repo = {**repo_cfg, "projects": [{**repo_cfg["projects"][0], "when_modifed": ["*.py"]}]}
    assert key_problems(broken_repo, server_cfg) == ["atlantis.yaml project dev: unknown key 'when_modifed'"]


def test_one_project_per_environment_on_its_synthesized_stack(repo_cfg: dict[str, Any]) -> None:
    projects = repo_cfg["projects"]
    assert [project["name"] for project in projects] == list(ENVIRONMENTS)
    assert [project["dir"] for project in projects] == [f"{DEFAULT_OUTDIR}/{STACKS}/{env}" for env in ENVIRONMENTS]
    assert {project["terraform_version"] for project in projects} == {"v1.11.4"}
    # The stacks are not in git: only the pre-workflow hook's synth creates them.
    assert f"{DEFAULT_OUTDIR}/" in (ROOT / ".gitignore").read_text().splitlines()


def test_environments_apply_in_the_matrix_order(repo_cfg: dict[str, Any]) -> None:
    projects = repo_cfg["projects"]
    groups = [project["execution_order_group"] for project in projects]
    assert groups == sorted(set(groups)), "each environment in its own, later group"
    assert [project.get("depends_on") for project in projects] == [None] + [[env] for env in ENVIRONMENTS[:-1]]
    assert repo_cfg["abort_on_execution_order_fail"] is True


@pytest.mark.parametrize("changed", SYNTH_INPUTS)
def test_a_change_to_a_synth_input_autoplans_every_environment(repo_cfg: dict[str, Any], changed: str) -> None:
    assert (ROOT / changed).is_file()
    assert [project["name"] for project in repo_cfg["projects"] if autoplans(project, changed)] == list(ENVIRONMENTS)


def test_every_python_source_of_the_synth_autoplans(repo_cfg: dict[str, Any]) -> None:
    sources = [
        path.relative_to(ROOT).as_posix()
        for folder in ("stacks", "constructs")
        for path in (ROOT / folder).rglob("*.py")
    ]
    assert len(sources) > 20
    dev = repo_cfg["projects"][0]
    assert [source for source in sources if not autoplans(dev, source)] == []


@pytest.mark.parametrize("changed", NOT_SYNTH_INPUTS)
def test_a_change_outside_the_synth_plans_nothing(repo_cfg: dict[str, Any], changed: str) -> None:
    assert [project["name"] for project in repo_cfg["projects"] if autoplans(project, changed)] == []


def test_the_pattern_matcher_follows_atlantis() -> None:
    project = {"dir": "cdktf.out/stacks/dev", "autoplan": {"when_modified": ["../../../stacks/*.py", "../mod/**"]}}
    assert autoplans(project, "stacks/matrix.py") and not autoplans(project, "stacks/sub/matrix.py")
    assert autoplans(project, "cdktf.out/stacks/mod/a/b.tf") and not autoplans(project, "cdktf.out/mod/a.tf")
    assert not autoplans({**project, "autoplan": {**project["autoplan"], "enabled": False}}, "stacks/matrix.py")


def test_the_server_holds_the_requirements_the_workflow_and_the_hook(server_cfg: dict[str, Any]) -> None:
    (repo,) = server_cfg["repos"]
    assert {"approved", "mergeable"} <= set(repo["apply_requirements"])
    assert repo["branch"] == "/^main$/"
    (hook,) = repo["pre_workflow_hooks"]
    assert "synth" in make_invocations(hook["run"]) and hook["run"].startswith(f"rm -rf {DEFAULT_OUTDIR} && ")
    # Autoplan counts as plan; an apply must not re-synthesize over the plan file it applies.
    assert [command.strip() for command in hook["commands"].split(",")] == ["plan"]
    workflow = server_cfg["workflows"][repo["workflow"]]
    plan_steps = [step if isinstance(step, str) else next(iter(step)) for step in workflow["plan"]["steps"]]
    assert plan_steps == ["run", "init", "plan"] and workflow["apply"]["steps"] == ["apply"]


def test_atlantis_would_accept_the_repo_config(repo_cfg: dict[str, Any], server_cfg: dict[str, Any]) -> None:
    (repo,) = server_cfg["repos"]
    workflows = set(server_cfg["workflows"])
    assert override_problems(repo_cfg, repo, workflows) == []
    # The pull request cannot drop its own apply requirements or bring its own workflow.
    weakened = {**repo_cfg, "projects": [{**repo_cfg["projects"][2], "apply_requirements": []}]}
    assert override_problems(weakened, repo, workflows) == [
        "project prod sets 'apply_requirements', which the server does not allow to override"
    ]
    own_workflow = {**repo_cfg, "workflows": {"mine": {"apply": {"steps": ["apply"]}}}}
    assert override_problems(own_workflow, repo, workflows) == [
        "atlantis.yaml defines workflows, the server does not allow custom workflows"
    ]
    assert override_problems(repo_cfg, {**repo, "workflow": "nope"}, workflows) == [
        "workflow 'nope' is not defined anywhere",
        "workflow 'nope' is not allowed",
    ]
