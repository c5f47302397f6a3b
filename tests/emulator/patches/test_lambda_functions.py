"""The Lambda patch through boto3: a function's dead-letter and logging configurations."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from emulator import ACCOUNT_ID, REGION, Emulator

pytestmark = pytest.mark.emulator


def test_lambda_reports_dead_letter_and_logging_configs(aws: Emulator) -> None:
    iam, awslambda = aws.client("iam"), aws.client("lambda")
    statement = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    trust = {"Version": "2012-10-17", "Statement": [statement]}
    role_arn = iam.create_role(RoleName="idle-shutdown", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("handler.py", "def handler(event, context):\n    return None\n")
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:training-events"
    common = {
        "Runtime": "python3.12",
        "Role": role_arn,
        "Handler": "handler.handler",
        "Code": {"ZipFile": archive.getvalue()},
    }
    awslambda.create_function(FunctionName="idle-shutdown", DeadLetterConfig={"TargetArn": topic_arn}, **common)
    awslambda.create_function(FunctionName="plain", **common)

    configuration = awslambda.get_function(FunctionName="idle-shutdown")["Configuration"]
    assert configuration["DeadLetterConfig"] == {"TargetArn": topic_arn}
    assert configuration["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": "/aws/lambda/idle-shutdown"}
    plain = awslambda.get_function(FunctionName="plain")["Configuration"]
    assert "DeadLetterConfig" not in plain

    awslambda.update_function_configuration(
        FunctionName="idle-shutdown", DeadLetterConfig={"TargetArn": ""}, LoggingConfig={"LogFormat": "JSON"}
    )
    configuration = awslambda.get_function(FunctionName="idle-shutdown")["Configuration"]
    assert "DeadLetterConfig" not in configuration
    assert configuration["LoggingConfig"] == {
        "ApplicationLogLevel": "INFO",
        "SystemLogLevel": "INFO",
        "LogFormat": "JSON",
        "LogGroup": "/aws/lambda/idle-shutdown",
    }
