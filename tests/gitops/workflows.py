"""Structural checks of the GitHub Actions workflows, each a small function returning the problems it finds.

actionlint and the workflow JSON schema check the syntax; these check the project's own rules: actions pinned to
a release commit, the AWS roles' trust (plan role without a GitHub Environment, deploy role only with one), one
apply per environment at a time, dev before staging before prod, no `${{ }}` in scripts, least privilege, pinned
tool versions, and that what the workflows call (make targets, ``python -m gitops.*``, artifacts) exists.
An empty list means the rule holds; each problem names the file and job.
"""

from __future__ import annotations

import itertools
import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
REUSABLE_APPLY = "apply-environment.yml"

PLAN_ROLE = "${{ vars.AWS_PLAN_ROLE_ARN }}"
DEPLOY_ROLE = "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
# Jobs that run Terraform against an environment need its private EKS endpoint: a runner the repository names.
TERRAFORM_RUNNER = "${{ vars.TERRAFORM_RUNNER || 'ubuntu-24.04' }}"
CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"

# The inputs of each pinned release (its action.yml): a misspelt input is otherwise silently ignored
# (`terraform-version` would install the latest Terraform). actionlint cannot check inputs of a SHA-pinned action.
_INPUT_NAMES = {
    "actions/checkout": """allow-unsafe-pr-checkout clean fetch-depth fetch-tags filter github-server-url lfs path
        persist-credentials ref repository set-safe-directory show-progress sparse-checkout sparse-checkout-cone-mode
        ssh-key ssh-known-hosts ssh-strict ssh-user submodules token""",
    "actions/setup-python": """allow-prereleases architecture cache cache-dependency-path check-latest freethreaded
        pip-version python-version python-version-file token update-environment""",
    "actions/setup-node": """architecture cache cache-dependency-path check-latest mirror mirror-token node-version
        node-version-file package-manager-cache registry-url scope token""",
    "hashicorp/setup-terraform": """cli_config_credentials_hostname cli_config_credentials_token terraform_version
        terraform_wrapper""",
    CREDENTIALS_ACTION: """action-timeout-s allowed-account-ids audience aws-access-key-id aws-profile aws-region
        aws-secret-access-key aws-session-token custom-tags disable-retry force-skip-oidc http-proxy
        inline-session-policy managed-session-policies mask-aws-account-id no-proxy output-credentials
        output-env-credentials overwrite-aws-profile retry-max-attempts role-chaining role-duration-seconds
        role-external-id role-session-name role-skip-session-tagging role-to-assume special-characters-workaround
        sts-endpoint transitive-tag-keys unset-current-credentials use-existing-credentials web-identity-token-file""",
    "actions/upload-artifact": """archive compression-level if-no-files-found include-hidden-files name overwrite
        path retention-days""",
    "actions/download-artifact": """artifact-ids digest-mismatch github-token merge-multiple name path pattern
        repository run-id skip-decompress""",
}
ACTION_INPUTS: Mapping[str, frozenset[str]] = {
    action: frozenset(names.split()) for action, names in _INPUT_NAMES.items()
}

# The toolchain every workflow must use (the README's prerequisites, the provider mirror's Terraform).
PINNED_TOOLS: Mapping[str, Mapping[str, str]] = {
    "actions/setup-python": {"python-version": "3.11"},
    "actions/setup-node": {"node-version": "20"},
    "hashicorp/setup-terraform": {"terraform_version": "1.11.4", "terraform_wrapper": "false"},
}

_USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>[^\s#]+)\s*(?P<comment>#.*)?$")
_PINNED_REF = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
_VERSION_COMMENT = re.compile(r"^#\s*(?P<version>v\d+\.\d+\.\d+)$")
# A terraform command (at the start of a command, options before the subcommand), not the word in a message.
_COMMAND_START = r"(?:^|[;&|({]\s*|\b(?:if|then|else|do)\s+)\s*(?:exec\s+)?"
_TERRAFORM_PLAN = re.compile(_COMMAND_START + r"terraform(?:\s+-\S+)*\s+plan(?:\s|$)", re.MULTILINE)
_TERRAFORM_APPLY = re.compile(_COMMAND_START + r"terraform(?:\s+-\S+)*\s+apply(?:\s|$)", re.MULTILINE)
_GITOPS_MODULE = re.compile(r"\bpython3?\s+-m\s+(?P<module>gitops(?:\.\w+)+)")
_ISSUE_WRITE = re.compile(r"\bgh\s+(?:issue\s+(?:create|edit|close|comment|reopen)|label\s+create)\b")
_MAKE_OPTIONS_WITH_VALUE = frozenset({"-C", "-f", "--directory", "--file", "--makefile", "-I", "-o", "-W"})
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&"})


@dataclass(frozen=True)
class Workflow:
    """One workflow file: its name (``deploy.yml``), its text and its parsed content."""

    name: str
    text: str
    data: dict[str, Any]

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """The jobs by id."""
        return self.data.get("jobs") or {}

    @property
    def triggers(self) -> dict[str, Any]:
        """The ``on:`` section as a mapping of event to its settings."""
        on = self.data.get("on")
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return dict.fromkeys(on)
        return on or {}


def parse(name: str, text: str) -> Workflow:
    """Parse a workflow's text; YAML 1.1 reads the key ``on`` as ``True``, which is put back."""
    data = yaml.safe_load(text) or {}
    if True in data:
        data["on"] = data.pop(True)
    return Workflow(name, text, data)


def load_all(directory: Path = WORKFLOWS_DIR) -> dict[str, Workflow]:
    """Every ``*.yml`` workflow of ``directory``, by file name."""
    return {path.name: parse(path.name, path.read_text()) for path in sorted(directory.glob("*.yml"))}


def steps_of(job: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps of a job (none for a job that calls a reusable workflow)."""
    return list(job.get("steps") or [])


def action_of(step: Mapping[str, Any]) -> str | None:
    """``owner/repo`` of the action a step uses, without its ref and sub-path; ``None`` for a run step."""
    uses = step.get("uses")
    if not isinstance(uses, str) or uses.startswith(("./", "docker://")):
        return None
    return "/".join(uses.split("@", 1)[0].split("/")[:2])


def scripts_of(job: Mapping[str, Any]) -> Iterator[str]:
    """The ``run:`` scripts of a job."""
    for step in steps_of(job):
        if isinstance(step.get("run"), str):
            yield step["run"]


def roles_of(job: Mapping[str, Any]) -> set[str]:
    """The ``role-to-assume`` values of a job's AWS credential steps."""
    return {
        str((step.get("with") or {}).get("role-to-assume"))
        for step in steps_of(job)
        if action_of(step) == CREDENTIALS_ACTION
    }


def calls_reusable(job: Mapping[str, Any], file_name: str) -> bool:
    """Whether a job calls the local reusable workflow ``file_name``."""
    uses = job.get("uses")
    return isinstance(uses, str) and uses == f"./.github/workflows/{file_name}"


def unpinned_actions(workflow: Workflow) -> list[str]:
    """Every remote ``uses:`` must be ``owner/repo@<40-hex commit> # vX.Y.Z``; local workflows are exempt."""
    problems = []
    for number, line in enumerate(workflow.text.splitlines(), start=1):
        match = _USES_LINE.match(line)
        if match is None or match["ref"].startswith("./"):
            continue
        where = f"{workflow.name}:{number}: {match['ref']}"
        if _PINNED_REF.match(match["ref"]) is None:
            problems.append(f"{where} is not pinned to a 40-hex commit SHA")
        elif match["comment"] is None or _VERSION_COMMENT.match(match["comment"].strip()) is None:
            problems.append(f"{where} has no '# vX.Y.Z' comment naming the release it pins")
    return problems


def inconsistent_pins(workflows: Mapping[str, Workflow]) -> list[str]:
    """One pin per action across all files, and one release name per commit: a partial re-pin shows here."""
    pins: dict[str, set[tuple[str, str]]] = {}
    for workflow in workflows.values():
        for line in workflow.text.splitlines():
            match = _USES_LINE.match(line)
            pinned = _PINNED_REF.match(match["ref"]) if match else None
            comment = _VERSION_COMMENT.match((match["comment"] or "").strip()) if match else None
            if pinned and comment:
                pins.setdefault(pinned["action"], set()).add((pinned["sha"], comment["version"]))
    return [f"{action} is pinned differently: {sorted(found)}" for action, found in pins.items() if len(found) > 1]


def expressions_in_run(workflow: Workflow) -> list[str]:
    """No ``${{ }}`` inside a script: values reach scripts through ``env:`` (no script injection, no secret leak)."""
    return [
        f"{workflow.name}: job {job_id} interpolates an expression into a run script: {script.strip()[:80]!r}"
        for job_id, job in workflow.jobs.items()
        for script in scripts_of(job)
        if "${{" in script
    ]


def permission_problems(workflow: Workflow) -> list[str]:
    """Top-level permissions read-only or none; write only per job; an OIDC token only where a role is assumed."""
    problems = []
    top = workflow.data.get("permissions")
    if not isinstance(top, dict) or any(value not in ("read", "none") for value in top.values()):
        problems.append(f"{workflow.name}: top-level permissions must be {{}} or read-only, found {top!r}")
    for job_id, job in workflow.jobs.items():
        permissions = job.get("permissions")
        if isinstance(permissions, str):
            problems.append(f"{workflow.name}: job {job_id} has blanket permissions {permissions!r}")
            continue
        permissions = permissions or {}
        assumes_role = bool(roles_of(job)) or "uses" in job
        if permissions.get("id-token") == "write" and not assumes_role:
            problems.append(f"{workflow.name}: job {job_id} gets an OIDC token (id-token: write) but assumes no role")
        if roles_of(job) and permissions.get("id-token") != "write":
            problems.append(f"{workflow.name}: job {job_id} assumes a role without id-token: write")
        writes_issues = any(_ISSUE_WRITE.search(script) for script in scripts_of(job))
        if permissions.get("issues") == "write" and not writes_issues and "uses" not in job:
            problems.append(f"{workflow.name}: job {job_id} has issues: write but never writes an issue")
        if writes_issues and permissions.get("issues") != "write":
            problems.append(f"{workflow.name}: job {job_id} writes issues without issues: write")
    return problems


def timeout_problems(workflow: Workflow) -> list[str]:
    """Every job that runs steps has ``timeout-minutes`` (the default is six hours)."""
    return [
        f"{workflow.name}: job {job_id} has no timeout-minutes"
        for job_id, job in workflow.jobs.items()
        if "steps" in job and "timeout-minutes" not in job
    ]


def role_problems(workflow: Workflow) -> list[str]:
    """The roles' trust, job by job.

    The plan role trusts the subjects ``...:pull_request`` and ``...:ref:refs/heads/main``, which a job with an
    ``environment:`` does not have; the deploy role trusts ``...:environment:<env>`` only. The plan role is
    read-only, so its plans run with ``-lock=false``; an apply needs the deploy role.
    """
    problems = []
    for job_id, job in workflow.jobs.items():
        roles = roles_of(job)
        where = f"{workflow.name}: job {job_id}"
        scripts = list(scripts_of(job))
        if PLAN_ROLE in roles and "environment" in job:
            problems.append(
                f"{where} assumes the plan role but sets an environment (its OIDC subject is then untrusted)"
            )
        if DEPLOY_ROLE in roles and "environment" not in job:
            problems.append(f"{where} assumes the deploy role without an environment (no approval, untrusted subject)")
        if any(_TERRAFORM_APPLY.search(script) for script in scripts) and DEPLOY_ROLE not in roles:
            problems.append(f"{where} runs terraform apply without the deploy role")
        if any(_TERRAFORM_APPLY.search(script) for script in scripts) and "environment" not in job:
            problems.append(f"{where} runs terraform apply without an environment (the approval gate)")
        if PLAN_ROLE in roles:
            plans = [line for script in scripts for line in logical_lines(script) if _TERRAFORM_PLAN.search(line)]
            problems.extend(
                f"{where} plans with the read-only role without -lock=false: {line.strip()}"
                for line in plans
                if "-lock=false" not in line.split()
            )
        unknown = roles - {PLAN_ROLE, DEPLOY_ROLE}
        if unknown:
            problems.append(f"{where} assumes a role that is neither the plan nor the deploy role: {sorted(unknown)}")
    return problems


def runner_problems(workflow: Workflow) -> list[str]:
    """Every job that assumes a platform role runs on the repository's Terraform runner (``vars.TERRAFORM_RUNNER``).

    The plans and applies refresh the in-cluster part through the private EKS endpoint, which only a runner in
    the VPC (or a listed egress address) reaches; a hard-coded GitHub-hosted runner would fail there.
    """
    return [
        f"{workflow.name}: job {job_id} assumes a platform role but runs on {job.get('runs-on')!r}"
        for job_id, job in workflow.jobs.items()
        if roles_of(job) and job.get("runs-on") != TERRAFORM_RUNNER
    ]


def apply_signal_problems(workflow: Workflow) -> list[str]:
    """A step running ``terraform apply`` ends by ``exec``-ing it.

    A cancelled run signals the step's shell only, and bash does not pass SIGINT on to its child: Terraform would
    be killed 10 s later without saving its state or releasing its lock (tests/gitops/test_deploy_faults.py shows
    what that leaves behind). With ``exec`` Terraform is the step's process and stops gracefully.
    """
    problems = []
    for job_id, job in workflow.jobs.items():
        for script in scripts_of(job):
            for line in logical_lines(script):
                if _TERRAFORM_APPLY.search(line) and not line.strip().startswith("exec "):
                    problems.append(f"{workflow.name}: job {job_id} runs terraform apply without exec: {line.strip()}")
    return problems


def apply_concurrency_problems(workflow: Workflow) -> list[str]:
    """A job in a GitHub Environment (an apply) holds ``concurrency: apply-<env>`` and never cancels a running one."""
    problems = []
    for job_id, job in workflow.jobs.items():
        environment = job.get("environment")
        if environment is None:
            continue
        name = environment.get("name") if isinstance(environment, dict) else environment
        concurrency = job.get("concurrency")
        if not isinstance(concurrency, dict) or concurrency.get("group") != f"apply-{name}":
            problems.append(f"{workflow.name}: job {job_id} (environment {name}) lacks concurrency group apply-{name}")
        elif concurrency.get("cancel-in-progress") is not False:
            problems.append(f"{workflow.name}: job {job_id} may cancel a running apply (cancel-in-progress not false)")
    return problems


def deploy_order_problems(workflow: Workflow, environments: list[str]) -> list[str]:
    """The calls of the apply workflow deploy exactly ``environments``, each after the one before it."""
    job_of = {
        job["with"]["environment"]: job_id
        for job_id, job in workflow.jobs.items()
        if calls_reusable(job, REUSABLE_APPLY) and "environment" in (job.get("with") or {})
    }
    if sorted(job_of) != sorted(environments):
        return [f"{workflow.name}: deploys {sorted(job_of)}, the matrix has {sorted(environments)}"]
    problems = []
    for previous, environment in itertools.pairwise(environments):
        needs = workflow.jobs[job_of[environment]].get("needs") or []
        if job_of[previous] not in ([needs] if isinstance(needs, str) else needs):
            problems.append(
                f"{workflow.name}: {environment} does not wait for {previous} ({job_of[environment]} needs)"
            )
    return problems


def tool_version_problems(workflow: Workflow) -> list[str]:
    """Python 3.11, Node 20 and Terraform 1.11.4 (no wrapper: plan output goes to files untouched)."""
    problems = []
    for job_id, job in workflow.jobs.items():
        for step in steps_of(job):
            expected = PINNED_TOOLS.get(action_of(step) or "")
            for key, value in (expected or {}).items():
                found = str((step.get("with") or {}).get(key)).lower()
                if found != value:
                    problems.append(f"{workflow.name}: job {job_id}: {action_of(step)} {key} is {found}, not {value}")
    return problems


def action_input_problems(workflow: Workflow) -> list[str]:
    """Every ``with:`` key is an input of the pinned release, and every action used is one whose inputs are known."""
    problems = []
    for job_id, job in workflow.jobs.items():
        for step in steps_of(job):
            action = action_of(step)
            if action is None:
                continue
            if action not in ACTION_INPUTS:
                problems.append(f"{workflow.name}: job {job_id} uses {action}, whose inputs are not recorded here")
                continue
            unknown = set(step.get("with") or {}) - ACTION_INPUTS[action]
            if unknown:
                problems.append(f"{workflow.name}: job {job_id}: {action} has no input(s) {sorted(unknown)}")
    return problems


def _ancestors(jobs: Mapping[str, Mapping[str, Any]], job_id: str) -> set[str]:
    """The jobs ``job_id`` waits for, directly or not."""
    seen: set[str] = set()
    pending = [job_id]
    while pending:
        needs = jobs[pending.pop()].get("needs") or []
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in seen:
                seen.add(need)
                pending.append(need)
    return seen


def _artifact_jobs(jobs: Mapping[str, Mapping[str, Any]], action: str) -> dict[str, set[str]]:
    """Artifact name -> the jobs whose steps use ``action`` (upload or download) with that name."""
    found: dict[str, set[str]] = {}
    for job_id, job in jobs.items():
        for step in steps_of(job):
            if action_of(step) == action:
                found.setdefault(str((step.get("with") or {}).get("name")), set()).add(job_id)
    return found


def artifact_problems(workflows: Mapping[str, Workflow]) -> list[str]:
    """Every downloaded artifact is uploaded by a job the downloading job waits for (in a reusable workflow: by a
    job every calling job waits for)."""
    problems = []
    for workflow in workflows.values():
        uploads = _artifact_jobs(workflow.jobs, "actions/upload-artifact")
        downloads = _artifact_jobs(workflow.jobs, "actions/download-artifact")
        for name, job_ids in downloads.items():
            for job_id in job_ids:
                if "workflow_call" in workflow.triggers:
                    callers = [
                        (caller, caller_id)
                        for caller in workflows.values()
                        for caller_id, caller_job in caller.jobs.items()
                        if calls_reusable(caller_job, workflow.name)
                    ]
                    for caller, caller_id in callers:
                        made = _artifact_jobs(caller.jobs, "actions/upload-artifact").get(name, set())
                        if not made & _ancestors(caller.jobs, caller_id):
                            problems.append(f"{caller.name}: job {caller_id} calls {workflow.name} before {name!r}")
                elif not uploads.get(name, set()) & _ancestors(workflow.jobs, job_id):
                    problems.append(f"{workflow.name}: job {job_id} downloads {name!r}, no job it needs uploads it")
    return problems


def makefile_targets(text: str) -> set[str]:
    """The targets a Makefile defines, with ``$(VAR)`` expanded from its simple variable assignments."""
    variables: dict[str, str] = {}
    assignment = re.compile(r"^(?:export\s+)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*(?::=|\?=|=)\s*(?P<value>.*)$")
    rule = re.compile(r"^(?P<targets>[^\t#:=][^:=]*?)\s*::?(?!=)")
    targets: set[str] = set()
    for line in text.splitlines():
        if (match := assignment.match(line)) is not None:
            variables.setdefault(match["name"], match["value"].strip())
        elif (match := rule.match(line)) is not None:
            expanded = match["targets"]
            # Variables hold variables ($(PY_STAMP) is $(VENV)/.installed): expand until nothing changes.
            for _ in range(10):
                expanded = re.sub(r"\$\((\w+)\)", lambda ref: variables.get(ref[1], ref[0]), expanded)
            # Special targets (.PHONY) are not commands; a file target such as .venv/.installed is.
            targets.update(name for name in expanded.split() if not name.startswith(".") or "/" in name)
    return targets


def logical_lines(script: str) -> list[str]:
    """The lines of a shell script, a backslash-continued line joined into one."""
    return script.replace("\\\n", " ").splitlines()


def make_invocations(script: str) -> list[str]:
    """The targets named by ``make`` commands in a shell script (options such as ``-C dir`` skipped)."""
    found = []
    for line in logical_lines(script):
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            continue
        for index, word in enumerate(words):
            if word != "make":
                continue
            rest = iter(words[index + 1 :])
            for arg in rest:
                if arg in _SHELL_OPERATORS:
                    break
                if arg in _MAKE_OPTIONS_WITH_VALUE:
                    next(rest, None)
                elif not arg.startswith("-") and "=" not in arg:
                    found.append(arg)
    return found


def make_target_problems(scripts: list[str], targets: set[str]) -> list[str]:
    """Every ``make <target>`` in ``scripts`` names a target of the Makefile."""
    return [
        f"make {name}: no such Makefile target" for s in scripts for name in make_invocations(s) if name not in targets
    ]


def gitops_module_problems(scripts: list[str], root: Path = ROOT) -> list[str]:
    """Every ``python -m gitops.<x>`` in ``scripts`` names a module of the repository's ``gitops`` package."""
    modules = {match["module"] for script in scripts for match in _GITOPS_MODULE.finditer(script)}
    problems = []
    for module in sorted(modules):
        path = root.joinpath(*module.split("."))
        if not path.with_suffix(".py").is_file() and not (path / "__main__.py").is_file():
            problems.append(f"python -m {module}: no module {path.relative_to(root)}.py")
    return problems


def gitops_calls(scripts: list[str]) -> dict[tuple[str, ...], set[str]]:
    """The options each ``python -m gitops.<x> [subcommand]`` is called with, by module and subcommand."""
    calls: dict[tuple[str, ...], set[str]] = {}
    for line in (line for script in scripts for line in logical_lines(script) if " -m gitops." in line):
        # Plain words, not shell syntax: the call may sit inside "$( ... )", and only its options matter here.
        words = [word.strip("\"')") for word in line.split(" -m ", 1)[1].split()]
        module, rest = words[0], words[1:]
        command = (module, rest[0]) if rest and re.fullmatch(r"[a-z][a-z-]*", rest[0]) else (module,)
        calls.setdefault(command, set()).update(word for word in rest if word.startswith("--"))
    return calls


def all_scripts(workflows: Mapping[str, Workflow]) -> list[str]:
    """Every ``run:`` script of every workflow."""
    return [script for workflow in workflows.values() for job in workflow.jobs.values() for script in scripts_of(job)]
