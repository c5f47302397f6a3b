"""The checkov gate (tools/checkov_gate.py): its rules on fabricated checkov reports, and the real scan through it.

The gate holds every failed check to ``checkov-accepted.toml`` per environment and per resource (construct path),
fails on stale acceptances, on unparsed or empty scans and on checks skipped inside a stack; entries with a
``scenario`` (an overrides file) apply only to scans of stacks synthesized with that file. The tests marked
``scanner`` run the pinned checkov (``make checkov``; ``ML_PLATFORM_CHECKOV`` or ``.venv-checkov/bin/checkov``)
through the same ``scan`` function that ``make scan`` runs, on the session's synthesized stacks and on the stacks
synthesized with ``examples/model-serving.json``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.synth_json import ENVIRONMENTS, resources
from tools.checkov_gate import (
    ACCEPTED_FILE,
    Acceptance,
    GateError,
    GateResult,
    evaluate,
    format_report,
    load_acceptances,
    main,
    scan,
    scan_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
LOG_BUCKET = "platform_storage_access-logs_bucket_10543786"
DATA_BUCKET = "platform_storage_training-data_bucket_125A9CA0"
IDLE_LOGS = "platform_training_idle-shutdown-logs_40DFAE5A"
ZONES = "platform_network_zones_A8A9CE00"
DEPLOYMENT = "platform_model-chat_deployment_F5B6F42E"
KMS_NAME = "Ensure that S3 buckets are encrypted with KMS by default"
EXAMPLE = "examples/model-serving.json"
PUBLISHED = "examples/published-model.json"
# Every stack `make scan` scans: the environments and the account-level bootstrap stack.
STACKS = (*ENVIRONMENTS, "bootstrap")
OVERRIDES_FILE = "ML_PLATFORM_OVERRIDES_FILE"


def fake_stack(env: str) -> dict[str, Any]:
    """A ``cdk.tf.json`` shaped like the platform's: resources carry their construct path."""

    def node(path: str) -> dict[str, Any]:
        return {"//": {"metadata": {"path": f"{env}/{path}"}}}

    return {
        "resource": {
            "aws_s3_bucket": {
                LOG_BUCKET: node("platform/storage/access-logs/bucket"),
                DATA_BUCKET: node("platform/storage/training-data/bucket"),
            },
            "aws_cloudwatch_log_group": {IDLE_LOGS: node("platform/training/idle-shutdown-logs")},
            "kubernetes_deployment_v1": {DEPLOYMENT: node("platform/model-chat/deployment")},
        },
        "data": {"aws_availability_zones": {ZONES: node("platform/network/zones")}},
    }


def check(check_id: str, resource: str, name: str = "a checkov check") -> dict[str, Any]:
    """One entry of checkov's ``passed_checks``/``failed_checks``, as its JSON output writes it."""
    return {"check_id": check_id, "check_name": name, "resource": resource}


def report(
    *failed: dict[str, Any], parsing_errors: int = 0, skipped: tuple[dict[str, Any], ...] = ()
) -> dict[str, Any]:
    """checkov's terraform_json report: ``failed`` checks plus one passed check on the data bucket."""
    passed = [check("CKV_AWS_21", f"aws_s3_bucket.{DATA_BUCKET}")]
    return {
        "check_type": "terraform_json",
        "results": {"passed_checks": passed, "failed_checks": list(failed), "skipped_checks": list(skipped)},
        "summary": {
            "passed": len(passed),
            "failed": len(failed),
            "skipped": len(skipped),
            "parsing_errors": parsing_errors,
        },
    }


def accept(check_id: str, envs: tuple[str, ...], *patterns: str, scenario: str | None = None) -> Acceptance:
    return Acceptance(check_id, frozenset(envs), patterns, "a reason long enough to be one", scenario)


KMS_ON_LOG_BUCKET = check("CKV_AWS_145", f"aws_s3_bucket.{LOG_BUCKET}", KMS_NAME)
KMS_ACCEPTED = accept("CKV_AWS_145", ("staging", "prod"), "platform/storage/access-logs/bucket")
TAG_ON_MODEL = check("CKV_K8S_43", f"kubernetes_deployment_v1.{DEPLOYMENT}", "Image should use digest")
TAG_ACCEPTED = accept("CKV_K8S_43", ("prod",), "platform/model-*/deployment", scenario=EXAMPLE)


