"""The platform's security policy pack: cdk-nag style rules run by :class:`SynthChecks` at synthesis.

Every rule looks at resources by Terraform type and configuration, never by construct name, so a
construct added later is checked the moment it is synthesized. Rules read the *final* JSON
configuration: IAM policies are parsed from their JSON strings (or from the
``aws_iam_policy_document`` data source they reference), and companion resources (an S3 bucket's
public access block, encryption, versioning and policy; a security group rule's group) are found
through the Terraform references that tie them together.

``docs/security.md`` lists the rules, why each exists, and how to suppress one with a reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from constructs.required_tags import RequiredTags
from constructs.synth_checks import Rule, SynthResource
from constructs.validation import is_gpu_instance_type

# A security group carrying this tag (value "true") fronts a load balancer: it alone may accept
# HTTPS (443) from the internet. A tag rather than a suppression, because it says what the group
# *is* (visible in the console and to auditors), and because NET-1 still holds every other port of
# such a group to the rule, which a suppression would not.
LOAD_BALANCER_SG_TAG = "ml-platform:load-balancer"

_REFERENCE = re.compile(r"^\$\{([a-z0-9_]+)\.([^.}]+)\.([a-z0-9_]+)\}$")
_DATA_REFERENCE = re.compile(r"^\$\{data\.([a-z0-9_]+)\.([^.}]+)\.([a-z0-9_]+)\}$")
_AWS_MANAGED_POLICY = re.compile(r"^arn:[^:]*:iam::aws:policy/(?:.+/)?(?P<name>[^/]+)$")
_OPEN_CIDRS = ("0.0.0.0/0", "::/0")

# Attributes that hold a whole IAM or resource policy document, whatever the resource type.
POLICY_ATTRIBUTES = ("policy", "assume_role_policy", "access_policies", "access_policy", "policy_document")
# Resource types whose policy must be checkable: anything else that cannot be parsed is not an IAM document.
POLICY_RESOURCE_TYPES = frozenset(
    {
        "aws_iam_role",
        "aws_iam_role_policy",
        "aws_iam_policy",
        "aws_iam_user_policy",
        "aws_iam_group_policy",
        "aws_s3_bucket_policy",
        "aws_kms_key",
        "aws_sns_topic",
        "aws_sns_topic_policy",
        "aws_sqs_queue_policy",
        "aws_ecr_repository_policy",
        "aws_ecr_registry_policy",
        "aws_secretsmanager_secret_policy",
        "aws_cloudwatch_log_resource_policy",
    }
)
# Attributes that attach managed policies by ARN.
POLICY_ARN_ATTRIBUTES = ("policy_arn", "managed_policy_arn")
POLICY_ARN_LIST_ATTRIBUTES = ("managed_policy_arns", "policy_arns")
ADMIN_MANAGED_POLICIES = ("AdministratorAccess", "PowerUserAccess")


# --- helpers over the synthesized JSON -------------------------------------------------------------


def _blocks(value: Any) -> list[dict[str, Any]]:
    """A nested block as a list of dicts: cdktf renders single blocks as objects, repeated ones as lists."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _block(value: Any) -> dict[str, Any]:
    """The first (only) instance of a nested block, or an empty dict."""
    blocks = _blocks(value)
    return blocks[0] if blocks else {}


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _is_token(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _referenced(value: Any, resource_type: str) -> str | None:
    """The logical name referenced by ``${<resource_type>.<name>.<attribute>}``, if ``value`` is one."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match and match.group(1) == resource_type:
        return match.group(2)
    return None


def _points_at(value: Any, target: SynthResource, attributes: Sequence[str], literal_key: str | None = None) -> bool:
    """Whether ``value`` refers to ``target`` through one of ``attributes`` (or equals its literal name)."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    if match:
        return match.group(1) == target.type and match.group(2) == target.name and match.group(3) in attributes
    literal = target.config.get(literal_key) if literal_key else None
    return literal is not None and value == literal


def _companions(resource: SynthResource, companion_type: str, key: str = "bucket") -> list[dict[str, Any]]:
    """Resources of ``companion_type`` whose ``key`` refers to ``resource`` (an S3 bucket)."""
    return [
        config
        for config in resource.others(companion_type).values()
        if _points_at(config.get(key), resource, ("id", "bucket"), literal_key="bucket")
    ]


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (dotted path, key, value) for every key of a nested configuration.

    cdktf metadata and tag maps are skipped: a tag's key is free text, not an argument.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("//", "tags", "tags_all"):
                continue
            child = f"{path}.{key}" if path else key
            yield child, key, item
            yield from _walk(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


# --- IAM policy documents ----------------------------------------------------------------------------


class UncheckablePolicy(Exception):
    """A policy attribute is neither literal JSON nor a reference to an ``aws_iam_policy_document``."""


def _from_policy_document_data(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Statements of an ``aws_iam_policy_document`` data source in IAM JSON form."""
    statements = []
    for block in _blocks(data.get("statement")):
        statement: dict[str, Any] = {"Effect": block.get("effect", "Allow")}
        if "actions" in block:
            statement["Action"] = block["actions"]
        if "not_actions" in block:
            statement["NotAction"] = block["not_actions"]
        principals = _blocks(block.get("principals"))
        if principals:
            statement["Principal"] = {p.get("type"): p.get("identifiers") for p in principals}
        conditions: dict[str, dict[str, Any]] = {}
        for condition in _blocks(block.get("condition")):
            conditions.setdefault(condition.get("test", ""), {})[condition.get("variable", "")] = condition.get(
                "values"
            )
        if conditions:
            statement["Condition"] = conditions
        statements.append(statement)
    return statements


def policy_statements(value: Any, stack: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The statements of a policy attribute.

    Returns None when ``value`` is JSON but not a policy (an ECR lifecycle policy, say); raises
    :class:`UncheckablePolicy` when it cannot be read at all.
    """
    if isinstance(value, dict):
        document: Any = value
    elif isinstance(value, str):
        data_match = _DATA_REFERENCE.match(value)
        if data_match and data_match.group(1) == "aws_iam_policy_document":
            data = stack.get("data", {}).get("aws_iam_policy_document", {}).get(data_match.group(2))
            if data is None:
                raise UncheckablePolicy(f"references a missing policy document {value}")
            return _from_policy_document_data(data)
        try:
            document = json.loads(value)
        except json.JSONDecodeError:
            raise UncheckablePolicy(
                "is not a literal JSON document nor an aws_iam_policy_document reference "
                "(write it with constructs.iam_policy so it can be checked)"
            ) from None
    else:
        raise UncheckablePolicy(f"has an unexpected value {value!r}")
    if not isinstance(document, dict) or "Statement" not in document:
        return None
    return [s for s in _as_list(document["Statement"]) if isinstance(s, dict)]


def _policies(resource: SynthResource) -> Iterator[tuple[str, Any]]:
    """Every (attribute, value) of ``resource`` that holds a policy document."""
    for attribute in POLICY_ATTRIBUTES:
        if resource.config.get(attribute) is not None:
            yield attribute, resource.config[attribute]
    for index, inline in enumerate(_blocks(resource.config.get("inline_policy"))):
        if inline.get("policy") is not None:
            yield f"inline_policy[{index}].policy", inline["policy"]


def _is_wildcard_action(action: Any) -> bool:
    if not isinstance(action, str) or _is_token(action):
        return False
    service, _, name = action.partition(":")
    return action.strip() == "*" or service.strip() == "*" or name.strip() == "*"


# --- the rules ---------------------------------------------------------------------------------------


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
        for attribute, value in _policies(resource):
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
                wildcards = [a for a in _as_list(statement.get("Action")) if _is_wildcard_action(a)]
                if wildcards:
                    problems.append(f"{resource.address}.{attribute} statement {label} allows {wildcards}")
                if "NotAction" in statement:
                    problems.append(
                        f"{resource.address}.{attribute} statement {label} allows NotAction (everything else)"
                    )
        if resource.type == "aws_lambda_permission" and _is_wildcard_action(resource.config.get("action")):
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
            arns.extend((attribute, arn) for arn in _as_list(resource.config.get(attribute)))
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
        blocks = _companions(resource, "aws_s3_bucket_public_access_block")
        if not blocks:
            return [f"{resource.address} has no aws_s3_bucket_public_access_block"]
        if any(all(_true(block.get(flag)) for flag in self.FLAGS) for block in blocks):
            return []
        off = sorted({flag for block in blocks for flag in self.FLAGS if not _true(block.get(flag))})
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
            for config in _companions(resource, "aws_s3_bucket_server_side_encryption_configuration")
            for rule in _blocks(config.get("rule"))
        ]
        # The provider still accepts the deprecated inline block on the bucket itself.
        for inline in _blocks(resource.config.get("server_side_encryption_configuration")):
            rules.extend(_blocks(inline.get("rule")))
        if not rules:
            return [f"{resource.address} has no server-side encryption configuration"]
        for rule in rules:
            default = _block(rule.get("apply_server_side_encryption_by_default"))
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
        for config in _companions(resource, "aws_s3_bucket_versioning"):
            if _block(config.get("versioning_configuration")).get("status") == "Enabled":
                return []
        if _true(_block(resource.config.get("versioning")).get("enabled")):
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
        actions = _as_list(statement.get("Action"))
        if not any(a in ("*", "s3:*") for a in actions):
            return False
        principal = statement.get("Principal")
        everyone = principal == "*" or (isinstance(principal, dict) and "*" in _as_list(principal.get("AWS")))
        secure = _block(statement.get("Condition")).get("Bool", {})
        values = _as_list(secure.get("aws:SecureTransport")) if isinstance(secure, dict) else []
        return everyone and any(str(v).lower() == "false" for v in values)

    def check(self, resource: SynthResource) -> list[str]:
        """A message when no policy of this bucket denies plain-HTTP requests."""
        if resource.type != "aws_s3_bucket":
            return []
        documents = [config.get("policy") for config in _companions(resource, "aws_s3_bucket_policy")]
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
        options = _block(resource.config.get("metadata_options"))
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
        if not _true(ebs.get("encrypted")):
            return f"{where} is not encrypted"
        if not ebs.get("kms_key_id"):
            return f"{where} has no kms_key_id (the customer-managed key)"
        return None

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each unencrypted or unmapped volume."""
        volumes: list[tuple[str, dict[str, Any]]] = []
        if resource.type == "aws_launch_template":
            mappings = _blocks(resource.config.get("block_device_mappings"))
            with_ebs = [(m.get("device_name", f"#{i}"), _block(m.get("ebs"))) for i, m in enumerate(mappings)]
            with_ebs = [(device, ebs) for device, ebs in with_ebs if ebs]
            if not with_ebs:
                return [f"{resource.address} maps no EBS volume, so their encryption is left to the AMI"]
            volumes = [(f"{resource.address} volume {device}", ebs) for device, ebs in with_ebs]
        elif resource.type == "aws_instance":
            volumes = [(f"{resource.address} root volume", _block(resource.config.get("root_block_device")))]
            volumes += [
                (f"{resource.address} volume {b.get('device_name')}", b)
                for b in _blocks(resource.config.get("ebs_block_device"))
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
        name = _referenced(resource.config.get("security_group_id"), "aws_security_group")
        return resource.others("aws_security_group").get(name) if name else None

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each rule open to the internet."""
        if resource.type in ("aws_security_group", "aws_default_security_group"):
            rules = [(f"ingress[{i}]", r, "protocol") for i, r in enumerate(_blocks(resource.config.get("ingress")))]
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
            open_cidrs = [c for key in cidr_keys for c in _as_list(rule.get(key)) if c in _OPEN_CIDRS]
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
        if _true(resource.config.get("enable_key_rotation")):
            return []
        return [f"{resource.address} does not enable key rotation"]


class GpuOnlyWhereAllowed:
    """Rule ``GPU-1``: accelerated instances appear only in environments that allow GPUs.

    Looks at every attribute whose name contains ``instance_type`` (launch templates, instances,
    Auto Scaling overrides, EKS node groups' ``instance_types``, SageMaker variants and specs, Batch
    compute environments, ...), at EKS ``ami_type`` GPU/Neuron images, and at attribute-based
    instance requirements that ask for accelerators.
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
        for path, key, value in _walk(resource.config):
            if "instance_type" in key:
                gpus = [t for t in _as_list(value) if isinstance(t, str) and is_gpu_instance_type(t)]
                if gpus:
                    problems.append(f"{resource.address}.{path} = {gpus} is a GPU instance type")
            elif key == "ami_type" and isinstance(value, str) and self.ACCELERATED_AMI.search(value):
                problems.append(f"{resource.address}.{path} = {value!r} is an accelerated node image")
            elif key == "instance_requirements":
                for requirements in _blocks(value):
                    count = _block(requirements.get("accelerator_count"))
                    wants = (count.get("min") or 0) > 0 if isinstance(count.get("min"), int) else False
                    if wants or requirements.get("accelerator_types") or requirements.get("accelerator_names"):
                        problems.append(f"{resource.address}.{path} requests accelerators")
        if problems:
            problems = [f"{p} (gpu_enabled is False in this environment)" for p in problems]
        return problems


class ProtectedData:
    """Rule ``PROT-1``: in a protected environment, stateful resources cannot be destroyed by Terraform.

    - S3 buckets: ``lifecycle.prevent_destroy`` and no ``force_destroy``.
    - KMS keys: ``prevent_destroy``, or the maximum 30-day deletion window (deleting a key makes
      everything encrypted with it unreadable; 30 days is the time to notice and cancel).
    - DynamoDB tables: ``deletion_protection_enabled``; RDS/Aurora/DocumentDB/Neptune:
      ``deletion_protection``; EFS file systems and EBS volumes: ``prevent_destroy``.
    - ECR repositories: no ``force_delete``; backup vaults: no ``force_destroy``.

    Compute (EKS clusters, node groups, SageMaker endpoints, Auto Scaling groups) is not data:
    it is rebuilt from code, so it stays replaceable.
    """

    id = "PROT-1"
    description = "Protected environments: stateful resources have deletion protection / prevent_destroy"
    KMS_MAX_WINDOW_DAYS = 30
    DELETION_PROTECTION = {
        "aws_dynamodb_table": "deletion_protection_enabled",
        "aws_db_instance": "deletion_protection",
        "aws_rds_cluster": "deletion_protection",
        "aws_docdb_cluster": "deletion_protection",
        "aws_neptune_cluster": "deletion_protection",
    }
    PREVENT_DESTROY = ("aws_s3_bucket", "aws_efs_file_system", "aws_ebs_volume")
    NO_FORCE_DELETE = {
        "aws_s3_bucket": "force_destroy",
        "aws_ecr_repository": "force_delete",
        "aws_backup_vault": "force_destroy",
    }

    def __init__(self, protected: bool) -> None:
        self.protected = protected

    def check(self, resource: SynthResource) -> list[str]:
        """Messages for each way a protected resource could be destroyed."""
        if not self.protected:
            return []
        config = resource.config
        prevent_destroy = _true(_block(config.get("lifecycle")).get("prevent_destroy"))
        problems = []
        if resource.type in self.PREVENT_DESTROY and not prevent_destroy:
            problems.append(f"{resource.address} lacks lifecycle.prevent_destroy")
        force = self.NO_FORCE_DELETE.get(resource.type)
        if force and _true(config.get(force)):
            problems.append(f"{resource.address} sets {force}")
        flag = self.DELETION_PROTECTION.get(resource.type)
        if flag and not _true(config.get(flag)):
            problems.append(f"{resource.address} lacks {flag} = true")
        if resource.type == "aws_kms_key" and not prevent_destroy:
            window = config.get("deletion_window_in_days", self.KMS_MAX_WINDOW_DAYS)
            if not (isinstance(window, int) and window >= self.KMS_MAX_WINDOW_DAYS):
                problems.append(
                    f"{resource.address} deletion_window_in_days = {window!r}: a protected key needs "
                    f"{self.KMS_MAX_WINDOW_DAYS} days or lifecycle.prevent_destroy"
                )
        return [f"{p} (protected environment)" for p in problems]


def security_pack(*, required_tags: Sequence[str], gpu_enabled: bool, protected: bool) -> list[Rule]:
    """Every rule of the platform's security policy, configured for one environment.

    required_tags: tag keys every taggable resource carries (TAG-1).
    gpu_enabled: whether the environment may run accelerated instances (GPU-1).
    protected: whether the environment holds data that must survive ``terraform destroy`` (PROT-1).
    """
    return [
        RequiredTags(required_tags),
        NoWildcardActions(),
        NoAdminManagedPolicies(),
        BucketPublicAccessBlocked(),
        BucketEncryptedWithKms(),
        BucketVersioned(),
        BucketTlsOnly(),
        InstanceMetadataV2(),
        EncryptedVolumes(),
        NoPublicIngress(),
        KmsKeyRotation(),
        GpuOnlyWhereAllowed(gpu_enabled),
        ProtectedData(protected),
    ]
