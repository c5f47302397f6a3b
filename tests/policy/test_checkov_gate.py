"""Security-scan gate: checkov over every synthesized stack, with every accepted finding written down.

checkov runs in its own virtual environment (``make checkov``; its exact ``boto3`` pin conflicts
with the one moto needs), found through ``ML_PLATFORM_CHECKOV`` or at ``.venv-checkov/bin/checkov``.
Each environment's ``cdk.tf.json`` is scanned with every check on; the result fails when:

- checkov could not parse the file, or evaluated nothing (it exits 0 with zero checks then);
- a check fails that ``.checkov.yaml`` does not skip;
- a skipped check fails in an environment that ``docs/security.md`` does not list for it, or no
  longer fails where it is listed (the list must say exactly where a finding is accepted).

Every ``skip-check`` entry of ``.checkov.yaml`` carries a ``# why:`` reason, and has a row in the
table of ``docs/security.md`` with the same check id, its environments and a reason.

The stacks carry the platform's own notes too: a resource whose finding a suppression silenced lists it
under ``"//": {"suppressed_checks": ...}``. checkov must read those resources like any other.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.synth_json import ENVIRONMENTS, resources

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHECKOV_ENV = "ML_PLATFORM_CHECKOV"
CONFIG_FILE = PROJECT_ROOT / ".checkov.yaml"
SECURITY_DOC = PROJECT_ROOT / "docs" / "security.md"
_SKIP_LINE = re.compile(r"^\s*-\s*(?P<id>CKV2?_[A-Z0-9_]+)\s*(?:#\s*why:\s*(?P<why>.*))?$")
_DOC_ROW = re.compile(r"^\|\s*`?(?P<id>CKV2?_[A-Z0-9_]+)`?\s*\|\s*(?P<envs>[^|]+?)\s*\|(?P<rest>.*)\|\s*$")
ACCEPTED_SECTION = "### Accepted checkov findings"


def _checkov() -> Path:
    binary = Path(os.environ.get(CHECKOV_ENV) or PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov")
    if not binary.is_file():
        pytest.fail(f"checkov not found at {binary}: run `make checkov` or set {CHECKOV_ENV} to its path")
    return binary


def _config_skips() -> dict[str, str]:
    """``skip-check`` ids of .checkov.yaml with their ``# why:`` reasons ("" when missing)."""
    config = yaml.safe_load(CONFIG_FILE.read_text())
    listed = config.get("skip-check") or []
    reasons = {}
    for line in CONFIG_FILE.read_text().splitlines():
        match = _SKIP_LINE.match(line)
        if match:
            reasons[match.group("id")] = (match.group("why") or "").strip()
    assert sorted(listed) == sorted(reasons), "every skip-check entry must be on its own '- ID  # why: ...' line"
    return reasons


def _documented(section: str) -> dict[str, tuple[frozenset[str], str]]:
    """Rows of one checkov table of docs/security.md: id -> (environments, the remaining cells)."""
    rows: dict[str, tuple[frozenset[str], str]] = {}
    inside = False
    for line in SECURITY_DOC.read_text().splitlines():
        if line.startswith("#"):
            inside = line.strip() == section
            continue
        match = _DOC_ROW.match(line) if inside else None
        if match:
            envs = frozenset(e.strip() for e in match.group("envs").split(","))
            assert match.group("id") not in rows, f"{match.group('id')} is listed twice in {section}"
            rows[match.group("id")] = (envs, match.group("rest").strip())
    return rows


