"""main.py: bad input stops it with exit 2, a failed check with exit 3 and a signal with 128 + its number; none
of them leaves output or a scratch directory behind, and only an earlier synth's output is ever replaced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.checks import SynthChecks
from constructs.core.context import OWNER_TAG_KEYS
from constructs.core.errors import ConfigurationError
from constructs.policy.required_tags import RequiredTags
from hypothesis import given, settings
from hypothesis import strategies as st

import main
from stacks.output import (
    REPOSITORY,
    Interrupted,
    check_outdir,
    foreign_content,
    outdir_from,
    replace_outdir,
    signals_raise,
    stacks_from,
)
from stacks.overrides import OVERRIDES_ENV

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MAIN = str(PROJECT_ROOT / "main.py")
# Spelled out here rather than imported, so that the tests state what the product must accept.
SYNTH_WRITES = ("cdk.tf.json", "cdk.tf", "metadata.json", "assets", "plan")
TERRAFORM_WRITES = (
    ".terraform",
    ".terraform.lock.hcl",
    ".terraform.tfstate.lock.info",
    "terraform.tfstate.d",
    "terraform.dev.tfstate",
    "terraform.dev.tfstate.backup",
    "terraform.tfstate",
    "errored.tfstate",
)


def _stacks_checked_for_tags(**tags_by_stack: dict[str, str]) -> Callable[[str], cdktf.App]:
    """A stand-in for ``main.build_app``: one stack per name, with a topic, its provider's default tags and TAG-1."""

    def build(outdir: str) -> cdktf.App:
        app = cdktf.App(outdir=outdir)
        for name, tags in tags_by_stack.items():
            stack = cdktf.TerraformStack(app, name)
            default_tags = [aws.provider.AwsProviderDefaultTags(tags=tags)]
            aws.provider.AwsProvider(stack, "aws", region="us-east-1", default_tags=default_tags)
            aws.sns_topic.SnsTopic(stack, "topic", name=name)
            SynthChecks("required-tags", [RequiredTags(OWNER_TAG_KEYS)]).apply_to(stack)
        return app

    return build


def _main_with(build: Callable[[str], cdktf.App], outdir: Path, monkeypatch, capsys) -> str:
    """Run ``main.main()`` with ``build`` for ``build_app``; assert exit 3 and return what it printed."""
    monkeypatch.setenv("CDKTF_OUTDIR", str(outdir))
    monkeypatch.setattr(main, "build_app", build)
    assert main.main() == 3
    return capsys.readouterr().err


def _tiny_app(*names: str) -> Callable[[str], cdktf.App]:
    """A stand-in for ``main.build_app`` that synthesizes one provider-only stack per name."""

    def build(path: str) -> cdktf.App:
        app = cdktf.App(outdir=path)
        for name in names:
            aws.provider.AwsProvider(cdktf.TerraformStack(app, name), "aws", region="us-east-1")
        return app

    return build


def _previous_output(outdir: Path, stacks: Sequence[str] = ("dev",)) -> None:
    """An output directory as an earlier synth left it: cdktf's manifest and one directory per stack."""
    entries = {
        name: {
            "annotations": [],
            "constructPath": name,
            "dependencies": [],
            "name": name,
            "stackMetadataPath": f"stacks/{name}/metadata.json",
            "synthesizedStackPath": f"stacks/{name}/cdk.tf.json",
            "workingDirectory": f"stacks/{name}",
        }
        for name in stacks
    }
    for name in stacks:
        (outdir / "stacks" / name).mkdir(parents=True)
        (outdir / "stacks" / name / "cdk.tf.json").write_text('{"previous": "synth"}')
    (outdir / "manifest.json").write_text(json.dumps({"stacks": entries, "version": "0.21.0"}, indent=2))


def _snapshot(directory: Path) -> dict[str, bytes | None]:
    """Every path under ``directory`` with the bytes of each file (None for a directory)."""
    return {str(p.relative_to(directory)): None if p.is_dir() else p.read_bytes() for p in sorted(directory.rglob("*"))}


def _refusal(outdir: Path) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as caught:
        check_outdir(outdir)
    assert (caught.value.field, caught.value.value) == ("CDKTF_OUTDIR", str(outdir))
    assert "the output of an earlier synth" in caught.value.allowed
    return caught.value


