"""The one instance-type catalog: which types are accelerated, what each NVIDIA GPU type carries, which
SageMaker types have local NVMe storage, and the shapes of EC2 and SageMaker instance type names.

Every feature asks here: the training cluster (GPU count, memory, driver support, EFA), the EKS GPU node
group (GPU count per node), SageMaker (NVMe storage, GPU images), the environment rules and the security pack
(accelerated types only where GPUs are enabled). A type missing from :data:`NVIDIA_GPU_INSTANCES` is rejected
where GPUs are counted, never guessed at: a wrong GPU count silently changes a distributed job's world size.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from constructs.core.settings import matches, predicate

# Accelerated families: NVIDIA GPU (p, g), AWS Trainium and Inferentia, Habana (dl): all priced like GPUs.
ACCELERATED_FAMILY = re.compile(r"^(ml\.)?(p\d+[a-z]*|g\d+[a-z]*|gr\d+|trn\d+[a-z]*|inf\d+[a-z]*|dl\d+[a-z]*)\.")
EC2_INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]*\.[0-9]*[a-z]+")
SAGEMAKER_INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.[0-9]*[a-z]+")


def is_accelerated(instance_type: str) -> bool:
    """True for accelerated EC2 or SageMaker instance types (``g5.xlarge``, ``ml.p3.8xlarge``, ``trn1.2xlarge``)."""
    return bool(ACCELERATED_FAMILY.match(instance_type))


Ec2InstanceType = Annotated[
    str,
    predicate(
        lambda value: bool(EC2_INSTANCE_TYPE.fullmatch(value)) and not value.startswith("ml."),
        "an EC2 instance type such as 'm6i.large' or 'g5.2xlarge'",
    ),
]
"""An EC2 instance type (not a SageMaker ``ml.`` type)."""

SageMakerInstanceType = Annotated[
    str, matches(SAGEMAKER_INSTANCE_TYPE, "a SageMaker instance type with the 'ml.' prefix, such as 'ml.g5.xlarge'")
]
"""A SageMaker instance type, which always carries the ``ml.`` prefix."""


@dataclass(frozen=True)
class NvidiaGpuInstance:
    """What one x86_64 NVIDIA GPU instance type carries.

    gpus: GPUs per instance (a distributed job's world size is nodes x gpus).
    gpu_memory_gib: memory of each GPU.
    architecture: the GPU generation (Volta, Turing, Ampere, Ada, Hopper).
    efa: the type supports an Elastic Fabric Adapter.
    """

    gpus: int
    gpu_memory_gib: int
    architecture: str
    efa: bool

    @property
    def open_driver(self) -> bool:
        """NVIDIA's open kernel modules (and the "OSS Nvidia Driver" DLAMIs) support Turing and newer, not Volta."""
        return self.architecture != "Volta"


_T4, _A10G, _L4, _L40S = (16, "Turing"), (24, "Ampere"), (24, "Ada"), (48, "Ada")
_SIZES_EFA = {"8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge", "metal"}


def _family(family: str, gpu: tuple[int, str], sizes: Mapping[str, int]) -> dict[str, NvidiaGpuInstance]:
    memory, architecture = gpu
    return {
        f"{family}.{size}": NvidiaGpuInstance(count, memory, architecture, size in _SIZES_EFA)
        for size, count in sizes.items()
    }


_ONE_GPU = {"xlarge": 1, "2xlarge": 1, "4xlarge": 1, "8xlarge": 1, "16xlarge": 1}

NVIDIA_GPU_INSTANCES: Mapping[str, NvidiaGpuInstance] = {
    **_family("g4dn", _T4, {**_ONE_GPU, "12xlarge": 4, "metal": 8}),
    **_family("g5", _A10G, {**_ONE_GPU, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    **_family("g6", _L4, {**_ONE_GPU, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    **_family("g6e", _L40S, {**_ONE_GPU, "12xlarge": 4, "24xlarge": 4, "48xlarge": 8}),
    "p3.2xlarge": NvidiaGpuInstance(1, 16, "Volta", False),
    "p3.8xlarge": NvidiaGpuInstance(4, 16, "Volta", False),
    "p3.16xlarge": NvidiaGpuInstance(8, 16, "Volta", False),
    "p3dn.24xlarge": NvidiaGpuInstance(8, 32, "Volta", True),
    "p4d.24xlarge": NvidiaGpuInstance(8, 40, "Ampere", True),
    "p4de.24xlarge": NvidiaGpuInstance(8, 80, "Ampere", True),
    "p5.48xlarge": NvidiaGpuInstance(8, 80, "Hopper", True),
    "p5e.48xlarge": NvidiaGpuInstance(8, 141, "Hopper", True),
    "p5en.48xlarge": NvidiaGpuInstance(8, 141, "Hopper", True),
}
"""x86_64 NVIDIA GPU instance types, by EC2 name."""

NvidiaGpuInstanceType = Annotated[
    str,
    predicate(
        lambda value: value in NVIDIA_GPU_INSTANCES,
        "an NVIDIA GPU instance type (x86_64) such as 'g5.xlarge' or 'g5.12xlarge' (see NVIDIA_GPU_INSTANCES)",
    ),
]
"""An EC2 instance type from the NVIDIA GPU catalog."""

# SageMaker families whose storage is local NVMe although their names carry no 'd' (the EC2 instance-store
# families g5, g6, g6e, gr6, p5*, trn*). Families with a 'd' in their attributes (c5d, m5d, r5d, m6id, g4dn,
# p3dn, p4d, p4de, x2iedn, ...) are recognised by name.
_INSTANCE_STORE_FAMILIES = frozenset(
    {"g5", "g6", "g6e", "gr6", "p5", "p5e", "p5en", "p6-b200", "trn1", "trn1n", "trn2"}
)
_SAGEMAKER_TYPE_PARTS = re.compile(
    r"^ml\.(?P<family>(?P<series>[a-z]+)(?P<generation>\d+)(?P<attributes>[a-z0-9-]*))\."
)


def has_instance_storage(instance_type: str) -> bool:
    """True when the SageMaker instance type's storage volume is local NVMe (``ml.g5.xlarge``).

    SageMaker rejects a ``KmsKeyId``/``VolumeKmsKeyId`` for these: the NVMe volumes are encrypted by a hardware
    module on the instance instead.
    """
    match = _SAGEMAKER_TYPE_PARTS.match(instance_type)
    if match is None:
        return False
    return match["family"] in _INSTANCE_STORE_FAMILIES or "d" in match["attributes"]
