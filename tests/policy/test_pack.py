"""The security pack: its rules, the Aspect that runs it at synthesis, and the pack in the real environments."""

from __future__ import annotations

import cdktf
import pytest
from constructs.core.bindings import aws
from constructs.core.checks import SynthChecks, check_failure_report
from constructs.core.context import OWNER_TAG_KEYS
from constructs.policy.pack import PACK_NAME, security_checks, security_pack
from constructs.policy.required_tags import RequiredTags
from constructs.policy.rules import GpuOnlyWhereAllowed, ProtectedData

from stacks.deployment import DeploymentSettings
from stacks.matrix import MATRIX
from stacks.ml_platform_stack import MlPlatformStack
from tests.policy.cases import NAMED_ADMIN_KEY_POLICY, tagged_stack
from tests.support.stacks import OWNER_TAGS, written
from tests.support.synth_json import ENVIRONMENTS

RULE_IDS = [
    "TAG-1",
    "IAM-1",
    "IAM-2",
    "IAM-3",
    "SEC-1",
    "S3-1",
    "S3-2",
    "S3-3",
    "S3-4",
    "EC2-1",
    "EC2-2",
    "NET-1",
    "KMS-1",
    "KMS-2",
    "GPU-1",
    "PROT-1",
]


def test_pack_has_every_rule_once_with_a_description() -> None:
    rules = security_pack(required_tags=OWNER_TAG_KEYS, gpu_enabled=False, protected=True)
    assert [rule.id for rule in rules] == RULE_IDS
    assert all(rule.description for rule in rules)


@pytest.mark.parametrize(("gpu_enabled", "protected"), [(False, True), (True, False)])
def test_security_checks_configure_the_pack_for_an_environment(gpu_enabled, protected) -> None:
    checks = security_checks(gpu_enabled=gpu_enabled, protected=protected)
    assert checks.name == PACK_NAME == "ml-platform-security"
    assert [rule.id for rule in checks.rules] == RULE_IDS
    by_type = {type(rule): rule for rule in checks.rules}
    assert by_type[RequiredTags].required == OWNER_TAG_KEYS
    assert by_type[GpuOnlyWhereAllowed].gpu_enabled is gpu_enabled
    assert by_type[ProtectedData].protected is protected


def _open_ssh_group(stack: cdktf.TerraformStack) -> object:
    sg = aws.security_group
    return sg.SecurityGroup(
        stack,
        "ssh",
        ingress=[sg.SecurityGroupIngress(from_port=22, to_port=22, protocol="tcp", cidr_blocks=["0.0.0.0/0"])],
    )


def test_synthesis_fails_naming_the_path_and_rule() -> None:
    stack = tagged_stack(cdktf.Testing.app())
    _open_ssh_group(stack)
    with pytest.raises(Exception, match=r"ml-platform-security: 1 violation\(s\) in stack 'tiny'") as caught:
        written(stack)
    assert "[tiny/ssh] NET-1: aws_security_group.ssh ingress[0] allows 22-22/tcp" in str(caught.value)
    # The failure crosses the jsii boundary as text; callers find the report by its marker.
    report = check_failure_report(caught.value)
    assert report is not None and report.startswith("ml-platform-security: 1 violation(s) in stack 'tiny':")
    assert check_failure_report(RuntimeError("something else")) is None


def test_app_synth_runs_the_pack_too(tmp_path) -> None:
    app = cdktf.App(outdir=str(tmp_path / "out"))
    stack = tagged_stack(app)
    aws.kms_key.KmsKey(stack, "key", enable_key_rotation=False)
    with pytest.raises(Exception, match=r"\[tiny/key\] KMS-1: aws_kms_key.key does not enable key rotation"):
        app.synth()
    assert not (tmp_path / "out" / "stacks" / "tiny" / "cdk.tf.json").exists()


# --- the pack in the real stacks ------------------------------------------------------------------


def _pack_of(stack: MlPlatformStack) -> SynthChecks:
    return stack.security_checks


def _add_strays(stack: MlPlatformStack) -> None:
    """A GPU launch template (GPU-1 where GPUs are off) and a short-window key (PROT-1 where data is protected),
    each compliant with every other rule."""
    lt = aws.launch_template
    lt.LaunchTemplate(
        stack,
        "stray-gpu",
        instance_type="g5.xlarge",
        metadata_options=lt.LaunchTemplateMetadataOptions(http_tokens="required"),
        block_device_mappings=[
            lt.LaunchTemplateBlockDeviceMappings(
                device_name="/dev/xvda", ebs=lt.LaunchTemplateBlockDeviceMappingsEbs(encrypted="true", kms_key_id="k")
            )
        ],
        tag_specifications=[
            lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=dict(OWNER_TAGS))
            for kind in ("instance", "volume")
        ],
    )
    aws.kms_key.KmsKey(
        stack, "short-window-key", enable_key_rotation=True, deletion_window_in_days=7, policy=NAMED_ADMIN_KEY_POLICY
    )


@pytest.fixture(scope="module")
def checked() -> dict[str, tuple[SynthChecks, list[str]]]:
    """Each environment's stack with the two strays added: its pack and the violations the pack finds."""
    results = {}
    for env in ENVIRONMENTS:
        stack = MlPlatformStack(cdktf.Testing.app(), MATRIX[env], DeploymentSettings())
        _add_strays(stack)
        checks = _pack_of(stack)
        results[env] = (checks, checks.violations(stack))
    return results


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_passes_the_pack(synth_dir, checked, env) -> None:
    # The session fixture synthesized every environment with the pack active (a violation fails the synth);
    # here the pack runs again explicitly: nothing but the two strays is reported.
    assert (synth_dir / "stacks" / env / "cdk.tf.json").is_file()
    checks, violations = checked[env]
    assert checks.name == "ml-platform-security"
    assert [rule.id for rule in checks.rules] == RULE_IDS
    assert all(v.startswith((f"[{env}/stray-gpu] ", f"[{env}/short-window-key] ")) for v in violations), violations


@pytest.mark.parametrize(("env", "gpu_violation"), [("dev", True), ("staging", False), ("prod", False)])
def test_the_stack_configures_gpu1_from_the_environment(checked, env, gpu_violation) -> None:
    assert MATRIX[env].gpu_enabled is not gpu_violation
    violations = [v for v in checked[env][1] if "GPU-1" in v]
    expected = [f"[{env}/stray-gpu] GPU-1: aws_launch_template.stray-gpu.instance_type = ['g5.xlarge']"]
    assert [v.split(": accelerated")[0] for v in violations] == (expected if gpu_violation else [])


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_the_stack_configures_prot1_from_the_environment(checked, env, protected) -> None:
    assert MATRIX[env].protected is protected
    violations = [v for v in checked[env][1] if "short-window-key" in v]
    assert [v.split(":")[0] for v in violations] == ([f"[{env}/short-window-key] PROT-1"] if protected else [])
