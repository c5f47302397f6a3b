"""ModelWebAcl: the regional web ACL in front of an internet-facing model, and its request log, read from the JSON.

The rules are what the ACL promises: a per-address rate limit evaluated first and blocking, AWS's common and
known-bad-inputs rule groups enforced, with only the common set's 8 KB body limit counted (inference requests are
larger), metrics for every rule within WAF's limits (as the AWS SDK's service model, pinned with boto3 in
requirements-dev.txt, states them). A rule's ``statement`` is untyped in the provider bindings
(WAF statements nest without end), so nothing in Python checks its field names: the real terraform validates them
against the pinned provider's schema. Every request is logged to a log group WAF accepts (``aws-waf-logs-``),
encrypted with the given key, kept as long as asked, with the client's credentials redacted, and kept from
Terraform's destroy in a protected environment.
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any

import cdktf
import pytest
from botocore.session import get_session
from constructs.core.errors import ConfigurationError
from constructs.serving.web_acl import ModelWebAcl, ModelWebAclProps

from gitops.terraform import terraform_cli_env, validate_offline
from tests.support.stacks import TinyStack
from tests.support.synth_json import only, output, ref

# Two ACLs with different limits and retentions in one stack: each must carry its own. "search" is protected.
LIMITS = {"chat": 500, "search": 120_000}
RETENTION = {"chat": 30, "search": 400}


def _props(tiny: TinyStack, model: str, **changes: Any) -> ModelWebAclProps:
    """The props of the web ACL of ``model`` (``search`` is in a protected environment), with ``changes``."""
    values: dict[str, Any] = {
        "name": f"p-test-model-{model}",
        "description": f"Model {model}",
        "requests_per_5_minutes": LIMITS.get(model, 100),
        "logs_key": tiny.key,
        "log_retention_days": RETENTION.get(model, 7),
        "protected": model == "search",
        **changes,
    }
    return ModelWebAclProps(**values)


def _synth() -> TinyStack:
    tiny = TinyStack()
    for name in LIMITS:
        ModelWebAcl(tiny.stack, f"{name}-acl", _props(tiny, name))
    return tiny


@pytest.fixture(scope="module")
def stack() -> dict[str, Any]:
    return _synth().synth_with_paths()


def rules_of(stack: dict[str, Any], name: str) -> list[dict[str, Any]]:
    rules = only(stack, "aws_wafv2_web_acl", f"{name}-acl/web-acl")["rule"]
    assert len({rule["name"] for rule in rules}) == len(rules), "two rules share a name"
    return rules


@pytest.mark.parametrize("name", LIMITS)
def test_the_acl_is_regional_and_allows_what_no_rule_blocks(stack, name) -> None:
    acl = only(stack, "aws_wafv2_web_acl", f"{name}-acl/web-acl")
    # REGIONAL is the scope a load balancer can be associated with (CLOUDFRONT is for distributions).
    assert acl["scope"] == "REGIONAL"
    assert acl["name"] == f"p-test-model-{name}"
    assert acl["description"] == f"Model {name}"
    assert acl["default_action"] == {"allow": {}}
    assert acl["visibility_config"] == {
        "cloudwatch_metrics_enabled": True,
        "metric_name": f"p-test-model-{name}",
        "sampled_requests_enabled": True,
    }


@pytest.mark.parametrize(("name", "limit"), sorted(LIMITS.items()))
def test_the_rate_limit_per_address_is_evaluated_first_and_blocks(stack, name, limit) -> None:
    rules = rules_of(stack, name)
    priorities = [rule["priority"] for rule in rules]
    # WAF evaluates by priority (lowest first); each must be unique.
    assert len(set(priorities)) == len(priorities)
    first = min(rules, key=lambda rule: rule["priority"])
    assert first["statement"] == {"rate_based_statement": {"limit": limit, "aggregate_key_type": "IP"}}
    assert first["action"] == {"block": {}}
    # Only the rate rule is a rate rule: the managed groups never carry the limit.
    assert [rule["name"] for rule in rules if "rate_based_statement" in rule["statement"]] == [first["name"]]


@pytest.mark.parametrize("name", LIMITS)
def test_the_managed_rule_groups_are_enforced_except_the_body_size_rule(stack, name) -> None:
    rules = rules_of(stack, name)
    managed = {
        rule["statement"]["managed_rule_group_statement"]["name"]: rule
        for rule in rules
        if "managed_rule_group_statement" in rule["statement"]
    }
    assert set(managed) == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    for group, rule in managed.items():
        assert rule["statement"]["managed_rule_group_statement"]["vendor_name"] == "AWS", group
        # override_action none keeps the group's own Block actions; count would turn the whole group off.
        assert rule["override_action"] == {"none": {}}, group
        assert "action" not in rule, group
    common = managed["AWSManagedRulesCommonRuleSet"]["statement"]["managed_rule_group_statement"]
    # Only the 8 KB body limit is counted instead of blocking; every other rule of the set blocks.
    assert common["rule_action_override"] == [{"name": "SizeRestrictions_BODY", "action_to_use": {"count": {}}}]
    bad_inputs = managed["AWSManagedRulesKnownBadInputsRuleSet"]["statement"]["managed_rule_group_statement"]
    assert "rule_action_override" not in bad_inputs
    # The managed groups come after the rate limit: an address over its limit is blocked before anything else.
    rate = next(rule for rule in rules if "rate_based_statement" in rule["statement"])
    assert all(rule["priority"] > rate["priority"] for rule in managed.values())


@pytest.mark.parametrize("name", LIMITS)
def test_every_rule_reports_metrics_under_the_acls_name(stack, name) -> None:
    rules = rules_of(stack, name)
    configs = [rule["visibility_config"] for rule in rules]
    assert all(c["cloudwatch_metrics_enabled"] is True and c["sampled_requests_enabled"] is True for c in configs)
    metrics = [c["metric_name"] for c in configs]
    # One metric per rule, each telling which ACL it belongs to, each one WAF accepts.
    assert len(set(metrics)) == len(rules) == 3
    assert all(metric.startswith(f"p-test-model-{name}-") for metric in metrics)
    assert [m for m in metrics if not _waf_accepts("MetricName", m)] == []


def _waf_accepts(shape_name: str, value: str) -> bool:
    """Whether WAF's API accepts ``value`` for the string shape ``shape_name`` (its length and pattern, as the AWS
    SDK's service model states them)."""
    rule = get_session().get_service_model("wafv2").shape_for(shape_name).metadata
    return rule["min"] <= len(value) <= rule["max"] and re.search(rule["pattern"], value) is not None


