"""A private ECR repository for the platform's own model-serving (and training) images."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.errors import require
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef
from constructs.sagemaker.settings import ImageRepositorySettings

_REPOSITORY_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


@dataclass(frozen=True)
class ModelImageRepositoryProps:
    """Props for :class:`ModelImageRepository`.

    name: repository name, such as ``mlp-prod/inference`` (2-256 characters, lowercase, '/' namespaces).
    kms_key: customer-managed key that encrypts the images at rest.
    settings: how many images are kept, when untagged ones expire, and whether destroy may delete images.
    protected: the repository belongs to a protected environment: Terraform may not destroy it (the images a
      model was served with are its rollback targets).
    """

    name: str
    kms_key: KmsKeyRef
    settings: ImageRepositorySettings = field(default_factory=ImageRepositorySettings)
    protected: bool = False


class ModelImageRepository(Construct):
    """An ECR repository that scans every push, never lets a tag move, and tidies itself.

    Tags are IMMUTABLE, so ``:1.4.2`` always means the image that was tested as 1.4.2 and a
    deployment cannot silently change underneath a running endpoint. Images are encrypted with the
    platform's data key. The lifecycle policy first expires untagged images, then keeps only the
    newest ``keep_image_count`` images.
    """

    def __init__(self, scope: Construct, id: str, props: ModelImageRepositoryProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            isinstance(props.name, str) and 2 <= len(props.name) <= 256 and bool(_REPOSITORY_NAME.match(props.name)),
            where,
            "name",
            props.name,
            "2-256 lowercase letters, digits, '.', '_', '-' and '/' namespaces, such as 'mlp-prod/inference'",
        )
        require(props.kms_key is not None, where, "kms_key", props.kms_key, "a customer-managed KMS key")
        self.props = props
        ecr = aws.ecr_repository
        self.repository = ecr.EcrRepository(
            self,
            "repository",
            name=props.name,
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=ecr.EcrRepositoryImageScanningConfiguration(scan_on_push=True),
            encryption_configuration=[
                ecr.EcrRepositoryEncryptionConfiguration(encryption_type="KMS", kms_key=props.kms_key.arn)
            ],
            force_delete=props.settings.force_delete,
            lifecycle=prevent_destroy(props.protected),
        )
        aws.ecr_lifecycle_policy.EcrLifecyclePolicy(
            self, "lifecycle", repository=self.repository.name, policy=self.lifecycle_policy()
        )

    def lifecycle_policy(self) -> str:
        """The lifecycle policy document; a ``tagStatus: any`` rule must have the lowest priority."""
        p = self.props.settings
        return json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "description": f"Expire untagged images after {p.untagged_expiry_days} days",
                        "selection": {
                            "tagStatus": "untagged",
                            "countType": "sinceImagePushed",
                            "countUnit": "days",
                            "countNumber": p.untagged_expiry_days,
                        },
                        "action": {"type": "expire"},
                    },
                    {
                        "rulePriority": 2,
                        "description": f"Keep only the newest {p.keep_image_count} images",
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": p.keep_image_count,
                        },
                        "action": {"type": "expire"},
                    },
                ]
            }
        )

    @property
    def arn(self) -> str:
        """The repository ARN."""
        return self.repository.arn

    @property
    def repository_url(self) -> str:
        """``<account>.dkr.ecr.<region>.amazonaws.com/<name>``."""
        return self.repository.repository_url

    def image_uri(self, tag: str) -> str:
        """The URI of one tag in this repository."""
        return f"{self.repository.repository_url}:{tag}"
