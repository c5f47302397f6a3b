"""The platform's security rules, cdk-nag style: each a small class with an id, a description and ``check``.

Every rule looks at resources by Terraform type and configuration, never by construct name, so a construct
added later is checked the moment it is synthesized. Rules read the *final* JSON configuration: IAM policies
are parsed from their JSON strings (or from the ``aws_iam_policy_document`` data source they reference), and
companion resources (an S3 bucket's public access block, encryption, versioning and policy; a security group
rule's group) are found through the Terraform references that tie them together. ``docs/security.md`` lists
the rules, why each exists, and how to suppress one with a reason.
"""

from __future__ import annotations

import re
from typing import Any

from constructs.core.checks import SynthResource
from constructs.core.instance_types import is_accelerated
from constructs.policy.documents import (
    POLICY_RESOURCE_TYPES,
    UncheckablePolicy,
    as_list,
    block,
    blocks,
    companions,
    is_true,
    is_wildcard_action,
    policy_attributes,
    policy_statements,
    referenced,
    walk_config,
)

# A security group carrying this tag (value "true") fronts a load balancer: it alone may accept
# HTTPS (443) from the internet. A tag rather than a suppression, because it says what the group
# *is* (visible in the console and to auditors), and because NET-1 still holds every other port of
# such a group to the rule, which a suppression would not.
LOAD_BALANCER_SG_TAG = "ml-platform:load-balancer"

_AWS_MANAGED_POLICY = re.compile(r"^arn:[^:]*:iam::aws:policy/(?:.+/)?(?P<name>[^/]+)$")
_OPEN_CIDRS = ("0.0.0.0/0", "::/0")
# Attributes that attach managed policies by ARN.
POLICY_ARN_ATTRIBUTES = ("policy_arn", "managed_policy_arn")
POLICY_ARN_LIST_ATTRIBUTES = ("managed_policy_arns", "policy_arns")
ADMIN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess")


class NoWildcardActions:
    """Rule ``IAM-1``: no Allow statement grants ``*`` or ``service:*`` actions, or uses ``NotAction``.

    Checked in every policy document of any resource (role trust and inline policies, managed
    policies, S3 bucket, KMS key, SNS, SQS, ECR and other resource policies) and in Lambda
    permissions. Deny statements may use wildcards: the TLS-only bucket statement denies ``s3:*``.
    """

    id = "IAM-1"
    description = "No IAM Allow statement with '*' or 'service:*' actions (or NotAction)"

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each wildcard grant or unreadable policy."""
        problems: list[str] = []
        for attribute, value in policy_attributes(resource):
            try:
                statements = policy_statements(value, resource.stack)
            except UncheckablePolicy as error:
                if resource.type in POLICY_RESOURCE_TYPES:
                    problems.append(f"{resource.address}.{attribute} {error}")
                continue
            for index, statement in enumerate(statements or []):
                if str(statement.get("Effect", "Allow")) != "Allow":
                    continue
                label = statement.get("Sid") or f"#{index}"
                wildcards = [a for a in as_list(statement.get("Action")) if is_wildcard_action(a)]
                if wildcards:
                    problems.append(f"{resource.address}.{attribute} statement {label} allows {wildcards}")
                if "NotAction" in statement:
                    problems.append(
                        f"{resource.address}.{attribute} statement {label} allows NotAction (everything else)"
                    )
        if resource.type == "aws_lambda_permission" and is_wildcard_action(resource.config.get("action")):
            problems.append(f"{resource.address} allows action {resource.config['action']!r}")
        return problems


class NoAdminManagedPolicies:
    """Rule ``IAM-2``: no AWS-managed ``*FullAccess``, ``AdministratorAccess`` or ``PowerUserAccess`` policy.

    Looks at every attribute that attaches managed policies by ARN (``policy_arn`` of the
    ``*_policy_attachment`` resources, ``managed_policy_arns`` of roles, ``policy_arns`` of the
    exclusive-attachment resources), on any resource type.
    """

    id = "IAM-2"
    description = "No AWS-managed *FullAccess / AdministratorAccess / PowerUserAccess policy attached"

    @staticmethod
    def _too_broad(arn: Any) -> str | None:
        match = _AWS_MANAGED_POLICY.match(arn) if isinstance(arn, str) else None
        if not match:
            return None
        name = match.group("name")
        if name.endswith("FullAccess") or name.startswith(ADMIN_MANAGED_POLICIES):
            return name
        return None

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each over-broad managed policy."""
        arns: list[tuple[str, Any]] = [(a, resource.config.get(a)) for a in POLICY_ARN_ATTRIBUTES]
        for attribute in POLICY_ARN_LIST_ATTRIBUTES:
            arns.extend((attribute, arn) for arn in as_list(resource.config.get(attribute)))
        return [
            f"{resource.address}.{attribute} attaches the AWS-managed policy {name} (write a least-privilege policy)"
            for attribute, arn in arns
            if (name := self._too_broad(arn))
        ]


