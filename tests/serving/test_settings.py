"""A served model's spec, built directly: each rule rejects a bad value naming the (dotted) field and saying what
is allowed, and the good values next to each limit pass.

The name becomes a namespace (``model-<name>``), an IAM role and a web ACL name; the image must be pinned by a tag
or a digest so that a pod restarted next month runs what was reviewed; the model prefix is the only part of the
model-artifacts bucket the pod's role may read, so anything that would widen that grant (a leading '/', a '..'
segment, an IAM wildcard) is refused. The rules between a model and the rest of an environment (EKS present, GPU
capacity, unique host names) are tested with the environments.
"""

from __future__ import annotations

from typing import Any

import pytest
from constructs.core.errors import ConfigurationError
from constructs.serving.settings import ModelIngressSettings, ModelServingSpec

from tests.serving import ZONE

DIGEST = "sha256:" + "0123456789abcdef" * 4


def base(**changes: Any) -> dict[str, Any]:
    """A valid spec as the matrix or an override writes it, with ``changes`` (``ingress`` changes merged in)."""
    ingress = {"hostname": f"chat.{ZONE}", "hosted_zone_name": ZONE, **changes.pop("ingress", {})}
    return {
        "name": "chat",
        "image": "vllm/vllm-openai:v0.11.0",
        "model_prefix": "models/chat/v3/",
        "ingress": ingress,
        **changes,
    }


def built(**changes: Any) -> ModelServingSpec:
    return ModelServingSpec(**base(**changes))


def rejected(**changes: Any) -> ConfigurationError:
    """The error building a spec with ``changes`` raises (the test fails if it builds)."""
    with pytest.raises(ConfigurationError) as error:
        built(**changes)
    assert error.value.where == "ModelServingSpec"
    return error.value


# --- name -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "chat", "llm-chat", "a1", "x" * 20, "r2-d2"])
def test_a_short_dns_label_is_a_model_name_and_gives_the_namespace(name) -> None:
    accepted = built(name=name)
    assert accepted.name == name
    # Everything in the cluster lives in this namespace: a model can never land in a platform namespace.
    assert accepted.namespace == f"model-{name}"


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x" * 21, id="21-characters"),
        pytest.param("", id="empty"),
        pytest.param("Chat", id="upper-case"),
        pytest.param("1chat", id="leading-digit"),
        pytest.param("-chat", id="leading-hyphen"),
        pytest.param("chat-", id="trailing-hyphen"),
        pytest.param("chat_1", id="underscore"),
        pytest.param("chat.v1", id="dot"),
    ],
)
def test_a_name_that_is_no_short_dns_label_is_rejected(name) -> None:
    error = rejected(name=name)
    assert error.field == "name"
    assert "1-20 lowercase letters, digits and '-'" in error.allowed


# --- image ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "tag"),
    [
        ("vllm/vllm-openai:v0.11.0", "v0.11.0"),
        # A registry port is not a tag: the tag is what follows the last path component.
        ("host:5000/a/b:1.0", "1.0"),
        ("localhost:5000/img:2", "2"),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/chat:2026-01-15", "2026-01-15"),
        ("ghcr.io/huggingface/text-embeddings-inference:cpu-1.8", "cpu-1.8"),
        # Pinned by digest: there is no tag to read.
        (f"repo@{DIGEST}", None),
        (f"nvcr.io/nvidia/tritonserver@{DIGEST}", None),
    ],
)
def test_an_image_with_a_tag_or_a_digest_is_accepted_and_its_tag_read(image, tag) -> None:
    accepted = built(image=image)
    assert accepted.image == image
    assert accepted.image_tag == tag


@pytest.mark.parametrize(
    "image",
    [
        pytest.param("vllm/vllm-openai", id="no-tag"),
        # The port belongs to the registry; the image itself has no tag.
        pytest.param("localhost:5000/img", id="registry-port-no-tag"),
        pytest.param("vllm/VLLM-openai:v1", id="upper-case-repository"),
        pytest.param("MyModel:1.0", id="upper-case-name"),
        pytest.param("repo:", id="empty-tag"),
        pytest.param("repo:-rc", id="tag-starting-with-hyphen"),
        pytest.param("repo@sha256:abc", id="short-digest"),
        pytest.param(f"repo:1.0@{DIGEST}", id="tag-and-digest"),
        pytest.param("repo:1.0 ", id="trailing-space"),
    ],
)
def test_an_image_without_a_valid_tag_or_digest_is_rejected(image) -> None:
    error = rejected(image=image)
    assert error.field == "image"
    assert "a container image with a tag or a digest" in error.allowed


# --- model prefix ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["models/chat/v3/", "a/", "models/chat/qwen2.5-7b-instruct/v1/", "m/a..b/"])
def test_a_relative_prefix_ending_in_a_slash_is_accepted(prefix) -> None:
    assert built(model_prefix=prefix).model_prefix == prefix


