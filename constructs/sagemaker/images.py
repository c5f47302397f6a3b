"""Container images for SageMaker: the AWS Deep Learning Container defaults, the template fields an image
setting may use, and the ECR repository an execution role must be allowed to pull from.

Plain Python (no construct, no binding), so the settings can validate image strings with it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Protocol

from constructs.core.instance_types import is_accelerated
from constructs.core.settings import predicate

DLC_ACCOUNT = "763104351884"
"""Account that publishes the AWS Deep Learning Containers in every region this platform supports."""

_DLC_REGISTRY = DLC_ACCOUNT + ".dkr.ecr.{region}.amazonaws.com"
# PyTorch 2.6.0 is the newest release with SageMaker variants of both the inference and the training
# DLC (aws/deep-learning-containers: pytorch/{inference,training}/buildspec-2-6-sm.yml).
DLC_PYTORCH_INFERENCE_CPU = _DLC_REGISTRY + "/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
DLC_PYTORCH_INFERENCE_GPU = _DLC_REGISTRY + "/pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
DLC_PYTORCH_TRAINING_CPU = _DLC_REGISTRY + "/pytorch-training:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
DLC_PYTORCH_TRAINING_GPU = _DLC_REGISTRY + "/pytorch-training:2.6.0-gpu-py312-cu126-ubuntu22.04-sagemaker"

_IMAGE_REF = r"(?P<ref>:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[0-9a-f]{64})"
_ECR_IMAGE = re.compile(
    r"(?P<account>\d{12}|\{account\})\.dkr\.ecr\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d|\{region\})\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)" + _IMAGE_REF
)
_OWN_REPOSITORY_IMAGE = re.compile(r"\{repository\}" + _IMAGE_REF)
IMAGE_ALLOWED = (
    "an ECR image URI with a tag or digest, such as "
    "'{account}.dkr.ecr.{region}.amazonaws.com/my-model:1.4.2' or '{repository}:1.4.2' "
    "(template fields: {region}, {account}, and {repository} for the platform's own image repository)"
)

InferenceImage = Annotated[
    str,
    predicate(lambda value: bool(_ECR_IMAGE.fullmatch(value) or _OWN_REPOSITORY_IMAGE.fullmatch(value)), IMAGE_ALLOWED),
]
"""A serving image: an ECR URI, or ``{repository}:<tag>`` for the platform's own image repository."""

TrainingImage = Annotated[
    str, predicate(lambda value: bool(_ECR_IMAGE.fullmatch(value)), IMAGE_ALLOWED.replace(", and {repository}", ""))
]
"""A training image: an ECR URI (``{region}`` and ``{account}`` may stand for this region and account)."""


class ImageRepositoryRef(Protocol):
    """The platform's own image repository, as an image setting ``{repository}:<tag>`` refers to it."""

    @property
    def arn(self) -> str: ...

    @property
    def repository_url(self) -> str: ...


@dataclass(frozen=True)
class ResolvedImage:
    """An image setting resolved for one deployment: the URI to run and the repository to pull from."""

    uri: str
    repository_arn: str


def resolve_image(
    template: str, *, region: str, account_id: str, partition: str, own_repository: ImageRepositoryRef | None = None
) -> ResolvedImage:
    """Substitute the template fields of a validated image setting and derive the ECR repository ARN."""
    own = _OWN_REPOSITORY_IMAGE.fullmatch(template)
    if own:
        if own_repository is None:
            raise ValueError(f"image {template!r} refers to {{repository}} but no repository was given")
        return ResolvedImage(uri=own_repository.repository_url + own["ref"], repository_arn=own_repository.arn)
    match = _ECR_IMAGE.fullmatch(template)
    if match is None:
        raise ValueError(f"image {template!r} is not an image setting (see IMAGE_ALLOWED)")
    image_region = region if match["region"] == "{region}" else match["region"]
    image_account = account_id if match["account"] == "{account}" else match["account"]
    uri = template.replace("{region}", region).replace("{account}", account_id)
    arn = f"arn:{partition}:ecr:{image_region}:{image_account}:repository/{match['repository']}"
    return ResolvedImage(uri=uri, repository_arn=arn)


def uses_own_repository(template: str) -> bool:
    """Whether an image setting names the platform's own repository (``{repository}:<tag>``)."""
    return bool(_OWN_REPOSITORY_IMAGE.fullmatch(template))


def default_pytorch_image(instance_types: Sequence[str], *, training: bool) -> str:
    """The PyTorch DLC matching the instance types: the GPU build when they are accelerated.

    Raises ``ValueError`` for a mix of GPU and CPU types, which no single image serves well.
    """
    gpu = {is_accelerated(t) for t in instance_types}
    if len(gpu) > 1:
        raise ValueError("GPU and CPU instance types mixed")
    if gpu == {True}:
        return DLC_PYTORCH_TRAINING_GPU if training else DLC_PYTORCH_INFERENCE_GPU
    return DLC_PYTORCH_TRAINING_CPU if training else DLC_PYTORCH_INFERENCE_CPU