# --- the gate on fabricated reports ----------------------------------------------------------------------------


def test_accepted_findings_pass() -> None:
    result = evaluate("prod", report(KMS_ON_LOG_BUCKET), fake_stack("prod"), [KMS_ACCEPTED])
    assert result.ok
    assert [(f.check_id, f.path) for f in result.accepted] == [("CKV_AWS_145", "platform/storage/access-logs/bucket")]
    assert result.evaluated == {f"aws_s3_bucket.{LOG_BUCKET}", f"aws_s3_bucket.{DATA_BUCKET}"}
    assert format_report([result]).startswith("checkov gate passed (prod; 1 accepted findings")


def test_clean_report_without_acceptances_passes() -> None:
    result = evaluate("dev", report(), fake_stack("dev"), [])
    assert result.ok and result.accepted == ()


def test_unaccepted_finding_fails_naming_environment_resource_and_check() -> None:
    result = evaluate("prod", report(KMS_ON_LOG_BUCKET), fake_stack("prod"), [])
    assert not result.ok
    text = format_report([result])
    assert (
        f"prod: not accepted: CKV_AWS_145 '{KMS_NAME}' on platform/storage/access-logs/bucket "
        f"(aws_s3_bucket.{LOG_BUCKET})"
    ) in text
    assert "checkov gate FAILED with 1 problem " in text
    assert str(ACCEPTED_FILE) in text


def test_finding_accepted_for_staging_fails_in_prod() -> None:
    staging_only = accept("CKV_AWS_338", ("staging",), "platform/training/idle-shutdown-logs")
    finding = check("CKV_AWS_338", f"resource.{IDLE_LOGS}", "log retention")
    assert evaluate("staging", report(finding), fake_stack("staging"), [staging_only]).ok
    prod = evaluate("prod", report(finding), fake_stack("prod"), [staging_only])
    assert [(f.environment, f.check_id, f.path) for f in prod.unaccepted] == [
        ("prod", "CKV_AWS_338", "platform/training/idle-shutdown-logs")
    ]
    assert "(accepted in staging only)" in format_report([prod])


def test_finding_accepted_for_another_resource_fails() -> None:
    on_data_bucket = check("CKV_AWS_145", f"aws_s3_bucket.{DATA_BUCKET}", KMS_NAME)
    result = evaluate("prod", report(KMS_ON_LOG_BUCKET, on_data_bucket), fake_stack("prod"), [KMS_ACCEPTED])
    assert [f.path for f in result.accepted] == ["platform/storage/access-logs/bucket"]
    assert [f.path for f in result.unaccepted] == ["platform/storage/training-data/bucket"]


def test_patterns_match_construct_paths_below_the_stack() -> None:
    every_bucket = accept("CKV_AWS_144", ("dev",), "platform/storage/*/bucket")
    failed = [check("CKV_AWS_144", f"aws_s3_bucket.{name}") for name in (LOG_BUCKET, DATA_BUCKET)]
    assert len(evaluate("dev", report(*failed), fake_stack("dev"), [every_bucket]).accepted) == 2
    # A pattern naming the stack itself matches nothing: paths are written without the environment.
    with_stack = accept("CKV_AWS_144", ("dev",), "dev/platform/storage/*/bucket")
    assert len(evaluate("dev", report(*failed), fake_stack("dev"), [with_stack]).unaccepted) == 2


def test_stale_acceptance_fails() -> None:
    result = evaluate("prod", report(), fake_stack("prod"), [KMS_ACCEPTED])
    assert not result.ok
    assert [(s.environment, s.acceptance.check, s.pattern) for s in result.stale] == [
        ("prod", "CKV_AWS_145", "platform/storage/access-logs/bucket")
    ]
    assert (
        "prod: stale acceptance: CKV_AWS_145 on 'platform/storage/access-logs/bucket' no longer fails here "
        "(remove prod from the entry or narrow it; it stays accepted in staging)"
    ) in format_report([result])