@pytest.mark.parametrize(
    "prefix",
    [
        # Without the '/', 'models/chat' would also grant 'models/chat-secret/...'.
        pytest.param("models/chat", id="no-trailing-slash"),
        pytest.param("/models/chat/", id="leading-slash"),
        pytest.param("models/../secrets/", id="dot-dot-segment"),
        pytest.param("../models/", id="leading-dot-dot"),
        pytest.param("models/./chat/", id="dot-segment"),
        pytest.param("models//chat/", id="empty-segment"),
        pytest.param("models/chat v3/", id="space"),
        # '*' and '?' are wildcards in the role's Resource and s3:prefix condition: 'models/*/' would let the pod
        # read every model in the bucket.
        pytest.param("models/*/", id="asterisk-wildcard"),
        pytest.param("models/chat?/", id="question-mark-wildcard"),
        pytest.param("/", id="root"),
    ],
)
def test_a_prefix_that_could_reach_beyond_the_model_is_rejected(prefix) -> None:
    error = rejected(model_prefix=prefix)
    assert error.field == "model_prefix"
    assert "ending in '/'" in error.allowed


# --- port, replicas, disruption budget ------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1024, 8080, 65535])
def test_an_unprivileged_port_is_accepted(port) -> None:
    assert built(port=port).port == port


@pytest.mark.parametrize("port", [80, 1023, 65536])
def test_a_privileged_or_impossible_port_is_rejected(port) -> None:
    # The container runs as a non-root user without capabilities: it cannot bind a port below 1024.
    error = rejected(port=port)
    assert error.field == "port"
    assert "1024 to 65535" in error.allowed


def test_min_replicas_above_max_replicas_is_rejected_naming_min_replicas() -> None:
    error = rejected(min_replicas=3, max_replicas=2)
    assert (error.field, error.value) == ("min_replicas", 3)
    assert "max_replicas (2)" in error.allowed
    # Equal bounds are a fixed-size model, which is fine.
    fixed = built(min_replicas=2, max_replicas=2)
    assert (fixed.min_replicas, fixed.max_replicas) == (2, 2)


def test_a_disruption_budget_needs_two_replicas() -> None:
    # With one pod, "all but one up" means none may go: every node drain would block.
    error = rejected(pod_disruption_budget=True, min_replicas=1, max_replicas=3)
    assert (error.field, error.value) == ("min_replicas", 1)
    assert "2 or more when pod_disruption_budget is True" in error.allowed
    assert built(pod_disruption_budget=True, min_replicas=2, max_replicas=3).pod_disruption_budget is True


@pytest.mark.parametrize(("request_", "limit", "expected"), [(1000, None, 2000), (1500, 1500, 1500), (250, 4000, 4000)])
def test_the_cpu_limit_is_the_specs_or_twice_the_request(request_, limit, expected) -> None:
    accepted = built(cpu_millicores=request_, cpu_limit_millicores=limit)
    assert accepted.cpu_limit == expected


def test_a_cpu_limit_below_the_request_is_rejected_naming_it() -> None:
    # Kubernetes refuses a pod whose limit is below its request: the Deployment would never roll out.
    error = rejected(cpu_millicores=2000, cpu_limit_millicores=1999)
    assert (error.field, error.value) == ("cpu_limit_millicores", 1999)
    assert "a value >= cpu_millicores (2000)" in error.allowed


@pytest.mark.parametrize(("gpus", "max_replicas", "expected"), [(0, 5, 0), (1, 3, 3), (2, 4, 8), (8, 1, 8)])
def test_max_gpus_is_what_the_model_holds_at_its_largest(gpus, max_replicas, expected) -> None:
    assert built(gpus=gpus, max_replicas=max_replicas).max_gpus == expected


# --- ingress ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostname",
    [
        pytest.param("chat.example.org", id="another-domain"),
        pytest.param(ZONE, id="the-zone-apex"),
        # Ends like the zone, but is not inside it: the certificate could not be validated in the zone.
        pytest.param(f"chat{ZONE}", id="suffix-without-a-dot"),
        pytest.param(f"chat.{ZONE}.evil.com", id="zone-in-the-middle"),
    ],
)
def test_a_hostname_outside_the_hosted_zone_is_rejected(hostname) -> None:
    error = rejected(ingress={"hostname": hostname})
    assert error.field == "ingress.hostname"
    assert f"a name inside hosted_zone_name {ZONE!r}" in error.allowed
    # The same rule, on the ingress settings alone, names its own field.
    with pytest.raises(ConfigurationError) as alone:
        ModelIngressSettings(hostname=hostname, hosted_zone_name=ZONE)
    assert (alone.value.where, alone.value.field) == ("ModelIngressSettings", "hostname")


