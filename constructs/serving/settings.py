"""The spec of one model served on the environment's EKS cluster: container, resources, scaling and address."""

from __future__ import annotations

import ipaddress
from typing import Annotated, ClassVar, Literal, Self

from constructs.core.errors import require_field
from constructs.core.formats import HostInZone
from constructs.core.settings import Settings, matches, predicate
from pydantic import Field, model_validator

MODEL_NAME_MAX = 20
ModelName = Annotated[
    str,
    matches(
        rf"[a-z](?:[a-z0-9-]{{0,{MODEL_NAME_MAX - 2}}}[a-z0-9])?",
        f"1-{MODEL_NAME_MAX} lowercase letters, digits and '-', starting with a letter and ending with a letter or "
        "digit, such as 'llm-chat' (it names the namespace 'model-<name>', the IAM role and the load balancer)",
    ),
]
# registry[:port]/path[:tag] or ...@sha256:<digest>: a tag or a digest is required, so a redeploy never pulls
# something else under the same reference.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = (
    rf"(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})"
)
ContainerImage = Annotated[
    str,
    matches(
        _IMAGE,
        "a container image with a tag or a digest, such as 'vllm/vllm-openai:v0.11.0' or "
        "'123456789012.dkr.ecr.us-east-1.amazonaws.com/chat@sha256:<64 hex digits>'",
    ),
]
# A key prefix of the model-artifacts bucket: relative, ending in '/', without '.' or '..' segments, and without
# '*' or '?', which the pod's IAM policy would read as wildcards reaching other models.
_PREFIX_SEGMENT = r"[A-Za-z0-9!_'()-](?:[A-Za-z0-9!_.'()-]{0,254})"
ModelPrefix = Annotated[
    str,
    matches(
        rf"(?:{_PREFIX_SEGMENT}/)+",
        "a key prefix of the model-artifacts bucket ending in '/', such as 'models/chat/v3/' (segments of letters, "
        "digits and ! _ . ' ( ) -, not starting with '.')",
    ),
]
HealthPath = Annotated[
    str, matches(r"/[A-Za-z0-9/_.~-]{0,254}", "an absolute URL path such as '/health' (no query string)")
]
ServerArgument = Annotated[
    str,
    Field(max_length=1024),
    predicate(str.isprintable, "printable text of at most 1024 characters (no newline, tab or other control)"),
]


def _public_or_private_cidr(value: str) -> bool:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return network.prefixlen >= 8


SourceCidr = Annotated[
    str,
    predicate(
        _public_or_private_cidr,
        "an IPv4 CIDR block of at most a /8 such as '203.0.113.0/24', without host bits (never 0.0.0.0/0: leave the "
        "list empty to rely on the web ACL alone)",
    ),
]


class ModelIngressSettings(HostInZone):
    """How clients reach a model: an HTTPS load balancer on a host name of a Route53 zone.

    hostname: the URL's host name, inside ``hosted_zone_name``.
    hosted_zone_name: a public Route53 hosted zone of the account (it must exist): it validates the certificate
      and holds the alias record.
    scheme: ``"internal"`` (reachable from the VPC and the networks routed into it) or ``"internet-facing"``
      (reachable from the internet, always behind a web ACL of AWS's managed rules and a per-address rate limit).
    allowed_cidrs: the only source ranges the load balancer accepts; empty means the VPC and the EKS private
      access ranges for an internal model, and every address (behind the web ACL) for an internet-facing one.
    requests_per_5_minutes: the web ACL's limit per client address (internet-facing only), 10-2,000,000,000.
    """

    EXAMPLE_HOST: ClassVar[str] = "chat"

    scheme: Literal["internal", "internet-facing"] = "internal"
    allowed_cidrs: Annotated[tuple[SourceCidr, ...], Field(max_length=40)] = ()
    requests_per_5_minutes: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000


