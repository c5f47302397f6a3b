"""The Application Auto Scaling patch through boto3: tags of scalable targets."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from emulator import Emulator

pytestmark = pytest.mark.emulator


def test_application_autoscaling_tags(aws: Emulator) -> None:
    autoscaling = aws.client("application-autoscaling")
    arn = autoscaling.register_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/llm/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
        MinCapacity=1,
        MaxCapacity=4,
        Tags={"team": "ml"},
    )["ScalableTargetARN"]
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"team": "ml"}
    autoscaling.tag_resource(ResourceARN=arn, Tags={"env": "dev"})
    autoscaling.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert autoscaling.list_tags_for_resource(ResourceARN=arn)["Tags"] == {"env": "dev"}

    autoscaling.deregister_scalable_target(
        ServiceNamespace="sagemaker",
        ResourceId="endpoint/llm/variant/primary",
        ScalableDimension="sagemaker:variant:DesiredInstanceCount",
    )
    with pytest.raises(ClientError) as gone:
        autoscaling.list_tags_for_resource(ResourceARN=arn)
    assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
