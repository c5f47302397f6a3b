"""IAM Roles for Service Accounts (IRSA): one IAM role usable by exactly one Kubernetes service account."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import aws, kubernetes
from constructs.core.errors import ConfigurationError, require
from constructs.core.iam import PolicyStatement, grant, policy_document
from constructs.core.refs import RoleRef

# Kubernetes names of namespaces and (here, deliberately) service accounts: RFC 1123 DNS labels.
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_MAX = 63
_IAM_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")
# The partition and account may be Terraform tokens (data sources), so only the shape is checked.
_MANAGED_POLICY_ARN = re.compile(r"^arn:[^:]+:iam::[^:]*:policy/[\w+=,.@/-]+$")

ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
WEB_IDENTITY_AUDIENCE = "sts.amazonaws.com"


def require_dns1123_label(where: str, field: str, value: Any) -> None:
    """``value`` is a lowercase RFC 1123 label: a-z, 0-9 and '-', alphanumeric at both ends, <= 63 characters."""
    ok = isinstance(value, str) and len(value) <= DNS1123_LABEL_MAX and bool(DNS1123_LABEL.match(value))
    require(
        ok,
        where,
        field,
        value,
        "a DNS-1123 label: lowercase letters, digits and '-', starting and ending with a letter or digit, "
        f"at most {DNS1123_LABEL_MAX} characters",
    )


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer_host: str, namespace: str, service_account: str) -> str:
    """Trust policy letting only ``namespace/service_account`` of one cluster assume the role.

    ``oidc_issuer_host`` is the issuer URL without ``https://``: IAM names the OIDC condition keys
    after it (``<host>:sub``). Both ``sub`` (which service account) and ``aud`` (tokens minted for
    STS, not for some other audience) are pinned with StringEquals.
    """
    return policy_document(
        PolicyStatement(
            sid="ServiceAccountWebIdentity",
            principals={"Federated": oidc_provider_arn},
            actions=("sts:AssumeRoleWithWebIdentity",),
            conditions={
                "StringEquals": {
                    f"{oidc_issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{oidc_issuer_host}:aud": WEB_IDENTITY_AUDIENCE,
                }
            },
        )
    )


@dataclass(frozen=True)
class IrsaRoleProps:
    """Props for :class:`IrsaRole`.

    role_name: IAM role name (at most 64 characters).
    description: what the role is for, shown in the IAM console.
    namespace, service_account_name: the one service account allowed to assume the role (DNS-1123 labels).
    oidc_provider_arn: ARN of the cluster's IAM OIDC provider.
    oidc_issuer_host: the cluster's OIDC issuer URL without ``https://`` (a token is fine).
    statements: least-privilege permissions, attached as one inline policy named after the role's purpose.
    managed_policy_arns: AWS-managed or customer-managed policies to attach (never ``*FullAccess``).
    create_service_account: create the Kubernetes service account, annotated with the role ARN. Off
      only where something else owns the account (an EKS add-on creates and annotates its own).
    kubernetes_depends_on: resources that must exist before the service account is created (cluster
      access for the deploying principal, the namespace).
    """

    role_name: str
    description: str
    namespace: str
    service_account_name: str
    oidc_provider_arn: str
    oidc_issuer_host: str
    statements: tuple[PolicyStatement, ...] = ()
    managed_policy_arns: tuple[str, ...] = ()
    create_service_account: bool = True
    kubernetes_depends_on: Sequence[ITerraformDependable] = ()


class IrsaRole(Construct):
    """An IAM role assumable through web identity by exactly one Kubernetes service account.

    The trust policy pins the cluster's OIDC provider, the service account (``sub``) and the STS
    audience (``aud``), so no other pod, namespace or cluster can use the role. The service account
    is created with the ``eks.amazonaws.com/role-arn`` annotation, which makes the EKS pod identity
    webhook inject the web identity token and role into every pod that uses it.
    """

    def __init__(self, scope: Construct, id: str, props: IrsaRoleProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            isinstance(props.role_name, str) and bool(_IAM_ROLE_NAME.match(props.role_name)),
            where,
            "role_name",
            props.role_name,
            "an IAM role name of 1-64 letters, digits and + = , . @ _ -",
        )
        require_dns1123_label(where, "namespace", props.namespace)
        require_dns1123_label(where, "service_account_name", props.service_account_name)
        for arn in props.managed_policy_arns:
            require(
                bool(_MANAGED_POLICY_ARN.match(arn)) and "FullAccess" not in arn,
                where,
                "managed_policy_arns",
                arn,
                "IAM policy ARNs, none of them an AWS-managed *FullAccess policy",
            )
        if not props.statements and not props.managed_policy_arns:
            raise ConfigurationError(
                where, "statements", props.statements, "at least one statement or managed policy (a role with no use)"
            )
        self.props = props
        self.namespace = props.namespace
        self.service_account_name = props.service_account_name
        self.role: RoleRef = aws.iam_role.IamRole(
            self,
            "role",
            name=props.role_name,
            description=props.description,
            assume_role_policy=irsa_trust_policy(
                props.oidc_provider_arn, props.oidc_issuer_host, props.namespace, props.service_account_name
            ),
            max_session_duration=3600,
        )
        self.policy_attachments: list[Any] = [
            aws.iam_role_policy_attachment.IamRolePolicyAttachment(
                self, f"managed-{index}", role=self.role.name, policy_arn=arn
            )
            for index, arn in enumerate(props.managed_policy_arns)
        ]
        if props.statements:
            self.policy_attachments.append(grant(self, "permissions", self.role, *props.statements))
        self.service_account: Any | None = None
        if props.create_service_account:
            self.service_account = kubernetes.service_account_v1.ServiceAccountV1(
                self,
                "service-account",
                metadata=kubernetes.service_account_v1.ServiceAccountV1Metadata(
                    name=props.service_account_name,
                    namespace=props.namespace,
                    annotations={ROLE_ARN_ANNOTATION: self.role.arn},
                    labels={"app.kubernetes.io/managed-by": "terraform"},
                ),
                # Controllers call the Kubernetes API with this account's token.
                automount_service_account_token=True,
                depends_on=[*props.kubernetes_depends_on, *self.policy_attachments] or None,
            )

    @property
    def arn(self) -> str:
        """ARN of the role."""
        return self.role.arn
