"""The bootstrap stack: the state store, GitHub's OIDC provider, a deploy role per environment and a plan role.

Checked on the stack ``main.py`` synthesizes beside the environments (the session's ``synth_dir``), and on
bootstrap stacks built alone for settings other than the matrix's. Expectations come from the matrix, from the
environment stacks (their state keys, resource types and managed policies) and from GitHub's and AWS's
documented formats (tests/gitops/bootstrap.py), never from the product's own helpers. What the roles may do is
checked in tests/gitops/test_bootstrap_roles.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cdktf
import pytest
from constructs.core.checks import check_failure_report
from constructs.core.errors import ConfigurationError
from constructs.core.iam import PolicyStatement
from constructs.gitops.settings import GithubActionsSettings, StateStoreSettings

from gitops.terraform import aws_only, run_terraform, terraform_cli_env, validate_offline
from stacks.account import BootstrapConfig
from stacks.deployment import DeploymentSettings, load_deployment
from stacks.matrix import BOOTSTRAP, MATRIX
from tests.gitops.bootstrap import (
    BUCKET_NAME_MAX,
    GITHUB_ISSUER_HOST,
    STS_AUDIENCE,
    WEB_IDENTITY,
    account_principal,
    as_list,
    branch_sub,
    deploy_role,
    deployer_arn,
    effect,
    environment_sub,
    github_role_paths,
    glob,
    lifecycle_rules,
    load_bootstrap,
    plan_role,
    pull_request_sub,
    python_accepts,
    rejected_variables,
    role_statements,
    state_bucket_arn,
    state_history,
    state_key_arn,
    state_keys,
    state_region,
    state_request,
    statements_of,
    synth_bootstrap,
    through_s3,
    trust,
    variables_only,
    web_identity_statement,
)
from tests.support.stacks import written
from tests.support.synth_json import (
    ENVIRONMENTS,
    address,
    data_ref,
    only,
    output,
    ref,
    resources,
)

REPOSITORY = "${var.github_repository}"
"""How the synthesized trust refers to the repository: the Terraform variable ``github_repository``."""
SUB = f"{GITHUB_ISSUER_HOST}:sub"
AUD = f"{GITHUB_ISSUER_HOST}:aud"
GITHUB_VARIABLE = "ML_PLATFORM_GITHUB_REPOSITORY"
TOKEN = re.compile(r"\$\{[^}]*\}")


@pytest.fixture(scope="module")
def bootstrap(synth_dir: Path) -> dict[str, Any]:
    return load_bootstrap(synth_dir)


# --- a separate, fourth stack ---------------------------------------------------------------------------


def test_bootstrap_is_a_stack_of_its_own_beside_the_environments(synth_dir) -> None:
    assert sorted(p.name for p in (synth_dir / "stacks").iterdir()) == sorted([*ENVIRONMENTS, "bootstrap"])


def test_bootstrap_state_lives_under_its_own_key_that_no_role_may_write(bootstrap, stacks) -> None:
    backend = bootstrap["terraform"]["backend"]["s3"]
    assert backend["key"] == "ml-platform/bootstrap/terraform.tfstate"
    assert backend["key"] not in state_keys(stacks).values()
    # No `encrypt`: Terraform would then ask for SSE-S3 and override the bucket's own key (the bucket refuses it).
    assert (backend["encrypt"], backend["use_lockfile"]) == (False, True)
    state = f"{state_bucket_arn(bootstrap)}/{backend['key']}"
    for path in github_role_paths(bootstrap).values():
        for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetObject"):
            verdict = effect(role_statements(bootstrap, path), action, state, state_request(bootstrap))
            assert verdict != "Allow", (path, action)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_environment_stack_holds_bootstrap_resources(bootstrap, stacks, env) -> None:
    stack = stacks[env]
    assert "variable" not in stack
    urls = [p["url"] for p in resources(stack, "aws_iam_openid_connect_provider").values()]
    assert f"https://{GITHUB_ISSUER_HOST}" not in urls
    role_names = {r["name"] for r in resources(stack, "aws_iam_role").values()}
    assert role_names.isdisjoint(github_role_paths(bootstrap))
    buckets = {b["bucket"] for b in resources(stack, "aws_s3_bucket").values()}
    assert not any("var.state_bucket" in name for name in buckets)


# --- the state store --------------------------------------------------------------------------------------


def test_state_bucket_is_versioned_and_encrypted_with_the_stacks_own_key(bootstrap) -> None:
    assert only(bootstrap, "aws_s3_bucket_versioning", "state/bucket/versioning")["versioning_configuration"] == {
        "status": "Enabled"
    }
    (rule,) = only(bootstrap, "aws_s3_bucket_server_side_encryption_configuration", "state/bucket/encryption")["rule"]
    assert rule["apply_server_side_encryption_by_default"] == {
        "sse_algorithm": "aws:kms",
        "kms_master_key_id": ref(bootstrap, "aws_kms_key", "state/key", "arn"),
    }
    assert rule["bucket_key_enabled"] is True


def test_state_key_rotates_waits_thirty_days_and_is_never_destroyed(bootstrap) -> None:
    (key,) = resources(bootstrap, "aws_kms_key").values()
    assert (key["enable_key_rotation"], key["deletion_window_in_days"]) == (True, 30)
    assert key["lifecycle"] == {"prevent_destroy": True}


@pytest.mark.parametrize("bucket", ["state/bucket", "state/access-logs"])
def test_both_buckets_are_kept_private_and_tls_only(bootstrap, bucket) -> None:
    config = only(bootstrap, "aws_s3_bucket", f"{bucket}/bucket")
    assert config["lifecycle"] == {"prevent_destroy": True} and config["force_destroy"] is False
    block = only(bootstrap, "aws_s3_bucket_public_access_block", f"{bucket}/public-access-block")
    flags = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    assert all(block[flag] is True for flag in flags)
    arn = ref(bootstrap, "aws_s3_bucket", f"{bucket}/bucket", "arn")
    statements = statements_of(bootstrap, "aws_s3_bucket_policy", f"{bucket}/policy")
    (tls,) = [s for s in statements if "aws:SecureTransport" in json.dumps(s.get("Condition", {}))]
    assert tls["Effect"] == "Deny" and tls["Principal"] in ("*", {"AWS": "*"}) and tls["Action"] in ("s3:*", ["s3:*"])
    assert sorted(tls["Resource"]) == sorted([arn, f"{arn}/*"])
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for action, resource in (("s3:ListBucket", arn), ("s3:GetObject", f"{arn}/k"), ("s3:PutObject", f"{arn}/k")):
        assert effect(statements, action, resource, {"aws:SecureTransport": "false"}) == "Deny", action
        assert effect(statements, action, resource, {"aws:SecureTransport": "true"}) != "Deny", action


def test_state_bucket_policy_grants_nothing(bootstrap, stacks) -> None:
    # Access to the state is granted per role and per state key (the roles' policies), never by the bucket.
    statements = statements_of(bootstrap, "aws_s3_bucket_policy", "state/bucket/policy")
    assert {s["Effect"] for s in statements} == {"Deny"}
    bucket, request = state_bucket_arn(bootstrap), state_request(bootstrap)
    stranger = account_principal(bootstrap, "someone-else")
    for key in [*state_keys(stacks).values(), bootstrap["terraform"]["backend"]["s3"]["key"]]:
        for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"):
            assert effect(statements, action, f"{bucket}/{key}", request, principal=stranger) == "implicit deny"
    assert effect(statements, "s3:ListBucket", bucket, request, principal=stranger) == "implicit deny"


def _upload(stack: dict[str, Any], **headers: str) -> str:
    """What the state bucket's policy says to a PutObject of a state object over TLS with these headers."""
    statements = statements_of(stack, "aws_s3_bucket_policy", "state/bucket/policy")
    context = {**state_request(stack), **{f"s3:x-amz-server-side-encryption{k}": v for k, v in headers.items()}}
    obj = f"{state_bucket_arn(stack)}/ml-platform/dev/terraform.tfstate"
    return effect(statements, "s3:PutObject", obj, context, principal=account_principal(stack, "a-writer"))