@pytest.fixture(scope="module")
def scans(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """checkov's JSON report of each environment, all checks on; the three scans run in parallel."""
    binary = _checkov()
    home = tmp_path_factory.mktemp("checkov-home")
    # No config file may leak in (checkov reads .checkov.yaml from the working and home directories):
    # the gate applies the skip list itself, so it can tell where each skipped finding occurs.
    env = {**os.environ, "HOME": str(home), "ANSI_COLORS_DISABLED": "1", "LOG_LEVEL": "ERROR"}
    started = time.monotonic()
    processes = {
        name: subprocess.Popen(
            [
                str(binary),
                "--framework",
                "terraform_json",
                "--skip-download",
                "--output",
                "json",
                "--file",
                str(synth_dir / "stacks" / name / "cdk.tf.json"),
            ],
            cwd=home,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ENVIRONMENTS
    }
    reports = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        # checkov exits 1 when a check failed; anything else means it did not complete.
        assert process.returncode in (0, 1), f"checkov failed on {name} ({process.returncode}):\n{stderr[-3000:]}"
        report = json.loads(stdout)
        assert isinstance(report, dict), f"expected one terraform_json report for {name}, got {type(report)}"
        reports[name] = report
    print(f"checkov scanned {len(reports)} stacks in {time.monotonic() - started:.1f} s")
    return reports


def _path_of(stack: dict[str, Any], address: str) -> str:
    """The construct path of a checkov resource address.

    checkov names resources ``aws_x.name``, data sources ``data.aws_x.name``, and some resources
    (those its graph checks do not type) ``resource.name``.
    """
    parts = address.split(".")
    block = "data" if parts[0] == "data" else "resource"
    name = parts[-1]
    kinds = [parts[-2]] if len(parts) >= 2 and parts[-2] not in ("data", "resource") else list(stack.get(block, {}))
    for kind in kinds:
        config = stack.get(block, {}).get(kind, {}).get(name)
        if config is not None:
            return config.get("//", {}).get("metadata", {}).get("path", address)
    return address


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_parsed_and_evaluated_the_stack(scans, stacks, env) -> None:
    report = scans[env]
    summary = report.get("summary", {})
    assert summary.get("parsing_errors") == 0, summary
    results = report.get("results", {})
    evaluated = {r["resource"] for key in ("passed_checks", "failed_checks") for r in results.get(key, [])}
    assert summary.get("passed", 0) + summary.get("failed", 0) > 0 and evaluated, summary
    # The core data resources of every environment were among those checkov read.
    for kind in ("aws_s3_bucket", "aws_kms_key"):
        names = set(resources(stacks[env], kind))
        assert names and {f"{kind}.{n}" for n in names} <= evaluated, kind


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_unaccepted_checkov_findings(scans, stacks, env) -> None:
    skips = _config_skips()
    accepted = _documented(ACCEPTED_SECTION)
    unaccepted = []
    for finding in scans[env].get("results", {}).get("failed_checks", []):
        check_id = finding["check_id"]
        if check_id in skips and env in accepted.get(check_id, (frozenset(), ""))[0]:
            continue
        line = (
            f"{check_id} {finding['resource']} ({_path_of(stacks[env], finding['resource'])}): {finding['check_name']}"
        )
        unaccepted.append(line)
    assert unaccepted == [], "checkov findings not accepted for " + env + ":\n  " + "\n  ".join(unaccepted)


def test_every_skip_has_a_reason_and_a_documented_row() -> None:
    skips = _config_skips()
    accepted = _documented(ACCEPTED_SECTION)
    assert skips, ".checkov.yaml skips nothing: then docs/security.md's accepted table must be empty too"
    missing_reason = [check_id for check_id, why in skips.items() if len(why) < 20]
    assert missing_reason == [], f"skip-check entries without a '# why:' reason: {missing_reason}"
    assert sorted(accepted) == sorted(skips), "docs/security.md's accepted table and .checkov.yaml differ"
    for check_id, (envs, why) in accepted.items():
        assert envs and envs <= set(ENVIRONMENTS), f"{check_id}: environments {sorted(envs)}"
        assert len(why) >= 20, f"{check_id}: the documented reason is too short"
    count = re.search(r"checkov skips:\s*(\d+)", SECURITY_DOC.read_text())
    assert count and int(count.group(1)) == len(skips), "docs/security.md's skip count is out of date"


@pytest.mark.scanner
def test_listed_findings_occur_exactly_where_documented(scans) -> None:
    failing: dict[str, set[str]] = {}
    for env in ENVIRONMENTS:
        for finding in scans[env].get("results", {}).get("failed_checks", []):
            failing.setdefault(finding["check_id"], set()).add(env)
    listed = _documented(ACCEPTED_SECTION)
    stale = {
        check_id: {"documented": sorted(envs), "failing": sorted(failing.get(check_id, set()))}
        for check_id, (envs, _) in listed.items()
        if failing.get(check_id, set()) < envs
    }
    assert stale == {}, f"findings listed in docs/security.md for environments where the check passes: {stale}"


def _noted(stack: dict[str, Any], rule_id: str) -> set[str]:
    """Addresses of the resources whose ``//`` block records a suppressed finding of ``rule_id``."""
    return {
        f"{kind}.{name}"
        for kind, by_name in stack.get("resource", {}).items()
        for name, config in by_name.items()
        if rule_id in config.get("//", {}).get("suppressed_checks", {})
    }


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_reads_resources_carrying_suppression_notes(scans, stacks, env) -> None:
    noted = _noted(stacks[env], "S3-2")
    # Only staging and prod have the access-log bucket, the one resource with a silenced finding.
    assert bool(noted) is (env != "dev")
    assert scans[env].get("summary", {}).get("parsing_errors") == 0
    results = scans[env].get("results", {})
    evaluated = {r["resource"] for key in ("passed_checks", "failed_checks") for r in results.get(key, [])}
    assert noted <= evaluated
    # checkov's own SSE-KMS check fails exactly where S3-2 is suppressed (the accepted CKV_AWS_145).
    kms_findings = {r["resource"] for r in results.get("failed_checks", []) if r["check_id"] == "CKV_AWS_145"}
    assert kms_findings == noted
