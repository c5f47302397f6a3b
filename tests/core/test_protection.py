"""The destroy-protection helpers: what a construct passes its stateful resources, protected or not."""

from __future__ import annotations

from constructs.core.bindings import aws
from constructs.core.protection import prevent_destroy, retain_on_destroy

from tests.support.stacks import TinyStack, context


def test_only_a_protected_environment_gets_protection() -> None:
    lifecycle = prevent_destroy(True)
    assert lifecycle is not None and lifecycle.prevent_destroy is True
    assert prevent_destroy(False) is None
    assert retain_on_destroy(True) is True
    assert retain_on_destroy(False) is None


def test_the_context_is_destroyable_unless_its_environment_is_protected() -> None:
    assert context().protected is False
    assert context(protected=True).protected is True


def test_an_unprotected_resource_is_written_as_before() -> None:
    tiny = TinyStack()
    for protected in (True, False):
        aws.cloudwatch_log_group.CloudwatchLogGroup(
            tiny.stack,
            f"logs-{protected}",
            name=f"/test/{protected}",
            skip_destroy=retain_on_destroy(protected),
            lifecycle=prevent_destroy(protected),
        )
    groups = tiny.synth()["resource"]["aws_cloudwatch_log_group"]
    assert groups["logs-True"] == {
        "name": "/test/True",
        "skip_destroy": True,
        "lifecycle": {"prevent_destroy": True},
    }
    # No lifecycle block and no skip_destroy: the JSON of a destroyable environment does not change.
    assert groups["logs-False"] == {"name": "/test/False"}
