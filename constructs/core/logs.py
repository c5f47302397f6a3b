"""The platform's CloudWatch Logs groups: encrypted with the environment's logs key and kept where data is protected."""

from __future__ import annotations

from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.protection import prevent_destroy, retain_on_destroy
from constructs.core.refs import KmsKeyRef


def encrypted_log_group(
    scope: Construct, id: str, *, name: str, retention_days: int, key: KmsKeyRef, protected: bool
) -> Any:
    """A log group ``name`` keeping events ``retention_days``, encrypted with ``key``.

    In a protected environment it can be neither destroyed by a plan (``prevent_destroy``) nor deleted when its
    section leaves the configuration (``skip_destroy``: Terraform forgets it, its events expire with the retention).
    """
    return aws.cloudwatch_log_group.CloudwatchLogGroup(
        scope,
        id,
        name=name,
        retention_in_days=retention_days,
        kms_key_id=key.arn,
        skip_destroy=retain_on_destroy(protected),
        lifecycle=prevent_destroy(protected),
    )
