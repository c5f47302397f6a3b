"""The pod of a served model: an init container fetching the model from S3, and the hardened server container."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from constructs.core.bindings import kubernetes
from constructs.eks.node_group import GPU_RESOURCE
from constructs.serving.settings import ModelServingSpec

# The AWS CLI copies the model from S3 before the server starts (aws-cli 2.36.7, July 2026).
MODEL_FETCHER_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.36.7"
SERVICE_ACCOUNT = "server"
MODEL_DIR = "/models"
SCRATCH_DIR = "/tmp"
# A non-root user and group of no image in particular: the pod never runs as root, whatever the image says.
RUN_AS = "1000"
ZONE_KEY = "topology.kubernetes.io/zone"
PROBE_PERIOD_SECONDS = 10
# The load balancer keeps an idle connection this long: a long answer, generated token by token, streams for minutes.
IDLE_TIMEOUT_SECONDS = 300
# Where tools that write a cache or a config (the AWS CLI, Hugging Face libraries, Triton) write it: the root file
# system is read-only.
SCRATCH_ENVIRONMENT = {"HOME": SCRATCH_DIR, "XDG_CACHE_HOME": f"{SCRATCH_DIR}/cache", "MODEL_DIR": MODEL_DIR}


def _hardened(security_context: Any, capabilities: Any, seccomp: Any) -> Any:
    """A container's restricted security context (the Pod Security Standard ``restricted`` and then some)."""
    return security_context(
        run_as_non_root=True,
        run_as_user=RUN_AS,
        run_as_group=RUN_AS,
        allow_privilege_escalation=False,
        privileged=False,
        read_only_root_filesystem=True,
        capabilities=capabilities(drop=["ALL"]),
        seccomp_profile=seccomp(type="RuntimeDefault"),
    )