def _environment(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ML_PLATFORM_")}
    env.update(variables)
    return env


# --- what main() reports -------------------------------------------------------------------------------------


def test_check_failure_exits_3_with_path_and_rule_and_writes_nothing(tmp_path, monkeypatch, capsys) -> None:
    outdir = tmp_path / "cdktf.out"
    build = _stacks_checked_for_tags(good=dict.fromkeys(OWNER_TAG_KEYS, "x"), bad={"environment": "x"})
    err = _main_with(build, outdir, monkeypatch, capsys)
    assert err.startswith("synthesis checks failed: required-tags: 1 violation(s) in stack 'bad'")
    assert "[bad/topic] TAG-1" in err
    # The first stack was already written to the scratch directory; none of it may survive.
    assert not outdir.exists()
    assert list(tmp_path.iterdir()) == []


def test_every_stack_that_fails_its_checks_is_reported_at_once(tmp_path, monkeypatch, capsys) -> None:
    outdir = tmp_path / "cdktf.out"
    build = _stacks_checked_for_tags(first={"environment": "x"}, second={"team": "x"})
    err = _main_with(build, outdir, monkeypatch, capsys)
    assert "required-tags: 1 violation(s) in stack 'first'" in err and "[first/topic] TAG-1" in err
    assert "required-tags: 1 violation(s) in stack 'second'" in err and "[second/topic] TAG-1" in err
    assert "skipValidation" not in err  # cdktf's advice for returned validation errors is not for a security gate
    assert not outdir.exists()


def test_stack_selection_keeps_the_order_of_the_stacks_and_names_what_is_allowed() -> None:
    available = ["dev", "staging", "prod", "bootstrap"]
    assert stacks_from({}, available) == tuple(available)
    assert stacks_from({"ML_PLATFORM_STACKS": " , "}, available) == tuple(available)
    assert stacks_from({"ML_PLATFORM_STACKS": "bootstrap, dev"}, available) == ("dev", "bootstrap")
    with pytest.raises(ConfigurationError) as refused:
        stacks_from({"ML_PLATFORM_STACKS": "dev,qa,Prod"}, available)
    assert str(refused.value) == (
        "synth selection: field 'ML_PLATFORM_STACKS' = 'dev,qa,Prod' is not allowed; allowed: a comma-separated list "
        "of dev, staging, prod, bootstrap; unset for every stack (not: Prod, qa)"
    )


@pytest.mark.slow
def test_a_selected_stack_is_synthesized_alone_with_only_the_assemblies_it_uses(tmp_path) -> None:
    """The bootstrap stack has no Kubernetes side: its synth loads neither the helm nor the kubernetes assembly."""
    outdir, report = tmp_path / "cdktf.out", tmp_path / "calls.json"
    env = _environment(CDKTF_OUTDIR=str(outdir), ML_PLATFORM_STACKS="bootstrap")
    result = subprocess.run(
        [sys.executable, "bench/count_calls.py", str(report)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (outdir / "stacks").iterdir()) == ["bootstrap"]
    calls = json.loads(report.read_text())
    assert calls["provider_packages"] == ["cdktf_cdktf_provider_aws"]
    assert calls["calls"]["load"] == 3  # constructs, cdktf, aws
    assert 0 < calls["round_trips"] < 500


@pytest.mark.parametrize(
    ("overrides", "env", "field", "allowed"),
    [
        ('{"prod": {"storage.access_logging": "yes"}}', "prod", "storage.access_logging", "a boolean"),
        ('{"dev": {"budget.monthly_limit_usd": -1}}', "dev", "budget.monthly_limit_usd", "a whole number from 1 to"),
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


@pytest.mark.slow
def test_python_main_leaves_an_existing_output_untouched(tmp_path) -> None:
    """The user's own command, as a separate process: a bad override, a clean message, nothing changed."""
    outdir = tmp_path / "cdktf.out"
    _previous_output(outdir)
    before = _snapshot(outdir)
    env = _environment(CDKTF_OUTDIR=str(outdir), **{OVERRIDES_ENV: '{"staging": {"budget.alert_emails": "ops@x.co"}}'})
    result = subprocess.run(
        [sys.executable, "main.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "environment 'staging': field 'budget.alert_emails'" in result.stderr and "allowed: " in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cdktf.out"]


# --- the output directory: refused before anything is written --------------------------------------------------


def test_outdir_naming_the_working_directory_is_refused_and_nothing_is_deleted(tmp_path) -> None:
    """``CDKTF_OUTDIR=.`` used to delete the directory it was run in."""
    (tmp_path / "notes.txt").write_text("mine")
    env = _environment(CDKTF_OUTDIR=".")
    result = subprocess.run(
        [sys.executable, MAIN], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"configuration error: synth output: field 'CDKTF_OUTDIR' = '{tmp_path}'")
    assert "it is the working directory or contains it" in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(tmp_path) == {"notes.txt": b"mine"}


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda out: out.write_text("mine"), "it is a file, not a directory"),
        (lambda out: (out.mkdir(), (out / "thesis.tex").write_text("mine")), "it holds 'thesis.tex'"),
    ],
    ids=["file", "foreign-directory"],
)
def test_main_refuses_an_outdir_that_is_no_synth_output_and_leaves_it_as_it_was(
    tmp_path, clean_env, capsys, make, reason
) -> None:
    outdir = tmp_path / "target"
    make(outdir)
    before = _snapshot(tmp_path)
    clean_env.setenv("CDKTF_OUTDIR", str(outdir))
    assert main.main() == 2
    err = capsys.readouterr().err
    assert f"field 'CDKTF_OUTDIR' = '{outdir}' is not allowed" in err and reason in err
    assert _snapshot(tmp_path) == before, "refused before any scratch directory was created"


def test_outdir_is_read_from_cdktf_outdir_as_an_absolute_path(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert outdir_from({}) == tmp_path / "cdktf.out"
    assert outdir_from({"CDKTF_OUTDIR": ""}) == tmp_path / "cdktf.out", "an empty variable counts as unset"
    assert outdir_from({"CDKTF_OUTDIR": "."}) == tmp_path
    assert outdir_from({"CDKTF_OUTDIR": "out/../build"}) == tmp_path / "build"


def test_the_working_directory_the_repository_and_their_ancestors_are_refused(tmp_path, monkeypatch) -> None:
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for protected in (work, tmp_path / "a", tmp_path, Path("/")):
        assert "it is the working directory or contains it" in _refusal(protected).allowed
    for protected in (REPOSITORY, REPOSITORY.parent):
        # A clone under the same directory as the temporary files (/tmp) contains the working directory too.
        reason = "working directory" if work.is_relative_to(protected) else "repository"
        assert f"it is the {reason} or contains it" in _refusal(protected).allowed


def test_a_symbolic_link_is_refused_even_to_a_synth_output(tmp_path) -> None:
    _previous_output(tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert "symbolic link" in _refusal(tmp_path / "link").allowed
    assert "symbolic link" in _refusal(tmp_path / "dangling").allowed


def test_an_outdir_below_a_file_is_refused(tmp_path) -> None:
    (tmp_path / "plain").write_text("x")
    assert f"{tmp_path / 'plain'} is not a directory" in _refusal(tmp_path / "plain" / "out").allowed


def test_a_new_or_empty_directory_and_an_earlier_output_are_accepted(tmp_path) -> None:
    check_outdir(tmp_path / "new" / "cdktf.out")
    (tmp_path / "empty").mkdir()
    check_outdir(tmp_path / "empty")
    _previous_output(tmp_path / "earlier", ("dev", "staging"))
    for name in (*SYNTH_WRITES, *TERRAFORM_WRITES):
        (tmp_path / "earlier" / "stacks" / "dev" / name).write_text("x")
    check_outdir(tmp_path / "earlier")


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        (None, "no cdktf manifest.json"),
        ("{}", "no cdktf manifest.json"),
        ("not json", "no cdktf manifest.json"),
        ('{"version": "0.21.0", "stacks": []}', "no cdktf manifest.json"),
        ('{"version": "0.21.0", "stacks": {"dev": {"name": "dev"}}}', "no cdktf manifest.json"),
        ('{"stacks": {}}', "no cdktf manifest.json"),
    ],
)
def test_a_directory_without_a_cdktf_manifest_is_not_an_earlier_output(tmp_path, manifest, reason) -> None:
    _previous_output(tmp_path / "out")
    if manifest is None:
        (tmp_path / "out" / "manifest.json").unlink()
    else:
        (tmp_path / "out" / "manifest.json").write_text(manifest)
    assert reason in _refusal(tmp_path / "out").allowed


def test_the_stacks_folder_holds_only_stack_directories(tmp_path) -> None:
    _previous_output(tmp_path / "out")
    (tmp_path / "out" / "stacks" / "README").write_text("x")
    assert "'stacks/README' is not a stack's directory" in _refusal(tmp_path / "out").allowed
    _previous_output(tmp_path / "linked")
    (tmp_path / "linked" / "stacks" / "prod").symlink_to(tmp_path / "out")
    assert "'stacks/prod' is not a stack's directory" in _refusal(tmp_path / "linked").allowed


_NAME = st.text(st.characters(codec="ascii", categories=("L", "N"), include_characters="._-"), min_size=1, max_size=24)


@settings(deadline=None, max_examples=60)
@given(name=_NAME.filter(lambda name: name not in (".", "..", "manifest.json", "stacks")))
def test_any_other_entry_at_the_top_makes_a_directory_foreign(name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        outdir = Path(scratch) / "out"
        _previous_output(outdir)
        (outdir / name).write_text("mine")
        assert foreign_content(outdir) == f"it holds {name!r}, which a synth does not write"


@settings(deadline=None, max_examples=60)
@given(
    name=_NAME.filter(
        lambda name: (
            name not in (".", "..", *SYNTH_WRITES, *TERRAFORM_WRITES)
            and not name.endswith((".tfstate", ".tfstate.backup"))
        )
    )
)
def test_anything_in_a_stack_directory_but_synth_and_terraform_files_makes_it_foreign(name: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        outdir = Path(scratch) / "out"
        _previous_output(outdir)
        (outdir / "stacks" / "dev" / name).write_text("mine")
        assert f"it holds 'stacks/dev/{name}'" in (foreign_content(outdir) or "")


# --- the swap: replace the synth's files, keep Terraform's ------------------------------------------------------


def _with_terraform_files(stack: Path) -> dict[str, bytes | None]:
    (stack / ".terraform" / "providers").mkdir(parents=True)
    (stack / ".terraform" / "terraform.tfstate").write_text('{"backend": {"type": "s3"}}')
    (stack / ".terraform.lock.hcl").write_text("# provider lock\n")
    (stack / f"terraform.{stack.name}.tfstate").write_text('{"serial": 7}')
    (stack / f"terraform.{stack.name}.tfstate.backup").write_text('{"serial": 6}')
    (stack / "plan").write_bytes(b"a plan of the previous configuration")
    return {path: data for path, data in _snapshot(stack).items() if path not in ("cdk.tf.json", "plan")}


def test_successful_synth_replaces_previous_output_and_keeps_terraform_files(tmp_path, monkeypatch) -> None:
    outdir = tmp_path / "cdktf.out"
    monkeypatch.setattr(main, "build_app", _tiny_app("only", "retired"))
    main.synth(outdir)
    terraform_files = _with_terraform_files(outdir / "stacks" / "only")
    monkeypatch.setattr(main, "build_app", _tiny_app("only"))
    main.synth(outdir)
    assert sorted(p.name for p in outdir.iterdir()) == ["manifest.json", "stacks"]
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == ["only"], "a stack no longer synthesized goes"
    stack = outdir / "stacks" / "only"
    assert "provider" in json.loads((stack / "cdk.tf.json").read_text())
    assert not (stack / "plan").exists(), "the plan of the previous configuration is not carried over"
    assert {path: data for path, data in _snapshot(stack).items() if path != "cdk.tf.json"} == terraform_files
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]


def test_terraform_state_of_a_stack_no_longer_synthesized_stops_the_swap(tmp_path) -> None:
    outdir, scratch = tmp_path / "cdktf.out", tmp_path / ".cdktf.out-scratch"
    _previous_output(outdir, ("dev", "retired"))
    (outdir / "stacks" / "retired" / "terraform.retired.tfstate").write_text('{"serial": 3}')
    _previous_output(scratch, ("dev",))
    before = _snapshot(outdir)
    with pytest.raises(ConfigurationError) as caught:
        replace_outdir(scratch, outdir)
    assert "'stacks/retired/terraform.retired.tfstate' belongs to a stack this app no longer synthesizes" in str(
        caught.value
    )
    assert _snapshot(outdir) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cdktf.out-scratch", "cdktf.out"]


def test_a_swap_that_fails_half_way_restores_the_previous_output(tmp_path, monkeypatch) -> None:
    outdir, scratch = tmp_path / "cdktf.out", tmp_path / ".cdktf.out-scratch"
    _previous_output(outdir)
    _with_terraform_files(outdir / "stacks" / "dev")
    _previous_output(scratch)
    before, new = _snapshot(outdir), _snapshot(scratch)
    rename = Path.rename

    def failing_rename(self: Path, target: str | os.PathLike[str]) -> Path:
        if self == scratch and Path(target) == outdir:
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="No space left"):
        replace_outdir(scratch, outdir)
    assert _snapshot(outdir) == before, "the Terraform files went back where they were"
    assert _snapshot(scratch) == new
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cdktf.out-scratch", "cdktf.out"]


@pytest.fixture(scope="module")
def replaced(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str], dict]:
    """``python main.py`` run once over an earlier output: (the output, the process, its Terraform files)."""
    outdir = tmp_path_factory.mktemp("replaced") / "cdktf.out"
    _previous_output(outdir, ("dev", "staging", "prod", "retired"))
    (outdir / "stacks" / "staging" / "assets" / "old-asset").mkdir(parents=True)
    terraform_files = _with_terraform_files(outdir / "stacks" / "dev")
    result = subprocess.run(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=_environment(CDKTF_OUTDIR=str(outdir)),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return outdir, result, terraform_files


@pytest.mark.slow
def test_python_main_replaces_an_earlier_output(replaced) -> None:
    outdir, result, _ = replaced
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in outdir.parent.iterdir()) == ["cdktf.out"], "no scratch directory is left"
    manifest = json.loads((outdir / "manifest.json").read_text())
    # The three environments and the account-level bootstrap stack.
    assert sorted(manifest["stacks"]) == ["bootstrap", "dev", "prod", "staging"]
    assert sorted(p.name for p in (outdir / "stacks").iterdir()) == ["bootstrap", "dev", "prod", "staging"]
    for env in ("dev", "staging", "prod", "bootstrap"):
        assert "resource" in json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text())
    assert not (outdir / "stacks" / "staging" / "assets" / "old-asset").exists()