class BucketPublicAccessBlocked:
    """Rule ``S3-1``: every S3 bucket has a public access block with all four flags on."""

    id = "S3-1"
    description = "S3 buckets have a public access block with all four flags true"
    FLAGS = ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")

    def check(self, resource: SynthResource) -> list[str]:
        """A message when no public access block of this bucket sets every flag."""
        if resource.type != "aws_s3_bucket":
            return []
        blocks = companions(resource, "aws_s3_bucket_public_access_block")
        if not blocks:
            return [f"{resource.address} has no aws_s3_bucket_public_access_block"]
        if any(all(is_true(block.get(flag)) for flag in self.FLAGS) for block in blocks):
            return []
        off = sorted({flag for block in blocks for flag in self.FLAGS if not is_true(block.get(flag))})
        return [f"{resource.address} public access block leaves {off} off"]


class BucketEncryptedWithKms:
    """Rule ``S3-2``: every S3 bucket's default encryption is SSE-KMS with a customer-managed key.

    The one legitimate exception, the server access log bucket (S3 log delivery cannot write to
    SSE-KMS buckets), is suppressed on that bucket with its reason.
    """

    id = "S3-2"
    description = "S3 buckets default to SSE-KMS (aws:kms) with an explicit KMS key"

    def check(self, resource: SynthResource) -> list[str]:
        """A message when no encryption configuration of this bucket uses a KMS key."""
        if resource.type != "aws_s3_bucket":
            return []
        rules = [
            rule
            for config in companions(resource, "aws_s3_bucket_server_side_encryption_configuration")
            for rule in blocks(config.get("rule"))
        ]
        # The provider still accepts the deprecated inline block on the bucket itself.
        for inline in blocks(resource.config.get("server_side_encryption_configuration")):
            rules.extend(blocks(inline.get("rule")))
        if not rules:
            return [f"{resource.address} has no server-side encryption configuration"]
        for rule in rules:
            default = block(rule.get("apply_server_side_encryption_by_default"))
            if str(default.get("sse_algorithm", "")).startswith("aws:kms") and default.get("kms_master_key_id"):
                return []
        return [f"{resource.address} is not encrypted with SSE-KMS and a customer-managed key"]


class BucketVersioned:
    """Rule ``S3-3``: every S3 bucket has versioning Enabled (overwrites and deletes are recoverable)."""

    id = "S3-3"
    description = "S3 buckets have versioning Enabled"

    def check(self, resource: SynthResource) -> list[str]:
        """A message when versioning of this bucket is not Enabled."""
        if resource.type != "aws_s3_bucket":
            return []
        for config in companions(resource, "aws_s3_bucket_versioning"):
            if block(config.get("versioning_configuration")).get("status") == "Enabled":
                return []
        if is_true(block(resource.config.get("versioning")).get("enabled")):
            return []
        return [f"{resource.address} does not have versioning Enabled"]


