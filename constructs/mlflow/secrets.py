"""The External Secrets Operator objects that bring MLflow's credentials into its namespace.

Three Kubernetes Secrets, none of whose values Terraform ever sees:

- ``mlflow-database``: the RDS-managed master user (``username``, ``password``) copied from the secret RDS keeps
  in Secrets Manager, re-read every ``refresh_minutes``; RDS rotates it every 7 days.
- ``mlflow-admin-password``: the MLflow admin's password, generated once in the cluster by the operator's
  Password generator, and pushed to the Secrets Manager secret ``admin_secret_name`` (PushSecret), where people
  with access to that secret read it.
- ``mlflow-auth``: MLflow's ``basic_auth.ini``, rendered by the operator from the two: the authentication
  database URI with the (URL-encoded) database password, and the admin's name and password.

A changed Secret restarts the tracking server's pods (Reloader, see :mod:`constructs.mlflow.server`): MLflow
reads its database password and authentication configuration at start only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs.eks.external_secrets import EXTERNAL_SECRETS_API, GENERATORS_API, PUSH_SECRET_API

SECRET_STORE = "aws-secrets-manager"
DATABASE_SECRET = "mlflow-database"
ADMIN_PASSWORD_SECRET = "mlflow-admin-password"
AUTH_CONFIG_SECRET = "mlflow-auth"
AUTH_CONFIG_FILE = "basic_auth.ini"
AUTH_DATABASE = "mlflow_auth"
ADMIN_USERNAME = "admin"
# Authenticated users may read every experiment and model; writing needs a permission the admin grants.
DEFAULT_PERMISSION = "READ"
ADMIN_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class MlflowSecretsSpec:
    """Where MLflow's credentials come from.

    namespace: MLflow's namespace (every object lives there).
    service_account: the namespace's service account whose IRSA role may read these secrets.
    region: the Secrets Manager region.
    database_secret_arn: the RDS-managed master user secret.
    admin_secret_name: the Secrets Manager secret the admin password is pushed to.
    database_host, database_port: the RDS endpoint (the authentication database lives on the same instance).
    refresh_minutes: how often the database password is re-read.
    """

    namespace: str
    service_account: str
    region: str
    database_secret_arn: str
    admin_secret_name: str
    database_host: str
    database_port: int
    refresh_minutes: int


def _metadata(spec: MlflowSecretsSpec, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": spec.namespace, "labels": {"app.kubernetes.io/part-of": "mlflow"}}


def _remote(secret_key: str, key: str, remote_property: str) -> dict[str, Any]:
    return {"secretKey": secret_key, "remoteRef": {"key": key, "property": remote_property}}


def secret_store(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """The namespace's view of Secrets Manager, authenticated as ``spec.service_account`` (IRSA)."""
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "SecretStore",
        "metadata": _metadata(spec, SECRET_STORE),
        "spec": {
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": spec.region,
                    "auth": {"jwt": {"serviceAccountRef": {"name": spec.service_account}}},
                }
            }
        },
    }


def _external_secret(
    spec: MlflowSecretsSpec, name: str, body: dict[str, Any], target: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": _metadata(spec, name),
        "spec": {
            "secretStoreRef": {"name": SECRET_STORE, "kind": "SecretStore"},
            "target": {"name": name, "creationPolicy": "Owner", "deletionPolicy": "Retain", **(target or {})},
            **body,
        },
    }


def _refreshed(spec: MlflowSecretsSpec, *data: dict[str, Any]) -> dict[str, Any]:
    """Remote values re-read every ``refresh_minutes``, well inside RDS's 7-day rotation."""
    return {"refreshInterval": f"{spec.refresh_minutes}m", "refreshPolicy": "Periodic", "data": list(data)}