@pytest.mark.slow
def test_python_main_keeps_terraform_state_and_working_files(replaced) -> None:
    outdir, result, terraform_files = replaced
    assert result.returncode == 0, result.stderr
    dev = _snapshot(outdir / "stacks" / "dev")
    assert {path: data for path, data in dev.items() if path in terraform_files} == terraform_files
    assert "plan" not in dev


@pytest.mark.slow
def test_what_python_main_writes_is_recognized_as_an_earlier_output(replaced) -> None:
    outdir, result, _ = replaced
    assert result.returncode == 0, result.stderr
    assert foreign_content(outdir) is None
    check_outdir(outdir)


# --- signals: the scratch directory never outlives the synth ---------------------------------------------------


@pytest.fixture
def recorded() -> Iterator[list[int]]:
    """SIGTERM and SIGHUP go to a recording handler (so a broken guard fails a test instead of killing pytest)."""
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in (signal.SIGTERM, signal.SIGHUP)}
    yield received
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def test_a_signal_raises_interrupted_and_the_previous_handler_returns_after(recorded) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as caught, signals_raise():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert caught.value.signum == signal.SIGTERM and str(caught.value) == "SIGTERM"
    assert recorded == []
    assert signal.getsignal(signal.SIGTERM) is before
    os.kill(os.getpid(), signal.SIGTERM)
    assert recorded == [signal.SIGTERM]


