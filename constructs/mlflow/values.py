"""The Helm values of the MLflow and Reloader releases, built from typed Python (never YAML assembled from text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from constructs.eks.components import HelmChart
from constructs.mlflow.secrets import (
    AUTH_CONFIG_FILE,
    AUTH_CONFIG_SECRET,
    AUTH_DATABASE,
    DATABASE_SECRET,
)
from constructs.mlflow.settings import MlflowSettings

# The community-charts chart (MLflow 3.x, Apache-2.0, released with each MLflow version). MLflow's own chart is
# still 0.x with lagging releases; Bitnami's froze at MLflow 3.3 when its images moved to a legacy repository.
MLFLOW_CHART = HelmChart("https://community-charts.github.io/helm-charts", "mlflow", "1.11.5")
MLFLOW_IMAGE = "burakince/mlflow"
MLFLOW_VERSION = "3.15.1"
# Restarts the tracking server when a Secret it reads changes: environment variables and the authentication
# file are read at start only.
RELOADER_CHART = HelmChart("https://stakater.github.io/stakater-charts", "reloader", "2.2.16")
RELOAD_ANNOTATION = "secret.reloader.stakater.com/reload"

RELEASE_NAME = "mlflow"
SERVICE_NAME = RELEASE_NAME  # the chart names its Service after a release whose name contains "mlflow"
SERVICE_PORT = 80
CONTAINER_PORT = 5000
RUN_AS_USER = 1001  # the image's user
SELECTOR_LABELS = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": RELEASE_NAME}
AUTH_CONFIG_DIRECTORY = "/etc/mlflow/auth"
ARTIFACT_PREFIX = "artifacts"
ZONE_LABEL = "topology.kubernetes.io/zone"

# Creates the authentication database on first start (RDS creates only the tracking database). MLflow's auth
# app keeps its own alembic history, so it cannot share the tracking database. Connects with the libpq
# environment of the container; a second pod racing the first finds the database there.
CREATE_AUTH_DATABASE = f"""
import psycopg2
from psycopg2 import errors
connection = psycopg2.connect()
connection.autocommit = True
with connection.cursor() as cursor:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", ("{AUTH_DATABASE}",))
    if cursor.fetchone() is None:
        try:
            cursor.execute("CREATE DATABASE {AUTH_DATABASE}")
        except errors.DuplicateDatabase:
            pass
