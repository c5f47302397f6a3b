"""The web ACL in front of an internet-facing model: AWS's managed rules and a rate limit per client address."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require

# AWS's baseline rule groups for any web application, and inputs known to exploit common vulnerabilities.
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS_RULE_SET = "AWSManagedRulesKnownBadInputsRuleSet"
# The common rule set blocks request bodies over 8 KB; an inference request (a long prompt, an image, a batch) is
# often larger, so that one rule only counts.
COUNTED_RULES = ("SizeRestrictions_BODY",)
_METRIC_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _visibility(metric: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": metric}


def web_acl_rules(name: str, requests_per_5_minutes: int) -> list[dict[str, Any]]:
    """The ACL's rules in WAF's API form: a per-address rate limit first, then the two managed rule groups."""
    return [
        {
            "Name": "rate-limit-per-address",
            "Priority": 0,
            "Action": {"Block": {}},
            "Statement": {"RateBasedStatement": {"Limit": requests_per_5_minutes, "AggregateKeyType": "IP"}},
            "VisibilityConfig": _visibility(f"{name}-rate-limit"),
        },
        {
            "Name": COMMON_RULE_SET,
            "Priority": 1,
            "OverrideAction": {"None": {}},
            "Statement": {
                "ManagedRuleGroupStatement": {
                    "VendorName": "AWS",
                    "Name": COMMON_RULE_SET,
                    "RuleActionOverrides": [{"Name": rule, "ActionToUse": {"Count": {}}} for rule in COUNTED_RULES],
                }
            },
            "VisibilityConfig": _visibility(f"{name}-common"),
        },
        {
            "Name": KNOWN_BAD_INPUTS_RULE_SET,
            "Priority": 2,
            "OverrideAction": {"None": {}},
            "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": KNOWN_BAD_INPUTS_RULE_SET}},
            "VisibilityConfig": _visibility(f"{name}-known-bad-inputs"),
        },
    ]


@dataclass(frozen=True)
class ModelWebAclProps:
    """Props for :class:`ModelWebAcl`.

    name: the web ACL's name (letters, digits, '-' and '_'; it also prefixes its metrics).
    description: what it protects.
    requests_per_5_minutes: requests one client address may make in any 5 minutes before it is blocked.
    """

    name: str
    description: str
    requests_per_5_minutes: int


class ModelWebAcl(Construct):
    """A regional WAF web ACL for one internet-facing load balancer.

    Requests are allowed unless a rule blocks them: a client address over its rate limit, then AWS's common and
    known-bad-inputs rule groups (with the common set's 8 KB body limit only counted). Every rule reports
    CloudWatch metrics and sampled requests. The load balancer is associated with it by the AWS Load Balancer
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
            rule_json=json.dumps(web_acl_rules(props.name, props.requests_per_5_minutes), sort_keys=True),
            visibility_config=acl.Wafv2WebAclVisibilityConfig(
                cloudwatch_metrics_enabled=True, metric_name=props.name, sampled_requests_enabled=True
            ),
        )

    @property
    def arn(self) -> str:
        """The web ACL's ARN (what the Ingress names)."""
        return self.web_acl.arn
