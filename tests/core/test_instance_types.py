"""The one instance-type catalog: accelerated families, NVIDIA GPU facts, SageMaker NVMe storage, type names."""

from __future__ import annotations

import re

import botocore.session
import pytest
from constructs.core.instance_types import (
    ACCELERATED_FAMILIES,
    CPU_FAMILIES,
    NVIDIA_GPU_INSTANCES,
    Ec2InstanceType,
    SageMakerInstanceType,
    has_instance_storage,
    instance_family,
    is_accelerated,
)
from pydantic import TypeAdapter, ValidationError

# The instance types AWS's own API models know, in the botocore release pinned in requirements-dev.txt.
_BOTOCORE = botocore.session.get_session()
EC2_TYPES = tuple(_BOTOCORE.get_service_model("ec2").shape_for("InstanceType").enum)
SAGEMAKER_TYPES = tuple(
    sorted(
        {
            name
            for shape in ("ProductionVariantInstanceType", "TrainingInstanceType", "ProcessingInstanceType")
            for name in _BOTOCORE.get_service_model("sagemaker").shape_for(shape).enum
        }
    )
)
# Families whose names say what they are: GPUs (g, p), Trainium, Inferentia, Habana (dl), FPGAs (f), video (vt).
_ACCELERATED_NAME = re.compile(r"(ml\.)?(g|gr|p|trn|inf|dl|f|vt|cg)\d")


@pytest.mark.parametrize(
    "instance_type",
    ["g5.xlarge", "g4dn.12xlarge", "p3.8xlarge", "p5.48xlarge", "trn1.2xlarge", "inf2.xlarge", "dl1.24xlarge"],
)
def test_accelerated_ec2_types(instance_type: str) -> None:
    assert is_accelerated(instance_type)


@pytest.mark.parametrize("instance_type", ["ml.g5.xlarge", "ml.p4d.24xlarge", "gr6.4xlarge"])
def test_accelerated_sagemaker_and_graphics_types(instance_type: str) -> None:
    assert is_accelerated(instance_type)


@pytest.mark.parametrize("instance_type", ["m6i.xlarge", "t3.large", "ml.m5.xlarge", "c7g.2xlarge", "r6id.large"])
def test_cpu_types_are_not_accelerated(instance_type: str) -> None:
    assert not is_accelerated(instance_type)


def test_every_catalogued_gpu_type_is_accelerated_and_consistent() -> None:
    for name, spec in NVIDIA_GPU_INSTANCES.items():
        assert is_accelerated(name), name
        assert spec.gpus in (1, 4, 8), name
        assert spec.architecture in ("Volta", "Turing", "Ampere", "Ada", "Hopper"), name
        # Multi-GPU instances of a family share the family's GPU and memory.
        family = name.split(".")[0]
        siblings = {s.gpu_memory_gib for n, s in NVIDIA_GPU_INSTANCES.items() if n.split(".")[0] == family}
        assert len(siblings) == 1, family


@pytest.mark.parametrize(
    ("instance_type", "gpus", "memory", "efa", "open_driver"),
    [
        ("g4dn.xlarge", 1, 16, False, True),
        ("g4dn.8xlarge", 1, 16, True, True),
        ("g4dn.metal", 8, 16, True, True),
        ("g5.2xlarge", 1, 24, False, True),
        ("g5.12xlarge", 4, 24, True, True),
        ("g6.48xlarge", 8, 24, True, True),
        ("g6e.12xlarge", 4, 48, True, True),
        ("p3.8xlarge", 4, 16, False, False),
        ("p3dn.24xlarge", 8, 32, True, False),
        ("p4de.24xlarge", 8, 80, True, True),
        ("p5e.48xlarge", 8, 141, True, True),
    ],
)
def test_gpu_facts(instance_type: str, gpus: int, memory: int, efa: bool, open_driver: bool) -> None:
    spec = NVIDIA_GPU_INSTANCES[instance_type]
    assert (spec.gpus, spec.gpu_memory_gib, spec.efa, spec.open_driver) == (gpus, memory, efa, open_driver)


@pytest.mark.parametrize(
    ("instance_type", "nvme"),
    [
        ("ml.g5.xlarge", True),
        ("ml.g6e.2xlarge", True),
        ("ml.p5.48xlarge", True),
        ("ml.trn1.32xlarge", True),
        ("ml.m5d.xlarge", True),
        ("ml.g4dn.xlarge", True),
        ("ml.p4d.24xlarge", True),
        ("ml.m5.xlarge", False),
        ("ml.p3.8xlarge", False),
        ("ml.c6i.large", False),
        ("g5.xlarge", False),
    ],
)
def test_sagemaker_instance_storage(instance_type: str, nvme: bool) -> None:
    assert has_instance_storage(instance_type) is nvme


def test_the_catalog_classifies_every_family_aws_knows_exactly_once() -> None:
    assert not ACCELERATED_FAMILIES & CPU_FAMILIES
    known = {instance_family(name) for name in (*EC2_TYPES, *SAGEMAKER_TYPES)}
    assert None not in known
    assert known == ACCELERATED_FAMILIES | CPU_FAMILIES, "catalog out of step with botocore's instance types"


def test_every_type_aws_knows_is_valid_and_classified_by_its_name() -> None:
    ec2, sagemaker = TypeAdapter(Ec2InstanceType), TypeAdapter(SageMakerInstanceType)
    for instance_type in (*EC2_TYPES, *SAGEMAKER_TYPES):
        adapter = sagemaker if instance_type.startswith("ml.") else ec2
        assert adapter.validate_python(instance_type) == instance_type
        assert is_accelerated(instance_type) == bool(_ACCELERATED_NAME.match(instance_type)), instance_type
    assert len(EC2_TYPES) > 1000 and len(SAGEMAKER_TYPES) > 200


@pytest.mark.parametrize(
    "instance_type",
    ["zz9.large", "m6i.0xlarge", "m6i.huge", "g5.xlarge\n", " m6i.large", "M6I.large", "ml.zz9.large", "m6i.large."],
)
def test_unknown_or_malformed_types_are_refused_and_count_as_accelerated(instance_type: str) -> None:
    assert is_accelerated(instance_type)
    for kind in (Ec2InstanceType, SageMakerInstanceType):
        with pytest.raises(ValidationError):
            TypeAdapter(kind).validate_python(instance_type)


@pytest.mark.parametrize("instance_type", ["p6-b200.48xlarge", "ml.p6e-gb200.36xlarge", "p6-b300.48xlarge"])
def test_hyphenated_gpu_families_are_accelerated(instance_type: str) -> None:
    assert is_accelerated(instance_type)