""".strip()


@dataclass(frozen=True)
class MlflowServerSpec:
    """What the tracking server's values are made of.

    settings: the environment's MLflow settings.
    region: the AWS region (the S3 client's).
    service_account: the Terraform-created service account with the artifact store's IRSA role.
    database_host, database_port, database_name: the RDS endpoint and the tracking database.
    artifact_bucket: the MLflow artifacts bucket; artifacts go under ``artifacts/``.
    hostname: the load balancer's DNS name, or None without one.
    node_selector: labels of the CPU nodes.
    """

    settings: MlflowSettings
    region: str
    service_account: str
    namespace: str
    database_host: str
    database_port: int
    database_name: str
    artifact_bucket: str
    hostname: str | None
    node_selector: Mapping[str, str]


def restricted_container() -> dict[str, Any]:
    """The container security context of the ``restricted`` Pod Security Standard, read-only root."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _libpq_environment(spec: MlflowServerSpec) -> list[dict[str, Any]]:
    def from_secret(name: str, key: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": DATABASE_SECRET, "key": key}}}

    return [
        {"name": "PGHOST", "value": spec.database_host},
        {"name": "PGPORT", "value": str(spec.database_port)},
        {"name": "PGDATABASE", "value": spec.database_name},
        {"name": "PGSSLMODE", "value": "require"},
        from_secret("PGUSER", "username"),
        from_secret("PGPASSWORD", "password"),
    ]


def _allowed_hosts(spec: MlflowServerSpec) -> list[str]:
    # MLflow rejects requests whose Host header it does not know (DNS rebinding): the Service's names, the
    # load balancer's name, and localhost for `kubectl port-forward`.
    service = [SERVICE_NAME, f"{SERVICE_NAME}.{spec.namespace}", f"{SERVICE_NAME}.{spec.namespace}.svc"]
    service.append(f"{SERVICE_NAME}.{spec.namespace}.svc.cluster.local")
    hosts = [*service, "localhost:*", "127.0.0.1:*"]
    return [spec.hostname, *hosts] if spec.hostname else hosts


def mlflow_values(spec: MlflowServerSpec) -> dict[str, Any]:
    """Values of the ``mlflow`` chart: PostgreSQL with TLS, proxied S3 artifacts through IRSA, optional basic auth."""
    s = spec.settings
    authentication = s.authentication == "basic-auth"
    reloaded = [DATABASE_SECRET, AUTH_CONFIG_SECRET] if authentication else [DATABASE_SECRET]
    values: dict[str, Any] = {
        "replicaCount": s.replicas,
        "image": {"repository": MLFLOW_IMAGE, "tag": MLFLOW_VERSION},
        "serviceAccount": {"create": False, "name": spec.service_account, "automount": True},
        "deploymentAnnotations": {RELOAD_ANNOTATION: ",".join(reloaded)},
        "podSecurityContext": {
            "fsGroup": RUN_AS_USER,
            "fsGroupChangePolicy": "OnRootMismatch",
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "securityContext": restricted_container(),
        "resources": {
            "requests": {"cpu": f"{s.cpu_millicores}m", "memory": f"{s.memory_mib}Mi"},
            "limits": {"cpu": f"{s.cpu_limit_millicores}m", "memory": f"{s.memory_mib}Mi"},
        },
        "nodeSelector": dict(spec.node_selector),
        # One pod per zone where the zones allow (the chart has no topologySpreadConstraints).
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": ZONE_LABEL,
                            "labelSelector": {"matchLabels": SELECTOR_LABELS},
                        },
                    }
                ]
            }
        },
        "service": {"type": "ClusterIP", "port": SERVICE_PORT, "containerPort": CONTAINER_PORT},
        # The load balancer is a Terraform-managed Ingress (it waits for the ALB and names it in Route53).
        "ingress": {"enabled": False},
        "serverAllowedHosts": _allowed_hosts(spec),
        "backendStore": {
            "databaseMigration": True,
            "databaseConnectionCheck": True,
            "postgres": {
                "enabled": True,
                "host": spec.database_host,
                "port": spec.database_port,
                "database": spec.database_name,
                "driver": "psycopg2",
            },
            "existingDatabaseSecret": {"name": DATABASE_SECRET, "usernameKey": "username", "passwordKey": "password"},
        },
        # Clients send artifacts through the server (mlflow-artifacts:/), which writes them with its own role.
        "artifactRoot": {
            "proxiedArtifactStorage": True,
            "s3": {"enabled": True, "bucket": spec.artifact_bucket, "path": ARTIFACT_PREFIX},
        },
        "extraEnvVars": {"AWS_DEFAULT_REGION": spec.region, "PGSSLMODE": "require"},
    }
    if authentication:
        values["extraArgs"] = {"appName": "basic-auth"}
        values["extraEnvVars"]["MLFLOW_AUTH_CONFIG_PATH"] = f"{AUTH_CONFIG_DIRECTORY}/{AUTH_CONFIG_FILE}"
        values["extraVolumes"] = [{"name": "auth-config", "secret": {"secretName": AUTH_CONFIG_SECRET}}]
        values["extraVolumeMounts"] = [{"name": "auth-config", "mountPath": AUTH_CONFIG_DIRECTORY, "readOnly": True}]
        values["initContainers"] = [
            {
                "name": "create-auth-database",
                "image": f"{MLFLOW_IMAGE}:{MLFLOW_VERSION}",
                "command": ["python", "-c", CREATE_AUTH_DATABASE],
                "env": _libpq_environment(spec),
                "securityContext": restricted_container(),
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
            }
        ]
    return values


def reloader_values(node_selector: Mapping[str, str]) -> dict[str, Any]:
    """Values of the ``reloader`` chart: watches only its own namespace, restricted security context."""
    return {
        "reloader": {
            "watchGlobally": False,
            "readOnlyRootFileSystem": True,
            "deployment": {
                "nodeSelector": dict(node_selector),
                "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                "containerSecurityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            },
        }
    }