def test_each_pattern_of_an_acceptance_must_still_match() -> None:
    two = accept("CKV_AWS_145", ("prod",), "platform/storage/access-logs/bucket", "platform/storage/old/bucket")
    result = evaluate("prod", report(KMS_ON_LOG_BUCKET), fake_stack("prod"), [two])
    assert [s.pattern for s in result.stale] == ["platform/storage/old/bucket"]


def test_acceptance_for_another_environment_is_not_stale_here() -> None:
    assert evaluate("dev", report(), fake_stack("dev"), [KMS_ACCEPTED]).ok


@pytest.mark.parametrize(
    ("bad_report", "message"),
    [
        (report(parsing_errors=1), "checkov could not parse the stack (1 parsing errors)"),
        (
            {"results": {}, "summary": {"passed": 0, "failed": 0, "parsing_errors": 0}},
            "checkov evaluated no resource",
        ),
        ([report(), report()], "checkov did not produce one terraform_json report"),
        (
            report(skipped=(check("CKV_AWS_18", f"aws_s3_bucket.{DATA_BUCKET}"),)),
            f"CKV_AWS_18 was skipped on aws_s3_bucket.{DATA_BUCKET} inside the stack",
        ),
    ],
)
def test_scans_that_prove_nothing_fail(bad_report: object, message: str) -> None:
    result = evaluate("staging", bad_report, fake_stack("staging"), [])
    assert not result.ok
    assert f"staging: {message}" in format_report([result])


@pytest.mark.parametrize(
    ("address", "resolved", "path"),
    [
        (f"aws_s3_bucket.{LOG_BUCKET}", f"aws_s3_bucket.{LOG_BUCKET}", "platform/storage/access-logs/bucket"),
        (f"resource.{IDLE_LOGS}", f"aws_cloudwatch_log_group.{IDLE_LOGS}", "platform/training/idle-shutdown-logs"),
        (f"data.{ZONES}", f"data.aws_availability_zones.{ZONES}", "platform/network/zones"),
        (f"data.aws_availability_zones.{ZONES}", f"data.aws_availability_zones.{ZONES}", "platform/network/zones"),
        ("aws_s3_bucket.not_in_stack", "aws_s3_bucket.not_in_stack", "aws_s3_bucket.not_in_stack"),
    ],
)
def test_findings_name_the_terraform_address_and_construct_path(address: str, resolved: str, path: str) -> None:
    result = evaluate("prod", report(check("CKV_AWS_1", address)), fake_stack("prod"), [])
    assert [(f.address, f.path) for f in result.unaccepted] == [(resolved, path)]


# --- scenarios: entries for the stacks of one overrides file --------------------------------------------------


def test_a_scenario_entry_accepts_only_in_its_scenario() -> None:
    passed = evaluate("prod", report(TAG_ON_MODEL), fake_stack("prod"), [TAG_ACCEPTED], EXAMPLE)
    assert passed.ok and [f.path for f in passed.accepted] == ["platform/model-chat/deployment"]
    assert "checkov gate passed (prod with examples/model-serving.json; 1 accepted" in format_report([passed])
    for other in (None, "README.md"):
        failed = evaluate("prod", report(TAG_ON_MODEL), fake_stack("prod"), [TAG_ACCEPTED], other)
        assert [f.path for f in failed.unaccepted] == ["platform/model-chat/deployment"] and not failed.stale
        assert "(accepted in prod with examples/model-serving.json only)" in format_report([failed])


def test_a_scenario_entry_is_not_stale_in_the_plain_scan() -> None:
    assert evaluate("prod", report(), fake_stack("prod"), [TAG_ACCEPTED]).ok


def test_a_scenario_entry_is_stale_in_its_scenario_when_it_stops_matching() -> None:
    result = evaluate("prod", report(), fake_stack("prod"), [TAG_ACCEPTED], EXAMPLE)
    assert [(s.acceptance.check, s.pattern) for s in result.stale] == [("CKV_K8S_43", "platform/model-*/deployment")]
    assert (
        "prod: stale acceptance: CKV_K8S_43 on 'platform/model-*/deployment' with examples/model-serving.json no "
        "longer fails here (remove prod from the entry or narrow it)"
    ) in format_report([result])