def test_a_signal_during_a_deferred_step_waits_until_the_step_is_done(recorded) -> None:
    steps = []
    with signals_raise() as guard, pytest.raises(Interrupted) as caught:
        with guard.deferred():
            os.kill(os.getpid(), signal.SIGHUP)
            steps.append("finished")
        steps.append("after the step")
    assert (steps, caught.value.signum) == (["finished"], signal.SIGHUP)


def test_an_ignored_signal_stays_ignored(recorded) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with signals_raise():
        os.kill(os.getpid(), signal.SIGHUP)
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    assert recorded == []


def test_main_exits_128_plus_the_signal_and_removes_the_scratch_directory(
    tmp_path, monkeypatch, capsys, recorded
) -> None:
    outdir = tmp_path / "cdktf.out"
    _previous_output(outdir)
    before = _snapshot(outdir)
    build = _tiny_app("dev")

    def interrupted_build(path: str) -> cdktf.App:
        app = build(path)
        app.synth()  # the scratch directory is full when the signal comes
        os.kill(os.getpid(), signal.SIGTERM)
        return app  # not reached: the signal raises in os.kill

    monkeypatch.setenv("CDKTF_OUTDIR", str(outdir))
    monkeypatch.setattr(main, "build_app", interrupted_build)
    assert main.main() == 128 + signal.SIGTERM
    assert capsys.readouterr().err == "synth interrupted by SIGTERM\n"
    assert _snapshot(outdir) == before
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT-to-the-group"])
def test_python_main_stopped_by_a_signal_leaves_no_scratch_directory(tmp_path, signum) -> None:
    """A real synth, stopped once its scratch directory exists; SIGINT goes to the process group, like Ctrl-C,
    so the jsii kernel (Node.js) gets it too."""
    outdir = tmp_path / "cdktf.out"
    _previous_output(outdir)
    before = _snapshot(outdir)
    process = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=PROJECT_ROOT,
        env=_environment(CDKTF_OUTDIR=str(outdir)),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".cdktf.out-*")) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1)  # into the synth proper: loading the bindings, building the stacks
        assert process.poll() is None, "the synth ended before the signal"
        if signum == signal.SIGINT:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signum, err
    assert f"synth interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert _snapshot(outdir) == before
    assert [p.name for p in tmp_path.iterdir()] == ["cdktf.out"]
