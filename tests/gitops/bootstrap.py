"""What the bootstrap tests share: GitHub's and AWS's documented formats, IAM matching, the bootstrap stack.

The expectations of the bootstrap tests come from here (GitHub's ``sub`` claim formats, Terraform's lock object
name, S3's bucket name limit), from the environment matrix and from the environment stacks themselves, never
from the product's own helpers: a test that asked ``constructs.gitops.github`` what a subject looks like would
agree with it whatever it wrote.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import cdktf

from gitops.terraform import run_terraform
from stacks.account import BootstrapConfig
from stacks.deployment import DeploymentSettings
from stacks.environment import EnvironmentConfig
from stacks.matrix import BOOTSTRAP, MATRIX
from tests.support.stacks import written
from tests.support.synth_json import data_ref, only, output, policy, ref, resources

BOOTSTRAP_STACK = "bootstrap"
"""The bootstrap stack's name, and its folder under ``cdktf.out/stacks``."""

GITHUB_ISSUER_HOST = "token.actions.githubusercontent.com"
"""GitHub Actions' OIDC issuer (docs.github.com, "About security hardening with OpenID Connect")."""
STS_AUDIENCE = "sts.amazonaws.com"
"""The audience aws-actions/configure-aws-credentials asks for by default."""
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"
TERRAFORM_LOCK_SUFFIX = ".tflock"
"""Terraform's S3-native lock object is the state key plus ``.tflock`` (Terraform docs, backend "s3")."""
BUCKET_NAME_MAX = 63
"""S3's limit on a general purpose bucket name."""
READ_ONLY_POLICY = "ReadOnlyAccess"
"""AWS's read-only job-function policy (``arn:aws:iam::aws:policy/ReadOnlyAccess``)."""
ENVIRONMENT_TAG = "environment"
"""The tag every platform resource carries (provider ``default_tags``), whose value names its environment."""


def environment_sub(repository: str, environment: str) -> str:
    """The ``sub`` claim of a job that runs in a GitHub Environment (GitHub's documented format)."""
    return f"repo:{repository}:environment:{environment}"


def pull_request_sub(repository: str) -> str:
    """The ``sub`` claim of a job run for a pull request, without an environment."""
    return f"repo:{repository}:pull_request"


def branch_sub(repository: str, branch: str) -> str:
    """The ``sub`` claim of a job run for a branch (push, schedule), without an environment."""
    return f"repo:{repository}:ref:refs/heads/{branch}"


# --- IAM's matching -----------------------------------------------------------------------------------

Context = Mapping[str, str | Sequence[str]]
"""A request context: condition key -> its value (or values). A key it does not hold is absent from the request."""