def test_entries_without_a_scenario_hold_in_a_scenario_scan() -> None:
    # A scenario adds to the platform: the plain entries accept there, and are stale there when they stop matching.
    assert evaluate("prod", report(KMS_ON_LOG_BUCKET), fake_stack("prod"), [KMS_ACCEPTED], EXAMPLE).ok
    stale = evaluate("prod", report(), fake_stack("prod"), [KMS_ACCEPTED], EXAMPLE).stale
    assert [(s.acceptance.check, s.pattern) for s in stale] == [("CKV_AWS_145", "platform/storage/access-logs/bucket")]


def test_the_scan_scenario_is_a_file_of_the_repository(tmp_path: Path) -> None:
    assert scan_scenario(None, {}) is None and scan_scenario(None, {OVERRIDES_FILE: ""}) is None
    # The variable the synthesis read, relative to the working directory as the synthesis reads it, or absolute.
    assert scan_scenario(None, {OVERRIDES_FILE: EXAMPLE}, cwd=ROOT) == EXAMPLE
    assert scan_scenario(None, {OVERRIDES_FILE: "model-serving.json"}, cwd=ROOT / "examples") == EXAMPLE
    assert scan_scenario(str(ROOT / EXAMPLE), {OVERRIDES_FILE: EXAMPLE}, cwd=ROOT) == EXAMPLE
    outside = tmp_path / "overrides.json"
    outside.write_text("{}")
    # A user's own overrides file elsewhere (or anything that is not a file of the repository) is no scenario: the
    # stacks are held to the plain entries.
    assert scan_scenario(None, {OVERRIDES_FILE: str(outside)}, cwd=ROOT) is None
    assert scan_scenario(None, {OVERRIDES_FILE: "examples"}, cwd=ROOT) is None
    for argument, variable, message in [
        ("examples/missing.json", None, "--scenario = 'examples/missing.json': the scenario must be an existing"),
        (str(outside), None, f"--scenario = {str(outside)!r}: the scenario must be an existing overrides file"),
        ("README.md", EXAMPLE, "--scenario 'README.md' and ML_PLATFORM_OVERRIDES_FILE='examples/model-serving.json'"),
    ]:
        environ = {OVERRIDES_FILE: variable} if variable else {}
        with pytest.raises(GateError, match=re.escape(message)):
            scan_scenario(argument, environ, cwd=ROOT)


# --- the accepted findings file --------------------------------------------------------------------------------

GOOD_ENTRY = {
    "check": '"CKV_AWS_145"',
    "environments": '["staging", "prod"]',
    "resources": '["platform/storage/access-logs/bucket"]',
    "why": '"S3 server access log delivery cannot write to SSE-KMS buckets"',
}


SCENARIO_ALLOWED = "an existing overrides file inside the repository, as a path from its root (examples/x.json)"


def write_entries(path: Path, *entries: dict[str, str]) -> Path:
    path.write_text("".join("[[accepted]]\n" + "".join(f"{k} = {v}\n" for k, v in e.items()) for e in entries))
    return path


def test_the_accepted_findings_file_is_valid() -> None:
    acceptances = load_acceptances(STACKS)
    assert acceptances, "an empty file would make every stale-acceptance test vacuous"
    assert all(a.environments <= set(STACKS) and a.resources and len(a.why) >= 20 for a in acceptances)
    # The model-serving example's entries load with it (each scenario is a file of the repository).
    assert {a.scenario for a in acceptances} == {None, EXAMPLE, PUBLISHED}


def test_an_entry_loads_with_its_reason(tmp_path: Path) -> None:
    (loaded,) = load_acceptances(ENVIRONMENTS, write_entries(tmp_path / "a.toml", GOOD_ENTRY))
    assert loaded == Acceptance(
        "CKV_AWS_145",
        frozenset({"staging", "prod"}),
        ("platform/storage/access-logs/bucket",),
        "S3 server access log delivery cannot write to SSE-KMS buckets",
    )
    with_scenario = write_entries(tmp_path / "b.toml", {**GOOD_ENTRY, "scenario": f'"{EXAMPLE}"'})
    assert load_acceptances(ENVIRONMENTS, with_scenario)[0].scenario == EXAMPLE


