"""``deployer_role``: the role that administers an environment's keys and cluster, named in the matrix.

Without it the deployer is whoever runs Terraform (read from the caller's session), so a read-only plan by the
GitOps plan role would show every key policy and the cluster's deployer entry moving to the plan role, and the
reviewed plan would never match the deploy role's. With it, the synthesized stack no longer depends on the caller.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.overrides import OVERRIDES_ENV
from tests.support.overrides import rejected, with_overrides
from tests.support.synth_json import arn_parts, data_ref, policy, resources

DEPLOY_ROLE = "mlp-github-deploy-staging"


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Staging with its deployer named (the GitOps deploy role), synthesized the way main.py does it."""
    from main import build_app

    outdir = tmp_path_factory.mktemp("named-deployer")
    with pytest.MonkeyPatch.context() as env:
        env.setenv(OVERRIDES_ENV, json.dumps({"staging": {"deployer_role": DEPLOY_ROLE}}))
        build_app(str(outdir)).synth()
    return json.loads((outdir / "stacks" / "staging" / "cdk.tf.json").read_text())


def _expected_arn(stack: dict[str, Any]) -> str:
    partition, _, account = arn_parts(stack)
    return f"arn:{partition}:iam::{account}:role/{DEPLOY_ROLE}"


def test_a_named_deployer_makes_the_stack_independent_of_the_caller(named: dict[str, Any]) -> None:
    assert "aws_iam_session_context" not in named["data"]


def test_every_key_is_administered_by_the_named_role(named: dict[str, Any]) -> None:
    arn = _expected_arn(named)
    keys = resources(named, "aws_kms_key")
    assert keys
    for name, key in keys.items():
        (admins,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AdministratorsManageKey"]
        principals = admins["Principal"]["AWS"]
        assert principals[0] == arn, name


def test_the_cluster_deployer_entry_is_the_named_role(named: dict[str, Any]) -> None:
    arn = _expected_arn(named)
    principals = [e["principal_arn"] for e in resources(named, "aws_eks_access_entry").values()]
    assert arn in principals


def test_without_it_the_caller_is_the_deployer(stacks: dict[str, Any]) -> None:
    staging = stacks["staging"]
    issuer = data_ref(staging, "aws_iam_session_context", "platform/deployer", "issuer_arn")
    for key in resources(staging, "aws_kms_key").values():
        (admins,) = [s for s in policy(key["policy"])["Statement"] if s["Sid"] == "AdministratorsManageKey"]
        assert admins["Principal"]["AWS"][0] == issuer


@pytest.mark.parametrize(
    "bad",
    ["role/mlp-github-deploy-staging", "arn:aws:iam::123456789012:role/x", "mlp-*", "a" * 65, ""],
)
def test_a_deployer_role_must_be_a_plain_role_name(bad: str) -> None:
    error = rejected({"staging": {"deployer_role": bad}}, "staging")
    assert error.field == "deployer_role" and "IAM role name" in error.allowed


def test_the_deployer_cannot_also_be_a_listed_cluster_admin_while_it_has_its_own_entry() -> None:
    admin = f"arn:aws:iam::123456789012:role/{DEPLOY_ROLE}"
    error = rejected({"staging": {"deployer_role": DEPLOY_ROLE, "eks.admin_role_arns": [admin]}}, "staging")
    assert error.field == "eks.admin_role_arns" and "deployer_admin_access False" in error.allowed
    # With the deployer's own entry off, listing it is how the cluster keeps a fixed admin whoever runs Terraform.
    configs = with_overrides(
        {"staging": {"deployer_role": DEPLOY_ROLE, "eks.admin_role_arns": [admin], "eks.deployer_admin_access": False}}
    )
    assert configs["staging"].eks is not None and configs["staging"].eks.admin_role_arns == (admin,)
