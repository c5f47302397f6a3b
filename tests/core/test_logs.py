"""encrypted_log_group: every platform log group is encrypted with the logs key and kept where data is protected."""

from __future__ import annotations

import pytest
from constructs.core.logs import encrypted_log_group

from tests.support.stacks import TinyStack


@pytest.mark.parametrize("protected", [True, False])
def test_a_log_group_is_encrypted_and_kept_only_where_data_is_protected(protected: bool) -> None:
    tiny = TinyStack()
    encrypted_log_group(tiny.stack, "logs", name="/ml-platform/x", retention_days=30, key=tiny.key, protected=protected)
    (group,) = tiny.synth()["resource"]["aws_cloudwatch_log_group"].values()
    assert group["name"] == "/ml-platform/x" and group["retention_in_days"] == 30
    assert group["kms_key_id"] == "${aws_kms_key.key.arn}"
    if protected:
        assert group["skip_destroy"] is True and group["lifecycle"] == {"prevent_destroy": True}
    else:
        assert "skip_destroy" not in group and "lifecycle" not in group