@pytest.mark.parametrize(
    ("key", "value", "allowed"),
    [
        ("check", '"S3-2"', "a checkov check id"),
        ("environments", '["qa"]', "a non-empty list without repeats of: dev, prod, staging"),
        ("environments", "[]", "a non-empty list"),
        ("environments", '["prod", "prod"]', "without repeats"),
        ("resources", "[]", "a non-empty list of distinct construct path patterns"),
        ("resources", '[" platform/x"]', "construct path patterns"),
        ("why", '"because"', "a reason of at least 20 characters"),
        ("severity", '"low"', "['check', 'environments', 'resources', 'why'], optionally ['scenario']"),
        ("scenario", '"examples/missing.json"', SCENARIO_ALLOWED),
        ("scenario", '"examples"', SCENARIO_ALLOWED),
        ("scenario", f'"{ROOT / EXAMPLE}"', SCENARIO_ALLOWED),
        ("scenario", f'"examples/../{EXAMPLE}"', SCENARIO_ALLOWED),
        ("scenario", f'"../{ROOT.name}/{EXAMPLE}"', SCENARIO_ALLOWED),
        ("scenario", "1", SCENARIO_ALLOWED),
    ],
)
def test_malformed_entries_are_refused(tmp_path: Path, key: str, value: str, allowed: str) -> None:
    source = write_entries(tmp_path / "a.toml", {**GOOD_ENTRY, key: value})
    with pytest.raises(GateError) as caught:
        load_acceptances(ENVIRONMENTS, source)
    field = "keys" if key == "severity" else key
    assert str(caught.value).startswith(f"a.toml: accepted[0].{field} = ")
    assert allowed in str(caught.value)


def test_an_acceptance_written_twice_is_refused(tmp_path: Path) -> None:
    narrower = {**GOOD_ENTRY, "environments": '["prod"]'}
    with pytest.raises(GateError, match=re.escape("CKV_AWS_145 in prod is already accepted[0]")):
        load_acceptances(ENVIRONMENTS, write_entries(tmp_path / "a.toml", GOOD_ENTRY, narrower))


def test_an_acceptance_written_twice_for_one_scan_is_refused(tmp_path: Path) -> None:
    example, readme = ({**GOOD_ENTRY, "scenario": f'"{name}"'} for name in (EXAMPLE, "README.md"))
    # A plain entry already accepts in every scenario; the same scenario twice is a plain repeat.
    for first, second, taken in [
        (GOOD_ENTRY, example, "accepted[0]"),
        (example, GOOD_ENTRY, f"accepted[0] with {EXAMPLE}"),
        (example, example, f"accepted[0] with {EXAMPLE}"),
    ]:
        with pytest.raises(GateError, match=re.escape("a.toml: accepted[1].resources = ")) as caught:
            load_acceptances(ENVIRONMENTS, write_entries(tmp_path / "a.toml", first, second))
        assert str(caught.value).endswith(f"CKV_AWS_145 in prod is already {taken}")
    # Two scenarios are never scanned together.
    assert len(load_acceptances(ENVIRONMENTS, write_entries(tmp_path / "a.toml", example, readme))) == 2


def test_anything_but_accepted_tables_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "a.toml"
    source.write_text('skip-check = ["CKV_AWS_145"]\n')
    with pytest.raises(GateError, match=re.escape("unknown top-level keys ['skip-check']")):
        load_acceptances(ENVIRONMENTS, source)


