"""The bad-input suite: what an attacker or a careless operator tries, run through ``main.main()``, with a count.

Every case is an environment (variables, files) handed to the real entry point. The one thing replaced is the
synthesis after validation: a configuration that validates counts as a *silent acceptance* without paying for
a synth. Each case ends in exactly one of: a clear error (exit 2, ``configuration error: <where>: field '<field>'
... allowed: ...``), a silent acceptance, a traceback (any other exception), or partial output (anything left in
the working directory). The suite passes only with zero of the last three, and prints the count.

Cases are generated from the string slots of the matrix (a template sequence and a trailing newline in every
string the user can set) and listed by hand for the rest: every class of issue 11 has its examples here.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import main
from stacks.deployment import load_deployment
from stacks.overrides import OVERRIDES_ENV, OVERRIDES_FILE_ENV, load_environments
from tests.stacks.input_slots import string_slots

_CLEAR = re.compile(r"configuration error: [^:]+: field '[^']+' = .+; allowed: .+")


class _Accepted(Exception):
    """Raised instead of synthesizing: the configuration passed validation."""


def _validate_only(outdir: str) -> Any:
    load_environments()
    load_deployment()
    raise _Accepted


def _overrides(env: str, fields: dict[str, Any]) -> dict[str, str]:
    return {OVERRIDES_ENV: json.dumps({env: fields})}


CURATED: dict[str, dict[str, str]] = {
    # 1. Template sequences from every source.
    "template in an alert e-mail": _overrides("dev", {"budget.alert_emails": ['${file("/etc/hostname")}@example.com']}),
    "template in a container variable": _overrides(
        "staging", {"sagemaker.container_environment": [["MODEL", "%{ for x in [1] }x%{ endfor }"]]}
    ),
    "template in the state region": {"ML_PLATFORM_STATE_REGION": '${file("/etc/hostname")}'},
    "template in the state bucket": {"ML_PLATFORM_STATE_BUCKET": "${path.cwd}"},
    "template in the lock table": {"ML_PLATFORM_LOCK_TABLE": "${uuid()}"},
    # 2. String content.
    "trailing newline in an e-mail": _overrides("dev", {"budget.alert_emails": ["ops@example.com\n"]}),
    "trailing newline in the state region": {"ML_PLATFORM_STATE_REGION": "us-east-1\n"},
    "unknown state region": {"ML_PLATFORM_STATE_REGION": "moon-east-1"},
    "tab in a tag value": _overrides("dev", {"tags.team": "ml\tplatform"}),
    "newline in a tag value": _overrides("prod", {"tags.cost_center": "cc-1\ncc-2"}),
    "misspelled time zone": _overrides("staging", {"training.schedule_time_zone": "America/New_Yrok"}),
    "cron out of range": _overrides("staging", {"training.scale_to_zero_cron": "99 99 * * *"}),
    "cron with six fields": _overrides("staging", {"training.scale_to_zero_cron": "0 0 20 * * *"}),
    "e-mail local part of 65": _overrides("dev", {"budget.alert_emails": ["a" * 65 + "@example.com"]}),
    "e-mail without a top-level domain": _overrides("dev", {"budget.alert_emails": ["ops@localhost"]}),
    "e-mail with two @": _overrides("dev", {"budget.alert_emails": ["a@b@example.com"]}),
    "budget of a billion": _overrides("prod", {"budget.monthly_limit_usd": 10**9}),
    "data prefix widening a grant": _overrides("staging", {"training.data_prefix": "*/"}),
    "data prefix climbing out": _overrides("staging", {"training.data_prefix": "../"}),
    "wildcard admin role": _overrides("dev", {"eks.admin_role_arns": ["arn:aws:iam::123456789012:role/*"]}),
    "admin user instead of role": _overrides("dev", {"eks.admin_role_arns": ["arn:aws:iam::123456789012:user/bob"]}),
    "wildcard ECR repository": _overrides(
        "staging", {"training.ecr_repository_arns": ["arn:aws:ecr:us-east-1:123456789012:repository/*"]}
    ),
    "state bucket with '..'": {"ML_PLATFORM_STATE_BUCKET": "my..bucket"},
    "state bucket that is an IP": {"ML_PLATFORM_STATE_BUCKET": "192.168.1.1"},
    "state bucket with xn--": {"ML_PLATFORM_STATE_BUCKET": "xn--bucket"},
    "state bucket with -s3alias": {"ML_PLATFORM_STATE_BUCKET": "my-bucket-s3alias"},
    "lock table with a space": {"ML_PLATFORM_LOCK_TABLE": "locks table"},
    "emulator port out of range": {"ML_PLATFORM_EMULATOR_ENDPOINT": "http://127.0.0.1:99999"},
    "emulator off loopback": {"ML_PLATFORM_EMULATOR_ENDPOINT": "http://10.0.0.5:4566"},
    "image with a trailing newline": _overrides("dev", {"sagemaker.inference_image": "{repository}:1.0\n"}),
    # 3. Network inputs.
    "link-local VPC": _overrides("dev", {"network.vpc_cidr": "169.254.0.0/16"}),
    "loopback VPC": _overrides("dev", {"network.vpc_cidr": "127.0.0.0/16"}),
    "0.0.0.0/16 VPC": _overrides("dev", {"network.vpc_cidr": "0.0.0.0/16"}),
    "public VPC": _overrides("dev", {"network.vpc_cidr": "8.8.0.0/16"}),
    "Docker bridge VPC": _overrides("dev", {"network.vpc_cidr": "172.17.0.0/16"}),
    "private public-access CIDR": _overrides("dev", {"eks.public_access_cidrs": ["10.0.0.0/8"]}),
    "a /8 of public space for the API": _overrides("dev", {"eks.public_access_cidrs": ["3.0.0.0/8"]}),
    # 4. GPUs where they are off.
    "hyphenated GPU family in dev": _overrides("dev", {"eks.cpu_node_group.instance_types": ["p6-b200.48xlarge"]}),
    "hyphenated SageMaker GPU in dev": _overrides("dev", {"sagemaker_training.instance_type": "ml.p6e-gb200.36xlarge"}),
    "unknown family in dev": _overrides("dev", {"eks.cpu_node_group.instance_types": ["zz9.large"]}),
    "GPUs switched on in dev": _overrides("dev", {"gpu_enabled": True}),
    # 5. Zones.
    "zone of another region": _overrides("dev", {"network.zone_ids": ["usw2-az1", "usw2-az2"]}),
    "one zone twice": _overrides("dev", {"network.zone_ids": ["use1-az1", "use1-az1"]}),
    # 6. Overrides input.
    "one interface endpoint twice": _overrides("staging", {"network.interface_endpoints": ["sts", "sts"]}),
    "one instance type twice": _overrides("staging", {"eks.gpu_node_group.instance_types": ["g5.xlarge", "g5.xlarge"]}),
    "duplicate JSON keys": {OVERRIDES_ENV: '{"dev": {"budget.monthly_limit_usd": 5, "budget.monthly_limit_usd": 9}}'},
    "NaN budget": {OVERRIDES_ENV: '{"dev": {"budget.monthly_limit_usd": NaN}}'},
    "both override sources": {OVERRIDES_ENV: "{}", OVERRIDES_FILE_ENV: "overrides.json"},
    "overrides file not UTF-8": {OVERRIDES_FILE_ENV: "latin1.json"},
    "output directory is the working directory": {"CDKTF_OUTDIR": "."},
    "output directory is a file": {"CDKTF_OUTDIR": "overrides.json"},
    # 8. What a protected environment keeps.
    "prod without EKS": _overrides("prod", {"eks": None}),
    "prod without SageMaker": _overrides("prod", {"sagemaker": None}),
    "prod VPC moved": _overrides("prod", {"network.vpc_cidr": "10.31.0.0/16"}),
    "prod model renamed": _overrides("prod", {"sagemaker.model_name": "fraud"}),
    "prod resource prefix renamed": _overrides("prod", {"resource_prefix": "acme"}),
    "prod moved region": _overrides("prod", {"region": "us-west-2"}),
    "prod unprotected": _overrides("prod", {"protected": False}),
    "prod buckets destroyable": _overrides("prod", {"storage.prevent_destroy": False, "storage.force_destroy": True}),
    "prod zones changed": _overrides("prod", {"network.zone_ids": ["use1-az1", "use1-az2", "use1-az5"]}),
}


def _generated() -> dict[str, dict[str, str]]:
    cases = {}
    for slot in string_slots():
        base = slot.current or "a"
        cases[f"template in {slot.env}.{slot.field}"] = {OVERRIDES_ENV: json.dumps(slot.override(base + "${7*7}"))}
        if slot.current:
            cases[f"newline after {slot.env}.{slot.field}"] = {
                OVERRIDES_ENV: json.dumps(slot.override(slot.current + "\n"))
            }
    return cases


def _run(environ: dict[str, str], workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """Run main.main() in ``workdir`` with ``environ``; the outcome's category."""
    before = sorted(p.name for p in workdir.iterdir())
    with monkeypatch.context() as patch:
        patch.chdir(workdir)
        patch.setenv("CDKTF_OUTDIR", str(workdir / "cdktf.out"))
        for name, value in environ.items():
            patch.setenv(name, value)
        patch.setattr(main, "build_app", _validate_only)
        try:
            code = main.main()
        except _Accepted:
            return "silent acceptance"
        except BaseException as error:
            return f"traceback ({type(error).__name__}: {error})"
    err = capsys.readouterr().err
    if sorted(p.name for p in workdir.iterdir()) != before:
        return "partial output"
    return "clear error" if code == 2 and _CLEAR.fullmatch(err.strip().splitlines()[-1]) else f"unclear ({code}: {err})"


def test_every_bad_input_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    (tmp_path / "overrides.json").write_text('{"dev": {}}')
    (tmp_path / "latin1.json").write_bytes('{"dev": {"tags.team": "équipe"}}'.encode("latin-1"))
    cases = {**CURATED, **_generated()}
    outcomes = {label: _run(environ, tmp_path, monkeypatch, capsys) for label, environ in cases.items()}
    counts = Counter(outcome.split(" (")[0] for outcome in outcomes.values())
    report = (
        f"bad-input suite: {len(cases)} cases tried, {counts['clear error']} clear errors, "
        f"{counts['silent acceptance']} silent acceptances, {counts['traceback']} tracebacks, "
        f"{counts['partial output']} partial outputs, {counts['unclear']} unclear messages"
    )
    with capsys.disabled():
        print(f"\n{report}")
    failures = {label: outcome for label, outcome in outcomes.items() if outcome != "clear error"}
    assert not failures, f"{report}\n" + "\n".join(f"  {label}: {outcome}" for label, outcome in failures.items())
    assert len(CURATED) >= 60 and len(cases) >= 250
