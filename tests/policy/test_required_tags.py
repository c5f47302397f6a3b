"""TAG-1: the owner tags reach every taggable resource and everything launched from it."""

from __future__ import annotations

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.checks import SynthChecks
from constructs.core.context import OWNER_TAG_KEYS
from constructs.policy.required_tags import RequiredTags

from tests.policy.cases import check
from tests.support.stacks import OWNER_TAGS, written

FULL_TAGS = dict(OWNER_TAGS)


def _tiny_stack(default_tags: dict[str, str] | None) -> cdktf.TerraformStack:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "tiny")
    aws.provider.AwsProvider(
        stack,
        "aws",
        region="us-east-1",
        default_tags=[aws.provider.AwsProviderDefaultTags(tags=default_tags)] if default_tags else None,
    )
    SynthChecks("required-tags", [RequiredTags(OWNER_TAG_KEYS)]).apply_to(stack)
    return stack


def test_required_tags_pass_when_default_tags_cover_resources() -> None:
    stack = _tiny_stack(FULL_TAGS)
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    assert "aws_sns_topic" in written(stack)["resource"]


def test_required_tags_fail_synth_naming_path_rule_and_missing_keys() -> None:
    stack = _tiny_stack({"environment": "dev", "team": "t"})
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    with pytest.raises(Exception, match=r"\[tiny/topic\] TAG-1: .*\['cost_center', 'project'\]"):
        written(stack)


def test_required_tags_reach_launched_instances_and_volumes() -> None:
    stack = _tiny_stack(FULL_TAGS)
    lt = aws.launch_template
    aws.launch_template.LaunchTemplate(
        stack,
        "lt",
        tag_specifications=[lt.LaunchTemplateTagSpecifications(resource_type="instance", tags=FULL_TAGS)],
    )
    with pytest.raises(Exception, match=r"tag_specifications for volume lack"):
        written(stack)


def test_required_tags_need_propagating_asg_tags() -> None:
    stack = _tiny_stack(FULL_TAGS)
    asg = aws.autoscaling_group
    asg.AutoscalingGroup(
        stack,
        "asg",
        max_size=1,
        min_size=0,
        tag=[asg.AutoscalingGroupTag(key=k, value=v, propagate_at_launch=k != "project") for k, v in FULL_TAGS.items()],
    )
    with pytest.raises(Exception, match=r"propagate_at_launch=true for \['project'\]"):
        written(stack)


def test_violations_list_each_finding_without_synthesizing() -> None:
    checks = SynthChecks("required-tags", [RequiredTags(OWNER_TAG_KEYS)])
    stack = _tiny_stack(None)
    aws.sns_topic.SnsTopic(stack, "topic", name="t")
    violations = checks.violations(stack)
    assert violations == [
        "[tiny/topic] TAG-1: aws_sns_topic.topic lacks tags ['environment', 'team', 'cost_center', 'project'] "
        "(set default_tags on its provider)"
    ]


def _stack_with_providers(*providers: dict, topic: dict) -> dict:
    return {"provider": {"aws": list(providers)}, "resource": {"aws_sns_topic": {"topic": topic}}}


def test_a_resource_uses_the_default_tags_of_its_own_provider_and_its_own_tags() -> None:
    rule = RequiredTags(OWNER_TAG_KEYS)
    partial = {"default_tags": [{"tags": {"environment": "dev", "team": "t"}}]}
    aliased = {"alias": "other", "default_tags": [{"tags": FULL_TAGS}]}
    # Its own tags complete what the provider's default tags leave out.
    own = {"tags": {"cost_center": "c", "project": "p"}}
    assert check(rule, _stack_with_providers(partial, aliased, topic=own), "aws_sns_topic", "topic") == []
    # An aliased provider's default tags count only for the resources that name it.
    assert (
        check(rule, _stack_with_providers(partial, aliased, topic={"provider": "aws.other"}), "aws_sns_topic", "topic")
        == []
    )
    assert check(rule, _stack_with_providers(partial, aliased, topic={}), "aws_sns_topic", "topic") == [
        "aws_sns_topic.topic lacks tags ['cost_center', 'project'] (set default_tags on its provider)"
    ]
