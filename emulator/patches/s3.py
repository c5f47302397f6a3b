"""S3: the replication configuration read back as it was written.

moto 5.2.5 stores a ``PutBucketReplication`` request whole, but its ``GetBucketReplication`` answers every rule
with ``Filter: {Prefix: ""}`` and ``DeleteMarkerReplication: Disabled`` and leaves ``SourceSelectionCriteria`` and
``ExistingObjectReplication`` out. The provider reads the configuration back after writing it, so an
``aws_s3_bucket_replication_configuration`` with a prefix filter or SSE-KMS selection (the serving standby's) would
show a change on every plan. The patch answers with the stored rule's own elements.
"""

from __future__ import annotations

from typing import Any

# The elements of a stored rule that GetBucketReplication returns, in the order of AWS's ReplicationRule.
_RULE_ELEMENTS = (
    "ID",
    "Priority",
    "Prefix",
    "Filter",
    "Status",
    "SourceSelectionCriteria",
    "ExistingObjectReplication",
    "Destination",
    "DeleteMarkerReplication",
)


def _filter(value: Any) -> Any:
    # An empty <Prefix/> element is parsed as None; AWS returns it as an empty string.
    if isinstance(value, dict):
        return {key: ("" if key == "Prefix" and inner is None else inner) for key, inner in value.items()}
    return value


def apply() -> None:
    """Answer GetBucketReplication with every element of the stored rules."""
    from moto.core.responses import ActionResult
    from moto.s3.exceptions import ReplicationConfigurationNotFoundError
    from moto.s3.responses import S3Response

    def get_bucket_replication(self: Any) -> Any:
        self.data["Action"] = "GetBucketReplication"
        replication = self.backend.get_bucket_replication(self.bucket_name)
        if not replication:
            raise ReplicationConfigurationNotFoundError(bucket_name=self.bucket_name)
        rules = []
        for stored in replication["Rule"]:
            rule = {key: stored[key] for key in _RULE_ELEMENTS if stored.get(key) is not None}
            if "Filter" in rule:
                rule["Filter"] = _filter(rule["Filter"])
            # A rule written without the element is answered as moto always answered it.
            rule.setdefault("DeleteMarkerReplication", {"Status": "Disabled"})
            rules.append(rule)
        return self.serialized(
            ActionResult({"ReplicationConfiguration": {"Role": replication["Role"], "Rules": rules}})
        )

    S3Response.get_bucket_replication = get_bucket_replication