class ModelServingSpec(Settings):
    """One model served by its own Deployment on the EKS cluster, scaled by an HPA, behind an HTTPS load balancer.

    name: the model's name (see :data:`ModelName`).
    image: the serving container (vLLM, Triton, TorchServe, your own), with a tag or a digest; not ``latest`` in a
      protected environment.
    model_prefix: where the model's files are in the model-artifacts bucket; an init container copies them to
      ``/models`` before the server starts, and the pod's role may read nothing else.
    args: the server's arguments (for vLLM: ``("--model", "/models", "--port", "8080")``).
    port: the port the server listens on (1024-65535: the container runs as a non-root user).
    health_path: answers 200 once the model is loaded; the startup, readiness and liveness probes call it.
    startup_seconds: how long loading may take before the pod is restarted (60-3600).
    drain_seconds: how long a stopping pod keeps serving before the server gets SIGTERM (0-120), so the load
      balancer has stopped sending it requests first; it runs ``sleep`` in the image, 0 for an image without one.
    gpus: NVIDIA GPUs per pod (0 for a CPU model); a GPU model runs on the GPU node group.
    cpu_millicores, memory_mib: each pod's request; memory is also its limit.
    cpu_limit_millicores: each pod's CPU limit, at least its request; None for twice the request (room for bursts
      such as tokenizing a batch, while one pod cannot take a whole node).
    model_size_gib: the scratch space the model is copied into (a size-limited emptyDir on the node's disk).
    min_replicas, max_replicas: the HPA's bounds (a GPU model's GPUs at ``max_replicas`` count against the GPU
      node group, next to the training teams' quotas).
    target_cpu_utilization: average CPU use (percent of the request) the HPA keeps the pods at.
    pod_disruption_budget: keep all but one pod up through node drains (needs ``min_replicas`` >= 2).
    ingress: the address clients use.
    """

    name: ModelName
    image: ContainerImage
    model_prefix: ModelPrefix
    args: Annotated[tuple[ServerArgument, ...], Field(max_length=64)] = ()
    port: Annotated[int, Field(ge=1024, le=65535)] = 8080
    health_path: HealthPath = "/health"
    startup_seconds: Annotated[int, Field(ge=60, le=3600)] = 600
    drain_seconds: Annotated[int, Field(ge=0, le=120)] = 15
    gpus: Annotated[int, Field(ge=0, le=8)] = 0
    cpu_millicores: Annotated[int, Field(ge=100, le=64000)] = 1000
    cpu_limit_millicores: Annotated[int, Field(ge=100, le=128000)] | None = None
    memory_mib: Annotated[int, Field(ge=256, le=524288)] = 2048
    model_size_gib: Annotated[int, Field(ge=1, le=1000)] = 20
    min_replicas: Annotated[int, Field(ge=1, le=100)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=100)] = 3
    target_cpu_utilization: Annotated[int, Field(ge=10, le=100)] = 70
    pod_disruption_budget: bool = False
    ingress: ModelIngressSettings

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        require_field(
            self.min_replicas <= self.max_replicas,
            "min_replicas",
            self.min_replicas,
            f"a value <= max_replicas ({self.max_replicas})",
        )
        if self.cpu_limit_millicores is not None:
            require_field(
                self.cpu_limit_millicores >= self.cpu_millicores,
                "cpu_limit_millicores",
                self.cpu_limit_millicores,
                f"None or a value >= cpu_millicores ({self.cpu_millicores})",
            )
        if self.pod_disruption_budget:
            require_field(
                self.min_replicas >= 2,
                "min_replicas",
                self.min_replicas,
                "2 or more when pod_disruption_budget is True (a budget of one pod blocks every node drain)",
            )
        return self

    @property
    def namespace(self) -> str:
        """The model's namespace."""
        return f"model-{self.name}"

    @property
    def image_tag(self) -> str | None:
        """The image's tag, or None when it is pinned by digest."""
        if "@" in self.image:
            return None
        return self.image.rsplit("/", 1)[-1].split(":", 1)[1]

    @property
    def cpu_limit(self) -> int:
        """Each pod's CPU limit in millicores."""
        return self.cpu_limit_millicores if self.cpu_limit_millicores is not None else 2 * self.cpu_millicores

    @property
    def shared_memory_mib(self) -> int:
        """A GPU pod's memory-backed ``/dev/shm``: a quarter of its memory, which it counts against."""
        return self.memory_mib // 4

    @property
    def max_gpus(self) -> int:
        """GPUs the model holds at ``max_replicas``."""
        return self.gpus * self.max_replicas