def test_state_bucket_refuses_uploads_that_ask_for_another_encryption_or_key(bootstrap) -> None:
    key = state_key_arn(bootstrap)
    other_key = key.replace("${aws_kms_key.", "${aws_kms_key.other_")
    # Without a header the bucket's default applies (its key): Terraform's backend (`encrypt = false`) and the lock.
    assert _upload(bootstrap) == "implicit deny"
    assert _upload(bootstrap, **{"": "aws:kms", "-aws-kms-key-id": key}) == "implicit deny"
    assert _upload(bootstrap, **{"": "AES256"}) == "Deny"  # Terraform's `encrypt = true` without a key
    assert _upload(bootstrap, **{"": "aws:kms", "-aws-kms-key-id": other_key}) == "Deny"
    assert _upload(bootstrap, **{"": "aws:kms:dsse", "-aws-kms-key-id": key}) == "Deny"


# S3 encrypts an upload that asks for SSE-KMS without naming a key with the AWS managed key aws/s3 (S3 API
# reference, PutObject, SSEKMSKeyId): that would leave the state key's policy, so it is refused too.
def test_state_bucket_refuses_sse_kms_uploads_that_name_no_key(bootstrap) -> None:
    assert _upload(bootstrap, **{"": "aws:kms"}) == "Deny"