# --- the command line (make scan) with a stand-in checkov ------------------------------------------------------


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A synthesis output directory holding fabricated staging and prod stacks."""
    for env in ("staging", "prod"):
        (tmp_path / "out" / "stacks" / env).mkdir(parents=True)
        (tmp_path / "out" / "stacks" / env / "cdk.tf.json").write_text(json.dumps(fake_stack(env)))
    return tmp_path / "out"


def stand_in_checkov(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reports: dict[str, Any], code: int = 1) -> Path:
    """An executable that answers like checkov with ``reports[<env of --file>]`` and records how it was called."""
    (tmp_path / "reports.json").write_text(json.dumps(reports))
    script = tmp_path / "checkov"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "env = sys.argv[sys.argv.index('--file') + 1].split(os.sep)[-2]\n"
        "with open(os.path.join(here, 'calls.jsonl'), 'a') as calls:\n"
        "    calls.write(json.dumps({'argv': sys.argv[1:], 'cwd': os.getcwd()}) + '\\n')\n"
        "print(json.dumps(json.load(open(os.path.join(here, 'reports.json')))[env]))\n"
        f"sys.exit({code})\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("ML_PLATFORM_CHECKOV", str(script))
    return tmp_path / "calls.jsonl"


GOOD_ENTRY_TAG = {
    "check": '"CKV_K8S_43"',
    "environments": '["staging", "prod"]',
    "resources": '["platform/model-*/deployment"]',
    "why": '"image tags are accepted by the serving settings"',
}


def accepted_file(tmp_path: Path) -> Path:
    return write_entries(tmp_path / "accepted.toml", GOOD_ENTRY)


def test_cli_passes_and_runs_checkov_with_every_check_on(tmp_path, out_dir, monkeypatch, capsys) -> None:
    calls = stand_in_checkov(tmp_path, monkeypatch, {env: report(KMS_ON_LOG_BUCKET) for env in ("staging", "prod")})
    assert main(["--out", str(out_dir), "--accepted", str(accepted_file(tmp_path))]) == 0
    assert "checkov gate passed (prod, staging; 2 accepted findings" in capsys.readouterr().out
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    assert sorted(Path(c["argv"][-1]).parent.name for c in recorded) == ["prod", "staging"]
    for call in recorded:
        # No skip list and no config file: checkov reports every failed check, and only the gate accepts.
        assert not {"--skip-check", "--config-file", "--soft-fail"} & set(call["argv"])
        assert call["argv"][:6] == ["--framework", "terraform_json", "--skip-download", "--output", "json", "--file"]
        assert not Path(call["cwd"]).resolve().is_relative_to(ROOT)


def test_cli_fails_on_a_finding_accepted_elsewhere(tmp_path, out_dir, monkeypatch, capsys) -> None:
    staging_only = write_entries(tmp_path / "accepted.toml", {**GOOD_ENTRY, "environments": '["staging"]'})
    stand_in_checkov(tmp_path, monkeypatch, {env: report(KMS_ON_LOG_BUCKET) for env in ("staging", "prod")})
    assert main(["--out", str(out_dir), "--accepted", str(staging_only)]) == 1
    out = capsys.readouterr().out
    assert "prod: not accepted: CKV_AWS_145" in out and "(accepted in staging only)" in out
    assert "staging:" not in out


def test_cli_takes_the_scenario_from_the_synthesis_variable(tmp_path, out_dir, monkeypatch, capsys) -> None:
    source = write_entries(tmp_path / "accepted.toml", GOOD_ENTRY, {**GOOD_ENTRY_TAG, "scenario": f'"{EXAMPLE}"'})
    reports = {env: report(KMS_ON_LOG_BUCKET, TAG_ON_MODEL) for env in ("staging", "prod")}
    stand_in_checkov(tmp_path, monkeypatch, reports)
    gate = ["--out", str(out_dir), "--accepted", str(source)]
    monkeypatch.setenv(OVERRIDES_FILE, str(ROOT / EXAMPLE))
    assert main(gate) == 0
    assert f"checkov gate passed (prod, staging with {EXAMPLE}; 4 accepted findings" in capsys.readouterr().out
    monkeypatch.delenv(OVERRIDES_FILE)
    assert main(gate) == 1
    out = capsys.readouterr().out
    assert "prod: not accepted: CKV_K8S_43 'Image should use digest' on platform/model-chat/deployment" in out
    assert f"(accepted in prod, staging with {EXAMPLE} only)" in out
    assert main([*gate, "--scenario", str(ROOT / EXAMPLE)]) == 0
    capsys.readouterr()
    assert main([*gate, "--scenario", str(source)]) == 2
    assert f"--scenario = {str(source)!r}: the scenario must be an existing overrides file" in capsys.readouterr().err


def test_cli_scans_only_the_named_environments(tmp_path, out_dir, monkeypatch, capsys) -> None:
    # prod's report would fail; naming staging scans staging alone.
    calls = stand_in_checkov(tmp_path, monkeypatch, {"staging": report(KMS_ON_LOG_BUCKET), "prod": report()})
    assert main(["staging", "--out", str(out_dir), "--accepted", str(accepted_file(tmp_path))]) == 0
    assert len(calls.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("arguments", "checkov_code", "message"),
    [
        (["dev"], 1, "no synthesized stack for 'dev'"),
        ([], 2, "checkov failed on prod (exit 2)"),
    ],
)
def test_cli_reports_a_gate_that_cannot_run(
    tmp_path, out_dir, monkeypatch, capsys, arguments: list[str], checkov_code: int, message: str
) -> None:
    stand_in_checkov(tmp_path, monkeypatch, {env: report() for env in ("staging", "prod")}, checkov_code)
    assert main([*arguments, "--out", str(out_dir), "--accepted", str(accepted_file(tmp_path))]) == 2
    assert message in capsys.readouterr().err


def test_cli_without_checkov_names_the_variable(tmp_path, out_dir, monkeypatch, capsys) -> None:
    monkeypatch.setenv("ML_PLATFORM_CHECKOV", str(tmp_path / "missing" / "checkov"))
    assert main(["--out", str(out_dir), "--accepted", str(accepted_file(tmp_path))]) == 2
    assert "run `make checkov` or set ML_PLATFORM_CHECKOV" in capsys.readouterr().err


# --- where the gate is used ------------------------------------------------------------------------------------


def test_make_scan_and_the_readme_run_the_gate() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^scan:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None, "the Makefile has no scan target"
    assert "$(PY) tools/checkov_gate.py" in recipe.group(1)
    # checkov is called by the gate alone: a direct call would scan with a different (or no) acceptance list.
    assert "ML_PLATFORM_CHECKOV)" not in recipe.group(1)
    # The synthesis and the gate read the same ML_PLATFORM_OVERRIDES_FILE: the recipe neither sets nor clears it.
    assert OVERRIDES_FILE not in recipe.group(1) and not re.search(rf"^\s*unexport.*{OVERRIDES_FILE}", makefile, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "make scan" in readme and "tools/checkov_gate.py" in readme
    assert "--skip-check" not in readme and ".checkov.yaml" not in readme


def test_no_checkov_config_file_skips_checks() -> None:
    # checkov reads .checkov.yaml from the working directory: a skip list there would hide findings from a
    # manual run that the gate reports.
    for name in (".checkov.yaml", ".checkov.yml"):
        config = ROOT / name
        assert not config.exists() or "skip-check" not in config.read_text(), name


# --- the real scan, through the gate ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gate(synth_dir: Path) -> dict[str, GateResult]:
    """The gate's result for each environment's synthesized stack, scanned by the pinned checkov."""
    results = scan(synth_dir, STACKS, load_acceptances(STACKS))
    return {result.environment: result for result in results}


@pytest.mark.scanner
@pytest.mark.parametrize("env", STACKS)
def test_the_gate_passes_every_stack(gate, env) -> None:
    assert gate[env].ok, format_report([gate[env]])


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_evaluated_the_core_data_resources(gate, stacks, env) -> None:
    for kind in ("aws_s3_bucket", "aws_kms_key"):
        names = set(resources(stacks[env], kind))
        assert names and {f"{kind}.{n}" for n in names} <= gate[env].evaluated, kind


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
def test_checkov_reads_resources_carrying_suppression_notes(gate, stacks, env) -> None:
    noted = _noted(stacks[env], "S3-2")
    # Only staging and prod have the access-log bucket, the one resource with a silenced finding.
    assert bool(noted) is (env != "dev")
    assert noted <= gate[env].evaluated
    # checkov's own SSE-KMS check fails exactly where S3-2 is suppressed (the accepted CKV_AWS_145).
    kms_findings = {f.address for f in gate[env].accepted if f.check_id == "CKV_AWS_145"}
    assert kms_findings == noted


# --- the real scan of examples/model-serving.json, through the gate --------------------------------------------


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, dict[str, Any]], dict[str, GateResult], str | None]:
    """The stacks synthesized with the example's models (as ``ML_PLATFORM_OVERRIDES_FILE=examples/... make scan``
    does) and the gate's result for each, scanned by the pinned checkov with the scenario the gate reads from it."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("serving-cdktf.out")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("ML_PLATFORM_OVERRIDES", raising=False)
        patch.setenv(OVERRIDES_FILE, str(ROOT / EXAMPLE))
        build_app(str(outdir)).synth()
        scenario = scan_scenario(None)
    results = scan(outdir, ENVIRONMENTS, load_acceptances(STACKS), scenario=scenario)
    stacks = {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in ENVIRONMENTS}
    return stacks, {result.environment: result for result in results}, scenario


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_gate_passes_every_stack_with_the_example_models(served, env) -> None:
    _, gate, scenario = served
    assert scenario == EXAMPLE
    assert gate[env].ok, format_report([gate[env]])


