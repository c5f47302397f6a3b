"""The bootstrap stack applied to the local AWS emulator, then its own state moved into the bucket it created.

The stack is synthesized by ``main.build_app`` as a user would, with ``ML_PLATFORM_EMULATOR_ENDPOINT`` (the AWS
provider, and the S3 backend, talk to the in-process moto emulator), the local backend, a repository and a state
bucket name. ``terraform init`` + ``apply`` create it, and boto3 reads back what AWS now holds: the roles' trust
and inline policies, the OIDC provider, the state bucket's versioning, encryption, policy, logging and lifecycle,
and the key's policy.

Then the migration the docs describe: synthesized again with ``ML_PLATFORM_BACKEND=s3`` into the
same working directory, ``terraform init -migrate-state -force-copy`` moves the bootstrap's own state into
``ml-platform/bootstrap/terraform.tfstate`` of the bucket it created, and a plan then finds nothing to change
(which shows the apply converged as well: one plan, because each terraform command that loads the AWS provider
costs 10-20 s here, most of it the provider loading its schema).

The emulator does not evaluate the roles' policies (moto checks bucket policies only, and few condition
operators), so what the policies allow is checked on their synthesized form (tests/gitops/test_bootstrap.py,
test_bootstrap_roles.py); here they are evaluated, with the same evaluator, as AWS resolved and stored them.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from emulator import ACCOUNT_ID, REGION, Emulator
from gitops.terraform import run_terraform
from stacks.matrix import BOOTSTRAP, MATRIX
from tests.conftest import PLATFORM_VARIABLES
from tests.gitops.bootstrap import (
    BOOTSTRAP_STACK,
    GITHUB_ISSUER_HOST,
    READ_ONLY_POLICY,
    STS_AUDIENCE,
    TERRAFORM_LOCK_SUFFIX,
    as_list,
    branch_sub,
    effect,
    environment_sub,
    pull_request_sub,
)
from tests.support.mirror import emulator_terraform_env

pytestmark = [pytest.mark.emulator, pytest.mark.terraform]

REPOSITORY = "acme/ml-platform"
STATE_BUCKET = "acme-mlp-tfstate"
BOOTSTRAP_STATE = "ml-platform/bootstrap/terraform.tfstate"
# Seconds one terraform command may take (the apply waits about a minute for S3 lifecycle rules to settle).
TIMEOUT = 300.0


@dataclass
class Bootstrap:
    """The applied bootstrap: where it was applied, its terraform environment, outputs and step timings."""

    workdir: Path
    env: dict[str, str]
    outputs: dict[str, Any] = field(default_factory=dict)
    resources: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def terraform(self, step: str, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        started = time.monotonic()
        result = run_terraform([*args, "-no-color"], self.workdir, self.env, timeout=TIMEOUT, ok_returncodes=ok)
        self.timings[step] = round(time.monotonic() - started, 1)
        return result


def synthesize(emulator: Emulator, outdir: Path, backend: str) -> Path:
    """Synthesize every stack as main.py does, for the emulator; return the bootstrap stack's configuration file."""
    from main import build_app

    with pytest.MonkeyPatch.context() as env:
        for variable in (*PLATFORM_VARIABLES, "ML_PLATFORM_GITHUB_REPOSITORY"):
            env.delenv(variable, raising=False)
        env.setenv("ML_PLATFORM_EMULATOR_ENDPOINT", emulator.endpoint)
        env.setenv("ML_PLATFORM_BACKEND", backend)
        env.setenv("ML_PLATFORM_GITHUB_REPOSITORY", REPOSITORY)
        env.setenv("ML_PLATFORM_STATE_BUCKET", STATE_BUCKET)
        build_app(str(outdir)).synth()
    return outdir / "stacks" / BOOTSTRAP_STACK / "cdk.tf.json"