def test_the_longest_accepted_name_still_gives_names_and_metrics_waf_accepts() -> None:
    # The ACL's name prefixes its rules' metrics (and names its log group): a name the construct accepts must not
    # make WAF refuse the ACL at apply.
    tiny = TinyStack()
    ModelWebAcl(tiny.stack, "acl", _props(tiny, "x", name="n" * 128))
    acl = only(tiny.synth_with_paths(), "aws_wafv2_web_acl", "acl/web-acl")
    assert _waf_accepts("EntityName", acl["name"])
    metrics = [acl["visibility_config"]["metric_name"], *(r["visibility_config"]["metric_name"] for r in acl["rule"])]
    assert [m for m in metrics if not _waf_accepts("MetricName", m)] == []
    # The check can say no.
    assert not _waf_accepts("MetricName", "n" * 256) and not _waf_accepts("EntityName", "model chat")


@pytest.mark.parametrize("name", LIMITS)
def test_every_request_is_logged_to_an_encrypted_waf_log_group_without_credentials(stack, name) -> None:
    group = only(stack, "aws_cloudwatch_log_group", f"{name}-acl/log-group")
    # WAF delivers to CloudWatch Logs only into groups whose name starts with aws-waf-logs-.
    assert group["name"] == f"aws-waf-logs-p-test-model-{name}"
    assert group["retention_in_days"] == RETENTION[name]
    assert group["kms_key_id"] == ref(stack, "aws_kms_key", "key", "arn")
    logging = only(stack, "aws_wafv2_web_acl_logging_configuration", f"{name}-acl/logging")
    assert logging["resource_arn"] == ref(stack, "aws_wafv2_web_acl", f"{name}-acl/web-acl", "arn")
    assert logging["log_destination_configs"] == [
        ref(stack, "aws_cloudwatch_log_group", f"{name}-acl/log-group", "arn")
    ]
    # A client's bearer token or password never reaches the log.
    assert logging["redacted_fields"] == [{"single_header": {"name": "authorization"}}]


def test_a_protected_environments_request_log_survives_terraform(stack) -> None:
    protected = only(stack, "aws_cloudwatch_log_group", "search-acl/log-group")
    assert protected["skip_destroy"] is True
    assert protected["lifecycle"] == {"prevent_destroy": True}
    unprotected = only(stack, "aws_cloudwatch_log_group", "chat-acl/log-group")
    assert "skip_destroy" not in unprotected and "lifecycle" not in unprotected


def test_the_arn_is_the_acls_own() -> None:
    tiny = TinyStack()
    acl = ModelWebAcl(tiny.stack, "acl", _props(tiny, "a"))
    # What a load balancer is associated with: the ARN of this ACL's resource, as the JSON refers to it.
    cdktf.TerraformOutput(tiny.stack, "arn", value=acl.arn)
    config = tiny.synth_with_paths()
    assert output(config, "arn")["value"] == ref(config, "aws_wafv2_web_acl", "acl/web-acl", "arn")


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        pytest.param({"name": "model chat"}, "name", "letters, digits, - and _", id="space-in-name"),
        pytest.param({"name": "a" * 129}, "name", "1-128", id="name-over-128"),
        pytest.param({"name": ""}, "name", "1-128", id="empty-name"),
        pytest.param({"requests_per_5_minutes": 9}, "requests_per_5_minutes", "10 to 2,000,000,000", id="limit-9"),
        pytest.param(
            {"requests_per_5_minutes": 2_000_000_001},
            "requests_per_5_minutes",
            "10 to 2,000,000,000",
            id="limit-over-2e9",
        ),
    ],
)
def test_bad_props_are_rejected_naming_the_field(changes, field, allowed) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        ModelWebAcl(tiny.stack, "acl", _props(tiny, "chat", **changes))
    assert (error.value.where, error.value.field) == ("tiny/acl", field)
    assert allowed in error.value.allowed


@pytest.mark.terraform
def test_the_rules_validate_with_the_real_terraform(tmp_path: Path) -> None:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not on PATH: install Terraform 1.11 (see README prerequisites)")
    good = _synth().synth()
    # The same configuration with one statement field misspelt: the check must be able to say no.
    misspelt = copy.deepcopy(good)
    for acl in misspelt["resource"]["aws_wafv2_web_acl"].values():
        statement = acl["rule"][0]["statement"]
        statement["rate_based_statment"] = statement.pop("rate_based_statement")
    problems = validate_offline(
        {"acls": good, "misspelt": misspelt}, tmp_path / "validate", terraform_cli_env(tmp_path)
    )
    assert problems["acls"] == []
    assert problems["misspelt"][0] == "invalid"
    assert any("rate_based_statment" in problem for problem in problems["misspelt"])
