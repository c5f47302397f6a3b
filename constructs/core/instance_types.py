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

from constructs.core.settings import predicate

# Every EC2 instance family, as accelerated (NVIDIA/AMD GPUs, FPGAs, Trainium, Inferentia, Habana Gaudi,
# video transcoding: all priced like GPUs) or not. The lists hold every family of the EC2 `InstanceType` enum
# and the SageMaker instance type enums of the pinned botocore (tests/core/test_instance_types.py keeps them
# complete). A family in neither list is unknown and counts as accelerated: an environment without GPUs fails
# closed on a type that AWS released after this catalog, instead of starting an 8-GPU node by accident.
_ACCELERATED = (
    "cg1 dl1 dl2q f1 f2 g2 g3 g3s g4ad g4dn g5 g5g g6 g6e g6f g7 g7e gr6 gr6f inf1 inf2 p2 p3 p3dn p4d "
    "p4de p5 p5e p5en p6-b200 p6-b300 p6e-gb200 trn1 trn1n trn2 trn2u vt1"
)
_CPU_ONLY = (
    "a1 c1 c3 c4 c5 c5a c5ad c5d c5n c6a c6g c6gd c6gn c6i c6id c6in c7a c7g c7gd c7gn c7i c7i-flex c8a "
    "c8g c8gb c8gd c8gn c8i c8i-flex c8ib c8id c8in c8ine c9g c9gd cc1 cc2 cr1 d2 d3 d3en h1 hi1 hpc6a "
    "hpc6id hpc7a hpc7g hpc8a hs1 i2 i3 i3en i4g i4i i7i i7ie i8g i8ge im4gn is4gen m1 m2 m3 m4 m5 m5a "
    "m5ad m5d m5dn m5n m5zn m6a m6g m6gd m6i m6id m6idn m6in m7a m7g m7gd m7i m7i-flex m8a m8azn m8g m8gb "
    "m8gd m8gn m8i m8i-flex m8ib m8id m8idb m8idn m8in m8ine m9g m9gd mac-m3ultra mac-m4 mac-m4max "
    "mac-m4pro mac1 mac2 mac2-m1ultra mac2-m2 mac2-m2pro r3 r4 r5 r5a r5ad r5b r5d r5dn r5n r6a r6g r6gd "
    "r6i r6id r6idn r6in r7a r7g r7gd r7i r7iz r8a r8g r8gb r8gd r8gn r8i r8i-flex r8ib r8id r8idb r8idn "
    "r8in r9g r9gd t1 t2 t3 t3a t4g t8i u-12tb1 u-18tb1 u-24tb1 u-3tb1 u-6tb1 u-9tb1 u7i-12tb u7i-6tb "
    "u7i-8tb u7ib-12tb u7in-16tb u7in-24tb u7in-32tb u7inh-32tb x1 x1e x2gd x2idn x2iedn x2iezn x8aedz "
    "x8g x8i z1d"
)
ACCELERATED_FAMILIES = frozenset(_ACCELERATED.split())
CPU_FAMILIES = frozenset(_CPU_ONLY.split())
KNOWN_FAMILIES = ACCELERATED_FAMILIES | CPU_FAMILIES
# <family>.<size>: sizes such as 'large', '12xlarge', 'metal', 'metal-24xl'.
EC2_INSTANCE_TYPE = re.compile(
    r"(?P<family>[a-z][a-z0-9]*(?:-[a-z0-9]+)*)\."
    r"(?P<size>nano|micro|small|medium|large|(?:[1-9][0-9]{0,2})?xlarge|metal(?:-[1-9][0-9]{1,2}xl)?)"
)


def instance_family(instance_type: str) -> str | None:
    """The family of an EC2 (``g5.xlarge``) or SageMaker (``ml.g5.xlarge``) type name; None when malformed."""
    match = EC2_INSTANCE_TYPE.fullmatch(instance_type.removeprefix("ml."))
    return match["family"] if match else None


def is_accelerated(instance_type: str) -> bool:
    """True unless the catalog knows the type's family as CPU-only (``m6i.large``, ``ml.m5.xlarge``).

    Accelerated families (``g5``, ``p6-b200``, ``ml.p6e-gb200``, ``trn2``) and unknown ones are accelerated.
    """
    return instance_family(instance_type) not in CPU_FAMILIES


def _is_catalogued(value: str, sagemaker: bool) -> bool:
    """A type of a catalogued family, with the ``ml.`` prefix exactly when ``sagemaker``."""
    return value.startswith("ml.") == sagemaker and instance_family(value) in KNOWN_FAMILIES


Ec2InstanceType = Annotated[
    str,
    predicate(
        lambda value: _is_catalogued(value, sagemaker=False),
        "an EC2 instance type such as 'm6i.large' or 'g5.2xlarge', of a family in the platform's catalog "
        "(constructs/core/instance_types.py)",
    ),
]
"""An EC2 instance type (not a SageMaker ``ml.`` type) of a family the catalog knows."""

SageMakerInstanceType = Annotated[
    str,
    predicate(
        lambda value: _is_catalogued(value, sagemaker=True),
        "a SageMaker instance type with the 'ml.' prefix, such as 'ml.g5.xlarge', of a family in the platform's "
        "catalog (constructs/core/instance_types.py)",
    ),
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