def database_credentials(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """``mlflow-database``: the master user's name and current password."""
    arn = spec.database_secret_arn
    return _external_secret(
        spec,
        DATABASE_SECRET,
        _refreshed(spec, _remote("username", arn, "username"), _remote("password", arn, "password")),
    )


def admin_password_generator(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """A Password generator: letters and digits only, so the password needs no escaping in an INI file or URL."""
    return {
        "apiVersion": GENERATORS_API,
        "kind": "Password",
        "metadata": _metadata(spec, ADMIN_PASSWORD_SECRET),
        "spec": {"length": ADMIN_PASSWORD_LENGTH, "digits": 8, "symbols": 0, "noUpper": False, "allowRepeat": True},
    }


def admin_password(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """``mlflow-admin-password``: generated once (``CreatedOnce``, immutable), with the admin's user name beside it."""
    return _external_secret(
        spec,
        ADMIN_PASSWORD_SECRET,
        {
            "refreshPolicy": "CreatedOnce",
            "dataFrom": [
                {
                    "sourceRef": {
                        "generatorRef": {
                            "apiVersion": GENERATORS_API,
                            "kind": "Password",
                            "name": ADMIN_PASSWORD_SECRET,
                        }
                    }
                }
            ],
        },
        # Immutable: recreating the ExternalSecret must not generate a second password.
        target={
            "immutable": True,
            "template": {"engineVersion": "v2", "mergePolicy": "Merge", "data": {"username": ADMIN_USERNAME}},
        },
    )


def admin_password_push(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """Copies the generated admin credentials into the Secrets Manager secret ``admin_secret_name``."""
    return {
        "apiVersion": PUSH_SECRET_API,
        "kind": "PushSecret",
        "metadata": _metadata(spec, ADMIN_PASSWORD_SECRET),
        "spec": {
            "refreshInterval": "1h",
            "updatePolicy": "Replace",
            # The Secrets Manager secret belongs to Terraform: deleting this object leaves it alone.
            "deletionPolicy": "None",
            "secretStoreRefs": [{"name": SECRET_STORE, "kind": "SecretStore"}],
            "selector": {"secret": {"name": ADMIN_PASSWORD_SECRET}},
            "data": [
                {
                    "match": {"secretKey": key, "remoteRef": {"remoteKey": spec.admin_secret_name, "property": key}},
                    # A SecretString (the provider's default is SecretBinary), so that people read it with
                    # `aws secretsmanager get-secret-value --query SecretString` and in the console.
                    "metadata": {
                        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
                        "kind": "PushSecretMetadata",
                        "spec": {"secretPushFormat": "string"},
                    },
                }
                for key in ("username", "password")
            ],
        },
    }


def auth_config_template(spec: MlflowSecretsSpec) -> str:
    """``basic_auth.ini`` as an operator template (Go text/template with Sprig).

    The database password is URL-encoded for the URI, then every ``%`` doubled: MLflow reads the file with
    ``configparser``, whose interpolation would otherwise treat ``%`` as a reference. ``sslmode=require``:
    the instance only accepts TLS (``rds.force_ssl``).
    """
    host = f"{spec.database_host}:{spec.database_port}"
    return "\n".join(
        (
            "[mlflow]",
            f"default_permission = {DEFAULT_PERMISSION}",
            "database_uri = postgresql://{{ .db_username | urlquery }}:"
            '{{ .db_password | urlquery | replace "%" "%%" }}'
            f"@{host}/{AUTH_DATABASE}?sslmode=require",
            "admin_username = {{ .admin_username }}",
            'admin_password = {{ .admin_password | replace "%" "%%" }}',
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth",
            "",
        )
    )


def auth_config(spec: MlflowSecretsSpec) -> dict[str, Any]:
    """``mlflow-auth``: MLflow's authentication configuration, re-rendered whenever the database password changes."""
    database, admin = spec.database_secret_arn, spec.admin_secret_name
    return _external_secret(
        spec,
        AUTH_CONFIG_SECRET,
        _refreshed(
            spec,
            _remote("db_username", database, "username"),
            _remote("db_password", database, "password"),
            _remote("admin_username", admin, "username"),
            _remote("admin_password", admin, "password"),
        ),
        target={"template": {"engineVersion": "v2", "data": {AUTH_CONFIG_FILE: auth_config_template(spec)}}},
    )


def credential_manifests(spec: MlflowSecretsSpec, *, authentication: bool) -> list[dict[str, Any]]:
    """Every object, store first; the admin and authentication objects only with ``authentication``."""
    manifests = [secret_store(spec), database_credentials(spec)]
    if authentication:
        manifests += [
            admin_password_generator(spec),
            admin_password(spec),
            admin_password_push(spec),
            auth_config(spec),
        ]
    return manifests
