"""The rehearsal's building blocks: the zones it creates, the stack part it applies, and how it fails.

The full rehearsal (``make rehearse ENV=dev``: synth, apply, clean re-plan, drift check, destroy against the
emulator) is the emulator deploy test's cycle driven by hand; it is run by hand, not in the suite, which already
applies the same stacks (tests/stacks/test_emulator_deploy.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitops import rehearse
from gitops.terraform import IN_CLUSTER_PROVIDERS
from stacks.matrix import MATRIX
from tests.support.synth_json import ENVIRONMENTS

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-serving.json"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_zones_created_are_the_ones_the_environment_names_its_load_balancers_in(
    env: str, clean_env: pytest.MonkeyPatch
) -> None:
    config = MATRIX[env]
    expected = {config.mlflow.ingress.hosted_zone_name} if config.mlflow and config.mlflow.ingress else set()
    assert set(rehearse.hosted_zone_names(env)) == expected


def test_served_models_add_their_zones(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("ML_PLATFORM_OVERRIDES_FILE", str(EXAMPLE))
    models = json.loads(EXAMPLE.read_text())["staging"]["serving"]
    zones = rehearse.hosted_zone_names("staging")
    for model in models:
        assert model["ingress"]["hosted_zone_name"] in zones
    assert zones == sorted(set(zones))


def test_the_applied_part_is_the_aws_part_with_its_assets_beside_it(synth_dir: Path, tmp_path: Path) -> None:
    stack = tmp_path / "dev"
    stack.mkdir()
    original = json.loads((synth_dir / "stacks" / "dev" / "cdk.tf.json").read_text())
    (stack / "cdk.tf.json").write_text(json.dumps(original))
    rehearse.prepare_stack(stack)
    kept = json.loads((stack / "cdk.tf.json").read_text())
    assert not [t for t in kept["resource"] if t.startswith(tuple(f"{p}_" for p in IN_CLUSTER_PROVIDERS))]
    assert set(kept["provider"]) == {"aws"}
    aws_types = {t for t in original["resource"] if t.startswith("aws_")}
    # Only the alias record of a controller-made load balancer reads the cluster; every other AWS type is applied.
    assert aws_types - set(kept["resource"]) <= {"aws_route53_record"}


def test_an_unknown_environment_fails_before_anything_starts(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rehearse.main(["qa"]) == 1
    error = capsys.readouterr().err
    assert "unknown environment 'qa'" in error and all(env in error for env in ENVIRONMENTS)
