"""The MLflow tracking server on EKS: its identities, its credentials, its Helm releases and its load balancer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable
from constructs import Construct
from constructs.core.bindings import aws, kubernetes
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement
from constructs.core.protection import prevent_destroy
from constructs.eks.cluster import EksCluster
from constructs.eks.components import install_chart
from constructs.eks.external_secrets import ExternalSecretsOperator, ExternalSecretsOperatorProps
from constructs.eks.ingress import AccessLogs, HttpsIngress, HttpsIngressProps
from constructs.eks.manifests import ManifestsRelease, ManifestsReleaseProps
from constructs.mlflow.database import MlflowDatabase
from constructs.mlflow.secrets import MlflowSecretsSpec, credential_manifests
from constructs.mlflow.settings import MlflowIngressSettings, MlflowSettings
from constructs.mlflow.values import (
    ARTIFACT_PREFIX,
    MLFLOW_CHART,
    RELEASE_NAME,
    RELOADER_CHART,
    SELECTOR_LABELS,
    SERVICE_NAME,
    SERVICE_PORT,
    MlflowServerSpec,
    mlflow_values,
    reloader_values,
)
from constructs.storage.bucket import SecureBucket

NAMESPACE = "mlflow"
SERVER_SERVICE_ACCOUNT = "mlflow"
SECRETS_SERVICE_ACCOUNT = "mlflow-secrets"
# ESO tags what it manages; it refuses to update a Secrets Manager secret without this tag.
MANAGED_BY_ESO = {"managed-by": "external-secrets"}


@dataclass(frozen=True)
class MlflowTrackingServerProps:
    """Props for :class:`MlflowTrackingServer`.

    context: the environment.
    settings: the environment's MLflow settings.
    cluster: the EKS cluster it runs on.
    database: the backend store (its credentials come from the secret RDS manages).
    artifacts: the MLflow artifacts bucket.
    node_selector: labels of the CPU nodes, where every pod of the feature runs.
    client_cidrs: the networks that may reach the load balancer (the VPC and those routed into it).
    access_logs: where the load balancer's access logs go (the platform's access-log bucket), or None.
    depends_on: the node groups, add-ons and system components (the AWS Load Balancer Controller among them).
    in_cluster_resources: create what lives in the cluster; False creates only the AWS side (roles, the admin
      secret, the certificate).
    """

    context: PlatformContext
    settings: MlflowSettings
    cluster: EksCluster
    database: MlflowDatabase
    artifacts: SecureBucket
    node_selector: Mapping[str, str]
    client_cidrs: Sequence[str]
    access_logs: AccessLogs | None = None
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class MlflowTrackingServer(Construct):
    """MLflow in namespace ``mlflow``, installed in the order its parts need each other.

    cluster and nodes -> External Secrets Operator -> credential objects (SecretStore, ExternalSecrets, the
    admin password's generator and PushSecret) -> Reloader -> MLflow -> load balancer and DNS record.

    Identities (IRSA, each for one service account of the namespace):
    - ``mlflow``: the server; reads and writes ``artifacts/`` of the artifacts bucket (the bucket's own grant,
      KMS through S3 only). Clients upload and download through the server (proxied artifacts), so they need
      no AWS access at all.
    - ``mlflow-secrets``: the namespace's SecretStore; reads exactly the RDS-managed secret, reads and writes
      exactly the admin secret, and uses exactly their key, through Secrets Manager only.

    No password, token or key passes through Terraform: RDS generates the database password, the operator
    generates the admin password, and the Helm values name Secrets, never their contents.
    """

    def __init__(self, scope: Construct, id: str, props: MlflowTrackingServerProps) -> None:
        super().__init__(scope, id)
        self.props = props
        c = props.context
        s = props.settings
        cluster = props.cluster
        self.namespace = NAMESPACE
        self.authentication = s.authentication == "basic-auth"
        self.admin_secret: Any | None = None
        if self.authentication:
            self.admin_secret = aws.secretsmanager_secret.SecretsmanagerSecret(
                self,
                "admin-secret",
                name=f"{c.name_prefix}-mlflow-admin",
                description=f"MLflow admin of {c.name_prefix}: generated in the cluster, pushed by the operator",
                kms_key_id=props.database.secret_key.arn,
                recovery_window_in_days=30 if c.protected else 7,
                tags=MANAGED_BY_ESO,
                lifecycle=prevent_destroy(c.protected),
            )

        self.namespace_resource: Any | None = None
        namespace_ready: list[ITerraformDependable] = []
        if props.in_cluster_resources:
            # Every pod of the namespace must meet the restricted Pod Security Standard.
            self.namespace_resource = cluster.add_namespace(self, "namespace", name=NAMESPACE)
            namespace_ready.append(self.namespace_resource)

        self.server_role = cluster.add_service_account(
            self,
            "server-irsa",
            role_name=f"{c.name_prefix}-mlflow-server",
            description=f"MLflow tracking server of {c.name_prefix}: artifacts",
            namespace=NAMESPACE,
            service_account_name=SERVER_SERVICE_ACCOUNT,
            statements=tuple(props.artifacts.read_write_statements(f"{ARTIFACT_PREFIX}/")),
            create_service_account=props.in_cluster_resources,
            kubernetes_depends_on=namespace_ready,
        )
        self.secrets_role = cluster.add_service_account(
            self,
            "secrets-irsa",
            role_name=f"{c.name_prefix}-mlflow-secrets",
            description=f"MLflow of {c.name_prefix}: its database and admin secrets, through the operator",
            namespace=NAMESPACE,
            service_account_name=SECRETS_SERVICE_ACCOUNT,
            statements=self.secret_statements(),
            create_service_account=props.in_cluster_resources,
            kubernetes_depends_on=namespace_ready,
        )

        self.ingress: HttpsIngress | None = None
        self.releases: dict[str, Any] = {}
        self.pod_disruption_budget: Any | None = None
        if self.namespace_resource is not None:
            self._install(self.namespace_resource)
        elif s.ingress is not None:
            self.ingress = self._ingress(s.ingress, [])

    def secret_statements(self) -> tuple[PolicyStatement, ...]:
        """The SecretStore's permissions: the database credentials, and the admin secret when there is one."""
        statements = list(self.props.database.credentials_read_statements())
        if self.admin_secret is not None:
            arn = self.admin_secret.arn
            statements += [
                PolicyStatement(
                    # The operator reads the admin secret back (the authentication file) and updates it (PushSecret);
                    # it removes a resource policy on every push, and there is none to remove.
                    sid="PushAndReadAdminSecret",
                    actions=(
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:DeleteResourcePolicy",
                    ),
                    resources=(arn,),
                ),
                PolicyStatement(
                    sid="EncryptAdminSecret",
                    actions=("kms:GenerateDataKey", "kms:Decrypt"),
                    resources=(self.props.database.secret_key.arn,),
                    conditions={"StringEquals": {"kms:ViaService": self.props.context.via_service("secretsmanager")}},
                ),
            ]
        return tuple(statements)

    def _install(self, namespace: ITerraformDependable) -> None:
        props = self.props
        s = props.settings
        c = props.context
        database = props.database
        waits_for = [*props.depends_on, *props.cluster.admin_access]
        self.operator = ExternalSecretsOperator(
            self,
            "external-secrets",
            ExternalSecretsOperatorProps(
                cluster=props.cluster,
                node_selector=props.node_selector,
                replicas=2 if s.replicas > 1 else 1,
                depends_on=props.depends_on,
            ),
        )
        spec = MlflowSecretsSpec(
            namespace=NAMESPACE,
            service_account=SECRETS_SERVICE_ACCOUNT,
            region=c.region,
            database_secret_arn=database.secret_arn,
            admin_secret_name=self.admin_secret.name if self.admin_secret is not None else "",
            database_host=database.address,
            database_port=database.port,
            refresh_minutes=s.secret_refresh_minutes,
        )
        self.credentials = ManifestsRelease(
            self,
            "credentials",
            ManifestsReleaseProps(
                name="mlflow-credentials",
                namespace=NAMESPACE,
                manifests=credential_manifests(spec, authentication=self.authentication),
                depends_on=[
                    self.operator.release,
                    namespace,
                    self.secrets_role.service_account,
                    *self.secrets_role.policy_attachments,
                    database.instance,
                    *([self.admin_secret] if self.admin_secret is not None else []),
                ],
            ),
        )
        self.releases["external-secrets"] = self.operator.release
        self.releases["mlflow-credentials"] = self.credentials.release
        self.releases["reloader"] = install_chart(
            self,
            "reloader",
            RELOADER_CHART,
            namespace=NAMESPACE,
            values=reloader_values(props.node_selector),
            depends_on=[*waits_for, namespace],
        )
        server = MlflowServerSpec(
            settings=s,
            region=c.region,
            service_account=SERVER_SERVICE_ACCOUNT,
            namespace=NAMESPACE,
            database_host=database.address,
            database_port=database.port,
            database_name=database.database_name,
            artifact_bucket=props.artifacts.name,
            hostname=s.ingress.hostname if s.ingress is not None else None,
            node_selector=props.node_selector,
        )
        self.releases[RELEASE_NAME] = install_chart(
            self,
            RELEASE_NAME,
            MLFLOW_CHART,
            namespace=NAMESPACE,
            values=mlflow_values(server),
            depends_on=[
                *waits_for,
                self.credentials.release,
                self.releases["reloader"],
                self.server_role.service_account,
                *self.server_role.policy_attachments,
            ],
        )
        if s.pod_disruption_budget:
            pdb = kubernetes.pod_disruption_budget_v1
            self.pod_disruption_budget = pdb.PodDisruptionBudgetV1(
                self,
                "pod-disruption-budget",
                metadata=pdb.PodDisruptionBudgetV1Metadata(name=RELEASE_NAME, namespace=NAMESPACE),
                spec=pdb.PodDisruptionBudgetV1Spec(
                    max_unavailable="1",
                    selector=pdb.PodDisruptionBudgetV1SpecSelector(match_labels=SELECTOR_LABELS),
                ),
                depends_on=[namespace],
            )
        if s.ingress is not None:
            self.ingress = self._ingress(s.ingress, [*waits_for, self.releases[RELEASE_NAME]])

    def _ingress(self, settings: MlflowIngressSettings, depends_on: Sequence[ITerraformDependable]) -> HttpsIngress:
        props = self.props
        return HttpsIngress(
            self,
            "ingress",
            HttpsIngressProps(
                context=props.context,
                name=RELEASE_NAME,
                namespace=NAMESPACE,
                hostname=settings.hostname,
                hosted_zone_name=settings.hosted_zone_name,
                service_name=SERVICE_NAME,
                service_port=SERVICE_PORT,
                health_check_path="/health",
                client_cidrs=props.client_cidrs,
                # Artifact uploads through the server can take minutes.
                idle_timeout_seconds=600,
                access_logs=props.access_logs.under(RELEASE_NAME) if props.access_logs is not None else None,
                tags=props.context.owner_tags,
                depends_on=depends_on,
                in_cluster_resources=props.in_cluster_resources,
            ),
        )

    @property
    def tracking_uri(self) -> str:
        """What ``MLFLOW_TRACKING_URI`` is set to: the load balancer's URL, or the in-cluster Service's."""
        if self.ingress is not None:
            return self.ingress.url
        return self.cluster_tracking_uri

    @property
    def cluster_tracking_uri(self) -> str:
        """The Service's address, for pods of the cluster: no load balancer on the way, whether there is one or not."""
        return f"http://{SERVICE_NAME}.{NAMESPACE}.svc.cluster.local"
