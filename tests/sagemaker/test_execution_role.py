"""SageMaker execution roles and security groups in the synthesized environments: only SageMaker of this
account assumes the roles, every policy is scoped exactly, no action is a wildcard, and the groups allow
HTTPS egress only."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sagemaker.expected import STAGED, ecr_pull, eni_statements, logs, metrics
from tests.support.synth_json import (
    ENVIRONMENTS,
    allow,
    arguments,
    arn_parts,
    doc,
    policy,
    ref,
    resources,
    role_policies,
)


def trust(account: str) -> dict[str, Any]:
    return doc(
        {
            "Sid": "TrustedServices",
            "Effect": "Allow",
            "Principal": {"Service": "sagemaker.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_execution_roles_trust_only_sagemaker_for_this_account(stacks, env) -> None:
    stack = stacks[env]
    _, _, account = arn_parts(stack)
    serving = arguments(stack, "aws_iam_role", "platform/sagemaker/execution-role")
    training = arguments(stack, "aws_iam_role", "platform/sagemaker-training/execution-role")
    assert serving["name"] == f"mlp-{env}-inference-sagemaker"
    assert training["name"] == f"mlp-{env}-training-sagemaker"
    for role in (serving, training):
        assert policy(role["assume_role_policy"]) == trust(account)
        assert "managed_policy_arns" not in role


@pytest.mark.parametrize("model_published", [False, True], ids=["fresh", "published"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_serving_role_policies_are_exactly_scoped(stacks, published, env, model_published) -> None:
    stack = published[env] if model_published else stacks[env]
    partition, region, account = arn_parts(stack)
    artifacts = ref(stack, "aws_s3_bucket", "storage/model-artifacts/bucket", "arn")
    key = ref(stack, "aws_kms_key", "keys/data", "arn")
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/mlp-{env}-inference"
    expected = {
        "read-model-artifacts": doc(
            allow(
                "ModelArtifactsListBucket",
                "s3:ListBucket",
                artifacts,
                StringLike={"s3:prefix": ["models/inference/*"]},
            ),
            allow("ModelArtifactsLocateBucket", "s3:GetBucketLocation", artifacts),
            allow(
                "ModelArtifactsReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], f"{artifacts}/models/inference/*"
            ),
            allow(
                "ModelArtifactsUseBucketKey", "kms:Decrypt", key, StringLike={"kms:ViaService": "s3.*.amazonaws.com"}
            ),
        ),
        "pull-serving-image": ecr_pull(f"arn:{partition}:ecr:{region}:763104351884:repository/pytorch-inference"),
        "write-endpoint-logs": logs(log_group),
        "publish-endpoint-metrics": metrics("/aws/sagemaker/Endpoints"),
    }
    if env in STAGED:
        expected["write-data-capture"] = doc(
            allow("WriteCapturedData", "s3:PutObject", f"{artifacts}/data-capture/inference/*"),
            allow(
                "EncryptCapturedData",
                ["kms:Encrypt", "kms:GenerateDataKey"],
                key,
                StringEquals={"kms:ViaService": f"s3.{region}.amazonaws.com"},
            ),
        )
    if env in STAGED and model_published:
        # Network interfaces may be created only once a model runs in the VPC.
        expected["manage-vpc-network-interfaces"] = doc(*eni_statements(stack, "platform/sagemaker/security-group"))
    # Dev is serverless and staging/prod run ml.g5 (local NVMe): no volume key, so no CreateGrant.
    assert role_policies(stack, "platform/sagemaker/execution-role") == expected


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_sagemaker_policies_grant_no_wildcard_actions_and_star_only_where_unavoidable(stacks, env) -> None:
    stack = stacks[env]
    star_allowed = {
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcs",
        "ec2:DescribeDhcpOptions",
        "ec2:DescribeSubnets",
        "ec2:DescribeSecurityGroups",
    }
    for suffix in ("platform/sagemaker/execution-role", "platform/sagemaker-training/execution-role"):
        for name, document in role_policies(stack, suffix).items():
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all(not a.endswith("*") for a in actions), (name, actions)
                if statement["Resource"] == "*":
                    assert set(actions) <= star_allowed, (name, actions)


@pytest.mark.parametrize("model_published", [False, True], ids=["fresh", "published"])
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vpc_security_groups_allow_https_egress_only(stacks, published, env, model_published) -> None:
    stack = published[env] if model_published else stacks[env]
    groups = [g for g in resources(stack, "aws_security_group").values() if "sagemaker" in g["//"]["metadata"]["path"]]
    if env == "dev":
        assert groups == []
        return
    # The endpoint's group comes with the model that attaches it; training jobs attach theirs at run time.
    owners = ["sagemaker", "sagemaker-training"] if model_published else ["sagemaker-training"]
    expected_names = [f"mlp-{env}-inference-sagemaker"] if model_published else []
    assert sorted(g["name"] for g in groups) == [*expected_names, f"mlp-{env}-training-sagemaker"]
    for owner in owners:
        group = ref(stack, "aws_security_group", f"platform/{owner}/security-group", "id")
        assert "ingress" not in arguments(stack, "aws_security_group", f"platform/{owner}/security-group")
        ingress = [
            r
            for r in resources(stack, "aws_vpc_security_group_ingress_rule").values()
            if r["security_group_id"] == group
        ]
        egress = [
            r
            for r in resources(stack, "aws_vpc_security_group_egress_rule").values()
            if r["security_group_id"] == group
        ]
        assert ingress == []
        assert [{k: v for k, v in r.items() if k != "//"} for r in egress] == [
            {
                "security_group_id": group,
                "description": "HTTPS to AWS APIs and S3",
                "ip_protocol": "tcp",
                "from_port": 443,
                "to_port": 443,
                "cidr_ipv4": "0.0.0.0/0",
            }
        ]
