"""ManifestsRelease: custom resources applied through a Helm release of the repository's own small chart.

The chart travels with the stack as a Terraform asset, so what Helm installs at apply time is exactly the chart in
this repository; a full synth (not ``Testing.synth``, which writes no assets) is checked for the copied files. The
chart itself must render the objects it is given and nothing else, and the release must refuse objects that reach
outside its namespace or are not objects at all, before anything is synthesized.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import cdktf
import pytest
import yaml
from constructs.core.bindings import aws, helm
from constructs.core.errors import ConfigurationError
from constructs.eks.manifests import MANIFESTS_CHART, ManifestsRelease, ManifestsReleaseProps, chart_digest

from tests.support.stacks import TinyStack
from tests.support.synth_json import only

NAMESPACE = "mlflow"


def _objects() -> list[dict[str, Any]]:
    """Two objects written with unsorted keys; the second sorts before the first by name, so order is visible."""
    return [
        {
            "kind": "SecretStore",
            "apiVersion": "external-secrets.io/v1",
            "metadata": {"namespace": NAMESPACE, "name": "store"},
            "spec": {"provider": {"aws": {"service": "SecretsManager", "region": "us-east-1"}}},
        },
        {
            "metadata": {"name": "a-database", "namespace": NAMESPACE},
            "kind": "ExternalSecret",
            "apiVersion": "external-secrets.io/v1",
            "spec": {"secretStoreRef": {"name": "store", "kind": "SecretStore"}, "refreshInterval": "15m"},
        },
    ]


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its relative path, with its bytes."""
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in root.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A stack with one release (after an SNS topic), synthesized by a real App: its stack directory and JSON."""
    outdir = tmp_path_factory.mktemp("manifests")
    app = cdktf.App(outdir=str(outdir))
    stack = cdktf.TerraformStack(app, "tiny")
    aws.provider.AwsProvider(stack, "aws", region="us-east-1")
    helm.provider.HelmProvider(stack, "helm")
    first = aws.sns_topic.SnsTopic(stack, "first")
    ManifestsRelease(
        stack, "credentials", ManifestsReleaseProps("mlflow-credentials", NAMESPACE, _objects(), depends_on=[first])
    )
    app.synth()
    stack_dir = outdir / "stacks" / "tiny"
    return stack_dir, json.loads((stack_dir / "cdk.tf.json").read_text())


def test_the_chart_is_an_asset_holding_the_repository_chart_byte_for_byte(synthesized) -> None:
    stack_dir, config = synthesized
    chart = only(config, "helm_release", "credentials/release")["chart"]
    # A path relative to the stack's directory, named by the chart's digest: a changed chart is a new path.
    assert re.fullmatch(r"assets/[^/]+/[0-9a-f]{64}", chart), chart
    assert chart.rsplit("/", 1)[1] == chart_digest()
    copied = _files(stack_dir / chart)
    assert copied == _files(MANIFESTS_CHART)
    assert "Chart.yaml" in copied and "templates/manifests.yaml" in copied


def test_the_release_installs_the_local_chart_with_the_objects_as_sorted_json(synthesized) -> None:
    _, config = synthesized
    release = only(config, "helm_release", "credentials/release")
    assert (release["name"], release["namespace"]) == ("mlflow-credentials", NAMESPACE)
    # A local chart: no repository or version to pull, and the namespace belongs to whoever made it.
    assert "repository" not in release and "version" not in release and "create_namespace" not in release
    assert release["atomic"] is True and release["wait"] is True and release["cleanup_on_fail"] is True
    (values,) = release["values"]
    parsed = json.loads(values)
    assert parsed == {"manifests": _objects()}
    # The objects keep their order; every key is sorted, so the same objects always give the same string.
    assert [m["metadata"]["name"] for m in parsed["manifests"]] == ["store", "a-database"]
    assert values == json.dumps(parsed, sort_keys=True)
    assert values != json.dumps({"manifests": _objects()})


def test_the_release_waits_for_what_it_depends_on(synthesized) -> None:
    _, config = synthesized
    release = only(config, "helm_release", "credentials/release")
    (topic,) = config["resource"]["aws_sns_topic"]
    assert release["depends_on"] == [f"aws_sns_topic.{topic}"]


def test_without_dependencies_the_release_has_no_depends_on() -> None:
    tiny = TinyStack()
    ManifestsRelease(tiny.stack, "objects", ManifestsReleaseProps("objects", NAMESPACE, _objects()))
    assert "depends_on" not in only(tiny.synth_with_paths(), "helm_release", "objects/release")


# --- the chart ------------------------------------------------------------------------------------------------------


def test_the_chart_renders_the_given_objects_and_nothing_else() -> None:
    files = _files(MANIFESTS_CHART)
    # One template: any other file under templates/ would be rendered (or included) too.
    assert sorted(name for name in files if name.startswith("templates/")) == ["templates/manifests.yaml"]
    template = files["templates/manifests.yaml"].decode()
    actions = [action.strip() for action in re.findall(r"{{(.*?)}}", template, flags=re.S)]
    assert actions == ["- range .Values.manifests", "toYaml .", "- end"]
    # Outside the actions only the YAML document separator: nothing is added to what the values hold.
    assert re.sub(r"{{.*?}}", "", template, flags=re.S).split() == ["---"]
    assert yaml.safe_load(files["values.yaml"]) == {"manifests": []}


def test_the_chart_is_a_helm_3_chart_with_a_version() -> None:
    chart = yaml.safe_load((MANIFESTS_CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"  # Helm 3
    assert chart["name"] == MANIFESTS_CHART.name == "platform-manifests"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(chart["version"])), chart["version"]
    assert chart.get("type", "application") == "application"  # a library chart cannot be installed


def test_the_digest_follows_every_chart_file(tmp_path: Path) -> None:
    copy = tmp_path / "chart"
    shutil.copytree(MANIFESTS_CHART, copy)
    original = chart_digest()
    assert re.fullmatch(r"[0-9a-f]{64}", original)
    # Stable: the same files give the same digest, wherever the chart lies.
    assert chart_digest(copy) == chart_digest(copy) == original
    template = copy / "templates" / "manifests.yaml"
    text = template.read_bytes()
    template.write_bytes(text + b"\n")
    assert chart_digest(copy) != original
    template.write_bytes(text)
    assert chart_digest(copy) == original
    (copy / "templates" / "NOTES.txt").write_text("installed\n")
    assert chart_digest(copy) != original
    (copy / "templates" / "NOTES.txt").unlink()
    # A renamed file changes the digest although no content changed.
    template.rename(copy / "templates" / "objects.yaml")
    assert chart_digest(copy) != original


# --- bad input ------------------------------------------------------------------------------------------------------


def _with(index: int, **changes: Any) -> list[dict[str, Any]]:
    """The two objects with ``changes`` to the one at ``index``.

    ``None`` removes a key; a ``metadata_`` prefix changes a key of the object's metadata.
    """
    objects = _objects()
    target = objects[index]
    for key, value in changes.items():
        holder, name = (
            (target["metadata"], key.removeprefix("metadata_")) if key.startswith("metadata_") else (target, key)
        )
        if value is None:
            holder.pop(name)
        else:
            holder[name] = value
    return objects


BAD_INPUT = {
    "object-in-another-namespace": (
        "objects",
        NAMESPACE,
        _with(1, metadata_namespace="kube-system"),
        "manifests[1].metadata.namespace",
    ),
    "object-without-namespace": (
        "objects",
        NAMESPACE,
        _with(0, metadata_namespace=None),
        "manifests[0].metadata.namespace",
    ),
    "object-without-kind": ("objects", NAMESPACE, _with(1, kind=None), "manifests[1]"),
    "object-with-empty-api-version": ("objects", NAMESPACE, _with(1, apiVersion=""), "manifests[1]"),
    "object-without-name": ("objects", NAMESPACE, _with(0, metadata_name=None), "manifests[0]"),
    "object-without-metadata": ("objects", NAMESPACE, _with(1, metadata=None), "manifests[1].metadata"),
    "no-objects": ("objects", NAMESPACE, [], "manifests"),
    "upper-case-name": ("Objects", NAMESPACE, _objects(), "name"),
    "name-ending-in-dash": ("objects-", NAMESPACE, _objects(), "name"),
    "name-over-63": ("o" * 64, NAMESPACE, _objects(), "name"),
    "bad-namespace": ("objects", "ML_flow", _with(0, metadata_namespace="ML_flow"), "namespace"),
}


@pytest.mark.parametrize(
    ("name", "namespace", "manifests", "field"),
    [
        *(pytest.param(*case, id=case_id) for case_id, case in BAD_INPUT.items()),
        pytest.param(
            "o" * 54,
            NAMESPACE,
            _objects(),
            "name",
            id="name-over-53",
        ),
    ],
)
def test_bad_input_is_rejected_naming_the_field(name: str, namespace: str, manifests: list[Any], field: str) -> None:
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        ManifestsRelease(tiny.stack, "objects", ManifestsReleaseProps(name, namespace, manifests))
    assert (error.value.where, error.value.field) == ("tiny/objects", field)
    assert f"field '{field}'" in str(error.value)


# --- cluster-scoped objects ----------------------------------------------------------------------------------------


def _cluster_scoped() -> list[dict[str, Any]]:
    """Two cluster-scoped objects (Kueue's flavor and queue): no namespace in their metadata."""
    return [
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "cpu"}, "spec": {}},
        {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": "team"}, "spec": {}},
    ]