@pytest.mark.scanner
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_checkov_evaluated_the_example_models(served, env) -> None:
    stacks, gate, _ = served
    models = json.loads((ROOT / EXAMPLE).read_text())[env]["serving"]
    deployments = {f"kubernetes_deployment_v1.{n}" for n in resources(stacks[env], "kubernetes_deployment_v1")}
    assert len(deployments) == len(models) and deployments <= gate[env].evaluated
    # Only an internet-facing model gets a web ACL (prod's, in the example).
    acls = {f"aws_wafv2_web_acl.{n}" for n in resources(stacks[env], "aws_wafv2_web_acl")}
    facing = [m for m in models if m["ingress"].get("scheme") == "internet-facing"]
    assert len(acls) == len(facing) and acls <= gate[env].evaluated
    assert bool(acls) is (env == "prod")
    # The scenario's entry is what accepts the tagged images, on exactly the example's models.
    tagged = {f.path for f in gate[env].accepted if f.check_id == "CKV_K8S_43"}
    assert tagged == {f"platform/model-{m['name']}/deployment" for m in models}


def test_a_relative_output_directory_reaches_checkov_as_an_absolute_path(tmp_path, monkeypatch) -> None:
    # checkov runs in a scratch home directory: `make scan`'s relative `--out cdktf.out` must not point it at nothing.
    from tools.checkov_gate import stack_file

    (tmp_path / "out" / "stacks" / "dev").mkdir(parents=True)
    (tmp_path / "out" / "stacks" / "dev" / "cdk.tf.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    path = stack_file(Path("out"), "dev")
    assert path.is_absolute() and path == tmp_path / "out" / "stacks" / "dev" / "cdk.tf.json"


# --- the real scan of examples/published-model.json: the SageMaker endpoint, its idle policy, standby and front ---


@pytest.fixture(scope="module")
def published_gate(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, dict[str, Any]], dict[str, GateResult]]:
    """Every stack synthesized with a published model (only then do the endpoint and the failover front exist), and
    the gate's result for each with that scenario's entries."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("published-cdktf.out")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("ML_PLATFORM_OVERRIDES", raising=False)
        patch.setenv(OVERRIDES_FILE, str(ROOT / PUBLISHED))
        build_app(str(outdir)).synth()
        scenario = scan_scenario(None)
    assert scenario == PUBLISHED
    results = scan(outdir, STACKS, load_acceptances(STACKS), scenario=scenario)
    stacks = {env: json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) for env in ENVIRONMENTS}
    return stacks, {result.environment: result for result in results}


@pytest.mark.scanner
@pytest.mark.parametrize("env", STACKS)
def test_the_gate_passes_every_stack_with_a_published_model(published_gate, env) -> None:
    _, gate = published_gate
    assert gate[env].ok, format_report([gate[env]])


@pytest.mark.scanner
def test_checkov_evaluated_the_endpoints_standby_and_front(published_gate) -> None:
    stacks, gate = published_gate
    # (checkov has checks for SageMaker models and endpoint configurations, none for the endpoint itself.)
    for env in ENVIRONMENTS:
        for kind in ("aws_sagemaker_model", "aws_sagemaker_endpoint_configuration"):
            scanned = {f"{kind}.{n}" for n in resources(stacks[env], kind)}
            assert scanned and scanned <= gate[env].evaluated, (env, kind)
    # Prod serves from both regions behind the front: every API, stage and method was scanned.
    for kind in ("aws_api_gateway_rest_api", "aws_api_gateway_stage", "aws_api_gateway_method"):
        scanned = {f"{kind}.{n}" for n in resources(stacks["prod"], kind)}
        assert scanned and scanned <= gate["prod"].evaluated, kind
    assert len(resources(stacks["prod"], "aws_sagemaker_endpoint")) == 2
