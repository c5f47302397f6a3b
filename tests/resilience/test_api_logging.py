"""API Gateway's account-level logging role: in the bootstrap stack, set in every region a serving front runs in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stacks.matrix import BOOTSTRAP, MATRIX
from tests.gitops.bootstrap import load_bootstrap, synth_bootstrap, trust
from tests.support.synth_json import resources

PUSH_TO_LOGS = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@pytest.fixture(scope="module")
def bootstrap(synth_dir: Path) -> dict[str, Any]:
    return load_bootstrap(synth_dir)


def test_the_logging_role_is_set_in_both_regions_of_every_environment_with_a_front(bootstrap) -> None:
    fronted = {r for c in MATRIX.values() if c.failover is not None for r in (c.region, c.secondary_region)}
    assert fronted == {"us-east-1", "us-west-2"}
    providers = {p.get("alias"): p["region"] for p in bootstrap["provider"]["aws"]}
    settings = resources(bootstrap, "aws_api_gateway_account").values()
    regions = {(providers["us-west-2"] if s["provider"] == "aws.us-west-2" else providers[None]) for s in settings}
    assert regions == fronted
    (role_name,) = [n for n, r in resources(bootstrap, "aws_iam_role").items() if r["name"] == "mlp-apigateway-logs"]
    for setting in settings:
        assert setting["cloudwatch_role_arn"] == f"${{aws_iam_role.{role_name}.arn}}"


def test_only_api_gateway_of_the_account_assumes_the_role_and_it_may_only_write_logs(bootstrap) -> None:
    (statement,) = trust(bootstrap, "bootstrap/api-logging/role")["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert list(statement["Condition"]) == ["StringEquals"]
    assert list(statement["Condition"]["StringEquals"]) == ["aws:SourceAccount"]
    (attachment,) = [
        a for a in resources(bootstrap, "aws_iam_role_policy_attachment").values() if "api-logging" in a["role"]
    ]
    assert attachment["policy_arn"].endswith(f":iam::aws:policy/{PUSH_TO_LOGS}")


def test_no_front_no_logging_role() -> None:
    without = {name: config.model_copy(update={"failover": None}) for name, config in MATRIX.items()}
    stack = synth_bootstrap(BOOTSTRAP, without)
    assert not resources(stack, "aws_api_gateway_account")
    assert all("alias" not in provider for provider in stack["provider"]["aws"])
