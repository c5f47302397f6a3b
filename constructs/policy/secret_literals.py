"""Rule ``SEC-1``: no secret in the configuration, and so none in Terraform's state or in Helm values.

Terraform keeps every argument and attribute of a resource in its state in plain text, and a Helm release's
values as well; ``cdk.tf.json`` is committed to pull requests and CI logs. So a secret the platform needs
(a database password, an admin password, an OIDC client secret) is created and kept where it is used: RDS
manages the master password in Secrets Manager, and the External Secrets Operator copies secrets into the
cluster. What Terraform handles is a secret's ARN, never its value.

:func:`secret_findings` looks for three things in any JSON value, nested JSON strings (Helm values) included:

- a secret-bearing argument (``password``, ``client_secret``, ``adminPassword`` ...) with any value but an empty
  one (a reference such as ``${random_password.x.result}`` copies a secret into the state as surely as a
  literal does);
- text shaped like a credential wherever it is: a PEM private key, an AWS access key ID, a GitHub, Slack or
  OpenAI-style token, a JSON Web Token, a URL with a password in it;
- resource and data source types whose whole purpose is to hold secret material in the state (a secret
  version, a generated password or private key, an IAM access key, a Kubernetes Secret with data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from constructs.core.checks import SynthResource

# Argument and value names whose value is a secret, compared without case, '_', '-' and '.'. Names that only
# *refer* to a secret (secret_arn, existingSecret, passwordKey, secretKey: the key inside a Kubernetes Secret)
# are not in it. (So neither is the AWS provider's own `secret_key`: credentials come from the environment, and
# the emulator's fixed test credentials are the only ones in any configuration.)
SECRET_ARGUMENTS = frozenset(
    (
        *("password", "passwd", "masterpassword", "masteruserpassword", "adminpassword", "passwordwo"),
        *("clientsecret", "secretaccesskey", "awssecretaccesskey", "secretstring", "secretbinary"),
        *("token", "accesstoken", "authtoken", "apitoken", "apikey", "privatekey", "flaskserversecretkey"),
    )
)
# Endings of a name that holds a secret whatever comes before it (DB_PASSWORD, refresh_token, OPENAI_API_KEY).
SECRET_SUFFIXES = ("password", "passwd", "token", "apikey", "privatekey", "secretaccesskey", "clientsecret")
# Types that hold secret material in the state by design (data sources read it into the state).
SECRET_RESOURCE_TYPES = frozenset(
    (
        "aws_secretsmanager_secret_version",
        "aws_iam_access_key",
        "aws_iam_user_login_profile",
        "random_password",
        "tls_private_key",
    )
)
SECRET_DATA_TYPES = frozenset(("aws_secretsmanager_secret_version", "aws_ssm_parameter", "aws_kms_secrets"))
# AWS's public parameters (AMI IDs, regions, service endpoints) are no secret.
PUBLIC_PARAMETERS = "/aws/service/"
# A Kubernetes Secret's data lands in the state; an empty one (filled by a controller) does not.
_KUBERNETES_SECRETS = ("kubernetes_secret", "kubernetes_secret_v1")
CREDENTIAL_PATTERNS = {
    "a PEM private key": re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
    "an AWS access key ID": re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[A-Z0-9]{16}\b"),
    "a GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{22,}\b"),
    "a Slack token or webhook": re.compile(
        r"\bxox[abposr]-[A-Za-z0-9-]{10,}|hooks\.slack\.com/services/T[A-Za-z0-9]+/"
    ),
    "an API secret key": re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"),
    "a JSON Web Token": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    "a URL with a password": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@${}]*:[^/\s@${}]+@[^/\s]+"),
}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]", "", name).lower()


def _names_a_secret(name: str, value: Any) -> bool:
    """Whether ``name: value`` sets a secret: a non-empty value under a secret's name, or a text or number under a
    name ending like one (a mapping there, such as ``password: {existingSecret: ...}``, only points at one)."""
    if value in ("", None, [], {}) or isinstance(value, bool):
        return False
    key = _normalized(name)
    if key in SECRET_ARGUMENTS:
        return True
    return key.endswith(SECRET_SUFFIXES) and isinstance(value, str | int | float)


def _nested_json(text: str) -> Any:
    """The JSON value ``text`` holds (Helm values, policy documents), or None when it holds none."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return None


