"""The security policy pack: each rule on compliant and non-compliant configurations, the aspect at
synthesis, suppressions, and the three real environments."""

from __future__ import annotations

import json
from typing import Any

import cdktf
import pytest
from constructs.provider_bindings import aws
from constructs.secure_bucket import SecureBucket, SecureBucketProps
from constructs.security_rules import (
    LOAD_BALANCER_SG_TAG,
    BucketEncryptedWithKms,
    BucketPublicAccessBlocked,
    BucketTlsOnly,
    BucketVersioned,
    EncryptedVolumes,
    GpuOnlyWhereAllowed,
    InstanceMetadataV2,
    KmsKeyRotation,
    NoAdminManagedPolicies,
    NoPublicIngress,
    NoWildcardActions,
    ProtectedData,
    security_pack,
)
from constructs.synth_checks import SynthChecks, SynthResource, suppress, suppressions_of, synth_resources

from stacks.environments import BASE_MATRIX
from stacks.ml_platform_stack import REQUIRED_TAGS, DeploymentSettings, MlPlatformStack
from tests.conftest import ENVIRONMENTS

TAGS = {"environment": "dev", "team": "t", "cost_center": "c", "project": "p"}


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(*actions: str, **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": list(actions), "Resource": "arn:aws:s3:::b/*", **extra}


def _stack(resources: dict[str, dict[str, dict[str, Any]]], data: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"resource": resources, **({"data": data} if data else {})}


def _check(rule: Any, stack: dict[str, Any], resource_type: str, name: str) -> list[str]:
    config = stack["resource"][resource_type][name]
    resource = SynthResource(
        type=resource_type, name=name, path=f"test/{name}", config=config, taggable=True, stack=stack
    )
    return list(rule.check(resource))


def _one(rule: Any, resource_type: str, config: dict[str, Any], **others: dict[str, dict[str, Any]]) -> list[str]:
    """Check one resource named ``r`` of ``resource_type``, with other resources of the stack by type."""
    resources = {kind: dict(by_name) for kind, by_name in others.items()}
    resources.setdefault(resource_type, {})["r"] = config
    return _check(rule, _stack(resources), resource_type, "r")


# --- IAM-1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "attribute"),
    [
        ("aws_iam_role_policy", "policy"),
        ("aws_iam_policy", "policy"),
        ("aws_iam_role", "assume_role_policy"),
        ("aws_s3_bucket_policy", "policy"),
        ("aws_kms_key", "policy"),
        ("aws_sns_topic_policy", "policy"),
        ("aws_ecr_repository_policy", "policy"),
        ("aws_sqs_queue_policy", "policy"),
    ],
)
def test_iam1_flags_service_wildcards_in_every_policy_attribute(resource_type, attribute) -> None:
    rule = NoWildcardActions()
    ok = _doc(_allow("s3:GetObject", "kms:Describe*"), {"Effect": "Deny", "Action": "s3:*", "Resource": "*"})
    assert _one(rule, resource_type, {attribute: ok}) == []
    bad = _doc(_allow("s3:GetObject"), _allow("ecr:*", Sid="TooBroad"))
    assert _one(rule, resource_type, {attribute: bad}) == [
        f"{resource_type}.r.{attribute} statement TooBroad allows ['ecr:*']"
    ]


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, "statement #0 allows ['*']"),
        ({"Action": "sts:*", "Principal": {"Service": "ec2.amazonaws.com"}}, "statement #0 allows ['sts:*']"),
        ({"Effect": "Allow", "Action": ["*:GetObject"], "Resource": "*"}, "statement #0 allows ['*:GetObject']"),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, "statement #0 allows NotAction"),
    ],
)
def test_iam1_bare_star_missing_effect_and_not_action_are_violations(statement, expected) -> None:
    (message,) = _one(NoWildcardActions(), "aws_iam_policy", {"policy": _doc(statement)})
    assert message.startswith(f"aws_iam_policy.r.policy {expected}")


def test_iam1_reads_inline_policies_and_policy_document_data_sources() -> None:
    rule = NoWildcardActions()
    inline = {"inline_policy": [{"name": "x", "policy": _doc(_allow("sagemaker:*"))}], "assume_role_policy": _doc()}
    assert _one(rule, "aws_iam_role", inline) == [
        "aws_iam_role.r.inline_policy[0].policy statement #0 allows ['sagemaker:*']"
    ]
    data = {
        "aws_iam_policy_document": {
            "doc": {
                "statement": [
                    {"effect": "Deny", "actions": ["s3:*"], "resources": ["*"]},
                    {"actions": ["eks:DescribeCluster", "eks:*"], "resources": ["*"]},
                ]
            }
        }
    }
    stack = _stack({"aws_iam_role_policy": {"r": {"policy": "${data.aws_iam_policy_document.doc.json}"}}}, data=data)
    assert _check(rule, stack, "aws_iam_role_policy", "r") == [
        "aws_iam_role_policy.r.policy statement #1 allows ['eks:*']"
    ]


def test_iam1_rejects_policies_it_cannot_read_on_policy_resources_only() -> None:
    rule = NoWildcardActions()
    unreadable = {"policy": '${jsonencode({"Statement" = []})}'}
    (message,) = _one(rule, "aws_iam_role_policy", unreadable)
    assert "is not a literal JSON document" in message
    # JSON that is not an IAM document (an ECR lifecycle policy) and non-policy types are left alone.
    assert _one(rule, "aws_ecr_lifecycle_policy", {"policy": json.dumps({"rules": []})}) == []
    assert _one(rule, "aws_vpc_endpoint", unreadable) == []


def test_iam1_lambda_permissions() -> None:
    rule = NoWildcardActions()
    assert _one(rule, "aws_lambda_permission", {"action": "lambda:InvokeFunction"}) == []
    assert _one(rule, "aws_lambda_permission", {"action": "lambda:*"}) == [
        "aws_lambda_permission.r allows action 'lambda:*'"
    ]


# --- IAM-2 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "attribute", "arn"),
    [
        ("aws_iam_role_policy_attachment", "policy_arn", "arn:aws:iam::aws:policy/AmazonS3FullAccess"),
        ("aws_iam_role_policy_attachment", "policy_arn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        (
            "aws_iam_role",
            "managed_policy_arns",
            "arn:${data.aws_partition.p.partition}:iam::aws:policy/PowerUserAccess",
        ),
        (
            "aws_iam_role_policy_attachments_exclusive",
            "policy_arns",
            "arn:aws:iam::aws:policy/service-role/AWSLambda_FullAccess",
        ),
    ],
)
def test_iam2_flags_broad_aws_managed_policies(resource_type, attribute, arn) -> None:
    value = [arn] if attribute.endswith("arns") else arn
    expected_name = arn.rsplit("/", 1)[-1]
    assert _one(NoAdminManagedPolicies(), resource_type, {attribute: value}) == [
        f"{resource_type}.r.{attribute} attaches the AWS-managed policy {expected_name} "
        "(write a least-privilege policy)"
    ]


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
        "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
        # A customer-managed policy is the account's own least-privilege document, whatever its name.
        "arn:aws:iam::123456789012:policy/TeamFullAccess",
        "${aws_iam_policy.p.arn}",
    ],
)
def test_iam2_allows_narrow_and_customer_managed_policies(arn) -> None:
    assert _one(NoAdminManagedPolicies(), "aws_iam_role_policy_attachment", {"policy_arn": arn}) == []


# --- S3-1 .. S3-4 ---------------------------------------------------------------------------------

_REF = "${aws_s3_bucket.b.id}"


def _bucket_stack(**changes: dict[str, Any] | None) -> dict[str, Any]:
    """A compliant bucket ``b`` with its companions; a change replaces (or with None removes) one companion."""
    companions: dict[str, dict[str, Any] | None] = {
        "aws_s3_bucket_public_access_block": {
            "bucket": _REF,
            "block_public_acls": True,
            "block_public_policy": True,
            "ignore_public_acls": True,
            "restrict_public_buckets": True,
        },
        "aws_s3_bucket_server_side_encryption_configuration": {
            "bucket": _REF,
            "rule": [
                {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": "${aws_kms_key.k.arn}",
                    }
                }
            ],
        },
        "aws_s3_bucket_versioning": {"bucket": _REF, "versioning_configuration": {"status": "Enabled"}},
        "aws_s3_bucket_policy": {
            "bucket": _REF,
            "policy": _doc(
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": "*",
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ),
        },
    }
    companions.update(changes)
    resources: dict[str, dict[str, Any]] = {"aws_s3_bucket": {"b": {"bucket": "data-bucket"}}}
    for resource_type, config in companions.items():
        if config is not None:
            resources[resource_type] = {"c": config}
    return _stack(resources)


S3_RULES = (BucketPublicAccessBlocked(), BucketEncryptedWithKms(), BucketVersioned(), BucketTlsOnly())


def test_s3_rules_pass_a_fully_configured_bucket_matched_by_reference_or_name() -> None:
    for rule in S3_RULES:
        assert _check(rule, _bucket_stack(), "aws_s3_bucket", "b") == []
    by_name = _bucket_stack(
        aws_s3_bucket_versioning={"bucket": "data-bucket", "versioning_configuration": {"status": "Enabled"}}
    )
    assert _check(BucketVersioned(), by_name, "aws_s3_bucket", "b") == []


@pytest.mark.parametrize(
    ("rule", "change", "message"),
    [
        (BucketPublicAccessBlocked(), {"aws_s3_bucket_public_access_block": None}, "no aws_s3_bucket_public_access"),
        (
            BucketPublicAccessBlocked(),
            {
                "aws_s3_bucket_public_access_block": {
                    "bucket": _REF,
                    "block_public_acls": True,
                    "block_public_policy": False,
                    "ignore_public_acls": True,
                }
            },
            "leaves ['block_public_policy', 'restrict_public_buckets'] off",
        ),
        (
            BucketEncryptedWithKms(),
            {
                "aws_s3_bucket_server_side_encryption_configuration": {
                    "bucket": _REF,
                    "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
                }
            },
            "not encrypted with SSE-KMS",
        ),
        (
            BucketEncryptedWithKms(),
            {
                "aws_s3_bucket_server_side_encryption_configuration": {
                    "bucket": _REF,
                    "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
                }
            },
            "not encrypted with SSE-KMS and a customer-managed key",
        ),
        (BucketEncryptedWithKms(), {"aws_s3_bucket_server_side_encryption_configuration": None}, "no server-side"),
        (
            BucketVersioned(),
            {"aws_s3_bucket_versioning": {"bucket": _REF, "versioning_configuration": {"status": "Suspended"}}},
            "does not have versioning Enabled",
        ),
        (
            BucketVersioned(),
            # Versioning of another bucket does not count for this one.
            {
                "aws_s3_bucket_versioning": {
                    "bucket": "${aws_s3_bucket.other.id}",
                    "versioning_configuration": {"status": "Enabled"},
                }
            },
            "does not have versioning Enabled",
        ),
        (BucketTlsOnly(), {"aws_s3_bucket_policy": None}, "no bucket policy denying aws:SecureTransport"),
        (
            BucketTlsOnly(),
            {
                "aws_s3_bucket_policy": {
                    "bucket": _REF,
                    "policy": _doc(
                        {
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:PutObject",
                            "Resource": "*",
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ),
                }
            },
            "no bucket policy denying aws:SecureTransport",
        ),
    ],
)
def test_s3_rules_flag_missing_or_weak_companions(rule, change, message) -> None:
    (problem,) = _check(rule, _bucket_stack(**change), "aws_s3_bucket", "b")
    assert problem.startswith("aws_s3_bucket.b ") and message in problem
    # Every other S3 rule still passes: each rule looks at its own companion only.
    for other in S3_RULES:
        if other.id != rule.id:
            assert _check(other, _bucket_stack(**change), "aws_s3_bucket", "b") == []


# --- EC2-1 / EC2-2 --------------------------------------------------------------------------------

_EBS = {"device_name": "/dev/xvda", "ebs": {"encrypted": "true", "kms_key_id": "${aws_kms_key.k.arn}"}}


def test_ec2_rules_pass_imdsv2_and_kms_encrypted_volumes() -> None:
    config = {"metadata_options": {"http_tokens": "required"}, "block_device_mappings": [_EBS]}
    assert _one(InstanceMetadataV2(), "aws_launch_template", config) == []
    assert _one(EncryptedVolumes(), "aws_launch_template", config) == []
    instance = {
        "metadata_options": {"http_endpoint": "disabled"},
        "root_block_device": {"encrypted": True, "kms_key_id": "k"},
    }
    assert _one(InstanceMetadataV2(), "aws_instance", instance) == []
    assert _one(EncryptedVolumes(), "aws_instance", instance) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "does not require IMDSv2"),
        ({"metadata_options": {"http_tokens": "optional", "http_endpoint": "enabled"}}, "does not require IMDSv2"),
    ],
)
def test_ec2_1_flags_imdsv1(config, message) -> None:
    assert _one(InstanceMetadataV2(), "aws_launch_template", config) == [
        f"aws_launch_template.r {message} (metadata_options.http_tokens = 'required')"
    ]


@pytest.mark.parametrize(
    ("resource_type", "config", "message"),
    [
        ("aws_launch_template", {}, "maps no EBS volume"),
        (
            "aws_launch_template",
            {"block_device_mappings": [_EBS, {"device_name": "/dev/sdf", "ebs": {"volume_size": 100}}]},
            "volume /dev/sdf is not encrypted",
        ),
        (
            "aws_launch_template",
            {"block_device_mappings": [{"device_name": "/dev/xvda", "ebs": {"encrypted": True}}]},
            "volume /dev/xvda has no kms_key_id",
        ),
        ("aws_instance", {"root_block_device": {"encrypted": False}}, "root volume is not encrypted"),
        ("aws_ebs_volume", {"size": 10, "encrypted": True}, "has no kms_key_id"),
    ],
)
def test_ec2_2_flags_unencrypted_or_unmapped_volumes(resource_type, config, message) -> None:
    (problem,) = _one(EncryptedVolumes(), resource_type, config)
    assert problem.startswith(f"{resource_type}.r") and message in problem


# --- NET-1 ----------------------------------------------------------------------------------------

_LB_TAGS = {LOAD_BALANCER_SG_TAG: "true"}


def _ingress(port: int, cidr: str = "0.0.0.0/0", protocol: str = "tcp") -> dict[str, Any]:
    return {"from_port": port, "to_port": port, "protocol": protocol, "cidr_blocks": [cidr]}


def test_net1_allows_internal_ingress_and_https_on_a_load_balancer_group() -> None:
    rule = NoPublicIngress()
    assert _one(rule, "aws_security_group", {"ingress": [_ingress(22, "10.0.0.0/16")]}) == []
    assert _one(rule, "aws_security_group", {"ingress": [_ingress(443)], "tags": _LB_TAGS}) == []
    groups = {"aws_security_group": {"lb": {"tags": _LB_TAGS}}}
    sg_rule = {**_ingress(443), "type": "ingress", "security_group_id": "${aws_security_group.lb.id}"}
    assert _one(rule, "aws_security_group_rule", sg_rule, **groups) == []
    egress = {**_ingress(0, protocol="-1"), "type": "egress", "security_group_id": "${aws_security_group.x.id}"}
    assert _one(rule, "aws_security_group_rule", egress) == []
    vpc_rule = {
        "security_group_id": "${aws_security_group.lb.id}",
        "ip_protocol": "tcp",
        "from_port": 443,
        "to_port": 443,
        "cidr_ipv6": "::/0",
    }
    assert _one(rule, "aws_vpc_security_group_ingress_rule", vpc_rule, **groups) == []


@pytest.mark.parametrize(
    ("resource_type", "config", "fragment"),
    [
        ("aws_security_group", {"ingress": [_ingress(22)]}, "ingress[0] allows 22-22/tcp from ['0.0.0.0/0']"),
        # 443 from anywhere needs the load-balancer tag; other ports never pass, even on a tagged group.
        ("aws_security_group", {"ingress": [_ingress(443)]}, "allows 443-443/tcp"),
        (
            "aws_security_group",
            {"ingress": [_ingress(443), {**_ingress(0, protocol="-1"), "to_port": 0}], "tags": _LB_TAGS},
            "ingress[1] allows 0-0/-1",
        ),
        (
            "aws_security_group_rule",
            {**_ingress(443, "::/0"), "type": "ingress", "security_group_id": "${aws_security_group.app.id}"},
            "allows 443-443/tcp from ['::/0']",
        ),
        (
            "aws_vpc_security_group_ingress_rule",
            {
                "security_group_id": "sg-123",
                "ip_protocol": "tcp",
                "from_port": 80,
                "to_port": 80,
                "cidr_ipv4": "0.0.0.0/0",
            },
            "allows 80-80/tcp",
        ),
    ],
)
def test_net1_flags_internet_ingress(resource_type, config, fragment) -> None:
    (problem,) = _one(NoPublicIngress(), resource_type, config, aws_security_group={"app": {"tags": {}}})
    assert fragment in problem and LOAD_BALANCER_SG_TAG in problem


# --- KMS-1 ----------------------------------------------------------------------------------------


def test_kms1_requires_rotation_of_symmetric_keys_only() -> None:
    rule = KmsKeyRotation()
    assert _one(rule, "aws_kms_key", {"enable_key_rotation": True}) == []
    assert _one(rule, "aws_kms_key", {"customer_master_key_spec": "RSA_2048", "key_usage": "SIGN_VERIFY"}) == []
    assert _one(rule, "aws_kms_key", {}) == ["aws_kms_key.r does not enable key rotation"]
    assert _one(rule, "aws_kms_key", {"enable_key_rotation": False, "customer_master_key_spec": "SYMMETRIC_DEFAULT"})


# --- GPU-1 ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "config", "path"),
    [
        ("aws_launch_template", {"instance_type": "g5.2xlarge"}, "instance_type"),
        (
            "aws_autoscaling_group",
            {
                "mixed_instances_policy": {
                    "launch_template": {"override": [{"instance_type": "m6i.large"}, {"instance_type": "p4d.24xlarge"}]}
                }
            },
            "mixed_instances_policy.launch_template.override[1].instance_type",
        ),
        ("aws_eks_node_group", {"instance_types": ["m6i.large", "g5.xlarge"]}, "instance_types"),
        ("aws_eks_node_group", {"ami_type": "AL2_x86_64_GPU", "instance_types": ["m6i.large"]}, "ami_type"),
        (
            "aws_sagemaker_endpoint_configuration",
            {"production_variants": [{"variant_name": "a", "instance_type": "ml.g5.xlarge"}]},
            "production_variants[0].instance_type",
        ),
        (
            "aws_launch_template",
            {"instance_requirements": {"accelerator_count": {"min": 1}, "vcpu_count": {"min": 4}}},
            "instance_requirements",
        ),
    ],
)
def test_gpu1_flags_accelerators_only_where_gpus_are_disabled(resource_type, config, path) -> None:
    (problem,) = _one(GpuOnlyWhereAllowed(gpu_enabled=False), resource_type, config)
    assert problem.startswith(f"{resource_type}.r.{path}") and "gpu_enabled is False" in problem
    assert _one(GpuOnlyWhereAllowed(gpu_enabled=True), resource_type, config) == []


def test_gpu1_passes_cpu_instances_and_unresolved_tokens() -> None:
    rule = GpuOnlyWhereAllowed(gpu_enabled=False)
    assert _one(rule, "aws_instance", {"instance_type": "t3.micro", "tags": {"instance_type": "g5.xlarge"}}) == []
    assert _one(rule, "aws_launch_template", {"instance_type": "m6i.xlarge"}) == []
    assert (
        _one(rule, "aws_eks_node_group", {"instance_types": ["${var.types}"], "ami_type": "AL2023_x86_64_STANDARD"})
        == []
    )


# --- PROT-1 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "config", "fragment"),
    [
        ("aws_s3_bucket", {"bucket": "b"}, "lacks lifecycle.prevent_destroy"),
        ("aws_s3_bucket", {"force_destroy": True, "lifecycle": {"prevent_destroy": True}}, "sets force_destroy"),
        ("aws_kms_key", {"deletion_window_in_days": 7}, "deletion_window_in_days = 7"),
        ("aws_dynamodb_table", {"name": "t"}, "lacks deletion_protection_enabled = true"),
        ("aws_db_instance", {"deletion_protection": False}, "lacks deletion_protection = true"),
        ("aws_efs_file_system", {}, "lacks lifecycle.prevent_destroy"),
        ("aws_ecr_repository", {"force_delete": True}, "sets force_delete"),
    ],
)
def test_prot1_requires_deletion_protection_in_protected_environments(resource_type, config, fragment) -> None:
    (problem,) = _one(ProtectedData(protected=True), resource_type, config)
    assert fragment in problem and problem.endswith("(protected environment)")
    assert _one(ProtectedData(protected=False), resource_type, config) == []


@pytest.mark.parametrize(
    ("resource_type", "config"),
    [
        ("aws_s3_bucket", {"force_destroy": False, "lifecycle": {"prevent_destroy": True}}),
        ("aws_kms_key", {"deletion_window_in_days": 30}),
        ("aws_kms_key", {}),  # the provider's default window is the 30-day maximum
        ("aws_kms_key", {"deletion_window_in_days": 7, "lifecycle": {"prevent_destroy": True}}),
        ("aws_dynamodb_table", {"deletion_protection_enabled": True}),
        # Compute is rebuilt from code and stays replaceable.
        ("aws_eks_cluster", {"name": "c"}),
        ("aws_autoscaling_group", {"max_size": 2}),
    ],
)
def test_prot1_passes_protected_or_stateless_resources(resource_type, config) -> None:
    assert _one(ProtectedData(protected=True), resource_type, config) == []


# --- the pack -------------------------------------------------------------------------------------


def test_pack_has_every_rule_once_with_a_description() -> None:
    rules = security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=False, protected=True)
    ids = [rule.id for rule in rules]
    assert ids == [
        "TAG-1",
        "IAM-1",
        "IAM-2",
        "S3-1",
        "S3-2",
        "S3-3",
        "S3-4",
        "EC2-1",
        "EC2-2",
        "NET-1",
        "KMS-1",
        "GPU-1",
        "PROT-1",
    ]
    assert all(rule.description for rule in rules)


def _tiny_stack(gpu_enabled: bool = False, protected: bool = False) -> tuple[cdktf.App, cdktf.TerraformStack]:
    app = cdktf.Testing.app()
    stack = cdktf.TerraformStack(app, "tiny")
    aws.provider.AwsProvider(
        stack, "aws", region="us-east-1", default_tags=[aws.provider.AwsProviderDefaultTags(tags=TAGS)]
    )
    pack = security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=gpu_enabled, protected=protected)
    cdktf.Aspects.of(stack).add(SynthChecks("ml-platform-security", pack))
    return app, stack


def _open_ssh_group(stack: cdktf.TerraformStack) -> Any:
    sg = aws.security_group
    return sg.SecurityGroup(
        stack,
        "ssh",
        ingress=[sg.SecurityGroupIngress(from_port=22, to_port=22, protocol="tcp", cidr_blocks=["0.0.0.0/0"])],
    )


def test_synthesis_fails_naming_the_path_and_rule() -> None:
    _, stack = _tiny_stack()
    _open_ssh_group(stack)
    with pytest.raises(Exception, match=r"ml-platform-security: 1 violation\(s\) in stack 'tiny'") as caught:
        cdktf.Testing.synth(stack)
    assert "[tiny/ssh] NET-1: aws_security_group.ssh ingress[0] allows 22-22/tcp" in str(caught.value)


def test_app_synth_runs_the_pack_too(tmp_path) -> None:
    app = cdktf.App(outdir=str(tmp_path / "out"))
    stack = cdktf.TerraformStack(app, "tiny")
    aws.provider.AwsProvider(
        stack, "aws", region="us-east-1", default_tags=[aws.provider.AwsProviderDefaultTags(tags=TAGS)]
    )
    cdktf.Aspects.of(stack).add(
        SynthChecks(
            "ml-platform-security", security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=False, protected=False)
        )
    )
    aws.kms_key.KmsKey(stack, "key", enable_key_rotation=False)
    with pytest.raises(Exception, match=r"\[tiny/key\] KMS-1: aws_kms_key.key does not enable key rotation"):
        app.synth()


def test_a_suppression_silences_exactly_its_rule_on_its_construct() -> None:
    _, stack = _tiny_stack()
    raw = aws.s3_bucket.S3Bucket(stack, "raw", bucket="raw-bucket")
    checks = SynthChecks("pack", security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=False, protected=False))
    before = checks.violations(stack)
    assert [v.split(":", 1)[0] for v in before] == [
        "[tiny/raw] S3-1",
        "[tiny/raw] S3-2",
        "[tiny/raw] S3-3",
        "[tiny/raw] S3-4",
    ]
    suppress(raw, "S3-3", "versioning is managed outside Terraform for this test bucket")
    after = checks.violations(stack)
    assert after == [v for v in before if "S3-3" not in v]
    with pytest.raises(Exception, match=r"\[tiny/raw\] S3-1") as caught:
        cdktf.Testing.synth(stack)
    assert "S3-3" not in str(caught.value)


@pytest.mark.parametrize("reason", ["", "   ", "because", None])
def test_a_suppression_without_a_reason_is_rejected(reason) -> None:
    _, stack = _tiny_stack()
    group = _open_ssh_group(stack)
    with pytest.raises(ValueError, match=r"tiny/ssh: suppressing NET-1 needs a written reason"):
        suppress(group, "NET-1", reason)


def test_the_access_log_bucket_is_exempt_from_sse_kms_by_a_reasoned_suppression() -> None:
    _, stack = _tiny_stack(protected=True)
    key = aws.kms_key.KmsKey(stack, "key", enable_key_rotation=True)
    logs_bucket_construct = SecureBucket(
        stack, "logs", SecureBucketProps(bucket_name="logs-bucket", kms_key=None, log_delivery_source_account="1")
    )
    SecureBucket(stack, "data", SecureBucketProps(bucket_name="data-bucket", kms_key=key))
    pack = security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=False, protected=True)
    assert SynthChecks("pack", pack).violations(stack) == []
    # The SSE-S3 log bucket does violate S3-2; only its suppression (with its reason) lets it pass.
    found = {resource.path: (resource, suppressed) for resource, suppressed in synth_resources(stack)}
    logs_bucket, logs_suppressed = found["tiny/logs/bucket"]
    assert BucketEncryptedWithKms().check(logs_bucket) == [
        f"{logs_bucket.address} is not encrypted with SSE-KMS and a customer-managed key"
    ]
    # The suppression sits on the SecureBucket construct and reaches the bucket resource below it.
    assert "server access logging" in logs_suppressed["S3-2"]
    assert set(logs_suppressed) == {"S3-2"}
    assert set(suppressions_of(logs_bucket_construct)) == {"S3-2"}
    data_bucket, data_suppressed = found["tiny/data/bucket"]
    assert BucketEncryptedWithKms().check(data_bucket) == [] and data_suppressed == {}


# --- the pack in the real stacks ------------------------------------------------------------------


def _platform_stack(env: str) -> MlPlatformStack:
    return MlPlatformStack(cdktf.Testing.app(), BASE_MATRIX[env], DeploymentSettings())


def _pack_of(stack: MlPlatformStack) -> SynthChecks:
    (checks,) = [aspect for aspect in cdktf.Aspects.of(stack).all if isinstance(aspect, SynthChecks)]
    return checks


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_passes_the_pack(synth_dir, env) -> None:
    # The session fixture synthesized every environment with the pack active; re-run it explicitly.
    assert (synth_dir / "stacks" / env / "cdk.tf.json").is_file()
    stack = _platform_stack(env)
    checks = _pack_of(stack)
    assert checks.name == "ml-platform-security"
    assert [rule.id for rule in checks.rules] == [
        rule.id for rule in security_pack(required_tags=REQUIRED_TAGS, gpu_enabled=True, protected=True)
    ]
    assert checks.violations(stack) == []


@pytest.mark.parametrize(("env", "gpu_violation"), [("dev", True), ("staging", False), ("prod", False)])
def test_the_stack_configures_gpu1_from_the_environment(env, gpu_violation) -> None:
    stack = _platform_stack(env)
    lt = aws.launch_template
    aws.launch_template.LaunchTemplate(
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
            lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=TAGS) for kind in ("instance", "volume")
        ],
    )
    violations = _pack_of(stack).violations(stack)
    expected = [f"[{env}/stray-gpu] GPU-1: aws_launch_template.stray-gpu.instance_type = ['g5.xlarge']"]
    assert [v.split(" is a GPU")[0] for v in violations] == (expected if gpu_violation else [])


@pytest.mark.parametrize(("env", "protected"), [("dev", False), ("staging", False), ("prod", True)])
def test_the_stack_configures_prot1_from_the_environment(env, protected) -> None:
    stack = _platform_stack(env)
    assert BASE_MATRIX[env].protected is protected
    aws.kms_key.KmsKey(stack, "short-window-key", enable_key_rotation=True, deletion_window_in_days=7)
    violations = _pack_of(stack).violations(stack)
    assert [v.split(":")[0] for v in violations] == ([f"[{env}/short-window-key] PROT-1"] if protected else [])
