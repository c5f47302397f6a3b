"""The platform's own image repository: scanned on push, immutable tags, KMS-encrypted, and tidied by its
lifecycle policy, with each environment's keep counts."""

from __future__ import annotations

import json

import cdktf
import pytest

from tests.support.synth_json import ENVIRONMENTS, arguments, ref


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_image_repository_scans_pins_tags_encrypts_and_expires(stacks, stack_json, env) -> None:
    stack = stacks[env]
    assert cdktf.Testing.to_have_resource_with_properties(
        stack_json[env],
        "aws_ecr_repository",
        {
            "name": f"mlp-{env}/inference",
            "image_tag_mutability": "IMMUTABLE",
            "image_scanning_configuration": {"scan_on_push": True},
            "encryption_configuration": [
                {"encryption_type": "KMS", "kms_key": ref(stack, "aws_kms_key", "keys/data", "arn")}
            ],
            "force_delete": env == "dev",
        },
    )
    keep, untagged = {"dev": (10, 3), "staging": (30, 7), "prod": (100, 14)}[env]
    lifecycle = arguments(stack, "aws_ecr_lifecycle_policy", "sagemaker/images/lifecycle")
    assert lifecycle["repository"] == ref(stack, "aws_ecr_repository", "sagemaker/images/repository", "name")
    assert json.loads(lifecycle["policy"]) == {
        "rules": [
            {
                "rulePriority": 1,
                "description": f"Expire untagged images after {untagged} days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": untagged,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep only the newest {keep} images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
                "action": {"type": "expire"},
            },
        ]
    }