def test_a_hostname_deep_inside_the_zone_is_accepted_and_the_scheme_defaults_to_internal() -> None:
    ingress = built(ingress={"hostname": f"a.b.{ZONE}"}).ingress
    assert ingress.hostname == f"a.b.{ZONE}"
    # Nothing is on the internet unless the spec says so.
    assert ingress.scheme == "internal"
    assert ingress.allowed_cidrs == ()


def test_a_hostname_longer_than_a_certificates_common_name_is_rejected() -> None:
    # ACM takes at most 64 characters as a certificate's common name, which the host name is.
    longest = "a" * (64 - len(ZONE) - 1) + f".{ZONE}"
    assert built(ingress={"hostname": longest}).ingress.hostname == longest
    error = rejected(ingress={"hostname": "a" + longest})
    assert (error.field, error.value) == ("ingress.hostname", "a" + longest)
    assert "at most 64 characters" in error.allowed


@pytest.mark.parametrize(("drain", "ok"), [(0, True), (120, True), (-1, False), (121, False)])
def test_the_drain_time_is_bounded(drain, ok) -> None:
    if ok:
        assert built(drain_seconds=drain).drain_seconds == drain
    else:
        assert rejected(drain_seconds=drain).field == "drain_seconds"


def test_an_unknown_scheme_is_rejected() -> None:
    error = rejected(ingress={"scheme": "public"})
    assert error.field == "ingress.scheme"
    assert "'internal'" in error.allowed and "'internet-facing'" in error.allowed


@pytest.mark.parametrize("cidrs", [("10.0.0.0/8",), ("203.0.113.0/24", "198.51.100.7/32")])
def test_network_blocks_up_to_a_slash_8_are_accepted(cidrs) -> None:
    assert built(ingress={"allowed_cidrs": cidrs}).ingress.allowed_cidrs == cidrs


@pytest.mark.parametrize(
    ("cidrs", "field"),
    [
        # Everyone is what an empty list already means (behind the web ACL); written out it would look deliberate.
        pytest.param(("0.0.0.0/0",), "ingress.allowed_cidrs[0]", id="everyone"),
        pytest.param(("10.0.0.0/7",), "ingress.allowed_cidrs[0]", id="wider-than-8"),
        pytest.param(("203.0.113.5/24",), "ingress.allowed_cidrs[0]", id="host-bits"),
        pytest.param(("203.0.113.0/24", "office"), "ingress.allowed_cidrs[1]", id="not-a-cidr-second"),
        pytest.param(("2001:db8::/32",), "ingress.allowed_cidrs[0]", id="ipv6"),
    ],
)
def test_a_source_range_that_is_everyone_or_no_network_is_rejected(cidrs, field) -> None:
    error = rejected(ingress={"allowed_cidrs": cidrs})
    assert error.field == field
    assert "an IPv4 CIDR block of at most a /8" in error.allowed
    assert "never 0.0.0.0/0" in error.allowed


@pytest.mark.parametrize("limit", [10, 2000, 2_000_000_000])
def test_a_rate_limit_within_wafs_range_is_accepted(limit) -> None:
    assert built(ingress={"requests_per_5_minutes": limit}).ingress.requests_per_5_minutes == limit


@pytest.mark.parametrize("limit", [9, 0, 2_000_000_001])
def test_a_rate_limit_outside_wafs_range_is_rejected(limit) -> None:
    error = rejected(ingress={"requests_per_5_minutes": limit})
    assert error.field == "ingress.requests_per_5_minutes"
    assert "10 to 2000000000" in error.allowed


# --- the rest of the container ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "allowed"),
    [
        pytest.param({"health_path": "health"}, "health_path", "an absolute URL path", id="relative-health-path"),
        pytest.param({"health_path": "/health?x=1"}, "health_path", "no query string", id="health-query"),
        pytest.param({"args": ("--model", "a\nb")}, "args[1]", "printable text", id="newline-in-argument"),
        pytest.param({"startup_seconds": 59}, "startup_seconds", "60 to 3600", id="startup-too-short"),
        pytest.param({"gpus": 9}, "gpus", "0 to 8", id="too-many-gpus"),
        pytest.param({"memory_mib": 255}, "memory_mib", "256 to 524288", id="too-little-memory"),
    ],
)
def test_other_container_limits_name_their_field(changes, field, allowed) -> None:
    error = rejected(**changes)
    assert error.field == field
    assert allowed in error.allowed


def test_an_unknown_field_is_rejected() -> None:
    # A misspelt key in an override must not be silently dropped (min_replica would leave the default of 1).
    error = rejected(min_replica=2)
    assert error.field == "min_replica"
