"""The bootstrap's GitHub roles, least privilege: what each deploy role and the plan role may do.

Evaluated on the roles' policies in the stack ``main.py`` synthesizes beside the environments, with the IAM
evaluator of tests/gitops/bootstrap.py (``effect``): it evaluates conditions against a request context as IAM
does (a request on a tagged resource carries ``aws:ResourceTag/environment``, one creating a resource
``aws:RequestTag/environment``; a key the context lacks is absent from the request). Expectations come from the
matrix, the environment stacks (their state keys, resource types, tags and managed policies) and AWS's documented
formats, never from the product's own helpers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stacks.matrix import MATRIX
from tests.gitops.bootstrap import (
    CHANGE_OR_READ_DATA,
    ENVIRONMENT_TAG,
    GLOBAL_OR_NAMED,
    READ_ONLY_POLICY,
    TERRAFORM_LOCK_SUFFIX,
    account_principal,
    as_list,
    covers_action,
    default_tags,
    deploy_role,
    effect,
    github_role_paths,
    glob,
    is_read,
    load_bootstrap,
    plan_role,
    read_only_access,
    request_tagged,
    resource_tagged,
    role_statements,
    service_of_type,
    services,
    state_bucket_arn,
    state_key_arn,
    state_keys,
    state_request,
    statements_of,
    through_s3,
)
from tests.support.synth_json import ENVIRONMENTS, data_ref, ref, resources, role_attachments

TOKEN = re.compile(r"\$\{[^}]*\}")


@pytest.fixture(scope="module")
def bootstrap(synth_dir: Path) -> dict[str, Any]:
    return load_bootstrap(synth_dir)


def _allows(stack: dict[str, Any], env: str) -> list[dict[str, Any]]:
    return [s for s in role_statements(stack, deploy_role(stack, env)) if s["Effect"] == "Allow"]


def _called_services(stack: dict[str, Any]) -> set[str]:
    types = {t for block in ("resource", "data") for t in stack.get(block, {}) if t.startswith("aws_")}
    return {service for t in types if (service := service_of_type(t))}


# --- the deploy roles -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_holds_every_service_its_environment_calls(bootstrap, stacks, env) -> None:
    needed = _called_services(stacks[env])
    held = services(role_statements(bootstrap, deploy_role(bootstrap, env)))
    assert needed <= held, sorted(needed - held)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_changes_s3_and_iam_only_under_its_environments_prefix(bootstrap, stacks, env) -> None:
    prefix, region = MATRIX[env].name_prefix, MATRIX[env].region
    state = f"{state_bucket_arn(bootstrap)}/{state_keys(stacks)[env]}"
    allowed = {
        "s3": (f":s3:::{prefix}-*", f":s3:::{prefix}-*/*", state, f"{state}{TERRAFORM_LOCK_SUFFIX}"),
        "iam": (
            *(f":{kind}/{prefix}-*" for kind in ("role", "policy", "instance-profile")),
            # the EKS cluster's IRSA provider (named after its issuer) and AWS's service-linked roles
            f":oidc-provider/oidc.eks.{region}.amazonaws.com/*",
            ":role/aws-service-role/*",
        ),
    }
    for statement in _allows(bootstrap, env):
        for action in as_list(statement["Action"]):
            service = action.split(":", 1)[0]
            if service not in allowed or is_read(action) or action == "s3:ListBucket":
                continue
            for resource in as_list(statement["Resource"]):
                assert resource.endswith(allowed[service]), (statement["Sid"], action, resource)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_uses_regional_services_only_in_its_regions(bootstrap, env) -> None:
    config = MATRIX[env]
    # Its region, and the secondary region it keeps its recovery copies in.
    regions = config.region if config.secondary_region is None else [config.region, config.secondary_region]
    for statement in _allows(bootstrap, env):
        actions = as_list(statement["Action"])
        if {a.split(":", 1)[0] for a in actions} <= {"s3", "iam", "route53", "budgets"}:
            continue  # global services and S3, scoped by resource above
        assert statement.get("Condition") == {"StringEquals": {"aws:RequestedRegion": regions}}
    rds = [s for s in _allows(bootstrap, env) if "rds:*" in as_list(s["Action"])]
    assert rds, "the deploy role starts the database's backup replication in the secondary region"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_writes_its_own_state_and_lock_and_no_other(bootstrap, stacks, env) -> None:
    role = ref(bootstrap, "aws_iam_role", deploy_role(bootstrap, env), "arn")
    statements = role_statements(bootstrap, deploy_role(bootstrap, env))
    bucket_policy = statements_of(bootstrap, "aws_s3_bucket_policy", "state/bucket/policy")
    request = state_request(bootstrap)
    bucket = state_bucket_arn(bootstrap)
    keys = {**state_keys(stacks), "bootstrap": bootstrap["terraform"]["backend"]["s3"]["key"]}
    for stack_name, key in keys.items():
        mine = stack_name == env
        for obj in (f"{bucket}/{key}", f"{bucket}/{key}{TERRAFORM_LOCK_SUFFIX}"):
            assert (effect(statements, "s3:PutObject", obj, request) == "Allow") is mine, obj
            assert (effect(statements, "s3:GetObject", obj, request) == "Allow") is mine, obj
            # Terraform writes without an encryption header (the bucket's key applies): the bucket lets it.
            assert effect(bucket_policy, "s3:PutObject", obj, request, principal=role) == "implicit deny", obj
        lock = f"{bucket}/{key}{TERRAFORM_LOCK_SUFFIX}"
        assert (effect(statements, "s3:DeleteObject", lock, request) == "Allow") is mine
        assert effect(statements, "s3:DeleteObject", f"{bucket}/{key}", request) != "Allow"  # the state itself stays
    # S3 encrypts and decrypts those objects with the state key, for this role: the key's policy lets it, and the
    # role's own denials spare the key although it is tagged like every bootstrap resource.
    key_policy = statements_of(bootstrap, "aws_kms_key", "state/key")
    tagged_shared = resource_tagged(default_tags(bootstrap)[ENVIRONMENT_TAG])
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert effect(key_policy, action, state_key_arn(bootstrap), through_s3(bootstrap), principal=role) == "Allow"
        context = {**through_s3(bootstrap), **tagged_shared}
        assert effect(statements, action, state_key_arn(bootstrap), context) != "Deny", action


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_may_not_touch_the_bootstraps_roles_provider_or_buckets(bootstrap, env) -> None:
    statements = role_statements(bootstrap, deploy_role(bootstrap, env))
    identities = [ref(bootstrap, "aws_iam_role", p, "arn") for p in github_role_paths(bootstrap).values()]
    identities.append(ref(bootstrap, "aws_iam_openid_connect_provider", "github-oidc/provider", "arn"))
    for arn in identities:
        for action in (
            "iam:UpdateAssumeRolePolicy",
            "iam:PutRolePolicy",
            "iam:PassRole",
            "iam:DeleteOpenIDConnectProvider",
        ):
            assert effect(statements, action, arn) == "Deny", (action, arn)
    configuration = ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketVersioning", "s3:DeleteBucket")
    configuration += ("s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:PutBucketLogging")
    for bucket in ("state/bucket/bucket", "state/access-logs/bucket"):
        arn = ref(bootstrap, "aws_s3_bucket", bucket, "arn")
        for action in configuration:
            assert effect(statements, action, arn) == "Deny", (action, arn)
        assert effect(statements, "s3:DeleteObjectVersion", f"{arn}/any/key") == "Deny"


def _administrator_denial(stack: dict[str, Any], env: str) -> dict[str, Any]:
    statements = role_statements(stack, deploy_role(stack, env))
    (denial,) = [s for s in statements if s["Effect"] == "Deny" and "iam:PolicyARN" in json.dumps(s.get("Condition"))]
    assert covers_action(denial, "iam:AttachRolePolicy")
    return denial


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_may_not_attach_administrator_policies(bootstrap, env) -> None:
    denial = _administrator_denial(bootstrap, env)
    partition = data_ref(bootstrap, "aws_partition", "bootstrap/partition", "partition")
    patterns = as_list(denial["Condition"]["ArnLike"]["iam:PolicyARN"])
    for name in ("AdministratorAccess", "PowerUserAccess", "AmazonS3FullAccess", "IAMFullAccess"):
        assert any(glob(p, f"arn:{partition}:iam::aws:policy/{name}") for p in patterns), name
    assert denial["Resource"] == "*"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_administrator_denial_spares_the_managed_policies_the_environment_attaches(bootstrap, stacks, env) -> None:
    # Otherwise the deploy itself would fail in AWS at the first attachment.
    patterns = as_list(_administrator_denial(bootstrap, env)["Condition"]["ArnLike"]["iam:PolicyARN"])
    names = [p.split(":policy/", 1)[1] for p in patterns]
    attached = [
        c["policy_arn"].split(":policy/", 1)[1]
        for c in resources(stacks[env], "aws_iam_role_policy_attachment").values()
    ]
    assert attached
    for policy_name in attached:
        assert not any(glob(n, policy_name) for n in names), policy_name


def test_environment_prefixes_reach_no_other_environments_or_bootstrap_names(bootstrap) -> None:
    names = list(github_role_paths(bootstrap))
    for env, config in MATRIX.items():
        for other, other_config in MATRIX.items():
            if other != env:
                assert not glob(f"{config.name_prefix}-*", other_config.name_prefix + "-x"), (env, other)
        assert not any(glob(f"{config.name_prefix}-*", name) for name in names), env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_is_confined_to_its_environment_where_environments_share_a_region(bootstrap, stacks, env) -> None:
    region = MATRIX[env].region
    sharing = [other for other, config in MATRIX.items() if other != env and config.region == region]
    assert sharing, f"{env} has its region to itself"
    statements = role_statements(bootstrap, deploy_role(bootstrap, env))
    # The tag values the resources really carry: each environment's own, and the bootstrap's.
    mine = default_tags(stacks[env])[ENVIRONMENT_TAG]
    theirs = [default_tags(stacks[other])[ENVIRONMENT_TAG] for other in sharing]
    theirs.append(default_tags(bootstrap)[ENVIRONMENT_TAG])
    assert mine not in theirs
    regional = _called_services(stacks[env]) - set(GLOBAL_OR_NAMED)
    assert regional <= set(CHANGE_OR_READ_DATA), sorted(regional - set(CHANGE_OR_READ_DATA))
    in_region = {"aws:RequestedRegion": region}
    for service in sorted(regional):
        action = CHANGE_OR_READ_DATA[service]
        arn = f"arn:aws:{service}:{region}:111122223333:resource/x"
        # Its own resources, new resources tagged as its own, and requests without the tag (List calls, services
        # that put no tag in the request context) stay allowed: the deploy needs them.
        for context in (resource_tagged(mine), request_tagged(mine), {}):
            assert effect(statements, action, arn, {**in_region, **context}) == "Allow", (action, context)
        for tag in theirs:
            assert effect(statements, action, arn, {**in_region, **resource_tagged(tag)}) == "Deny", (action, tag)
            assert effect(statements, action, arn, {**in_region, **request_tagged(tag)}) == "Deny", (action, tag)
    # S3 and IAM: another environment's names lie outside the grants, whatever their tags.
    partition = data_ref(bootstrap, "aws_partition", "bootstrap/partition", "partition")
    for owner in (env, *sharing):
        prefix, tag = MATRIX[owner].name_prefix, resource_tagged(default_tags(stacks[owner])[ENVIRONMENT_TAG])
        for action, arn in (
            ("s3:DeleteBucket", f"arn:{partition}:s3:::{prefix}-data"),
            ("s3:GetObject", f"arn:{partition}:s3:::{prefix}-data/model.tar.gz"),
            ("iam:PutRolePolicy", account_principal(bootstrap, f"{prefix}-training")),
        ):
            assert (effect(statements, action, arn, tag) == "Allow") is (owner == env), (action, arn)
    # The state key, tagged like every bootstrap resource, is still used through S3.
    context = {**through_s3(bootstrap), **resource_tagged(default_tags(bootstrap)[ENVIRONMENT_TAG])}
    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
        assert effect(statements, action, state_key_arn(bootstrap), context) != "Deny", action


@pytest.mark.xfail(
    strict=True,
    reason="BUG constructs/gitops/permissions.py PlatformIdentities: iam:* on role/<prefix>-* lets a deploy role "
    "create a role with any inline policy ('*' on '*') and pass or trust it: no permissions boundary is required",
)
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_can_give_its_roles_no_more_than_a_permissions_boundary(bootstrap, env) -> None:
    for action in ("iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy"):
        for statement in _allows(bootstrap, env):
            if covers_action(statement, action):
                assert "iam:PermissionsBoundary" in json.dumps(statement.get("Condition", {})), (
                    action,
                    statement["Sid"],
                )


def test_inline_policies_fit_iams_size_limit_with_the_longest_arns(bootstrap) -> None:
    # IAM refuses more than 10,240 characters (whitespace not counted) of inline policies per role. Each
    # Terraform reference counts as 100 characters, more than any ARN or name it stands for.
    for path in github_role_paths(bootstrap).values():
        role = ref(bootstrap, "aws_iam_role", path, "name")
        documents = [c["policy"] for c in resources(bootstrap, "aws_iam_role_policy").values() if c["role"] == role]
        size = sum(len(re.sub(r"\s", "", TOKEN.sub("x" * 100, document))) for document in documents)
        assert 0 < size <= 10_240, (path, size)


# --- the plan role ----------------------------------------------------------------------------------------


def test_plan_role_has_aws_read_only_access(bootstrap) -> None:
    partition = data_ref(bootstrap, "aws_partition", "bootstrap/partition", "partition")
    assert role_attachments(bootstrap, plan_role(bootstrap)) == [f"arn:{partition}:iam::aws:policy/{READ_ONLY_POLICY}"]


def test_plan_role_reads_every_environments_state_and_writes_nothing(bootstrap, stacks) -> None:
    statements = role_statements(bootstrap, plan_role(bootstrap))
    request = state_request(bootstrap)
    bucket = state_bucket_arn(bootstrap)
    for key in state_keys(stacks).values():
        assert effect(statements, "s3:GetObject", f"{bucket}/{key}", request) == "Allow", key
        for action in ("s3:PutObject", "s3:DeleteObject"):
            assert effect(statements, action, f"{bucket}/{key}{TERRAFORM_LOCK_SUFFIX}", request) != "Allow"
    for statement in statements:
        if statement["Effect"] == "Allow":
            assert all(is_read(a) or a == "s3:ListBucket" for a in as_list(statement["Action"])), statement["Sid"]
    bootstrap_state = f"{bucket}/{bootstrap['terraform']['backend']['s3']['key']}"
    assert effect(statements, "s3:GetObject", bootstrap_state, request) == "Deny"


# Every way of reading an object's content (S3's GetObject* actions that return it or its parts).
OBJECT_READS = ("s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTorrent", "s3:GetObjectVersionTorrent")
OBJECT_READS += ("s3:GetObjectAttributes",)


def test_plan_role_may_not_read_data(bootstrap, stacks) -> None:
    statements = role_statements(bootstrap, plan_role(bootstrap))
    bucket = state_bucket_arn(bootstrap)
    data_buckets = [b["bucket"] for stack in stacks.values() for b in resources(stack, "aws_s3_bucket").values()]
    assert data_buckets
    for obj in [f"arn:aws:s3:::{name}/some/object" for name in data_buckets] + [f"{bucket}/other/object"]:
        for action in OBJECT_READS:
            assert effect([*read_only_access(), *statements], action, obj) == "Deny", (action, obj)
    # The state stays readable: the denial excepts exactly the environments' state objects.
    for key in state_keys(stacks).values():
        assert effect([*read_only_access(), *statements], "s3:GetObject", f"{bucket}/{key}") == "Allow", key
    (excepting,) = [s for s in statements if "NotResource" in s]
    assert sorted(excepting["NotResource"]) == sorted(f"{bucket}/{k}" for k in state_keys(stacks).values())


# Reads of data rather than configuration, each on a resource the platform's account may hold.
DATA_READS = [
    ("secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:1:secret:mlp-prod-mlflow-admin"),
    ("dynamodb:Scan", "arn:aws:dynamodb:us-east-1:1:table/t"),
    ("dynamodb:Query", "arn:aws:dynamodb:us-east-1:1:table/t"),
    ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:1:table/t"),
    ("dynamodb:PartiQLSelect", "arn:aws:dynamodb:us-east-1:1:table/t"),
    ("logs:GetLogEvents", "arn:aws:logs:us-east-1:1:log-group:g:log-stream:s"),
    ("logs:FilterLogEvents", "arn:aws:logs:us-east-1:1:log-group:g"),
    ("logs:GetQueryResults", "*"),
    ("logs:StartLiveTail", "arn:aws:logs:us-east-1:1:log-group:g"),
    ("ecr:BatchGetImage", "arn:aws:ecr:us-east-1:1:repository/r"),
    ("sqs:ReceiveMessage", "arn:aws:sqs:us-east-1:1:q"),
    ("rds:DownloadCompleteDBLogFile", "arn:aws:rds:us-east-1:1:db:d"),
    ("ssm:GetParameter", "arn:aws:ssm:us-east-1:1:parameter/secure-string"),
    ("ssm:GetParameters", "arn:aws:ssm:us-east-1:1:parameter/secure-string"),
    ("ssm:GetParametersByPath", "arn:aws:ssm:us-east-1:1:parameter/path"),
    ("ssm:GetParameterHistory", "arn:aws:ssm:us-east-1:1:parameter/secure-string"),
    ("kinesis:GetRecords", "arn:aws:kinesis:us-east-1:1:stream/s"),
    ("athena:GetQueryResults", "arn:aws:athena:us-east-1:1:workgroup/w"),
    ("glacier:GetJobOutput", "arn:aws:glacier:us-east-1:1:vaults/v"),
    ("codecommit:GetFile", "arn:aws:codecommit:us-east-1:1:repo"),
    ("codecommit:GetBlob", "arn:aws:codecommit:us-east-1:1:repo"),
    # The same data through other actions ReadOnlyAccess grants.
    ("codecommit:GitPull", "arn:aws:codecommit:us-east-1:1:repo"),
    ("athena:GetQueryResultsStream", "arn:aws:athena:us-east-1:1:workgroup/w"),
    ("kinesisvideo:GetMedia", "arn:aws:kinesisvideo:us-east-1:1:stream/s/1"),
]


@pytest.mark.parametrize(("action", "resource"), DATA_READS)
def test_read_only_access_minus_the_denials_reads_no_data(bootstrap, action, resource) -> None:
    own = role_statements(bootstrap, plan_role(bootstrap))
    assert effect(read_only_access(), "ec2:DescribeVpcs", "*") == "Allow"  # the policy is the one expected
    assert effect([*read_only_access(), *own], action, resource) != "Allow"
    # Denied by the role itself, so that AWS adding the read to ReadOnlyAccess later changes nothing.
    assert effect(own, action, resource) == "Deny"


def test_plan_role_lists_only_the_state_folders(bootstrap, stacks) -> None:
    statements = role_statements(bootstrap, plan_role(bootstrap))
    (listing,) = [s for s in statements if covers_action(s, "s3:ListBucket")]
    assert listing["Resource"] == state_bucket_arn(bootstrap)
    folders = sorted(f"{key.rsplit('/', 1)[0]}/*" for key in state_keys(stacks).values())
    assert sorted(listing["Condition"]["StringLike"]["s3:prefix"]) == folders