def secret_findings(value: Any, path: str = "") -> Iterator[str]:
    """Every secret-bearing argument and credential-shaped text in ``value``, as ``<path>: <what>``."""
    if isinstance(value, dict):
        # A {name, value} pair (a container's env entry, a Helm `set` item) names its value by its `name`.
        named = value.get("name")
        if isinstance(named, str) and "value" in value and _names_a_secret(named.rsplit(".", 1)[-1], value["value"]):
            yield f"{path}.value ({named}): a secret-bearing value is set (Terraform would keep it in the state)"
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if _names_a_secret(str(key), item):
                yield f"{where}: a secret-bearing argument is set (Terraform would keep its value in the state)"
                continue
            yield from secret_findings(item, where)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from secret_findings(item, f"{path}[{index}]")
    elif isinstance(value, str):
        nested = _nested_json(value)
        if nested is not None:
            yield from secret_findings(nested, path)
            return
        for what, pattern in CREDENTIAL_PATTERNS.items():
            if pattern.search(value):
                yield f"{path}: {what}"


def document_findings(document: dict[str, Any]) -> list[str]:
    """:func:`secret_findings` over a whole synthesized stack: resources, data sources, providers, outputs, locals,
    variables and the ``terraform`` block (its backend)."""
    return [*_block_findings(document, "resource"), *stack_findings(document)]


def stack_findings(document: dict[str, Any]) -> list[str]:
    """:func:`document_findings` of everything but the resources (which the rule checks one at a time)."""
    findings = _block_findings(document, "data")
    for block in ("provider", "output", "locals", "variable", "terraform"):
        findings.extend(f"{block}.{message}" for message in secret_findings(document.get(block, {})))
    return findings


def _block_findings(document: dict[str, Any], block: str) -> list[str]:
    findings: list[str] = []
    kinds = SECRET_RESOURCE_TYPES if block == "resource" else SECRET_DATA_TYPES
    for resource_type, by_name in document.get(block, {}).items():
        for name, config in by_name.items():
            address = f"{'data.' if block == 'data' else ''}{resource_type}.{name}"
            findings.extend(f"{address}: {message}" for message in resource_findings(resource_type, config, kinds))
    return findings


def resource_findings(
    resource_type: str, config: dict[str, Any], kinds: frozenset[str] = SECRET_RESOURCE_TYPES
) -> list[str]:
    """What in one resource (or data source) configuration would put a secret into the state."""
    body = {key: item for key, item in config.items() if key != "//"}
    found = list(secret_findings(body))
    public = resource_type == "aws_ssm_parameter" and str(body.get("name", "")).startswith(PUBLIC_PARAMETERS)
    if resource_type in kinds and not public:
        found.append(f"a {resource_type} keeps secret material in the state")
    if resource_type in _KUBERNETES_SECRETS and (body.get("data") or body.get("binary_data")):
        found.append("a Kubernetes Secret with data keeps it in the state (let a controller fill it)")
    return found


class NoSecretLiterals:
    """Rule ``SEC-1``: no secret value, or reference to one, anywhere in a stack's configuration (see the module).

    Each resource is checked with the others (so a suppression can name it); :meth:`check_stack` checks the rest of
    the stack once: data sources, providers, outputs, locals, variables and the backend.
    """

    id = "SEC-1"
    description = "No password, token, key or other secret in the configuration (so none in state or Helm values)"

    def check(self, resource: SynthResource) -> list[str]:
        """One message per secret found in the resource."""
        return [f"{resource.address}: {finding}" for finding in resource_findings(resource.type, resource.config)]

    def check_stack(self, config: dict[str, Any]) -> list[str]:
        """One message per secret found outside the resources."""
        return stack_findings(config)
