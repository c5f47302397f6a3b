"""Serving images: an image in the platform's own repository (``{repository}:<tag>``) is run from that
repository, and the serving role may pull from it (the AWS Deep Learning Container defaults are checked with
the synthesized models in test_endpoint.py and the role policies in test_execution_role.py)."""

from __future__ import annotations

from constructs.sagemaker.settings import SageMakerEndpointSettings

from tests.sagemaker.expected import ecr_pull
from tests.sagemaker.tiny import endpoint_stack
from tests.support.synth_json import arguments, ref, role_policies


def test_own_repository_image_is_pulled_from_that_repository() -> None:
    settings = SageMakerEndpointSettings(model_version="v1", inference_image="{repository}:1.4.2")
    stack, _ = endpoint_stack(settings)
    model = arguments(stack, "aws_sagemaker_model", "sagemaker/model-v1")
    repository = "sagemaker/images/repository"
    assert (
        model["primary_container"]["image"] == ref(stack, "aws_ecr_repository", repository, "repository_url") + ":1.4.2"
    )
    assert role_policies(stack, "sagemaker/execution-role")["pull-serving-image"] == ecr_pull(
        ref(stack, "aws_ecr_repository", repository, "arn")
    )