class BucketTlsOnly:
    """Rule ``S3-4``: every S3 bucket's policy denies requests made without TLS (aws:SecureTransport false)."""

    id = "S3-4"
    description = "S3 bucket policies deny every request with aws:SecureTransport = false"

    @staticmethod
    def _denies_plain_http(statement: dict[str, Any]) -> bool:
        if statement.get("Effect") != "Deny":
            return False
        actions = as_list(statement.get("Action"))
        if not any(a in ("*", "s3:*") for a in actions):
            return False
        principal = statement.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in as_list(principal.get("AWS")))
        secure = block(statement.get("Condition")).get("Bool", {})
        values = as_list(secure.get("aws:SecureTransport")) if isinstance(secure, dict) else []
        return everyone and any(str(v).lower() == "false" for v in values)

    def check(self, resource: SynthResource) -> list[str]:
        """A message when no policy of this bucket denies plain-HTTP requests."""
        if resource.type != "aws_s3_bucket":
            return []
        documents = [config.get("policy") for config in companions(resource, "aws_s3_bucket_policy")]
        documents.append(resource.config.get("policy"))
        for document in documents:
            if document is None:
                continue
            try:
                statements = policy_statements(document, resource.stack) or []
            except UncheckablePolicy:
                continue
            if any(self._denies_plain_http(s) for s in statements):
                return []
        return [f"{resource.address} has no bucket policy denying aws:SecureTransport = false"]


class InstanceMetadataV2:
    """Rule ``EC2-1``: launch templates and instances require IMDSv2 session tokens.

    IMDSv1 lets any SSRF in a workload read the instance role's credentials; ``http_tokens =
    "required"`` closes that. Disabling the metadata endpoint entirely also passes.
    """

    id = "EC2-1"
    description = "Launch templates and instances set metadata_options.http_tokens = required"

    def check(self, resource: SynthResource) -> list[str]:
        """A message when the instance metadata service accepts IMDSv1."""
        if resource.type not in ("aws_launch_template", "aws_instance"):
            return []
        options = block(resource.config.get("metadata_options"))
        if options.get("http_tokens") == "required" or options.get("http_endpoint") == "disabled":
            return []
        return [f"{resource.address} does not require IMDSv2 (metadata_options.http_tokens = 'required')"]