def test_state_access_is_logged_to_the_logs_bucket_named_after_it(bootstrap) -> None:
    logging = only(bootstrap, "aws_s3_bucket_logging", "state/bucket/access-logging")
    assert logging["bucket"] == ref(bootstrap, "aws_s3_bucket", "state/bucket/bucket", "id")
    assert logging["target_bucket"] == ref(bootstrap, "aws_s3_bucket", "state/access-logs/bucket", "id")
    state_name = only(bootstrap, "aws_s3_bucket", "state/bucket/bucket")["bucket"]
    assert state_name == "${var.state_bucket}"
    assert only(bootstrap, "aws_s3_bucket", "state/access-logs/bucket")["bucket"] == f"{state_name}-logs"
    # Only S3's log delivery writes there, and only for this account's state bucket.
    delivery = [
        s
        for s in statements_of(bootstrap, "aws_s3_bucket_policy", "state/access-logs/policy")
        if s["Effect"] == "Allow"
    ]
    assert [s["Principal"] for s in delivery] == [{"Service": "logging.s3.amazonaws.com"}]
    assert as_list(delivery[0]["Condition"]["ArnLike"]["aws:SourceArn"]) == [state_bucket_arn(bootstrap)]
    assert delivery[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == data_ref(
        bootstrap, "aws_caller_identity", "bootstrap/account", "account_id"
    )


def test_overwritten_state_is_kept_for_state_history_days_and_current_state_never_expires(bootstrap) -> None:
    kept, expiring = state_history(bootstrap)
    assert kept == {BOOTSTRAP.state.state_history_days}
    assert expiring == []
    logs = lifecycle_rules(bootstrap, "state/access-logs")
    assert {e["days"] for r in logs for e in r.get("expiration", [])} == {BOOTSTRAP.state.access_log_days}


def test_state_history_and_log_retention_follow_the_settings() -> None:
    state = StateStoreSettings(state_history_days=BOOTSTRAP.state.state_history_days + 45, access_log_days=90)
    stack = synth_bootstrap(BOOTSTRAP.model_copy(update={"state": state}))
    kept, expiring = state_history(stack)
    assert kept == {state.state_history_days} and expiring == []
    logs = lifecycle_rules(stack, "state/access-logs")
    assert {e["days"] for r in logs for e in r.get("expiration", [])} == {state.access_log_days}


def test_key_policy_lets_the_github_roles_and_the_deployer_use_the_key_only_through_s3(bootstrap, stacks) -> None:
    statements = statements_of(bootstrap, "aws_kms_key", "state/key")
    key = state_key_arn(bootstrap)
    roles = {ref(bootstrap, "aws_iam_role", path, "arn") for path in github_role_paths(bootstrap).values()}
    assert len(roles) == len(ENVIRONMENTS) + 1
    # Every environment's backend reads its state in the bucket's region, through S3 there.
    assert {stack["terraform"]["backend"]["s3"]["region"] for stack in stacks.values()} == {state_region(bootstrap)}
    via_s3 = through_s3(bootstrap)
    elsewhere = [{}, {**via_s3, "kms:ViaService": f"ec2.{state_region(bootstrap)}.amazonaws.com"}]
    use = ("kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt")
    # The deployer writes the bootstrap's own state (docs/state-bootstrap.md); the roles their environments'.
    for principal in (*roles, deployer_arn(bootstrap)):
        for action in use:
            assert effect(statements, action, key, via_s3, principal=principal) == "Allow", (principal, action)
            for context in elsewhere:
                assert effect(statements, action, key, context, principal=principal) != "Allow", (principal, context)
    for role in roles:  # no re-encrypting elsewhere, no handing the key on with a grant, no administering it
        for action in ("kms:ReEncryptFrom", "kms:CreateGrant", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion"):
            assert effect(statements, action, key, via_s3, principal=role) != "Allow", (role, action)
    # Nobody else of the account, whatever the service: the account as a whole only reads the key.
    stranger = account_principal(bootstrap, "someone-else")
    assert effect(statements, "kms:DescribeKey", key, principal=stranger) == "Allow"
    for action in (*use, "kms:ReEncryptFrom", "kms:CreateGrant"):
        for context in (via_s3, *elsewhere):
            assert effect(statements, action, key, context, principal=stranger) != "Allow", (action, context)


# --- GitHub's OIDC provider and the roles' trust ---------------------------------------------------------


def test_oidc_provider_is_githubs_issuer_for_sts(bootstrap) -> None:
    (provider,) = resources(bootstrap, "aws_iam_openid_connect_provider").values()
    assert provider["url"] == f"https://{GITHUB_ISSUER_HOST}"
    assert provider["client_id_list"] == [STS_AUDIENCE]


def test_one_deploy_role_per_environment_and_one_plan_role(bootstrap) -> None:
    deploys = output(bootstrap, "deploy_role_arns")["value"]
    assert sorted(deploys) == sorted(MATRIX)
    roles = {plan_role(bootstrap), *(deploy_role(bootstrap, env) for env in MATRIX)}
    assert len(roles) == len(MATRIX) + 1
    assert roles == set(github_role_paths(bootstrap).values())
    # Beside them only API Gateway's logging role (tests/resilience/test_api_logging.py).
    others = {r["name"] for r in resources(bootstrap, "aws_iam_role").values()} - set(github_role_paths(bootstrap))
    assert others == {"mlp-apigateway-logs"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_deploy_role_trusts_only_its_github_environment(bootstrap, env) -> None:
    path = deploy_role(bootstrap, env)
    document = trust(bootstrap, path)
    assert document["Version"] == "2012-10-17"
    assert [{k: v for k, v in s.items() if k != "Sid"} for s in document["Statement"]] == [
        web_identity_statement(bootstrap, environment_sub(REPOSITORY, env))
    ]
    assert only(bootstrap, "aws_iam_role", path)["max_session_duration"] == BOOTSTRAP.github.session_hours * 3600


def test_plan_role_trusts_pull_requests_and_the_main_branch_only(bootstrap) -> None:
    statement = trust(bootstrap, plan_role(bootstrap))["Statement"][0]
    assert sorted(statement["Condition"]["StringEquals"][SUB]) == sorted(
        [pull_request_sub(REPOSITORY), branch_sub(REPOSITORY, BOOTSTRAP.github.main_branch)]
    )


def test_no_trust_accepts_a_wildcard_or_another_audience(bootstrap) -> None:
    for path in github_role_paths(bootstrap).values():
        (statement,) = trust(bootstrap, path)["Statement"]
        assert statement["Action"] == WEB_IDENTITY
        assert list(statement["Condition"]) == ["StringEquals"], path
        assert statement["Condition"]["StringEquals"][AUD] == STS_AUDIENCE
        subjects = as_list(statement["Condition"]["StringEquals"][SUB])
        assert subjects and not any("*" in s or "?" in s for s in subjects)
        assert all(s.startswith(f"repo:{REPOSITORY}:") for s in subjects)


def test_trust_and_sessions_follow_the_settings_and_the_given_environments() -> None:
    github = GithubActionsSettings(main_branch="trunk", session_hours=4)
    environments = {env: MATRIX[env] for env in ENVIRONMENTS[:1]}
    stack = synth_bootstrap(BOOTSTRAP.model_copy(update={"github": github}), environments)
    assert sorted(output(stack, "deploy_role_arns")["value"]) == sorted(environments)
    (env,) = environments
    paths = {deploy_role(stack, env): [environment_sub(REPOSITORY, env)]}
    paths[plan_role(stack)] = [pull_request_sub(REPOSITORY), branch_sub(REPOSITORY, github.main_branch)]
    for path, subjects in paths.items():
        statement = trust(stack, path)["Statement"][0]
        assert sorted(as_list(statement["Condition"]["StringEquals"][SUB])) == sorted(subjects)
        assert only(stack, "aws_iam_role", path)["max_session_duration"] == github.session_hours * 3600


def test_repository_variable_defaults_to_ml_platform_github_repository(clean_env) -> None:
    clean_env.delenv(GITHUB_VARIABLE, raising=False)
    unset = synth_bootstrap(deployment=load_deployment())
    assert "default" not in unset["variable"]["github_repository"]  # terraform asks for it
    clean_env.setenv(GITHUB_VARIABLE, "acme/ml-platform")
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", "acme-mlp-tfstate")
    stack = synth_bootstrap(deployment=load_deployment())
    assert stack["variable"]["github_repository"]["default"] == "acme/ml-platform"
    assert stack["variable"]["state_bucket"]["default"] == "acme-mlp-tfstate"
    assert stack["terraform"]["backend"]["s3"]["bucket"] == "acme-mlp-tfstate"


# --- the checks, the outputs, terraform validate -----------------------------------------------------------


def test_security_checks_ran_and_every_suppression_says_why(bootstrap) -> None:
    notes = {
        address(bootstrap, t, c["//"]["metadata"]["path"].removeprefix("bootstrap/")): c["//"]["suppressed_checks"]
        for t, by_name in bootstrap["resource"].items()
        for c in by_name.values()
        if "suppressed_checks" in c["//"]
    }
    deploy_policies = {address(bootstrap, "aws_iam_role_policy", f"deploy-role-{env}/deploy-{env}") for env in MATRIX}
    assert {a for a, n in notes.items() if "IAM-1" in n} == deploy_policies
    assert all(len(reason) >= 40 for n in notes.values() for reason in n.values())


def test_a_rule_violation_in_the_bootstrap_stack_fails_the_synth() -> None:
    from stacks.bootstrap_stack import BootstrapStack

    stack = BootstrapStack(cdktf.Testing.app(), BOOTSTRAP, MATRIX, DeploymentSettings())
    stack.plan_role.grant("everything", PolicyStatement(sid="Everything", actions=("*",), resources=("*",)))
    with pytest.raises(RuntimeError) as failed:
        written(stack)
    report = check_failure_report(failed.value) or ""
    assert "bootstrap/plan-role/everything" in report and "IAM-1" in report


def test_outputs_name_the_bucket_and_every_roles_arn(bootstrap) -> None:
    assert output(bootstrap, "state_bucket_name")["value"] == ref(
        bootstrap, "aws_s3_bucket", "state/bucket/bucket", "bucket"
    )
    provider = ref(bootstrap, "aws_iam_openid_connect_provider", "github-oidc/provider", "arn")
    assert output(bootstrap, "github_oidc_provider_arn")["value"] == provider
    arns = {ref(bootstrap, "aws_iam_role", p, "arn") for p in github_role_paths(bootstrap).values()}
    deploys = output(bootstrap, "deploy_role_arns")["value"]
    assert set(deploys) == set(MATRIX) and {*deploys.values(), output(bootstrap, "plan_role_arn")["value"]} == arns


@pytest.mark.terraform
def test_bootstrap_stack_validates_with_the_real_terraform(bootstrap, tmp_path) -> None:
    env = terraform_cli_env(tmp_path)
    problems = validate_offline({"bootstrap": aws_only(bootstrap)}, tmp_path / "validate", env)
    assert problems == {"bootstrap": []}, json.dumps(problems, indent=2)


# --- bad input: ML_PLATFORM_GITHUB_REPOSITORY and the bootstrap's settings ----------------------------------

# GitHub: an owner is 1-39 letters, digits and single inner hyphens; a repository name 1-100 letters, digits,
# '.', '_' and '-'. A trust names one repository exactly, so no wildcard either.
BAD_REPOSITORIES = ["acme", "acme/ml platform", "-acme/x", "acme/ml/x", "acme/*", "acme-/x", "ac--me/x"]
BAD_REPOSITORIES += ["o" * 40 + "/x", "acme/" + "r" * 101, "acme/", "/ml-platform", "acme/ml-platform\n"]
GOOD_REPOSITORIES = ["acme/ml-platform", "a/b", "Acme-Corp/ML.platform_2", "o" * 39 + "/" + "r" * 100]


@pytest.mark.parametrize("value", BAD_REPOSITORIES)
def test_a_bad_repository_is_a_configuration_error_naming_the_variable(clean_env, value) -> None:
    clean_env.setenv(GITHUB_VARIABLE, value)
    with pytest.raises(ConfigurationError) as caught:
        load_deployment()
    assert (caught.value.where, caught.value.field, caught.value.value) == ("deployment", GITHUB_VARIABLE, value)
    assert "owner/name" in caught.value.allowed


@pytest.mark.parametrize("value", GOOD_REPOSITORIES)
def test_a_repository_as_github_spells_it_is_accepted(clean_env, value) -> None:
    clean_env.setenv(GITHUB_VARIABLE, value)
    assert load_deployment().github_repository == value


BAD_SETTINGS = [
    ("github", "main_branch", "feature/*"),
    ("github", "main_branch", ""),
    ("github", "main_branch", "release/?"),
    ("github", "session_hours", 0),
    ("github", "session_hours", 13),
    ("state", "state_history_days", 30),
    ("state", "access_log_days", 0),
]
SECTIONS = {"github": GithubActionsSettings, "state": StateStoreSettings}


@pytest.mark.parametrize(("section", "field", "value"), BAD_SETTINGS)
def test_bad_bootstrap_settings_are_configuration_errors_naming_the_field(section, field, value) -> None:
    model = SECTIONS[section]
    with pytest.raises(ConfigurationError) as caught:
        model(**{field: value})
    assert (caught.value.where, caught.value.field, caught.value.value) == (model.__name__, field, value)
    with pytest.raises(ConfigurationError) as nested:
        BootstrapConfig(resource_prefix=BOOTSTRAP.resource_prefix, tags=BOOTSTRAP.tags, **{section: {field: value}})
    assert (nested.value.where, nested.value.field, nested.value.value) == (
        "BootstrapConfig",
        f"{section}.{field}",
        value,
    )


@pytest.mark.parametrize(
    ("section", "values"),
    [
        ("github", {"main_branch": "release/2.x", "session_hours": 12}),
        ("github", {"session_hours": 1}),
        ("state", {"state_history_days": 31, "access_log_days": 1}),
    ],
)
def test_bootstrap_settings_at_their_bounds_are_accepted(section, values) -> None:
    assert SECTIONS[section](**values).model_dump(include=set(values)) == values


def test_a_state_bucket_too_long_for_its_log_bucket_is_a_configuration_error(clean_env, bootstrap) -> None:
    suffix = only(bootstrap, "aws_s3_bucket", "state/access-logs/bucket")["bucket"].removeprefix("${var.state_bucket}")
    longest = "a" * (BUCKET_NAME_MAX - len(suffix))
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", longest)
    assert synth_bootstrap(deployment=load_deployment())["variable"]["state_bucket"]["default"] == longest
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", longest + "a")
    with pytest.raises(ConfigurationError) as caught:
        synth_bootstrap(deployment=load_deployment())
    assert (caught.value.field, caught.value.value) == ("ML_PLATFORM_STATE_BUCKET", longest + "a")


def _inside_a_deploy_roles_buckets(name: str) -> bool:
    """Whether a deploy role's grant on its environment's buckets (``<prefix>-*``) covers the bucket ``name``."""
    return any(glob(f"{config.name_prefix}-*", name) for config in MATRIX.values())


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_state_bucket_inside_an_environments_prefix_is_refused(clean_env, env) -> None:
    name = f"{MATRIX[env].name_prefix}-tfstate"
    assert _inside_a_deploy_roles_buckets(name)
    clean_env.setenv("ML_PLATFORM_STATE_BUCKET", name)
    with pytest.raises(ConfigurationError) as caught:
        synth_bootstrap(deployment=load_deployment())
    assert (caught.value.field, caught.value.value) == ("ML_PLATFORM_STATE_BUCKET", name)
    # The prefix without its hyphen, or further in, is outside every deploy role's buckets: accepted.
    for outside in (f"{MATRIX[env].name_prefix}tfstate", f"acme-{MATRIX[env].name_prefix}-tfstate"):
        assert not _inside_a_deploy_roles_buckets(outside)
        clean_env.setenv("ML_PLATFORM_STATE_BUCKET", outside)
        assert synth_bootstrap(deployment=load_deployment())["terraform"]["backend"]["s3"]["bucket"] == outside


# --- bad input: the Terraform variables, at plan time -----------------------------------------------------


@pytest.fixture(scope="module")
def variables_plan(bootstrap, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A working directory holding the bootstrap's variable blocks alone, initialized: its plan evaluates them."""
    workdir = tmp_path_factory.mktemp("bootstrap-variables")
    (workdir / "cdk.tf.json").write_text(json.dumps(variables_only(bootstrap)))
    env = terraform_cli_env(workdir)
    run_terraform(["init", "-input=false", "-no-color"], workdir, env)
    return workdir, env


GOOD_BUCKET = "acme-mlp-tfstate"


@pytest.mark.terraform
@pytest.mark.parametrize("value", BAD_REPOSITORIES[:-1] + GOOD_REPOSITORIES)
def test_terraform_judges_github_repository_as_ml_platform_github_repository_does(variables_plan, value) -> None:
    rejected = rejected_variables(variables_plan, github_repository=value, state_bucket=GOOD_BUCKET)
    assert rejected == ([] if python_accepts(github_repository=value) else ["var.github_repository"])


def _bucket_candidates() -> list[Any]:
    logs_suffix = "-logs"  # checked against the synthesized log bucket by the test below
    longest = BUCKET_NAME_MAX - len(logs_suffix)
    names = [GOOD_BUCKET, "a" * longest, "a" * (longest + 1), "Acme-tfstate", "xn--tfstate", "sthree-tfstate"]
    names += ["ab", "a..b", "-acme", "acme-", "acme_tfstate", "acme.tf-state.9"]
    names += ["192.168.5.4", "acme--ol-s3", "acme-tfstate-s3alias", "10.0.0.1x"]
    return names


@pytest.mark.terraform
@pytest.mark.parametrize("value", _bucket_candidates())
def test_terraform_rejects_a_state_bucket_whose_log_bucket_s3_would_refuse(bootstrap, variables_plan, value) -> None:
    logs = only(bootstrap, "aws_s3_bucket", "state/access-logs/bucket")["bucket"]
    assert logs == "${var.state_bucket}-logs"
    valid = python_accepts(state_bucket=value) and python_accepts(state_bucket=f"{value}-logs")
    rejected = rejected_variables(variables_plan, github_repository=GOOD_REPOSITORIES[0], state_bucket=value)
    assert rejected == ([] if valid else ["var.state_bucket"])


@pytest.mark.terraform
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_terraform_rejects_a_state_bucket_inside_an_environments_prefix(variables_plan, env) -> None:
    prefix = MATRIX[env].name_prefix
    for name in (f"{prefix}-tfstate", f"{prefix}tfstate", f"acme-{prefix}-tfstate"):
        assert python_accepts(state_bucket=name)  # a valid S3 name: only the prefix can make it wrong
        rejected = rejected_variables(variables_plan, github_repository=GOOD_REPOSITORIES[0], state_bucket=name)
        assert rejected == (["var.state_bucket"] if _inside_a_deploy_roles_buckets(name) else []), name
