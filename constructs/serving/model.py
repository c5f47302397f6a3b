"""One model served on EKS: its namespace, identity, Deployment, Service, autoscaler and HTTPS load balancer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cdktf import ITerraformDependable, TerraformResourceLifecycle
from constructs import Construct
from constructs.core.bindings import kubernetes
from constructs.core.context import PlatformContext
from constructs.core.errors import require
from constructs.core.refs import KmsKeyRef
from constructs.eks.cluster import EksCluster
from constructs.eks.ingress import AccessLogs, HttpsIngress, HttpsIngressProps
from constructs.eks.irsa import IrsaRole
from constructs.eks.node_group import EksGpuNodeGroup
from constructs.serving.pod import IDLE_TIMEOUT_SECONDS, SERVICE_ACCOUNT, model_pod_template
from constructs.serving.settings import ModelServingSpec
from constructs.serving.web_acl import ModelWebAcl, ModelWebAclProps
from constructs.storage.bucket import SecureBucket

SERVICE_PORT = 80


@dataclass(frozen=True)
class ModelServingProps:
    """Props for :class:`ModelServing`.

    context: the environment.
    spec: the model.
    cluster: the EKS cluster it runs on.
    model_artifacts: the bucket holding the model (the pod's role reads ``spec.model_prefix`` of it, nothing else).
    cpu_node_selector: labels of the CPU nodes (a CPU model runs there).
    gpu_nodes: the GPU node group (a GPU model selects its labels and tolerates its taint), or None.
    client_cidrs: the networks an internal load balancer accepts (the VPC and those routed into it).
    access_logs: where the load balancer's access logs go, or None.
    logs_key: the KMS key of the web ACL's log group (internet-facing models).
    log_retention_days: how long the web ACL's request logs are kept.
    depends_on: the node groups, add-ons and system components (the AWS Load Balancer Controller's release among
      them): everything of the model is created after them and destroyed before them.
    in_cluster_resources: create what lives in the cluster; False creates only the AWS side (role, certificate,
      web ACL).
    """

    context: PlatformContext
    spec: ModelServingSpec
    cluster: EksCluster
    model_artifacts: SecureBucket
    cpu_node_selector: Mapping[str, str]
    gpu_nodes: EksGpuNodeGroup | None
    client_cidrs: Sequence[str]
    logs_key: KmsKeyRef
    log_retention_days: int
    access_logs: AccessLogs | None = None
    depends_on: Sequence[ITerraformDependable] = ()
    in_cluster_resources: bool = True


class ModelServing(Construct):
    """A model server in namespace ``model-<name>``, scaled by CPU use, behind its own HTTPS load balancer.

    - Namespace with the restricted Pod Security Standard enforced; a service account ``server`` whose IRSA role
      reads only the model's prefix of the model-artifacts bucket (decrypting through S3 only).
    - Deployment: an init container copies the model from S3 into a size-limited ``/models`` volume; the server
      runs as a non-root user, with a read-only root file system, no privilege escalation, no capabilities and
      the runtime's default seccomp profile, and a writable ``/tmp``. A startup probe gives the model
      ``startup_seconds`` to load before readiness and liveness probes take over. Pods spread over the zones; a
      GPU model requests ``nvidia.com/gpu`` and selects and tolerates the GPU node group.
    - Service (ClusterIP), HorizontalPodAutoscaler on CPU utilization (scaling down slowly), and a
      PodDisruptionBudget where the spec asks.
    - :class:`~constructs.eks.ingress.HttpsIngress`: certificate, load balancer (internal, or internet-facing behind
      a :class:`~constructs.serving.web_acl.ModelWebAcl`), access logs and the alias record.

    Destroy order: record, Ingress (which waits until the controller has deleted the load balancer, its target
    groups and security groups), then the workload and the namespace, and only then the controller and the
    node groups (``depends_on``), so nothing the controller made outlives it.
    """

    def __init__(self, scope: Construct, id: str, props: ModelServingProps) -> None:
        super().__init__(scope, id)
        spec = props.spec
        require(
            spec.gpus == 0 or props.gpu_nodes is not None,
            self.node.path,
            "gpu_nodes",
            None,
            f"the GPU node group: model {spec.name!r} asks for {spec.gpus} GPUs per pod",
        )
        self.props = props
        c = props.context
        self.namespace = spec.namespace
        self.labels = {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "ml-platform"}
        self.web_acl: ModelWebAcl | None = None
        if spec.ingress.scheme == "internet-facing":
            self.web_acl = ModelWebAcl(
                self,
                "web-acl",
                ModelWebAclProps(
                    name=f"{c.name_prefix}-model-{spec.name}",
                    description=f"Internet-facing model {spec.name} of {c.name_prefix}",
                    requests_per_5_minutes=spec.ingress.requests_per_5_minutes,
                    logs_key=props.logs_key,
                    log_retention_days=props.log_retention_days,
                    protected=c.protected,
                ),
            )
        self.namespace_resource: Any | None = None
        ready: list[ITerraformDependable] = []
        if props.in_cluster_resources:
            self.namespace_resource = props.cluster.add_namespace(
                self,
                "namespace",
                name=spec.namespace,
                # The controller holds a new pod's readiness until the load balancer reports it healthy, so a
                # rollout never stops an old pod before the load balancer can send traffic to its replacement.
                labels={"ml-platform/model": spec.name, "elbv2.k8s.aws/pod-readiness-gate-inject": "enabled"},
                depends_on=props.depends_on,
            )
            ready.append(self.namespace_resource)
        self.role: IrsaRole = props.cluster.add_service_account(
            self,
            "server-irsa",
            role_name=f"{c.name_prefix}-model-{spec.name}",
            description=f"Model server {spec.name} of {c.name_prefix}: reads its model only",
            namespace=spec.namespace,
            service_account_name=SERVICE_ACCOUNT,
            statements=tuple(props.model_artifacts.read_grant(spec.model_prefix)),
            create_service_account=props.in_cluster_resources,
            kubernetes_depends_on=ready,
        )
        self.deployment: Any | None = None
        self.service: Any | None = None
        self.autoscaler: Any | None = None
        self.pod_disruption_budget: Any | None = None
        workload: list[ITerraformDependable] = []
        if self.namespace_resource is not None:
            workload = self._workload(self.namespace_resource)
        self.ingress = HttpsIngress(
            self,
            "ingress",
            HttpsIngressProps(
                context=c,
                name=spec.name,
                namespace=spec.namespace,
                hostname=spec.ingress.hostname,
                hosted_zone_name=spec.ingress.hosted_zone_name,
                service_name=spec.name,
                service_port=SERVICE_PORT,
                health_check_path=spec.health_path,
                client_cidrs=self.client_cidrs,
                idle_timeout_seconds=IDLE_TIMEOUT_SECONDS,
                scheme=spec.ingress.scheme,
                web_acl_arn=self.web_acl.arn if self.web_acl is not None else None,
                access_logs=props.access_logs.under(spec.namespace) if props.access_logs is not None else None,
                tags=c.owner_tags,
                depends_on=[*props.depends_on, *workload],
                in_cluster_resources=props.in_cluster_resources,
            ),
        )

    @property
    def client_cidrs(self) -> tuple[str, ...]:
        """Who may connect: the spec's list, else the VPC's networks (internal) or everyone behind the web ACL."""
        ingress = self.props.spec.ingress
        if ingress.allowed_cidrs:
            return ingress.allowed_cidrs
        return tuple(self.props.client_cidrs) if ingress.scheme == "internal" else ("0.0.0.0/0",)

    @property
    def url(self) -> str:
        """``https://<hostname>``."""
        return self.ingress.url

    def _workload(self, namespace: ITerraformDependable) -> list[ITerraformDependable]:
        spec = self.props.spec
        metadata = {"namespace": spec.namespace}
        self.deployment = self._deployment(namespace)
        service = kubernetes.service_v1
        self.service = service.ServiceV1(
            self,
            "service",
            metadata=service.ServiceV1Metadata(name=spec.name, labels=self.labels, **metadata),
            spec=service.ServiceV1Spec(
                type="ClusterIP",
                selector=self.labels,
                port=[service.ServiceV1SpecPort(name="http", port=SERVICE_PORT, target_port=str(spec.port))],
            ),
            depends_on=[namespace],
        )
        hpa = kubernetes.horizontal_pod_autoscaler_v2
        self.autoscaler = hpa.HorizontalPodAutoscalerV2(
            self,
            "autoscaler",
            metadata=hpa.HorizontalPodAutoscalerV2Metadata(name=spec.name, **metadata),
            spec=hpa.HorizontalPodAutoscalerV2Spec(
                min_replicas=spec.min_replicas,
                max_replicas=spec.max_replicas,
                scale_target_ref=hpa.HorizontalPodAutoscalerV2SpecScaleTargetRef(
                    api_version="apps/v1", kind="Deployment", name=spec.name
                ),
                metric=[
                    hpa.HorizontalPodAutoscalerV2SpecMetric(
                        type="Resource",
                        resource=hpa.HorizontalPodAutoscalerV2SpecMetricResource(
                            name="cpu",
                            target=hpa.HorizontalPodAutoscalerV2SpecMetricResourceTarget(
                                type="Utilization", average_utilization=spec.target_cpu_utilization
                            ),
                        ),
                    )
                ],
                behavior=hpa.HorizontalPodAutoscalerV2SpecBehavior(
                    # Up at once (a new pod takes minutes to load its model); down one pod a minute, after five
                    # quiet minutes, so a short lull does not throw away loaded models.
                    scale_up=[
                        hpa.HorizontalPodAutoscalerV2SpecBehaviorScaleUp(
                            stabilization_window_seconds=0,
                            select_policy="Max",
                            policy=[
                                hpa.HorizontalPodAutoscalerV2SpecBehaviorScaleUpPolicy(
                                    type="Percent", value=100, period_seconds=60
                                )
                            ],
                        )
                    ],
                    scale_down=[
                        hpa.HorizontalPodAutoscalerV2SpecBehaviorScaleDown(
                            stabilization_window_seconds=300,
                            select_policy="Min",
                            policy=[
                                hpa.HorizontalPodAutoscalerV2SpecBehaviorScaleDownPolicy(
                                    type="Pods", value=1, period_seconds=60
                                )
                            ],
                        )
                    ],
                ),
            ),
            depends_on=[self.deployment],
        )
        if spec.pod_disruption_budget:
            pdb = kubernetes.pod_disruption_budget_v1
            self.pod_disruption_budget = pdb.PodDisruptionBudgetV1(
                self,
                "pod-disruption-budget",
                metadata=pdb.PodDisruptionBudgetV1Metadata(name=spec.name, **metadata),
                spec=pdb.PodDisruptionBudgetV1Spec(
                    max_unavailable="1", selector=pdb.PodDisruptionBudgetV1SpecSelector(match_labels=self.labels)
                ),
                depends_on=[namespace],
            )
        return [self.deployment, self.service]

    def _deployment(self, namespace: ITerraformDependable) -> Any:
        spec = self.props.spec
        deployment = kubernetes.deployment_v1
        gpu_nodes = self.props.gpu_nodes if spec.gpus else None
        return deployment.DeploymentV1(
            self,
            "deployment",
            metadata=deployment.DeploymentV1Metadata(name=spec.name, namespace=spec.namespace, labels=self.labels),
            spec=deployment.DeploymentV1Spec(
                replicas=str(spec.min_replicas),
                selector=deployment.DeploymentV1SpecSelector(match_labels=self.labels),
                strategy=deployment.DeploymentV1SpecStrategy(
                    type="RollingUpdate",
                    # A new pod is ready before an old one goes: capacity never drops during a rollout.
                    rolling_update=deployment.DeploymentV1SpecStrategyRollingUpdate(max_surge="1", max_unavailable="0"),
                ),
                template=model_pod_template(
                    spec,
                    labels=self.labels,
                    bucket=self.props.model_artifacts.name,
                    node_selector=dict(gpu_nodes.labels)
                    if gpu_nodes is not None
                    else dict(self.props.cpu_node_selector),
                    tolerations=[gpu_nodes.taint.toleration()] if gpu_nodes is not None else [],
                ),
            ),
            wait_for_rollout=True,
            # Pulling a large image onto a GPU node started from zero, then loading the model, takes a while.
            timeouts=deployment.DeploymentV1Timeouts(
                create=f"{spec.startup_seconds // 60 + 20}m", update=f"{spec.startup_seconds // 60 + 20}m"
            ),
            depends_on=[namespace, *([self.role.service_account] if self.role.service_account is not None else [])],
            # The autoscaler owns the replica count once the Deployment exists.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["spec[0].replicas"]),
        )
