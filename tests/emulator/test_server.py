"""The emulator's server: where it listens, reset, the command line, one request at a time, whole responses,
the provider block.

The patches of each AWS service are tested beside their module in ``patches/``. A real Terraform cycle
(``init`` -> ``apply`` -> ``plan -detailed-exitcode`` -> ``destroy``) against the patched emulator is the
platform's own, over every resource type it deploys, every patched one included:
``tests/stacks/test_emulator_deploy.py``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import ACCOUNT_ID, REGION, Emulator, terraform_provider_block

pytestmark = pytest.mark.emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGED_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSageMakerFullAccess"


# ------------------------------------------------------------------------------------------------
# The server
# ------------------------------------------------------------------------------------------------


def test_emulator_listens_on_loopback_and_free_port(emulator: Emulator) -> None:
    assert emulator.endpoint == f"http://127.0.0.1:{emulator.port}"
    assert emulator.port > 0


def test_reset_forgets_resources(aws: Emulator) -> None:
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="reset-me")
    aws.reset()
    assert s3.list_buckets()["Buckets"] == []


def test_provider_block_reaches_the_emulator_in_its_default_account(emulator: Emulator) -> None:
    block = terraform_provider_block(emulator.endpoint)
    assert block["region"] == REGION
    (endpoints,) = block["endpoints"]
    assert set(endpoints.values()) == {emulator.endpoint}
    # The provider asks STS for the account id; with the block's credentials it gets the account the
    # tests build their ARNs with.
    sts = boto3.client(
        "sts",
        endpoint_url=endpoints["sts"],
        region_name=block["region"],
        aws_access_key_id=block["access_key"],
        aws_secret_access_key=block["secret_key"],
    )
    assert sts.get_caller_identity()["Account"] == ACCOUNT_ID


def test_runs_as_a_script_with_a_port() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator.server", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("moto emulator listening on http://127.0.0.1:"), line
        endpoint = line.rsplit(" ", 1)[1]
        ec2 = boto3.client(
            "ec2", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t"
        )
        # A patched action proves the script applies the patches too.
        ec2.create_placement_group(GroupName="from-script", Strategy="spread")
        assert ec2.describe_placement_groups()["PlacementGroups"][0]["GroupName"] == "from-script"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_requests_are_handled_one_at_a_time(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.sts.responses import TokenResponse

    running: list[int] = []
    overlaps: list[int] = []
    original = TokenResponse.get_caller_identity

    def slow_get_caller_identity(self: Any) -> Any:
        running.append(1)
        overlaps.append(len(running))
        time.sleep(0.05)
        running.pop()
        return original(self)

    monkeypatch.setattr(TokenResponse, "get_caller_identity", slow_get_caller_identity)
    with ThreadPoolExecutor(max_workers=6) as pool:
        accounts = list(pool.map(lambda _: aws.client("sts").get_caller_identity()["Account"], range(6)))
    assert accounts == [ACCOUNT_ID] * 6
    assert overlaps == [1] * 6


def test_each_response_is_sent_in_one_write(aws: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    sent: list[bytes] = []
    original_setup = MotoRequestHandler.setup

    def recording_setup(self: Any) -> None:
        original_setup(self)
        # The socket-level writer under the handler's wfile; unbuffered handlers have none.
        raw = getattr(self.wfile, "raw", None)
        if raw is not None:
            write = raw.write
            raw.write = lambda data: sent.append(bytes(data)) or write(data)

    monkeypatch.setattr(MotoRequestHandler, "setup", recording_setup)
    assert aws.client("sts").get_caller_identity()["Account"] == ACCOUNT_ID
    (response,) = sent
    assert response.startswith(b"HTTP/1.1 200") and response.rstrip().endswith(b"</GetCallerIdentityResponse>")