class EncryptedVolumes:
    """Rule ``EC2-2``: every EBS volume a launch template, instance or volume resource creates is KMS-encrypted.

    A launch template must map its volumes explicitly: without a mapping, encryption would depend on
    the AMI's snapshot or the account's EBS default, which the stack does not control.
    """

    id = "EC2-2"
    description = "EBS volumes of launch templates, instances and aws_ebs_volume are encrypted with a KMS key"

    @staticmethod
    def _ebs_problem(ebs: dict[str, Any], where: str) -> str | None:
        if not is_true(ebs.get("encrypted")):
            return f"{where} is not encrypted"
        if not ebs.get("kms_key_id"):
            return f"{where} has no kms_key_id (the customer-managed key)"
        return None

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each unencrypted or unmapped volume."""
        volumes: list[tuple[str, dict[str, Any]]] = []
        if resource.type == "aws_launch_template":
            mappings = blocks(resource.config.get("block_device_mappings"))
            with_ebs = [(m.get("device_name", f"#{i}"), block(m.get("ebs"))) for i, m in enumerate(mappings)]
            with_ebs = [(device, ebs) for device, ebs in with_ebs if ebs]
            if not with_ebs:
                return [f"{resource.address} maps no EBS volume, so their encryption is left to the AMI"]
            volumes = [(f"{resource.address} volume {device}", ebs) for device, ebs in with_ebs]
        elif resource.type == "aws_instance":
            volumes = [(f"{resource.address} root volume", block(resource.config.get("root_block_device")))]
            volumes += [
                (f"{resource.address} volume {b.get('device_name')}", b)
                for b in blocks(resource.config.get("ebs_block_device"))
            ]
        elif resource.type == "aws_ebs_volume":
            volumes = [(resource.address, resource.config)]
        return [problem for where, ebs in volumes if (problem := self._ebs_problem(ebs, where))]


class NoPublicIngress:
    """Rule ``NET-1``: no security group accepts traffic from 0.0.0.0/0 or ::/0.

    The only exception is TCP 443 on a security group tagged ``ml-platform:load-balancer = true``
    (the internet-facing side of a load balancer). Checked on inline ``ingress`` blocks of
    ``aws_security_group`` / ``aws_default_security_group``, on ``aws_security_group_rule`` of type
    ingress, and on ``aws_vpc_security_group_ingress_rule``.
    """

    id = "NET-1"
    description = "No security group ingress from 0.0.0.0/0 or ::/0 (except 443 on a tagged load balancer group)"

    @staticmethod
    def _https_only(rule: dict[str, Any], protocol_key: str) -> bool:
        protocol = str(rule.get(protocol_key, "")).lower()
        ports = {str(rule.get("from_port")), str(rule.get("to_port"))}
        return protocol in ("tcp", "6") and ports == {"443"}

    @staticmethod
    def _is_load_balancer_group(group: dict[str, Any] | None) -> bool:
        tags = (group or {}).get("tags") or {}
        return str(tags.get(LOAD_BALANCER_SG_TAG, "")).lower() == "true"

    def _group_of(self, resource: SynthResource) -> dict[str, Any] | None:
        name = referenced(resource.config.get("security_group_id"), "aws_security_group")
        return resource.others("aws_security_group").get(name) if name else None

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each rule open to the internet."""
        if resource.type in ("aws_security_group", "aws_default_security_group"):
            rules = [(f"ingress[{i}]", r, "protocol") for i, r in enumerate(blocks(resource.config.get("ingress")))]
            group: dict[str, Any] | None = resource.config
            cidr_keys = ("cidr_blocks", "ipv6_cidr_blocks")
        elif resource.type == "aws_security_group_rule" and resource.config.get("type") == "ingress":
            rules = [("", resource.config, "protocol")]
            group = self._group_of(resource)
            cidr_keys = ("cidr_blocks", "ipv6_cidr_blocks")
        elif resource.type == "aws_vpc_security_group_ingress_rule":
            rules = [("", resource.config, "ip_protocol")]
            group = self._group_of(resource)
            cidr_keys = ("cidr_ipv4", "cidr_ipv6")
        else:
            return []
        problems = []
        for label, rule, protocol_key in rules:
            open_cidrs = [c for key in cidr_keys for c in as_list(rule.get(key)) if c in _OPEN_CIDRS]
            if not open_cidrs:
                continue
            if self._https_only(rule, protocol_key) and self._is_load_balancer_group(group):
                continue
            where = f"{resource.address} {label}".rstrip()
            ports = f"{rule.get('from_port')}-{rule.get('to_port')}/{rule.get(protocol_key)}"
            problems.append(
                f"{where} allows {ports} from {open_cidrs} (only 443/tcp on a group tagged "
                f"{LOAD_BALANCER_SG_TAG}=true may face the internet)"
            )
        return problems


class KmsKeyRotation:
    """Rule ``KMS-1``: every symmetric KMS key rotates its key material yearly.

    Asymmetric and HMAC keys cannot rotate, so they are exempt.
    """

    id = "KMS-1"
    description = "KMS keys have enable_key_rotation = true"

    def check(self, resource: SynthResource) -> list[str]:
        """A message when a symmetric key does not rotate."""
        if resource.type != "aws_kms_key":
            return []
        spec = resource.config.get("customer_master_key_spec") or resource.config.get("key_spec")
        if spec not in (None, "SYMMETRIC_DEFAULT"):
            return []
        if is_true(resource.config.get("enable_key_rotation")):
            return []
        return [f"{resource.address} does not enable key rotation"]


