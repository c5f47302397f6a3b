"""The platform context: one environment's names, place and owner tags, and the ARNs built from them."""

from __future__ import annotations

import pytest
from constructs.core.context import OWNER_TAG_KEYS, PlatformContext
from constructs.core.errors import ConfigurationError

from tests.support.stacks import OWNER_TAGS, context


def test_arns_and_principals_follow_partition_region_and_account() -> None:
    c = context(partition="aws-cn", region="cn-north-1", account_id="210987654321")
    assert c.arn("ecr", "repository/*") == "arn:aws-cn:ecr:cn-north-1:210987654321:repository/*"
    assert c.arn("iam", "role/x", region=False) == "arn:aws-cn:iam::210987654321:role/x"
    assert c.arn("s3", "bucket", region=False, account=False) == "arn:aws-cn:s3:::bucket"
    assert c.account_root == "arn:aws-cn:iam::210987654321:root"
    assert c.managed_policy_arn("service-role/X") == "arn:aws-cn:iam::aws:policy/service-role/X"
    assert c.via_service("s3") == "s3.cn-north-1.amazonaws.com"


@pytest.mark.parametrize("missing", OWNER_TAG_KEYS)
def test_every_owner_tag_is_required(missing: str) -> None:
    tags = {key: value for key, value in OWNER_TAGS.items() if key != missing}
    with pytest.raises(ConfigurationError) as caught:
        context(owner_tags=tags)
    assert caught.value.field == "owner_tags" and missing in caught.value.allowed


def test_a_name_prefix_is_required() -> None:
    with pytest.raises(ConfigurationError, match="name_prefix"):
        PlatformContext("test", "", "1", "us-east-1", "aws", OWNER_TAGS, "arn:aws:iam::1:role/d")