@functools.cache
def _wildcard(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # ReadOnlyAccess alone has thousands of patterns, matched again for every request a test evaluates.
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """Whether ``value`` matches an IAM wildcard ``pattern`` (``*``: any run of characters, ``?``: one).

    Resource ARNs and StringLike/ArnLike values match case-sensitively; actions case-insensitively.
    """
    return _wildcard(pattern, ignore_case).fullmatch(value) is not None


def as_list(value: Any) -> list[Any]:
    """An IAM element that may be one value or a list of them, as a list."""
    return list(value) if isinstance(value, list) else [value]


def covers_action(statement: Mapping[str, Any], action: str) -> bool:
    """Whether ``statement``'s ``Action`` matches ``action``."""
    assert "NotAction" not in statement, "NotAction is not modelled"
    return any(glob(pattern, action, ignore_case=True) for pattern in as_list(statement.get("Action", [])))


def covers_resource(statement: Mapping[str, Any], resource: str) -> bool:
    """Whether ``statement`` applies to ``resource`` (its ``Resource`` matches, or its ``NotResource`` does not)."""
    if "NotResource" in statement:
        return not any(glob(pattern, resource) for pattern in as_list(statement["NotResource"]))
    return any(glob(pattern, resource) for pattern in as_list(statement.get("Resource", [])))


def covers_principal(statement: Mapping[str, Any], principal: str | None) -> bool:
    """Whether ``statement`` applies to ``principal`` (an ARN, or a service's name).

    A statement without ``Principal`` (an identity policy's) applies to the identity holding it. An account's
    ``...:root`` names every principal of that account. An unknown principal (None) is matched by ``*`` only.
    """
    if "Principal" not in statement:
        return True
    listed = statement["Principal"]
    named = ["*"] if listed == "*" else [v for values in listed.values() for v in as_list(values)]
    if "*" in named:
        return True
    return principal is not None and any(
        p == principal or (p.endswith(":root") and principal.startswith(p.removesuffix("root"))) for p in named
    )


# Operators whose condition holds when the key is absent from the request (AWS: "If the key that you specify in
# a policy condition is not present in the request context, the values do not match and the condition is false
# [...] If the policy condition requires that the key is not matched, such as StringNotLike or ArnNotLike, and the
# right key is not present, the condition is true.").
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase"}
_NEGATED |= {"StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike"}


def _matches(operator: str, expected: Any, value: str) -> bool:
    if operator == "StringEquals":
        return str(expected) == value
    if operator == "StringEqualsIgnoreCase":
        return str(expected).lower() == value.lower()
    if operator in ("StringLike", "ArnLike", "ArnEquals"):  # ArnEquals takes wildcards too
        return glob(str(expected), value)
    if operator == "Bool":
        return str(expected).lower() == value.lower()
    raise AssertionError(f"condition operator {operator} is not modelled")


def _holds(operator: str, expected: list[Any], values: list[str] | None) -> bool:
    """One condition key: ``values`` from the request (None when the request lacks the key)."""
    if operator == "Null":
        (flag,) = expected
        return (values is None) == (str(flag).lower() == "true")
    base = operator.removesuffix("IfExists")
    if values is None:
        return base != operator or base in _NEGATED
    if base in _NEGATED:
        return not any(_matches(_NEGATED[base], e, v) for e in expected for v in values)
    return any(_matches(base, e, v) for e in expected for v in values)


def conditions_hold(statement: Mapping[str, Any], context: Context) -> bool:
    """Whether every condition of ``statement`` holds for a request with ``context`` (keys are case-insensitive)."""
    request = {key.lower(): [str(v) for v in as_list(value)] for key, value in context.items()}
    for operator, keys in statement.get("Condition", {}).items():
        assert ":" not in operator, f"{operator}: set operators are not modelled"
        for key, expected in keys.items():
            if not _holds(operator, as_list(expected), request.get(key.lower())):
                return False
    return True


def effect(
    statements: Iterable[Mapping[str, Any]],
    action: str,
    resource: str,
    context: Context | None = None,
    *,
    principal: str | None = None,
) -> str:
    """``Deny``, ``Allow`` or ``implicit deny`` for ``action`` on ``resource`` by ``principal``, for a request whose
    condition keys are ``context`` (nothing else: a key it lacks is absent, as IAM evaluates it)."""
    context = context or {}
    matching = [
        s
        for s in statements
        if covers_action(s, action)
        and covers_resource(s, resource)
        and covers_principal(s, principal)
        and conditions_hold(s, context)
    ]
    if any(s["Effect"] == "Deny" for s in matching):
        return "Deny"
    return "Allow" if matching else "implicit deny"


def services(statements: Iterable[Mapping[str, Any]]) -> set[str]:
    """The service prefixes of every action an Allow statement names."""
    return {
        str(action).split(":", 1)[0]
        for statement in statements
        if statement["Effect"] == "Allow"
        for action in as_list(statement.get("Action", []))
    }


# --- the bootstrap stack ------------------------------------------------------------------------------


def load_bootstrap(synth_dir: Path) -> dict[str, Any]:
    """The bootstrap stack that ``main.py`` synthesized beside the environments."""
    return json.loads((synth_dir / "stacks" / BOOTSTRAP_STACK / "cdk.tf.json").read_text())


def synth_bootstrap(
    config: BootstrapConfig = BOOTSTRAP,
    environments: Mapping[str, EnvironmentConfig] = MATRIX,
    deployment: DeploymentSettings | None = None,
) -> dict[str, Any]:
    """A bootstrap stack built alone, checks run, with each resource's construct path (as a full synth writes)."""
    from stacks.bootstrap_stack import BootstrapStack

    return written(BootstrapStack(cdktf.Testing.app(), config, environments, deployment or DeploymentSettings()))


def trust(stack: dict[str, Any], role_path: str) -> dict[str, Any]:
    """The trust policy of the role at ``role_path``."""
    (config,) = [c for c in resources(stack, "aws_iam_role").values() if c["//"]["metadata"]["path"] == role_path]
    return policy(config["assume_role_policy"])


def role_statements(stack: dict[str, Any], role_path: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy of the role at ``role_path``, whoever wrote the policy."""
    role = ref(stack, "aws_iam_role", role_path, "name")
    return [
        statement
        for config in resources(stack, "aws_iam_role_policy").values()
        if config["role"] == role
        for statement in policy(config["policy"])["Statement"]
    ]


def github_role_paths(stack: dict[str, Any]) -> dict[str, str]:
    """Role name -> construct path of every role the GitHub OIDC provider federates."""
    provider = ref(stack, "aws_iam_openid_connect_provider", "github-oidc/provider", "arn")
    return {
        config["name"]: config["//"]["metadata"]["path"]
        for config in resources(stack, "aws_iam_role").values()
        if any(
            s.get("Principal", {}).get("Federated") == provider
            for s in policy(config["assume_role_policy"])["Statement"]
        )
    }


def state_keys(stacks: Mapping[str, dict[str, Any]]) -> dict[str, str]:
    """Each environment's state key, as its own stack's S3 backend names it."""
    return {env: stack["terraform"]["backend"]["s3"]["key"] for env, stack in stacks.items()}


def variables_only(config: dict[str, Any]) -> dict[str, Any]:
    """The stack's ``variable`` blocks alone: a configuration whose ``terraform plan`` only evaluates them."""
    return {"variable": config["variable"]}


def deploy_role(stack: dict[str, Any], env: str) -> str:
    """The construct path of ``env``'s deploy role, found through the ``deploy_role_arns`` output."""
    return _role_of(stack, output(stack, "deploy_role_arns")["value"][env])


def plan_role(stack: dict[str, Any]) -> str:
    """The construct path of the plan role, found through the ``plan_role_arn`` output."""
    return _role_of(stack, output(stack, "plan_role_arn")["value"])


def _role_of(stack: dict[str, Any], arn_ref: str) -> str:
    name = arn_ref.removeprefix("${aws_iam_role.").removesuffix(".arn}")
    return str(resources(stack, "aws_iam_role")[name]["//"]["metadata"]["path"])


def state_bucket_arn(stack: dict[str, Any]) -> str:
    """How the stack refers to the state bucket's ARN."""
    return ref(stack, "aws_s3_bucket", "state/bucket/bucket", "arn")


def statements_of(stack: dict[str, Any], resource_type: str, path: str) -> list[dict[str, Any]]:
    """The statements of the ``policy`` argument of the resource at ``path``."""
    return list(policy(only(stack, resource_type, path)["policy"])["Statement"])


def web_identity_statement(stack: dict[str, Any], subject: str) -> dict[str, Any]:
    """One statement: tokens of GitHub's provider, for STS, with exactly ``subject`` (its Sid aside)."""
    provider = ref(stack, "aws_iam_openid_connect_provider", "github-oidc/provider", "arn")
    return {
        "Effect": "Allow",
        "Principal": {"Federated": provider},
        "Action": WEB_IDENTITY,
        "Condition": {
            "StringEquals": {f"{GITHUB_ISSUER_HOST}:aud": STS_AUDIENCE, f"{GITHUB_ISSUER_HOST}:sub": subject}
        },
    }


def lifecycle_rules(stack: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    """The lifecycle rules of the bucket construct at ``bucket``."""
    return list(only(stack, "aws_s3_bucket_lifecycle_configuration", f"{bucket}/lifecycle")["rule"])


def state_history(stack: dict[str, Any]) -> tuple[set[int], list[dict[str, Any]]]:
    """How long the state bucket keeps overwritten versions (days), and its rules that expire current objects."""
    rules = lifecycle_rules(stack, "state/bucket")
    kept = {e["noncurrent_days"] for r in rules for e in r.get("noncurrent_version_expiration", [])}
    return kept, [r for r in rules if r.get("expiration")]


def is_read(action: str) -> bool:
    """Whether ``action`` (or its wildcard) only reads: ``Get*``, ``List*``, ``Describe*``."""
    return action.split(":", 1)[1].startswith(("Get", "List", "Describe"))


def read_only_access() -> list[dict[str, Any]]:
    """The statements of AWS's ``ReadOnlyAccess`` policy, as moto ships them (a recent version of AWS's)."""
    return list(_read_only_access())


@functools.cache
def _read_only_access() -> tuple[dict[str, Any], ...]:
    # moto's catalogue of every AWS managed policy is megabytes of JSON: parsed once per process.
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    return tuple(json.loads(aws_managed_policies_data)[READ_ONLY_POLICY]["Document"]["Statement"])


# --- request contexts ------------------------------------------------------------------------------------


def default_tags(stack: dict[str, Any]) -> dict[str, str]:
    """The tags the stack's AWS provider (its default one, not an alias) puts on every resource it creates."""
    (provider,) = [provider for provider in stack["provider"]["aws"] if "alias" not in provider]
    return dict(provider["default_tags"][0]["tags"])


def resource_tagged(value: str) -> dict[str, str]:
    """A request on an existing resource whose ``environment`` tag is ``value`` (IAM's ``aws:ResourceTag``)."""
    return {f"aws:ResourceTag/{ENVIRONMENT_TAG}": value}


def request_tagged(value: str) -> dict[str, str]:
    """A request that creates or tags a resource with ``environment = value`` (IAM's ``aws:RequestTag``)."""
    return {f"aws:RequestTag/{ENVIRONMENT_TAG}": value}


def state_region(stack: dict[str, Any]) -> str:
    """The state bucket's region, as the stack's S3 backend names it."""
    return str(stack["terraform"]["backend"]["s3"]["region"])


def state_request(stack: dict[str, Any]) -> dict[str, str]:
    """What a Terraform S3 backend's request to the state bucket carries: its region, over TLS, with no
    encryption header (``encrypt = false``) and no ``aws:ResourceTag`` (S3 puts a bucket's tags in the request
    context only for buckets with ABAC enabled, which is off by default)."""
    return {"aws:RequestedRegion": state_region(stack), "aws:SecureTransport": "true"}


def through_s3(stack: dict[str, Any]) -> dict[str, str]:
    """A KMS request S3 makes for its caller on an object of the state bucket (SSE-KMS)."""
    return {"kms:ViaService": f"s3.{state_region(stack)}.amazonaws.com", "aws:RequestedRegion": state_region(stack)}


def state_key_arn(stack: dict[str, Any]) -> str:
    return ref(stack, "aws_kms_key", "state/key", "arn")


def deployer_arn(stack: dict[str, Any]) -> str:
    """Whoever applies the bootstrap: the role (or user) behind the caller's session."""
    return data_ref(stack, "aws_iam_session_context", "bootstrap/deployer", "issuer_arn")


def account_principal(stack: dict[str, Any], name: str) -> str:
    """The ARN of another role of the bootstrap's account."""
    partition = data_ref(stack, "aws_partition", "bootstrap/partition", "partition")
    account = data_ref(stack, "aws_caller_identity", "bootstrap/account", "account_id")
    return f"arn:{partition}:iam::{account}:role/{name}"


# An action per regional service the environments call that changes a resource or reads its data: what a deploy
# role must not do to another environment's resources (names from AWS's Service Authorization Reference).
CHANGE_OR_READ_DATA = {
    "acm": "acm:DeleteCertificate",
    "application-autoscaling": "application-autoscaling:DeleteScalingPolicy",
    "autoscaling": "autoscaling:DeleteAutoScalingGroup",
    "cloudwatch": "cloudwatch:DeleteAlarms",
    "dynamodb": "dynamodb:Scan",
    "ec2": "ec2:TerminateInstances",
    "ecr": "ecr:BatchGetImage",
    "eks": "eks:DeleteCluster",
    "elasticloadbalancing": "elasticloadbalancing:DeleteLoadBalancer",
    "events": "events:DeleteRule",
    "kms": "kms:Decrypt",
    "lambda": "lambda:UpdateFunctionCode",
    "logs": "logs:GetLogEvents",
    "rds": "rds:DeleteDBInstance",
    "sagemaker": "sagemaker:DeleteEndpoint",
    "secretsmanager": "secretsmanager:GetSecretValue",
    "sns": "sns:Publish",
    "sqs": "sqs:ReceiveMessage",
    "ssm": "ssm:GetParameter",
    "wafv2": "wafv2:DeleteWebACL",
}
# Services whose grants are bounded by resource names rather than by region (S3 and IAM by the environment's
# prefix, Route53's records and Budgets by name).
GLOBAL_OR_NAMED = ("s3", "iam", "route53", "budgets")


# --- the AWS API behind each resource type ------------------------------------------------------------

# The IAM service behind each AWS resource type or data source, by the longest prefix of its type name.
SERVICE_OF_TYPE = {
    "aws_acm_": "acm",
    "aws_api_gateway_": "apigateway",
    "aws_appautoscaling_": "application-autoscaling",
    "aws_autoscaling_": "autoscaling",
    "aws_budgets_": "budgets",
    "aws_cloudwatch_event_": "events",
    "aws_cloudwatch_log_": "logs",
    "aws_cloudwatch_dashboard": "cloudwatch",
    "aws_cloudwatch_metric_alarm": "cloudwatch",
    "aws_db_": "rds",
    "aws_dynamodb_": "dynamodb",
    "aws_ecr_": "ecr",
    "aws_eks_": "eks",
    "aws_iam_": "iam",
    "aws_kms_": "kms",
    "aws_lambda_": "lambda",
    "aws_lb": "elasticloadbalancing",
    "aws_route53_": "route53",
    "aws_s3_": "s3",
    "aws_sagemaker_": "sagemaker",
    "aws_scheduler_": "scheduler",
    "aws_secretsmanager_": "secretsmanager",
    "aws_sns_": "sns",
    "aws_sqs_": "sqs",
    "aws_ssm_": "ssm",
    "aws_wafv2_": "wafv2",
    # EC2's API: networks, addresses, gateways, instances, their templates and flow logs.
    **dict.fromkeys(
        (
            *("aws_vpc", "aws_subnet", "aws_security_group", "aws_default_security_group", "aws_route_table"),
            *("aws_route", "aws_internet_gateway", "aws_nat_gateway", "aws_eip", "aws_launch_template", "aws_ami"),
            *("aws_placement_group", "aws_flow_log", "aws_availability_zones", "aws_ec2_", "aws_instance"),
        ),
        "ec2",
    ),
}
# Data sources answered without a permission: the provider's own knowledge, or STS's GetCallerIdentity.
NO_PERMISSION = ("aws_caller_identity", "aws_partition", "aws_region", "aws_lb_hosted_zone_id")


def service_of_type(resource_type: str) -> str | None:
    if resource_type in NO_PERMISSION:
        return None
    prefixes = [p for p in SERVICE_OF_TYPE if resource_type.startswith(p)]
    assert prefixes, f"{resource_type}: which IAM service does it call? (add it to SERVICE_OF_TYPE)"
    return SERVICE_OF_TYPE[max(prefixes, key=len)]


# --- the Terraform variables, evaluated by terraform plan --------------------------------------------------


def rejected_variables(variables_plan: tuple[Path, dict[str, str]], **values: str) -> list[str]:
    """The variables ``terraform plan`` rejects as invalid values (``var.<name>``), given ``values``."""
    workdir, env = variables_plan
    args = ["plan", "-input=false", "-no-color", "-json", *(f"-var={k}={v}" for k, v in values.items())]
    result = run_terraform(args, workdir, env, ok_returncodes=(0, 1))
    messages = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    errors = [
        m["diagnostic"] for m in messages if m.get("type") == "diagnostic" and m["diagnostic"]["severity"] == "error"
    ]
    assert all(e["summary"] == "Invalid value for variable" for e in errors), errors
    assert (result.returncode == 0) == (not errors)
    return sorted(v["traversal"] for e in errors for v in e["snippet"]["values"])


def python_accepts(**values: str) -> bool:
    """Whether ``DeploymentSettings`` (the ``ML_PLATFORM_*`` variables' model) accepts ``values``."""
    try:
        DeploymentSettings(**values)
    except ValueError:  # pydantic's ValidationError
        return False
    return True