def test_a_cluster_scoped_release_applies_objects_without_a_namespace() -> None:
    tiny = TinyStack()
    ManifestsRelease(
        tiny.stack, "queues", ManifestsReleaseProps("queues", "kueue-system", _cluster_scoped(), cluster_scoped=True)
    )
    release = only(tiny.synth_with_paths(), "helm_release", "queues/release")
    # The namespace only says where Helm keeps the release; the objects go in unchanged, namespace-less.
    assert release["namespace"] == "kueue-system"
    (values,) = release["values"]
    assert json.loads(values) == {"manifests": _cluster_scoped()}


@pytest.mark.parametrize("namespace", ["kueue-system", "other"])
def test_a_namespaced_object_in_a_cluster_scoped_release_is_rejected(namespace) -> None:
    # Even the release's own namespace: the API server would keep the object there, or refuse it for its kind.
    objects = _cluster_scoped()
    objects[1]["metadata"]["namespace"] = namespace
    tiny = TinyStack()
    with pytest.raises(ConfigurationError) as error:
        ManifestsRelease(
            tiny.stack, "queues", ManifestsReleaseProps("queues", "kueue-system", objects, cluster_scoped=True)
        )
    assert (error.value.where, error.value.field) == ("tiny/queues", "manifests[1].metadata.namespace")
    assert error.value.value == namespace