@pytest.fixture(scope="module")
def applied(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Bootstrap:
    started = time.monotonic()
    config = synthesize(emulator, tmp_path_factory.mktemp("bootstrap-local"), "local")
    home = tmp_path_factory.mktemp("bootstrap-terraform")
    env = emulator_terraform_env(home)
    run = Bootstrap(config.parent, env)
    run.timings["synth"] = round(time.monotonic() - started, 1)
    run.terraform("init", "init", "-input=false")
    run.terraform("apply", "apply", "-auto-approve", "-input=false")
    run.outputs = {k: v["value"] for k, v in json.loads(run.terraform("output", "output", "-json").stdout).items()}
    state = json.loads((run.workdir / f"terraform.{BOOTSTRAP_STACK}.tfstate").read_text())
    run.resources = sum(len(r["instances"]) for r in state["resources"] if r["mode"] == "managed")
    return run


@pytest.fixture(scope="module")
def migrated(emulator: Emulator, applied: Bootstrap, tmp_path_factory: pytest.TempPathFactory) -> Bootstrap:
    started = time.monotonic()
    config = synthesize(emulator, tmp_path_factory.mktemp("bootstrap-s3"), "s3")
    # `cdktf synth` writes the new backend into the same stack directory, where terraform remembers the old one.
    shutil.copyfile(config, applied.workdir / "cdk.tf.json")
    applied.timings["synth s3"] = round(time.monotonic() - started, 1)
    applied.terraform("migrate", "init", "-migrate-state", "-force-copy", "-input=false")
    applied.terraform("plan after migration", "plan", "-detailed-exitcode", "-input=false")
    return applied


def role_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def inline_policies(iam: Any, name: str) -> dict[str, list[dict[str, Any]]]:
    names = iam.list_role_policies(RoleName=name)["PolicyNames"]
    return {n: iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"]["Statement"] for n in names}


def trusted_subjects(iam: Any, name: str) -> tuple[list[str], dict[str, Any]]:
    (statement,) = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    subjects = statement["Condition"]["StringEquals"][f"{GITHUB_ISSUER_HOST}:sub"]
    return sorted(subjects if isinstance(subjects, list) else [subjects]), statement


# --- what the apply created -------------------------------------------------------------------------------


def test_apply_creates_every_resource_of_the_stack(applied: Bootstrap) -> None:
    config = json.loads((applied.workdir / "cdk.tf.json").read_text())
    assert applied.resources == sum(len(by_name) for by_name in config["resource"].values())
    assert sorted(applied.outputs["deploy_role_arns"]) == sorted(MATRIX)
    assert applied.outputs["state_bucket_name"] == STATE_BUCKET
    print(f"\nbootstrap: {applied.resources} resources, seconds per step: {applied.timings}")


def test_oidc_provider_is_githubs(applied: Bootstrap, emulator: Emulator) -> None:
    iam = emulator.client("iam")
    arn = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{GITHUB_ISSUER_HOST}"
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [arn]
    assert applied.outputs["github_oidc_provider_arn"] == arn
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert provider["Url"].removeprefix("https://") == GITHUB_ISSUER_HOST
    assert provider["ClientIDList"] == [STS_AUDIENCE]


@pytest.mark.parametrize("env", list(MATRIX))
def test_deploy_role_trusts_exactly_its_environment_of_the_repository(applied: Bootstrap, emulator, env) -> None:
    iam = emulator.client("iam")
    name = role_name(applied.outputs["deploy_role_arns"][env])
    subjects, statement = trusted_subjects(iam, name)
    assert subjects == [environment_sub(REPOSITORY, env)]
    assert statement["Principal"] == {"Federated": applied.outputs["github_oidc_provider_arn"]}
    assert statement["Condition"]["StringEquals"][f"{GITHUB_ISSUER_HOST}:aud"] == STS_AUDIENCE
    assert iam.get_role(RoleName=name)["Role"]["MaxSessionDuration"] == BOOTSTRAP.github.session_hours * 3600


def test_plan_role_trusts_pull_requests_and_the_main_branch(applied: Bootstrap, emulator) -> None:
    iam = emulator.client("iam")
    subjects, _ = trusted_subjects(iam, role_name(applied.outputs["plan_role_arn"]))
    assert subjects == sorted([pull_request_sub(REPOSITORY), branch_sub(REPOSITORY, BOOTSTRAP.github.main_branch)])


def _state_object(env: str) -> str:
    return f"arn:aws:s3:::{STATE_BUCKET}/ml-platform/{env}/terraform.tfstate"


@pytest.mark.parametrize("env", list(MATRIX))
def test_deploy_roles_policies_name_the_real_account_bucket_and_roles(applied: Bootstrap, emulator, env) -> None:
    iam = emulator.client("iam")
    policies = inline_policies(iam, role_name(applied.outputs["deploy_role_arns"][env]))
    assert len(policies) == 2 and f"deploy-{env}" in policies
    statements = [s for document in policies.values() for s in document]
    for other in MATRIX:
        for obj in (_state_object(other), _state_object(other) + TERRAFORM_LOCK_SUFFIX):
            assert (effect(statements, "s3:PutObject", obj) == "Allow") is (other == env), obj
    assert effect(statements, "s3:PutObject", f"arn:aws:s3:::{STATE_BUCKET}/{BOOTSTRAP_STATE}") != "Allow"
    prefix = MATRIX[env].name_prefix
    assert effect(statements, "iam:CreateRole", f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-x") == "Allow"
    assert effect(statements, "s3:CreateBucket", f"arn:aws:s3:::{prefix}-x") == "Allow"
    for arn in (applied.outputs["plan_role_arn"], *applied.outputs["deploy_role_arns"].values()):
        assert effect(statements, "iam:UpdateAssumeRolePolicy", arn) == "Deny", arn
    assert effect(statements, "iam:DeleteOpenIDConnectProvider", applied.outputs["github_oidc_provider_arn"]) == "Deny"
    assert effect(statements, "s3:PutBucketPolicy", f"arn:aws:s3:::{STATE_BUCKET}") == "Deny"
    assert not any("${" in json.dumps(s) for s in statements)  # every reference resolved


def test_plan_role_reads_state_under_read_only_access(applied: Bootstrap, emulator) -> None:
    iam = emulator.client("iam")
    name = role_name(applied.outputs["plan_role_arn"])
    attached = iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [f"arn:aws:iam::aws:policy/{READ_ONLY_POLICY}"]
    statements = [s for document in inline_policies(iam, name).values() for s in document]
    for env in MATRIX:
        assert effect(statements, "s3:GetObject", _state_object(env)) == "Allow"
        assert effect(statements, "s3:PutObject", _state_object(env)) != "Allow"
    assert effect(statements, "s3:GetObject", f"arn:aws:s3:::{STATE_BUCKET}/{BOOTSTRAP_STATE}") == "Deny"
    assert effect(statements, "secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:x") == "Deny"


_TLS = {"aws:SecureTransport": "true"}


def _key_arn(emulator: Emulator) -> str:
    encryption = emulator.client("s3").get_bucket_encryption(Bucket=STATE_BUCKET)
    (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert rule["BucketKeyEnabled"] is True
    key = emulator.client("kms").describe_key(KeyId=rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"])
    return str(key["KeyMetadata"]["Arn"])


def test_state_bucket_is_versioned_encrypted_tls_only_private_logged_and_keeps_history(applied, emulator) -> None:
    s3 = emulator.client("s3")
    assert s3.get_bucket_versioning(Bucket=STATE_BUCKET)["Status"] == "Enabled"
    key = emulator.client("kms").describe_key(KeyId=_key_arn(emulator))["KeyMetadata"]
    assert (key["KeyManager"], key["KeyState"]) == ("CUSTOMER", "Enabled")
    assert emulator.client("kms").get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True
    # The policy as S3 stores it, every reference resolved: it grants nothing, refuses plain HTTP and refuses
    # uploads that ask for another encryption than the bucket's key, but not those that ask for none.
    statements = json.loads(s3.get_bucket_policy(Bucket=STATE_BUCKET)["Policy"])["Statement"]
    assert {s["Effect"] for s in statements} == {"Deny"}
    obj, sse, tls = f"arn:aws:s3:::{STATE_BUCKET}/{BOOTSTRAP_STATE}", "s3:x-amz-server-side-encryption", _TLS
    assert effect(statements, "s3:GetObject", obj, {"aws:SecureTransport": "false"}) == "Deny"
    assert effect(statements, "s3:PutObject", obj, tls) == "implicit deny"
    own, other = _key_arn(emulator), _key_arn(emulator).rsplit("/", 1)[0] + "/another-key"
    assert effect(statements, "s3:PutObject", obj, {**tls, sse: "aws:kms", f"{sse}-aws-kms-key-id": own}) != "Deny"
    assert effect(statements, "s3:PutObject", obj, {**tls, sse: "aws:kms", f"{sse}-aws-kms-key-id": other}) == "Deny"
    assert effect(statements, "s3:PutObject", obj, {**tls, sse: "AES256"}) == "Deny"
    block = s3.get_public_access_block(Bucket=STATE_BUCKET)["PublicAccessBlockConfiguration"]
    assert len(block) == 4 and all(block.values())
    assert s3.get_bucket_logging(Bucket=STATE_BUCKET)["LoggingEnabled"]["TargetBucket"] == f"{STATE_BUCKET}-logs"
    rules = s3.get_bucket_lifecycle_configuration(Bucket=STATE_BUCKET)["Rules"]
    kept = {r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules if "NoncurrentVersionExpiration" in r}
    assert kept == {BOOTSTRAP.state.state_history_days}
    assert not any("Expiration" in r for r in rules)
    # The access-log bucket: S3 delivers server access logs only to SSE-S3 buckets.
    (log_rule,) = s3.get_bucket_encryption(Bucket=f"{STATE_BUCKET}-logs")["ServerSideEncryptionConfiguration"]["Rules"]
    assert log_rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=f"{STATE_BUCKET}-logs")["Status"] == "Enabled"


def test_key_policy_lets_the_github_roles_and_the_deployer_use_the_key_through_s3_only(applied, emulator) -> None:
    kms, key = emulator.client("kms"), _key_arn(emulator)
    statements = json.loads(kms.get_key_policy(KeyId=key, PolicyName="default")["Policy"])["Statement"]
    deployer = emulator.client("sts").get_caller_identity()["Arn"]
    roles = {applied.outputs["plan_role_arn"], *applied.outputs["deploy_role_arns"].values()}
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    for principal in (*roles, deployer):  # the deployer writes the bootstrap's own state
        for action in ("kms:GenerateDataKey", "kms:Decrypt"):
            assert effect(statements, action, key, via_s3, principal=principal) == "Allow", (principal, action)
            assert effect(statements, action, key, principal=principal) != "Allow", (principal, action)
    stranger = f"arn:aws:iam::{ACCOUNT_ID}:role/someone-else"
    assert effect(statements, "kms:DescribeKey", key, principal=stranger) == "Allow"  # the account reads the key
    assert effect(statements, "kms:Decrypt", key, via_s3, principal=stranger) != "Allow"
    # Whoever ran the bootstrap administers the key, and only they.
    (admins,) = [s for s in statements if "kms:ScheduleKeyDeletion" in s["Action"]]
    assert as_list(admins["Principal"]["AWS"]) == [deployer]


def test_owner_tags_are_active_for_cost_allocation_and_the_team_category_inherits_team(applied, emulator) -> None:
    ce = emulator.client("ce")
    keys = ["environment", "team", "cost_center", "project"]
    tags = ce.list_cost_allocation_tags(TagKeys=keys)["CostAllocationTags"]
    assert {tag["TagKey"]: tag["Status"] for tag in tags} == dict.fromkeys(keys, "Active")
    # moto cannot list categories: the ARN AWS returned at creation is in the state.
    state = json.loads((applied.workdir / f"terraform.{BOOTSTRAP_STACK}.tfstate").read_text())
    (arn,) = [
        instance["attributes"]["arn"]
        for resource in state["resources"]
        if resource["type"] == "aws_ce_cost_category"
        for instance in resource["instances"]
    ]
    category = ce.describe_cost_category_definition(CostCategoryArn=arn)["CostCategory"]
    assert category["Name"] == "ml-platform-team"
    assert category["Rules"] == [
        {"Type": "INHERITED_VALUE", "InheritedValue": {"DimensionName": "TAG", "DimensionKey": "team"}}
    ]
    assert category["DefaultValue"] == "no-team"


# --- the bootstrap's own state, moved into the bucket it created ------------------------------------------


# The state bucket refuses uploads that ask for another encryption (DenyOtherEncryption, DenyOtherKeys): each
# denial is guarded by `Null: false` and a StringNotEquals, so a header-less upload (Terraform's) passes in AWS.
def test_migration_moves_the_bootstraps_state_into_its_bucket_and_a_plan_is_clean(
    migrated: Bootstrap, emulator
) -> None:
    # The `plan -detailed-exitcode` after the migration exited 0: the state in the bucket describes every resource
    # as AWS holds it (so the apply converged too).
    s3 = emulator.client("s3")
    state = json.loads(s3.get_object(Bucket=STATE_BUCKET, Key=BOOTSTRAP_STATE)["Body"].read())
    assert sum(len(r["instances"]) for r in state["resources"] if r["mode"] == "managed") == migrated.resources
    with pytest.raises(ClientError):  # no lock left behind
        s3.head_object(Bucket=STATE_BUCKET, Key=BOOTSTRAP_STATE + TERRAFORM_LOCK_SUFFIX)
    print(f"\nbootstrap: seconds per step: {migrated.timings}")


def test_migrated_state_is_encrypted_with_the_state_key(migrated: Bootstrap, emulator) -> None:
    # The backend sends no encryption header (`encrypt = false`), so S3 applies the bucket's default: its key.
    s3, key = emulator.client("s3"), _key_arn(emulator)
    written = [o["Key"] for o in s3.list_objects_v2(Bucket=STATE_BUCKET, Prefix="ml-platform/")["Contents"]]
    assert BOOTSTRAP_STATE in written
    for name in written:  # the state and whatever else the backend wrote beside it
        head = s3.head_object(Bucket=STATE_BUCKET, Key=name)
        assert (head["ServerSideEncryption"], head.get("SSEKMSKeyId")) == ("aws:kms", key), name
