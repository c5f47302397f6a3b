"""``python -m costs``: output formats, exit codes, the README section, and no cdktf import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from costs.__main__ import EXIT_ERROR, EXIT_INCOMPLETE, EXIT_OK, main
from costs.render import README_BEGIN, README_END
from tests.costs.builders import stack, template

ROOT = Path(__file__).resolve().parents[2]
NAT = {
    "aws_nat_gateway": {"nat": {"allocation_id": "${aws_eip.ip.id}"}},
    "aws_eip": {"ip": {"domain": "vpc"}},
}


def _out(tmp_path: Path, stacks: dict[str, dict[str, Any]]) -> Path:
    out = tmp_path / "cdktf.out"
    for name, config in stacks.items():
        (out / "stacks" / name).mkdir(parents=True)
        (out / "stacks" / name / "cdk.tf.json").write_text(json.dumps(config))
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_complete_estimate_exits_zero_in_every_format(
    tmp_path: Path, prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _out(tmp_path, {"dev": stack(NAT), "bootstrap": stack({"aws_kms_key": {"k": {}}})})
    code, text, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir))
    assert code == EXIT_OK
    assert text.index("dev (environment") < text.index("bootstrap (account-level stack")
    assert "$36.50" in text and "dominated by NAT gateways + public IPv4 (100%" in text
    code, document, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir), "--format", "json")
    parsed = {entry["stack"]: entry for entry in json.loads(document)}
    assert code == EXIT_OK and parsed["dev"]["total_min"] == 36.5 and parsed["bootstrap"]["account_level"]
    code, markdown, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir), "--format", "markdown")
    assert code == EXIT_OK and "| Component | dev |" in markdown and "| **Total at rest** | **$37** |" in markdown


def test_an_unknown_instance_type_or_region_exits_two(
    tmp_path: Path, prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unknown_type = {
        "aws_launch_template": {"lt": template(20, instance_type="q9.huge")},
        "aws_autoscaling_group": {
            "asg": {"min_size": 0, "max_size": 1, "launch_template": {"id": "${aws_launch_template.lt.id}"}}
        },
    }
    out = _out(tmp_path, {"dev": stack(unknown_type), "staging": stack(NAT, region="eu-central-1")})
    code, text, errors = _run(capsys, "--out", str(out), "--prices", str(prices_dir))
    assert code == EXIT_INCOMPLETE
    assert "unpriced: aws_autoscaling_group.asg: EC2 instance type q9.huge" in text
    assert "region 'eu-central-1': no price table" in text
    assert "dev: 1 item(s) unpriced or unresolved" in errors and "staging:" in errors
    code, _, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir), "--allow-incomplete")
    assert code == EXIT_OK


def test_an_unresolved_reference_exits_two(
    tmp_path: Path, prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _out(tmp_path, {"dev": stack({"aws_kms_key": {"k": {"count": "${var.keys}"}}})})
    code, text, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir))
    assert code == EXIT_INCOMPLETE and "unresolved: aws_kms_key.k: count = ${var.keys}" in text


def test_missing_stacks_or_a_broken_price_table_exit_one(
    tmp_path: Path, prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, errors = _run(capsys, "--out", str(tmp_path / "nowhere"), "--prices", str(prices_dir))
    assert code == EXIT_ERROR and "python main.py" in errors
    (prices_dir / "us-east-1.json").write_text("{}")
    out = _out(tmp_path, {"dev": stack(NAT)})
    code, _, errors = _run(capsys, "--out", str(out), "--prices", str(prices_dir))
    assert code == EXIT_ERROR and "'region' is required" in errors


def test_write_readme_replaces_only_the_generated_section(
    tmp_path: Path, prices_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _out(tmp_path, {"dev": stack(NAT), "bootstrap": stack({"aws_kms_key": {"k": {}}})})
    readme = tmp_path / "README.md"
    readme.write_text(f"# Title\n\nbefore\n{README_BEGIN}\nstale\n{README_END}\nafter\n")
    code, _, _ = _run(capsys, "--out", str(out), "--prices", str(prices_dir), "--write-readme", str(readme))
    written = readme.read_text()
    assert code == EXIT_OK
    assert written.startswith("# Title\n\nbefore\n") and written.endswith(f"{README_END}\nafter\n")
    assert "stale" not in written and "| **Total at rest** | **$37** |" in written
    assert "bootstrap" not in written, "the README compares environments; the account-level stack is left out"
    readme.write_text("no markers\n")
    code, _, errors = _run(capsys, "--out", str(out), "--prices", str(prices_dir), "--write-readme", str(readme))
    assert code == EXIT_ERROR and "cost-estimate:begin" in errors and readme.read_text() == "no markers\n"


def test_the_estimator_imports_neither_cdktf_nor_jsii() -> None:
    probe = (
        "import sys, costs.__main__, costs.estimate, costs.render; "
        "heavy = ('cdktf', 'jsii', 'constructs', 'cdktf_cdktf_provider_aws'); "
        "loaded = [m for m in sys.modules if m.split('.')[0] in heavy]; "
        "print(loaded)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
