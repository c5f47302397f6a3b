"""The web ACL in front of an internet-facing model: AWS's managed rules and a rate limit per client address."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require
from constructs.core.logs import encrypted_log_group
from constructs.core.refs import KmsKeyRef

# AWS's baseline rule groups for any web application, and inputs known to exploit common vulnerabilities.
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
# The common rule set blocks request bodies over 8 KB; an inference request (a long prompt, an image, a batch) is
# often larger, so that one rule only counts.
COUNTED_RULES = ("SizeRestrictions_BODY",)
_METRIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _visibility(metric: str) -> Any:
    return aws.wafv2_web_acl.Wafv2WebAclRuleVisibilityConfig(
        cloudwatch_metrics_enabled=True, metric_name=metric, sampled_requests_enabled=True
    )


def _managed(vendor_rule_set: str, priority: int, name: str, counted: Sequence[str] = ()) -> Any:
    acl = aws.wafv2_web_acl
    statement: dict[str, Any] = {"name": vendor_rule_set, "vendor_name": "AWS"}
    if counted:
        statement["rule_action_override"] = [{"name": rule, "action_to_use": {"count": {}}} for rule in counted]
    return acl.Wafv2WebAclRule(
        name=vendor_rule_set,
        priority=priority,
        override_action=acl.Wafv2WebAclRuleOverrideAction(none=acl.Wafv2WebAclRuleOverrideActionNone()),
        statement={"managed_rule_group_statement": statement},
        visibility_config=_visibility(f"{name}-{vendor_rule_set}"),
    )


def web_acl_rules(name: str, requests_per_5_minutes: int) -> list[Any]:
    """The ACL's rules: a per-address rate limit first, then the two managed rule groups.

    The provider's bindings leave a rule's ``statement`` untyped (WAF statements nest without end), so it is the
    Terraform block itself, in the provider's field names.
    """
    acl = aws.wafv2_web_acl
    return [
        acl.Wafv2WebAclRule(
            name="rate-limit-per-address",
            priority=0,
            action=acl.Wafv2WebAclRuleAction(block=acl.Wafv2WebAclRuleActionBlock()),
            statement={"rate_based_statement": {"limit": requests_per_5_minutes, "aggregate_key_type": "IP"}},
            visibility_config=_visibility(f"{name}-rate-limit"),
        ),
        _managed(COMMON_RULE_SET, 1, name, COUNTED_RULES),
        _managed(KNOWN_BAD_INPUTS_RULE_SET, 2, name),
    ]


@dataclass(frozen=True)
class ModelWebAclProps:
    """Props for :class:`ModelWebAcl`.

    name: the web ACL's name (letters, digits, '-' and '_'; it also prefixes its metrics and its log group).
    description: what it protects.
    requests_per_5_minutes: requests one client address may make in any 5 minutes before it is blocked.
    logs_key: the KMS key encrypting its log group.
    log_retention_days: how long its request logs are kept.
    protected: the log group is never destroyed by Terraform, and kept if the stack is (a protected environment's
      request logs are evidence).
    """

    name: str
    description: str
    requests_per_5_minutes: int
    logs_key: KmsKeyRef
    log_retention_days: int
    protected: bool = False


class ModelWebAcl(Construct):
    """A regional WAF web ACL for one internet-facing load balancer.

    Requests are allowed unless a rule blocks them: a client address over its rate limit, then AWS's common and
    known-bad-inputs rule groups (with the common set's 8 KB body limit only counted). Every rule reports
    CloudWatch metrics and sampled requests, and every request is logged to a KMS-encrypted log group with the
    ``authorization`` header redacted. The load balancer is associated with it by the AWS Load Balancer
    Controller (the Ingress's ``wafv2-acl-arn``), whose IAM policy allows exactly that.
    """

    def __init__(self, scope: Construct, id: str, props: ModelWebAclProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(bool(_METRIC_NAME.fullmatch(props.name)), where, "name", props.name, "1-128 letters, digits, - and _")
        require(
            10 <= props.requests_per_5_minutes <= 2_000_000_000,
            where,
            "requests_per_5_minutes",
            props.requests_per_5_minutes,
            "10 to 2,000,000,000 (WAF's range for a rate-based rule)",
        )
        self.props = props
        acl = aws.wafv2_web_acl
        self.web_acl = acl.Wafv2WebAcl(
            self,
            "web-acl",
            name=props.name,
            description=props.description,
            scope="REGIONAL",
            default_action=acl.Wafv2WebAclDefaultAction(allow=acl.Wafv2WebAclDefaultActionAllow()),
            rule=web_acl_rules(props.name, props.requests_per_5_minutes),
            visibility_config=acl.Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=props.name, sampled_requests_enabled=True
            ),
        )
        # WAF logs only to log groups whose name starts with aws-waf-logs-.
        self.log_group = encrypted_log_group(
            self,
            "log-group",
            name=f"aws-waf-logs-{props.name}",
            retention_days=props.log_retention_days,
            key=props.logs_key,
            protected=props.protected,
        )
        logging = aws.wafv2_web_acl_logging_configuration
        self.logging = logging.Wafv2WebAclLoggingConfiguration(
            self,
            "logging",
            resource_arn=self.web_acl.arn,
            log_destination_configs=[self.log_group.arn],
            # Clients' credentials stay out of the logs.
            redacted_fields=[
                logging.Wafv2WebAclLoggingConfigurationRedactedFields(
                    single_header=logging.Wafv2WebAclLoggingConfigurationRedactedFieldsSingleHeader(
                        name="authorization"
                    )
                )
            ],
        )

    @property
    def arn(self) -> str:
        """The web ACL's ARN (what the Ingress names)."""
        return self.web_acl.arn