def model_pod_template(
    spec: ModelServingSpec,
    *,
    labels: Mapping[str, str],
    bucket: str,
    node_selector: Mapping[str, str],
    tolerations: Sequence[Mapping[str, str]],
) -> Any:
    """The Deployment's pod template for ``spec``: fetch the model, then serve it on ``spec.port``.

    The init container runs ``aws s3 sync`` of the model's prefix into ``/models`` (an emptyDir capped at
    ``model_size_gib``) with the pod's IRSA role; the server mounts it read-only. Probes call ``health_path``:
    the startup probe allows ``startup_seconds`` for loading, then readiness takes the pod out of the load
    balancer when it stops answering and liveness restarts it.
    """
    d = kubernetes.deployment_v1
    http = {"path": spec.health_path, "port": str(spec.port)}
    requests = {"cpu": f"{spec.cpu_millicores}m", "memory": f"{spec.memory_mib}Mi"}
    limits = {"cpu": f"{spec.cpu_limit}m", "memory": f"{spec.memory_mib}Mi"}
    if spec.gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(spec.gpus)
    scratch = d.DeploymentV1SpecTemplateSpecVolume(
        name="scratch", empty_dir=d.DeploymentV1SpecTemplateSpecVolumeEmptyDir(size_limit="2Gi")
    )
    models = d.DeploymentV1SpecTemplateSpecVolume(
        name="models", empty_dir=d.DeploymentV1SpecTemplateSpecVolumeEmptyDir(size_limit=f"{spec.model_size_gib}Gi")
    )
    volumes = [models, scratch]
    mounts = [
        d.DeploymentV1SpecTemplateSpecContainerVolumeMount(name="models", mount_path=MODEL_DIR, read_only=True),
        d.DeploymentV1SpecTemplateSpecContainerVolumeMount(name="scratch", mount_path=SCRATCH_DIR),
    ]
    if spec.gpus:
        # GPU servers (vLLM, Triton, PyTorch data loaders) pass tensors between processes through /dev/shm, which a
        # container otherwise gets at 64 MiB; memory-backed, it is a quarter of the pod's memory and counts against it.
        volumes.append(
            d.DeploymentV1SpecTemplateSpecVolume(
                name="shm",
                empty_dir=d.DeploymentV1SpecTemplateSpecVolumeEmptyDir(
                    medium="Memory", size_limit=f"{spec.shared_memory_mib}Mi"
                ),
            )
        )
        mounts.append(d.DeploymentV1SpecTemplateSpecContainerVolumeMount(name="shm", mount_path="/dev/shm"))
    fetcher = d.DeploymentV1SpecTemplateSpecInitContainer(
        name="fetch-model",
        image=MODEL_FETCHER_IMAGE,
        image_pull_policy="Always",
        command=["aws", "s3", "sync", f"s3://{bucket}/{spec.model_prefix}", MODEL_DIR, "--only-show-errors"],
        env=[d.DeploymentV1SpecTemplateSpecInitContainerEnv(name="HOME", value=SCRATCH_DIR)],
        resources=d.DeploymentV1SpecTemplateSpecInitContainerResources(
            requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "1Gi"}
        ),
        volume_mount=[
            d.DeploymentV1SpecTemplateSpecInitContainerVolumeMount(name="models", mount_path=MODEL_DIR),
            d.DeploymentV1SpecTemplateSpecInitContainerVolumeMount(name="scratch", mount_path=SCRATCH_DIR),
        ],
        security_context=_hardened(
            d.DeploymentV1SpecTemplateSpecInitContainerSecurityContext,
            d.DeploymentV1SpecTemplateSpecInitContainerSecurityContextCapabilities,
            d.DeploymentV1SpecTemplateSpecInitContainerSecurityContextSeccompProfile,
        ),
    )
    server = d.DeploymentV1SpecTemplateSpecContainer(
        name="server",
        image=spec.image,
        # A tag can be pushed again: every start checks the registry for what it names now (a digest never moves).
        image_pull_policy="IfNotPresent" if spec.image_tag is None else "Always",
        args=list(spec.args) or None,
        port=[d.DeploymentV1SpecTemplateSpecContainerPort(name="http", container_port=spec.port)],
        env=[
            d.DeploymentV1SpecTemplateSpecContainerEnv(name=name, value=value)
            for name, value in sorted(SCRATCH_ENVIRONMENT.items())
        ],
        resources=d.DeploymentV1SpecTemplateSpecContainerResources(requests=requests, limits=limits),
        volume_mount=mounts,
        startup_probe=d.DeploymentV1SpecTemplateSpecContainerStartupProbe(
            http_get=d.DeploymentV1SpecTemplateSpecContainerStartupProbeHttpGet(**http),
            period_seconds=PROBE_PERIOD_SECONDS,
            failure_threshold=math.ceil(spec.startup_seconds / PROBE_PERIOD_SECONDS),
        ),
        readiness_probe=d.DeploymentV1SpecTemplateSpecContainerReadinessProbe(
            http_get=d.DeploymentV1SpecTemplateSpecContainerReadinessProbeHttpGet(**http),
            period_seconds=PROBE_PERIOD_SECONDS,
            timeout_seconds=5,
            failure_threshold=3,
        ),
        liveness_probe=d.DeploymentV1SpecTemplateSpecContainerLivenessProbe(
            http_get=d.DeploymentV1SpecTemplateSpecContainerLivenessProbeHttpGet(**http),
            period_seconds=2 * PROBE_PERIOD_SECONDS,
            timeout_seconds=5,
            failure_threshold=3,
        ),
        # The load balancer deregisters a stopping pod while it gets SIGTERM; without a pause, requests routed to it
        # in the meantime fail. The grace period lets a request already streaming finish.
        lifecycle=d.DeploymentV1SpecTemplateSpecContainerLifecycle(
            pre_stop=[
                d.DeploymentV1SpecTemplateSpecContainerLifecyclePreStop(
                    exec=d.DeploymentV1SpecTemplateSpecContainerLifecyclePreStopExec(
                        command=["sleep", str(spec.drain_seconds)]
                    )
                )
            ]
        )
        if spec.drain_seconds
        else None,
        security_context=_hardened(
            d.DeploymentV1SpecTemplateSpecContainerSecurityContext,
            d.DeploymentV1SpecTemplateSpecContainerSecurityContextCapabilities,
            d.DeploymentV1SpecTemplateSpecContainerSecurityContextSeccompProfile,
        ),
    )
    return d.DeploymentV1SpecTemplate(
        metadata=d.DeploymentV1SpecTemplateMetadata(labels=dict(labels)),
        spec=d.DeploymentV1SpecTemplateSpec(
            service_account_name=SERVICE_ACCOUNT,
            security_context=d.DeploymentV1SpecTemplateSpecSecurityContext(
                run_as_non_root=True,
                run_as_user=RUN_AS,
                run_as_group=RUN_AS,
                fs_group=RUN_AS,
                seccomp_profile=d.DeploymentV1SpecTemplateSpecSecurityContextSeccompProfile(type="RuntimeDefault"),
            ),
            init_container=[fetcher],
            container=[server],
            volume=volumes,
            node_selector=dict(node_selector),
            toleration=[d.DeploymentV1SpecTemplateSpecToleration(**dict(t)) for t in tolerations] or None,
            topology_spread_constraint=[
                d.DeploymentV1SpecTemplateSpecTopologySpreadConstraint(
                    max_skew=1,
                    topology_key=ZONE_KEY,
                    # A zone without capacity (no Spot GPU there right now) must not keep a replica from starting.
                    when_unsatisfiable="ScheduleAnyway",
                    label_selector=[
                        d.DeploymentV1SpecTemplateSpecTopologySpreadConstraintLabelSelector(match_labels=dict(labels))
                    ],
                )
            ],
            # The pod needs no Kubernetes API token; its AWS token is a separate projected volume (IRSA).
            automount_service_account_token=False,
            termination_grace_period_seconds=spec.drain_seconds + IDLE_TIMEOUT_SECONDS,
        ),
    )
