"""Small stacks for construct tests: an AWS provider, a context and KMS keys, nothing else."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cdktf
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.refs import KmsKeyRef

OWNER_TAGS: Mapping[str, str] = {"environment": "test", "team": "t", "cost_center": "c", "project": "p"}


DEPLOYER_ARN = "arn:aws:iam::123456789012:role/deployer"
"""The role that runs Terraform in a test context (a real platform reads it from an aws_iam_session_context)."""


def context(**changes: Any) -> PlatformContext:
    """A context with literal account, region and partition (a real platform uses data-source tokens)."""
    values: dict[str, Any] = {
        "environment": "test",
        "name_prefix": "p-test",
        "account_id": "123456789012",
        "region": "us-east-1",
        "partition": "aws",
        "owner_tags": OWNER_TAGS,
        "deployer_arn": DEPLOYER_ARN,
    }
    values.update(changes)
    return PlatformContext(**values)


def written(stack: cdktf.TerraformStack) -> dict[str, Any]:
    """Synthesize ``stack``'s app as ``main.py`` does (the Aspects, then the checks applied to each stack, which fail
    the synth) and return ``stack`` as written to its ``cdk.tf.json``, ``//`` notes included.

    (``cdktf.Testing.synth`` runs no checks and drops every ``//`` block.)
    """
    app = stack.node.root
    assert isinstance(app, cdktf.App), f"{stack.node.path} does not belong to an App"
    app.synth()
    return json.loads((Path(app.outdir) / "stacks" / stack.node.id / "cdk.tf.json").read_text())


class TinyStack:
    """A stack with an AWS provider and one KMS key, to build a construct in and synthesize it alone."""

    def __init__(self, name: str = "tiny") -> None:
        self.app = cdktf.Testing.app()
        self.stack = cdktf.TerraformStack(self.app, name)
        aws.provider.AwsProvider(self.stack, "aws", region="us-east-1")
        self.key: KmsKeyRef = aws.kms_key.KmsKey(self.stack, "key")
        self.context = context()

    def synth(self) -> dict[str, Any]:
        """The stack's configuration, parsed (``Testing.synth`` skips construct validations)."""
        return json.loads(cdktf.Testing.synth(self.stack))

    def synth_with_paths(self) -> dict[str, Any]:
        """The configuration with each resource's construct path (``//.metadata.path``), as a full synth writes
        it, so that the path queries of :mod:`tests.support.synth_json` work on it."""
        cdktf.Testing.synth(self.stack)  # runs the aspects, as a full synth does
        return json.loads(json.dumps(self.stack.to_terraform()))
