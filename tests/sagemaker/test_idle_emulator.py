"""The endpoint idle handler against the local AWS emulator, configured only by its environment, as in Lambda.

The handler's boto3 clients reach the emulator through ``AWS_ENDPOINT_URL`` (nothing in the handler knows about
it); the endpoint, its autoscaling and the operators' topic are built through the emulator's API, and every
assertion reads the emulator's state back: the endpoint gone with its scalable targets and scaling policies
(which SageMaker deregisters with a deleted endpoint), its configuration and model kept, instance counts
lowered, a notice in the operators' queue, or nothing changed at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from constructs.sagemaker.idle_settings import IDLE_TAG

from emulator import Emulator
from stacks.emulator import EMULATOR_CREDENTIALS
from tests.sagemaker.idle_endpoint import (
    ENDPOINT,
    REGION,
    SERVICES,
    Clients,
    FakeEndpoint,
    alarm_event,
    function_environment,
    load_handler,
    park_event,
)

pytestmark = pytest.mark.emulator

handler_module = load_handler()


@pytest.fixture
def build(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FakeEndpoint]]:
    """Builds an endpoint in the emptied emulator and gives the function an environment pointing at both."""
    emulator.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", EMULATOR_CREDENTIALS["access_key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", EMULATOR_CREDENTIALS["secret_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "MIN_INSTANCE_COUNT"):
        monkeypatch.delenv(name, raising=False)
    handler_module._clients.clear()
    clients = Clients(*(emulator.client(service) for service in SERVICES))

    def make(action: str = "delete_endpoint", **options: Any) -> FakeEndpoint:
        endpoint = FakeEndpoint(clients, **options)
        for name, value in function_environment(endpoint, action).items():
            monkeypatch.setenv(name, value)
        return endpoint

    yield make
    handler_module._clients.clear()


def test_an_idle_endpoint_is_parked_with_its_scaling_and_comes_back_by_configuration(build) -> None:
    endpoint = build(autoscaling=True)
    assert len(endpoint.scalable_targets()) == len(endpoint.scaling_policies()) == 2

    outcome = handler_module.handler(alarm_event())

    assert outcome["action"] == "deleted"
    assert endpoint.describe() is None
    assert endpoint.scalable_targets() == endpoint.scaling_policies() == []
    assert endpoint.kept() == (endpoint.config, endpoint.model)
    (notice,) = endpoint.notifications()
    assert notice["Subject"] == f"SageMaker endpoint {ENDPOINT} parked (deleted while idle)"
    # What the next deploy does: the same configuration, and the tag, bring the endpoint back InService.
    endpoint.aws.sagemaker.create_endpoint(
        EndpointName=endpoint.name,
        EndpointConfigName=endpoint.config,
        Tags=[{"Key": IDLE_TAG, "Value": "delete_endpoint"}],
    )
    assert endpoint.counts() == endpoint.variants
    assert handler_module.handler(park_event())["action"] == "deleted"


def test_scale_to_minimum_lowers_every_instance_variant(build) -> None:
    endpoint = build("scale_to_minimum", autoscaling=True)

    outcome = handler_module.handler(park_event())

    assert outcome["action"] == "scaled_to_minimum"
    assert endpoint.counts() == {"primary": 1, "candidate": 1}
    assert len(endpoint.scalable_targets()) == 2
    assert len(endpoint.notifications()) == 1


def test_recent_traffic_keeps_the_endpoint_and_its_scaling(build) -> None:
    endpoint = build(autoscaling=True)
    endpoint.put_invocations(7, minutes_ago=10, variant="candidate")

    outcome = handler_module.handler(alarm_event())

    assert outcome["reason"] == "7 invocations in the last 60 minutes"
    assert endpoint.counts() == endpoint.variants
    assert len(endpoint.scalable_targets()) == 2
    assert endpoint.notifications() == []


def test_an_endpoint_being_deployed_is_left_alone(build) -> None:
    endpoint = build()
    endpoint.set_status("Updating")

    outcome = handler_module.handler(alarm_event())

    assert outcome["reason"] == "the endpoint is Updating, not InService"
    assert endpoint.describe() is not None
    assert endpoint.notifications() == []
