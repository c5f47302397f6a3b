"""The fast provider loader: loads only the submodules used, with clear errors; attribute references read once.

That it synthesizes byte-identical stacks to the usual (naive) import is proven by ``make bench``
(bench/synth.py synthesizes both ways and fails when the outputs differ).
"""

from __future__ import annotations

import json
import sys

import cdktf
import pytest
from constructs.core import bindings
from constructs.core.bindings import aws


def test_only_used_submodules_are_loaded(synth_dir) -> None:
    loaded = [name for name in sys.modules if name.startswith("cdktf_cdktf_provider_aws.")]
    assert "cdktf_cdktf_provider_aws.vpc" in sys.modules
    assert "cdktf_cdktf_provider_aws.xray_group" not in sys.modules
    # The package has 2,135 submodules; the platform uses a small fraction of them.
    assert 10 < len(loaded) < 200, len(loaded)


def test_unknown_import_mode_is_a_clear_error(monkeypatch) -> None:
    monkeypatch.setenv(bindings.IMPORT_MODE_ENV, "turbo")
    monkeypatch.delitem(sys.modules, "cdktf_cdktf_provider_does_not_exist", raising=False)
    with pytest.raises(ValueError, match=r"ML_PLATFORM_IMPORT_MODE='turbo'.*'fast'.*'naive'"):
        bindings._load_package("cdktf_cdktf_provider_does_not_exist")


def test_missing_bindings_say_how_to_install() -> None:
    missing = bindings.ProviderBindings("cdktf_cdktf_provider_does_not_exist")
    with pytest.raises(ModuleNotFoundError, match=r"pip install -r requirements.txt"):
        _ = missing.vpc


def _stack() -> cdktf.TerraformStack:
    stack = cdktf.TerraformStack(cdktf.Testing.app(), "s")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    return stack


def test_an_attribute_reference_is_read_from_the_kernel_once() -> None:
    bucket = aws.s3_bucket.S3Bucket(_stack(), "b", bucket="first")
    # Each kernel read returns a new token for the same reference; a kept one is the same string.
    assert bucket.arn == bucket.arn and bucket.bucket == bucket.bucket
    assert bucket.arn != aws.s3_bucket.S3Bucket(bucket.node.scope, "other").arn


def test_a_kept_reference_still_resolves_to_its_resource() -> None:
    stack = _stack()
    bucket = aws.s3_bucket.S3Bucket(stack, "b")
    arn = bucket.arn
    cdktf.TerraformOutput(stack, "first", value=arn)
    cdktf.TerraformOutput(stack, "second", value=f"{bucket.arn}/*")
    outputs = json.loads(cdktf.Testing.synth(stack))["output"]
    assert outputs == {"first": {"value": "${aws_s3_bucket.b.arn}"}, "second": {"value": "${aws_s3_bucket.b.arn}/*"}}


def test_arguments_as_set_and_provider_settings_are_read_every_time() -> None:
    stack = _stack()
    bucket = aws.s3_bucket.S3Bucket(stack, "b", bucket="first")
    assert bucket.bucket_input == "first"
    bucket.bucket = "second"
    assert bucket.bucket_input == "second"
    provider = aws.provider.AwsProvider(stack, "west", region="us-west-2", alias="west")
    assert provider.region == "us-west-2"
    provider.region = "eu-west-1"
    assert provider.region == "eu-west-1"