class GpuOnlyWhereAllowed:
    """Rule ``GPU-1``: accelerated instances appear only in environments that allow GPUs.

    Looks at every attribute whose name contains ``instance_type`` (launch templates, instances,
    Auto Scaling overrides, EKS node groups' ``instance_types``, SageMaker variants and specs, Batch
    compute environments, ...), at EKS ``ami_type`` GPU/Neuron images, and at attribute-based
    instance requirements that ask for accelerators. A type the instance catalog does not know as CPU-only
    (a new family, a reference Terraform resolves later) fails: the rule fails closed.
    """

    id = "GPU-1"
    description = "GPU/accelerated instance types only in environments with gpu_enabled"
    ACCELERATED_AMI = re.compile(r"(GPU|NVIDIA|NEURON)", re.IGNORECASE)

    def __init__(self, gpu_enabled: bool) -> None:
        self.gpu_enabled = gpu_enabled

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each accelerated instance type in an environment without GPUs."""
        if self.gpu_enabled:
            return []
        problems = []
        for path, key, value in walk_config(resource.config):
            if "instance_type" in key:
                gpus = [t for t in as_list(value) if isinstance(t, str) and is_accelerated(t)]
                if gpus:
                    problems.append(
                        f"{resource.address}.{path} = {gpus}: accelerated, or of a family the catalog does not know"
                    )
            elif key == "ami_type" and isinstance(value, str) and self.ACCELERATED_AMI.search(value):
                problems.append(f"{resource.address}.{path} = {value!r} is an accelerated node image")
            elif key == "instance_requirements":
                for requirements in blocks(value):
                    count = block(requirements.get("accelerator_count"))
                    wants = (count.get("min") or 0) > 0 if isinstance(count.get("min"), int) else False
                    if wants or requirements.get("accelerator_types") or requirements.get("accelerator_names"):
                        problems.append(f"{resource.address}.{path} requests accelerators")
        if problems:
            problems = [f"{p} (gpu_enabled is False in this environment)" for p in problems]
        return problems


class ProtectedData:
    """Rule ``PROT-1``: in a protected environment, Terraform cannot destroy what holds data or history.

    Every resource of a type in :attr:`PROTECTED_TYPES` needs ``lifecycle.prevent_destroy``: a plan that would
    destroy or replace it (``terraform destroy``, a renamed endpoint or log group, a changed VPC block) fails.
    That setting leaves with the resource block (a section removed from the configuration destroys its
    resources), so a resource's own protection, kept in the state or in AWS, is required as well: the
    :attr:`OWN_PROTECTION` flag (AWS refuses the deletion; a ``skip_destroy`` log group is forgotten, not
    deleted), no :attr:`NO_FORCE_DELETE` flag (AWS refuses to delete a bucket, repository or vault that holds
    anything), and a KMS key's 30-day maximum deletion window (the time to notice and cancel a deletion). What
    AWS deletes on request must leave a copy or a way back: a database's final snapshot is not skipped
    (:attr:`FINAL_SNAPSHOT`), and a secret keeps a recovery window (``recovery_window_in_days`` 0 deletes it at
    once).

    Not protected, because code rebuilds all they hold: node groups, Auto Scaling groups, launch templates,
    Lambda functions, SageMaker models and endpoint configurations (immutable: each model version replaces
    them), subnets, NAT gateways, security groups, IAM, aliases, alarms, SNS topics (they keep no messages)
    and SQS queues (a transient buffer).
    """

    id = "PROT-1"
    description = "Protected environments: resources holding data or history have prevent_destroy"
    KMS_MAX_WINDOW_DAYS = 30
    # A secret's recovery window: AWS accepts 0 (delete at once) or 7-30 days; unset, the provider asks for 30.
    SECRET_MIN_RECOVERY_DAYS = 7
    PROTECTED_TYPES = frozenset(
        (
            # Data, and the keys it is encrypted with (a deleted key makes its data unreadable).
            *("aws_s3_bucket", "aws_efs_file_system", "aws_fsx_lustre_file_system", "aws_ebs_volume"),
            *("aws_dynamodb_table", "aws_db_instance", "aws_rds_cluster", "aws_docdb_cluster", "aws_neptune_cluster"),
            *("aws_backup_vault", "aws_secretsmanager_secret", "aws_kms_key"),
            # History: flow, audit and endpoint logs; every image a model was served with (its rollback
            # targets); the model registry's versions and approvals.
            *("aws_cloudwatch_log_group", "aws_ecr_repository", "aws_sagemaker_model_package_group"),
            # An endpoint's invocation metrics and alarms are keyed by its name, and replacing it is an outage;
            # a cluster holds every workload, secret and volume claim (etcd).
            *("aws_sagemaker_endpoint", "aws_eks_cluster"),
            # Everything above that runs in the network goes with it when a changed block replaces the VPC.
            "aws_vpc",
        )
    )
    OWN_PROTECTION = {
        "aws_dynamodb_table": "deletion_protection_enabled",
        "aws_db_instance": "deletion_protection",
        "aws_rds_cluster": "deletion_protection",
        "aws_docdb_cluster": "deletion_protection",
        "aws_neptune_cluster": "deletion_protection",
        "aws_cloudwatch_log_group": "skip_destroy",
    }
    NO_FORCE_DELETE = {
        "aws_s3_bucket": "force_destroy",
        "aws_ecr_repository": "force_delete",
        "aws_backup_vault": "force_destroy",
    }
    # The flag that deletes a database without a final snapshot (the provider's default, false, takes one).
    FINAL_SNAPSHOT = dict.fromkeys(
        ("aws_db_instance", "aws_rds_cluster", "aws_docdb_cluster", "aws_neptune_cluster"), "skip_final_snapshot"
    )

    def __init__(self, protected: bool) -> None:
        self.protected = protected

    def check(self, resource: SynthResource) -> list[str]:
        """One message naming every way the resource could still be destroyed, or none."""
        if not self.protected or resource.type not in self.PROTECTED_TYPES:
            return []
        config = resource.config
        problems = []
        if not is_true(block(config.get("lifecycle")).get("prevent_destroy")):
            problems.append("lifecycle.prevent_destroy is not true")
        flag = self.OWN_PROTECTION.get(resource.type)
        if flag and not is_true(config.get(flag)):
            problems.append(f"{flag} is not true")
        force = self.NO_FORCE_DELETE.get(resource.type)
        if force and is_true(config.get(force)):
            problems.append(f"{force} is true")
        skip = self.FINAL_SNAPSHOT.get(resource.type)
        if skip and is_true(config.get(skip)):
            problems.append(f"{skip} is true (no final snapshot)")
        recovery = config.get("recovery_window_in_days")
        if (
            resource.type == "aws_secretsmanager_secret"
            and recovery is not None
            and not (isinstance(recovery, int) and recovery >= self.SECRET_MIN_RECOVERY_DAYS)
        ):
            problems.append(
                f"recovery_window_in_days = {recovery!r}, not a recovery window of "
                f"{self.SECRET_MIN_RECOVERY_DAYS}-30 days"
            )
        window = config.get("deletion_window_in_days", self.KMS_MAX_WINDOW_DAYS)
        if resource.type == "aws_kms_key" and not (isinstance(window, int) and window >= self.KMS_MAX_WINDOW_DAYS):
            problems.append(f"deletion_window_in_days = {window!r}, not the {self.KMS_MAX_WINDOW_DAYS}-day maximum")
        if not problems:
            return []
        return [f"{resource.address} could be destroyed: {'; '.join(problems)} (protected environment)"]
