"""The MLflow tracking server's in-cluster part, asserted on each environment's synthesized Terraform JSON.

Nothing here can be deployed offline (no API server, no charts), so the releases are checked structurally: the
pinned charts, the order Terraform creates them in, the Helm values MLflow and the External Secrets Operator
receive, the IAM each service account gets, the credential objects, and the load balancer in front. The expected
shape of each environment is written out below rather than read back from the matrix, so a matrix edit that
changes what an environment promises fails here as well.
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
from datetime import timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote_plus, unquote, urlsplit

import pytest

from stacks.matrix import MATRIX
from tests.support.synth_json import ENVIRONMENTS, address, allow, data_ref, only, output, policy, ref, resources


class Shape(NamedTuple):
    """What one environment promises its users (tests/mlflow/test_settings.py checks the rules behind it)."""

    replicas: int
    cpu: str
    cpu_limit: str
    memory: str
    hostname: str | None


EXPECTED = {
    "dev": Shape(1, "500m", "2000m", "2048Mi", None),
    "staging": Shape(2, "500m", "2000m", "2048Mi", "mlflow.staging.ml.example.com"),
    "prod": Shape(3, "1000m", "2000m", "4096Mi", "mlflow.ml.example.com"),
}
# Every environment runs MLflow's own authentication, dev included (it is reached by port-forward, still with a
# password); only staging and prod have a load balancer, and only prod keeps a disruption budget.
BASIC_AUTH = ("dev", "staging", "prod")
WITH_INGRESS = ("staging", "prod")
HOSTED_ZONE = "ml.example.com"
RDS_ROTATION = timedelta(days=7)
# The community chart's selector labels for a release called "mlflow" (its "mlflow.selectorLabels" helper).
CHART_SELECTOR = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/instance": "mlflow"}
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "privileged": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "runAsUser": 1001,
    "runAsGroup": 1001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


# --- queries ----------------------------------------------------------------------------------------------


def resource_at(stack: dict[str, Any], where: str) -> dict[str, Any]:
    """The resource a ``depends_on`` entry (``<type>.<name>``) names."""
    kind, name = where.split(".", 1)
    return stack["resource"][kind][name]


def path_of(body: dict[str, Any]) -> str:
    """A resource's construct path without the stack's name (``platform/mlflow/mlflow``)."""
    return body["//"]["metadata"]["path"].split("/", 1)[1]


def dependency_paths(stack: dict[str, Any], body: dict[str, Any]) -> set[str]:
    """The construct paths of everything ``body`` lists in ``depends_on``."""
    return {path_of(resource_at(stack, where)) for where in body.get("depends_on", [])}


def depends_transitively(stack: dict[str, Any], body: dict[str, Any], target: str) -> bool:
    """Whether ``body`` waits for the resource at construct path ``target``, directly or through others."""
    seen: set[str] = set()
    pending = list(body.get("depends_on", []))
    while pending:
        where = pending.pop()
        if where in seen:
            continue
        seen.add(where)
        dependency = resource_at(stack, where)
        if path_of(dependency) == target:
            return True
        pending.extend(dependency.get("depends_on", []))
    return False


def paths(stack: dict[str, Any], kind: str, where: str = "") -> set[str]:
    """Construct paths of every resource of ``kind`` (whose path contains ``where``)."""
    return {path_of(body) for body in resources(stack, kind).values() if where in path_of(body)}


def mlflow_releases(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Helm releases of the MLflow feature, by release name."""
    return {
        r["name"]: r for r in resources(stack, "helm_release").values() if "/mlflow/" in r["//"]["metadata"]["path"]
    }


def values_of(release: dict[str, Any]) -> dict[str, Any]:
    (values,) = release["values"]
    return json.loads(values)


def server_values(stack: dict[str, Any]) -> dict[str, Any]:
    return values_of(mlflow_releases(stack)["mlflow"])


def manifests(stack: dict[str, Any]) -> list[dict[str, Any]]:
    return values_of(mlflow_releases(stack)["mlflow-credentials"])["manifests"]


def manifest(stack: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    (found,) = [m for m in manifests(stack) if (m["kind"], m["metadata"]["name"]) == (kind, name)]
    return found


def instance_ref(stack: dict[str, Any], attribute: str) -> str:
    return ref(stack, "aws_db_instance", "mlflow-database/instance", attribute)


def go_duration(text: str) -> timedelta:
    """A Go duration made of hours, minutes and seconds (``1h30m``), as the operator parses refreshInterval."""
    parts = re.findall(r"(\d+)(h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a Go duration: {text!r}"
    seconds = {"h": 3600, "m": 60, "s": 1}
    return timedelta(seconds=sum(int(n) * seconds[u] for n, u in parts))


def render(template: str, data: dict[str, str]) -> str:
    """A Go text/template as the operator renders it, for the two functions the template uses: ``urlquery`` (Go's
    url.QueryEscape) and Sprig's ``replace OLD NEW`` (piped value last). Any other function fails the test."""

    def action(match: re.Match[str]) -> str:
        head, *functions = (part.strip() for part in match.group(1).split("|"))
        assert head.startswith("."), head
        value = data[head[1:]]
        for function in functions:
            name, *args = shlex.split(function)
            if (name, len(args)) == ("urlquery", 0):
                value = quote_plus(value, safe="")
            elif (name, len(args)) == ("replace", 2):
                value = value.replace(args[0], args[1])
            else:
                raise AssertionError(f"template function {function!r} is not understood by this test")
        return value

    return re.sub(r"\{\{\s*(.*?)\s*\}\}", action, template)


# --- the releases -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mlflow_side_releases_are_pinned_charts_in_their_namespaces(stacks, synth_dir, env) -> None:
    releases = mlflow_releases(stacks[env])
    charts = {
        name: (r.get("repository"), r["chart"], r.get("version"), r["namespace"], r.get("create_namespace"))
        for name, r in releases.items()
        if name != "mlflow-credentials"
    }
    eso = "external-secrets"
    assert charts == {
        eso: ("https://charts.external-secrets.io", eso, "2.9.0", eso, True),
        "reloader": ("https://stakater.github.io/stakater-charts", "reloader", "2.2.16", "mlflow", None),
        "mlflow": ("https://community-charts.github.io/helm-charts", "mlflow", "1.11.5", "mlflow", None),
    }
    # The credential objects come from the repository's own chart, shipped with the stack as an asset.
    credentials = releases["mlflow-credentials"]
    assert (credentials["namespace"], "repository" in credentials, "version" in credentials) == ("mlflow", False, False)
    assert credentials["chart"].startswith("assets/")
    chart = synth_dir / "stacks" / env / credentials["chart"]
    assert "name: platform-manifests" in (chart / "Chart.yaml").read_text()
    assert (chart / "templates" / "manifests.yaml").read_text().count("toYaml") == 1
    for release in releases.values():
        # A failed install or upgrade is rolled back, and Terraform waits for the pods before the next release.
        assert (release["atomic"], release["wait"], release["cleanup_on_fail"]) == (True, True, True), release["name"]
        # Values are typed structures serialized with sorted keys: the same objects always give the same plan.
        (text,) = release["values"]
        assert text == json.dumps(json.loads(text), sort_keys=True), release["name"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_releases_depend_on_cluster_then_operator_then_secrets_then_mlflow(stacks, env) -> None:
    stack = stacks[env]
    releases = mlflow_releases(stack)
    # What every workload of the cluster waits for: nodes, add-ons, the system charts and the deployer's access.
    # (Container Insights' add-on observes the workloads, and none of them waits for it.)
    node_addons = {path for path in paths(stack, "aws_eks_addon") if path.startswith("platform/eks/")}
    cluster_ready = (
        paths(stack, "aws_eks_node_group")
        | node_addons
        | {path_of(r) for r in resources(stack, "helm_release").values() if r["namespace"] == "kube-system"}
        | paths(stack, "aws_eks_access_policy_association")
    )
    assert "platform/eks/components/aws-load-balancer-controller" in cluster_ready
    assert "platform/eks/cpu-nodes/node-group" in cluster_ready
    assert len(node_addons) == 4
    assert paths(stack, "aws_eks_addon") - node_addons == {"platform/monitoring/container-insights/addon"}
    operator = "platform/mlflow/external-secrets/external-secrets"
    assert dependency_paths(stack, releases["external-secrets"]) == cluster_ready
    # The custom resources need the operator's CRDs, their namespace, the store's identity, and the secrets.
    admin_secret = {"platform/mlflow/admin-secret"} if env in BASIC_AUTH else set()
    assert dependency_paths(stack, releases["mlflow-credentials"]) == {
        operator,
        "platform/mlflow/namespace",
        "platform/mlflow/secrets-irsa/service-account",
        "platform/mlflow/secrets-irsa/permissions",
        "platform/mlflow-database/instance",
        *admin_secret,
    }
    assert dependency_paths(stack, releases["reloader"]) == cluster_ready | {"platform/mlflow/namespace"}
    # MLflow starts once its Secrets exist, Reloader watches them, and its identity may write artifacts.
    assert dependency_paths(stack, releases["mlflow"]) - cluster_ready == {
        "platform/mlflow/credentials/release",
        "platform/mlflow/reloader",
        "platform/mlflow/server-irsa/service-account",
        "platform/mlflow/server-irsa/permissions",
    }
    # The chain holds end to end, and never the other way round (no cycle, no operator waiting for MLflow).
    assert depends_transitively(stack, releases["mlflow"], operator)
    assert depends_transitively(stack, releases["mlflow"], "platform/eks/cpu-nodes/node-group")
    for earlier, later in (("external-secrets", "mlflow-credentials"), ("mlflow-credentials", "mlflow")):
        assert not depends_transitively(stack, releases[earlier], path_of(releases[later]))


# --- MLflow's values --------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mlflow_keeps_metadata_in_rds_over_tls_and_artifacts_in_s3(stacks, env) -> None:
    stack = stacks[env]
    values = server_values(stack)
    database = only(stack, "aws_db_instance", "mlflow-database/instance")
    assert values["backendStore"]["postgres"] == {
        "enabled": True,
        "host": instance_ref(stack, "address"),
        "port": database["port"],
        "database": database["db_name"],
        "driver": "psycopg2",
    }
    assert database["db_name"] == "mlflow"
    # The chart reads the user name and password from the Secret the operator writes, never from the values.
    secret = values["backendStore"]["existingDatabaseSecret"]
    assert secret == {"name": "mlflow-database", "usernameKey": "username", "passwordKey": "password"}
    assert values["extraEnvVars"]["PGSSLMODE"] == "require"
    assert values["extraEnvVars"]["AWS_DEFAULT_REGION"] == data_ref(stack, "aws_region", "platform/region", "name")
    # Clients go through the server (proxied artifacts), which writes under artifacts/ with its own role.
    assert values["artifactRoot"] == {
        "proxiedArtifactStorage": True,
        "s3": {
            "enabled": True,
            "bucket": ref(stack, "aws_s3_bucket", "storage/mlflow-artifacts/bucket", "bucket"),
            "path": "artifacts",
        },
    }
    assert values["serviceAccount"]["create"] is False and values["serviceAccount"]["name"] == "mlflow"
    assert values["ingress"] == {"enabled": False}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mlflow_pods_have_the_matrix_size_on_cpu_nodes(stacks, env) -> None:
    stack = stacks[env]
    values = server_values(stack)
    expected = EXPECTED[env]
    assert values["replicaCount"] == expected.replicas
    assert values["resources"] == {
        "requests": {"cpu": expected.cpu, "memory": expected.memory},
        "limits": {"cpu": expected.cpu_limit, "memory": expected.memory},
    }
    # The selector must match labels the CPU node group really carries, or no pod is ever scheduled.
    cpu_labels = only(stack, "aws_eks_node_group", "eks/cpu-nodes/node-group")["labels"]
    assert values["nodeSelector"] == {"ml-platform/node-type": "cpu"}
    assert values["nodeSelector"].items() <= cpu_labels.items()
    spread = values["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert [term["podAffinityTerm"]["labelSelector"]["matchLabels"] for term in spread] == [CHART_SELECTOR]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mlflow_pods_meet_the_restricted_pod_security_standard(stacks, env) -> None:
    stack = stacks[env]
    namespace = only(stack, "kubernetes_namespace_v1", "mlflow/namespace")["metadata"]
    assert namespace["name"] == "mlflow"
    assert namespace["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    values = server_values(stack)
    assert values["securityContext"] == RESTRICTED_CONTAINER
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["podSecurityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in values.get("initContainers", []):
        assert container["securityContext"] == RESTRICTED_CONTAINER, container["name"]
    reloader = values_of(mlflow_releases(stack)["reloader"])["reloader"]
    # Reloader shares the namespace: read-only root, no escalation, nothing outside its namespace.
    assert (reloader["watchGlobally"], reloader["readOnlyRootFileSystem"]) == (False, True)
    assert reloader["deployment"]["containerSecurityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_reloader_restarts_mlflow_when_any_secret_it_reads_changes(stacks, env) -> None:
    values = server_values(stacks[env])
    read = {values["backendStore"]["existingDatabaseSecret"]["name"]}
    read |= {v["secret"]["secretName"] for v in values.get("extraVolumes", []) if "secret" in v}
    for container in values.get("initContainers", []):
        read |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    annotated = values["deploymentAnnotations"]["secret.reloader.stakater.com/reload"].split(",")
    assert sorted(annotated) == sorted(read)
    # Each of them is written by the operator from Secrets Manager (so a rotation reaches it, then the pods).
    produced = {m["spec"]["target"]["name"] for m in manifests(stacks[env]) if m["kind"] == "ExternalSecret"}
    assert read <= produced


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_mlflow_accepts_only_its_own_host_names(stacks, env) -> None:
    hosts = server_values(stacks[env])["serverAllowedHosts"]
    assert "mlflow.mlflow.svc.cluster.local" in hosts and "localhost:*" in hosts
    assert "*" not in hosts
    outside = [h for h in hosts if h.endswith(f".{HOSTED_ZONE}")]
    assert outside == ([EXPECTED[env].hostname] if EXPECTED[env].hostname else [])


@pytest.mark.parametrize("env", BASIC_AUTH)
def test_basic_auth_reads_its_configuration_from_the_operator_rendered_secret(stacks, env) -> None:
    assert MATRIX[env].mlflow.authentication == "basic-auth"
    values = server_values(stacks[env])
    assert values["extraArgs"] == {"appName": "basic-auth"}
    config_path = Path(values["extraEnvVars"]["MLFLOW_AUTH_CONFIG_PATH"])
    (volume,) = [v for v in values["extraVolumes"] if v.get("secret", {}).get("secretName") == "mlflow-auth"]
    (mount,) = [m for m in values["extraVolumeMounts"] if m["name"] == volume["name"]]
    assert Path(mount["mountPath"]) == config_path.parent and mount["readOnly"] is True
    # The file MLflow opens is a key of the Secret the operator renders.
    rendered = manifest(stacks[env], "ExternalSecret", "mlflow-auth")["spec"]["target"]["template"]["data"]
    assert config_path.name in rendered


@pytest.mark.parametrize("env", BASIC_AUTH)
def test_auth_database_init_container_uses_the_database_secret_never_a_literal(stacks, env) -> None:
    stack = stacks[env]
    (init,) = server_values(stack)["initContainers"]
    env_vars = {e["name"]: e for e in init["env"]}
    for name, key in (("PGPASSWORD", "password"), ("PGUSER", "username")):
        assert env_vars[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": "mlflow-database", "key": key}}}
    assert env_vars["PGHOST"]["value"] == instance_ref(stack, "address")
    assert env_vars["PGSSLMODE"]["value"] == "require"
    assert "CREATE DATABASE mlflow_auth" in init["command"][-1]


# --- identities -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize(("account", "irsa"), [("mlflow", "server-irsa"), ("mlflow-secrets", "secrets-irsa")])
def test_service_accounts_carry_their_roles_arn(stacks, env, account, irsa) -> None:
    stack = stacks[env]
    metadata = only(stack, "kubernetes_service_account_v1", f"mlflow/{irsa}/service-account")["metadata"]
    assert (metadata["namespace"], metadata["name"]) == ("mlflow", account)
    assert metadata["annotations"] == {
        "eks.amazonaws.com/role-arn": ref(stack, "aws_iam_role", f"mlflow/{irsa}/role", "arn")
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_server_role_may_only_use_the_artifact_prefix(stacks, env) -> None:
    stack = stacks[env]
    bucket = ref(stack, "aws_s3_bucket", "storage/mlflow-artifacts/bucket", "arn")
    statements = policy(only(stack, "aws_iam_role_policy", "mlflow/server-irsa/permissions")["policy"])["Statement"]
    objects = f"{bucket}/artifacts/*"
    writes = ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    assert statements == [
        allow("ListBucket", "s3:ListBucket", bucket, StringLike={"s3:prefix": ["artifacts/*"]}),
        allow("LocateBucket", "s3:GetBucketLocation", bucket),
        allow("ReadObjects", ["s3:GetObject", "s3:GetObjectVersion"], objects),
        allow("WriteObjects", writes, objects),
        allow(
            "UseBucketKey",
            ["kms:Decrypt", "kms:GenerateDataKey"],
            ref(stack, "aws_kms_key", "keys/data", "arn"),
            StringLike={"kms:ViaService": "s3.*.amazonaws.com"},
        ),
    ]
    # The bucket's key is the one the bucket really encrypts with.
    encryption = only(stack, "aws_s3_bucket_server_side_encryption_configuration", "mlflow-artifacts/encryption")
    assert encryption["rule"][0]["apply_server_side_encryption_by_default"]["kms_master_key_id"] == ref(
        stack, "aws_kms_key", "keys/data", "arn"
    )


def secret_statements(stack: dict[str, Any], *, admin: bool) -> list[dict[str, Any]]:
    """The SecretStore role's statements: the RDS-managed secret, the admin secret, their key via Secrets Manager."""
    key = ref(stack, "aws_kms_key", "mlflow-database/secret-key", "arn")
    region = data_ref(stack, "aws_region", "platform/region", "name")
    via = {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    read = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    statements = [
        allow("ReadDatabaseCredentials", read, instance_ref(stack, "master_user_secret[0].secret_arn")),
        allow("DecryptDatabaseCredentials", "kms:Decrypt", key, StringEquals=via),
    ]
    if admin:
        secret = ref(stack, "aws_secretsmanager_secret", "mlflow/admin-secret", "arn")
        push = [*read, "secretsmanager:PutSecretValue", "secretsmanager:DeleteResourcePolicy"]
        statements += [
            allow("PushAndReadAdminSecret", push, secret),
            allow("EncryptAdminSecret", ["kms:GenerateDataKey", "kms:Decrypt"], key, StringEquals=via),
        ]
    return statements


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secrets_role_reads_exactly_the_rds_secret_and_the_admin_secret_with_their_key(stacks, env) -> None:
    stack = stacks[env]
    statements = policy(only(stack, "aws_iam_role_policy", "mlflow/secrets-irsa/permissions")["policy"])["Statement"]
    assert statements == secret_statements(stack, admin=env in BASIC_AUTH)
    assert all(s["Resource"] != "*" and "*" not in s["Resource"] for s in statements)
    # The secrets really are encrypted with that key: the one the role may decrypt through Secrets Manager.
    key = ref(stack, "aws_kms_key", "mlflow-database/secret-key", "arn")
    assert only(stack, "aws_db_instance", "mlflow-database/instance")["master_user_secret_kms_key_id"] == key
    assert only(stack, "aws_secretsmanager_secret", "mlflow/admin-secret")["kms_key_id"] == key


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_operator_itself_has_no_aws_identity_and_ignores_cluster_wide_objects(stacks, env) -> None:
    values = values_of(mlflow_releases(stacks[env])["external-secrets"])
    assert values["serviceAccount"]["annotations"] == {}
    assert not [r for r in resources(stacks[env], "aws_iam_role").values() if "external-secrets" in path_of(r)]
    cluster_wide = ("processClusterStore", "processClusterExternalSecret", "processClusterPushSecret")
    assert [values[k] for k in (*cluster_wide, "processClusterGenerator")] == [False] * 4
    assert values["installCRDs"] is True
    assert values["nodeSelector"] == {"ml-platform/node-type": "cpu"}
    # Two controllers elect a leader wherever MLflow itself runs more than one pod.
    assert (values["replicaCount"], values["leaderElect"]) == ((2, True) if EXPECTED[env].replicas > 1 else (1, False))


# --- the credential objects -------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_credential_objects_live_in_mlflow_with_served_api_versions(stacks, env) -> None:
    api = {
        "SecretStore": "external-secrets.io/v1",
        "ExternalSecret": "external-secrets.io/v1",
        "PushSecret": "external-secrets.io/v1alpha1",
        "Password": "generators.external-secrets.io/v1alpha1",
    }
    objects = manifests(stacks[env])
    for obj in objects:
        assert obj["metadata"]["namespace"] == "mlflow"
        assert obj["apiVersion"] == api[obj["kind"]], obj["kind"]
    expected = [("SecretStore", "aws-secrets-manager"), ("ExternalSecret", "mlflow-database")]
    if env in BASIC_AUTH:
        expected += [
            ("Password", "mlflow-admin-password"),
            ("ExternalSecret", "mlflow-admin-password"),
            ("PushSecret", "mlflow-admin-password"),
            ("ExternalSecret", "mlflow-auth"),
        ]
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == expected
    # Every ExternalSecret and PushSecret goes through the namespace's own store, never a cluster store.
    for obj in objects:
        for store in obj["spec"].get("secretStoreRefs", [obj["spec"].get("secretStoreRef")]):
            assert store in (None, {"name": "aws-secrets-manager", "kind": "SecretStore"}), obj["kind"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secret_store_authenticates_as_the_secrets_service_account(stacks, env) -> None:
    stack = stacks[env]
    provider = manifest(stack, "SecretStore", "aws-secrets-manager")["spec"]["provider"]
    assert provider == {
        "aws": {
            "service": "SecretsManager",
            "region": data_ref(stack, "aws_region", "platform/region", "name"),
            "auth": {"jwt": {"serviceAccountRef": {"name": "mlflow-secrets"}}},
        }
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_database_secret_copies_the_rds_managed_secret_well_inside_its_rotation(stacks, env) -> None:
    stack = stacks[env]
    spec = manifest(stack, "ExternalSecret", "mlflow-database")["spec"]
    arn = instance_ref(stack, "master_user_secret[0].secret_arn")
    assert spec["data"] == [
        {"secretKey": "username", "remoteRef": {"key": arn, "property": "username"}},
        {"secretKey": "password", "remoteRef": {"key": arn, "property": "password"}},
    ]
    assert only(stack, "aws_db_instance", "mlflow-database/instance")["manage_master_user_password"] is True
    assert spec["target"]["name"] == "mlflow-database"
    assert spec["refreshPolicy"] == "Periodic"
    interval = go_duration(spec["refreshInterval"])
    assert interval == timedelta(minutes=MATRIX[env].mlflow.secret_refresh_minutes)
    # Many refreshes fit in one rotation period, so a rotated password reaches the pods within the hour.
    assert interval <= timedelta(hours=1) < RDS_ROTATION


@pytest.mark.parametrize("env", BASIC_AUTH)
def test_admin_password_is_generated_once_in_the_cluster_and_pushed_to_its_secret(stacks, env) -> None:
    stack = stacks[env]
    generator = manifest(stack, "Password", "mlflow-admin-password")["spec"]
    # Letters and digits only: the password is pasted into an INI file and a URL without escaping.
    assert generator["symbols"] == 0 and generator["length"] >= 32
    generated = manifest(stack, "ExternalSecret", "mlflow-admin-password")["spec"]
    assert generated["refreshPolicy"] == "CreatedOnce"
    assert generated["target"]["immutable"] is True
    (source,) = generated["dataFrom"]
    assert source["sourceRef"]["generatorRef"] == {
        "apiVersion": "generators.external-secrets.io/v1alpha1",
        "kind": "Password",
        "name": "mlflow-admin-password",
    }
    push = manifest(stack, "PushSecret", "mlflow-admin-password")["spec"]
    assert push["selector"] == {"secret": {"name": "mlflow-admin-password"}}
    # Deleting the PushSecret leaves the Terraform-managed secret alone.
    assert push["deletionPolicy"] == "None"
    admin_name = ref(stack, "aws_secretsmanager_secret", "mlflow/admin-secret", "name")
    assert {d["match"]["remoteRef"]["remoteKey"] for d in push["data"]} == {admin_name}
    assert sorted(d["match"]["secretKey"] for d in push["data"]) == ["password", "username"]
    # The operator refuses to update a secret without its tag.
    assert only(stack, "aws_secretsmanager_secret", "mlflow/admin-secret")["tags"] == {"managed-by": "external-secrets"}


@pytest.mark.parametrize("env", BASIC_AUTH)
def test_admin_secret_is_pushed_as_a_string_people_can_read(stacks, env) -> None:
    # The operator stores pushed values as SecretBinary unless told otherwise; `aws secretsmanager get-secret-value
    # --query SecretString` (docs/mlflow.md) and the console then show nothing.
    string_format = {
        "apiVersion": "kubernetes.external-secrets.io/v1alpha1",
        "kind": "PushSecretMetadata",
        "spec": {"secretPushFormat": "string"},
    }
    for entry in manifest(stacks[env], "PushSecret", "mlflow-admin-password")["spec"]["data"]:
        assert entry.get("metadata") == string_format, entry["match"]["secretKey"]


@pytest.mark.parametrize("env", BASIC_AUTH)
def test_auth_file_template_renders_a_tls_uri_mlflow_reads_back_exactly(stacks, env) -> None:
    stack = stacks[env]
    secret = manifest(stack, "ExternalSecret", "mlflow-auth")["spec"]
    template = secret["target"]["template"]["data"]["basic_auth.ini"]
    # No literal secret: the credentials in the file are template actions only.
    uri_template = re.search(r"^database_uri = (.*)$", template, re.M).group(1)
    userinfo, _, location = uri_template.removeprefix("postgresql://").partition("@")
    assert re.fullmatch(r"\{\{[^}]*\}\}:\{\{[^}]*\}\}", userinfo)
    host = instance_ref(stack, "address")
    assert location == f"{host}:5432/mlflow_auth?sslmode=require"
    assert re.search(r"^admin_password = \{\{[^}]*\}\}$", template, re.M)
    # Render it as the operator does with an awkward (RDS-possible) password; read it as MLflow does.
    password = "p%a:ss+w#r?d&x=1[]!$"
    data = {"db_username": "mlflow", "db_password": password, "admin_username": "admin", "admin_password": "Ab3%"}
    parser = configparser.ConfigParser()
    parser.read_string(render(template.replace(host, "db.internal"), data))
    section = parser["mlflow"]
    uri = urlsplit(section["database_uri"])
    where = (uri.scheme, uri.hostname, uri.port, uri.path, uri.query)
    assert where == ("postgresql", "db.internal", 5432, "/mlflow_auth", "sslmode=require")
    assert (unquote(uri.username), unquote(uri.password)) == ("mlflow", password)
    assert (section["admin_username"], section["admin_password"]) == ("admin", "Ab3%")
    # Its four values come from the RDS secret and the admin secret, each refreshed within the hour.
    keys = {d["secretKey"]: d["remoteRef"]["key"] for d in secret["data"]}
    rds = instance_ref(stack, "master_user_secret[0].secret_arn")
    admin = ref(stack, "aws_secretsmanager_secret", "mlflow/admin-secret", "name")
    assert keys == {"db_username": rds, "db_password": rds, "admin_username": admin, "admin_password": admin}
    assert go_duration(secret["refreshInterval"]) < RDS_ROTATION


# --- the load balancer ------------------------------------------------------------------------------------


def test_dev_has_no_load_balancer_and_is_reached_in_the_cluster(stacks) -> None:
    stack = stacks["dev"]
    assert MATRIX["dev"].mlflow.ingress is None
    assert resources(stack, "kubernetes_ingress_v1") == {}
    assert not paths(stack, "aws_acm_certificate") and not paths(stack, "aws_route53_record")
    assert "aws_route53_zone" not in stack.get("data", {})


@pytest.mark.parametrize("env", WITH_INGRESS)
def test_ingress_is_an_internal_https_alb_in_front_of_the_mlflow_service(stacks, env) -> None:
    stack = stacks[env]
    hostname = EXPECTED[env].hostname
    ingress = only(stack, "kubernetes_ingress_v1", "mlflow/ingress/ingress")
    annotations = ingress["metadata"]["annotations"]
    alb = {k.removeprefix("alb.ingress.kubernetes.io/"): v for k, v in annotations.items()}
    assert ingress["spec"]["ingress_class_name"] == "alb"
    assert alb["scheme"] == "internal"
    assert json.loads(alb["listen-ports"]) == [{"HTTP": 80}, {"HTTPS": 443}]
    assert alb["ssl-redirect"] == "443"
    assert alb["certificate-arn"] == ref(
        stack, "aws_acm_certificate_validation", "mlflow/ingress/validation", "certificate_arn"
    )
    assert alb["inbound-cidrs"] == only(stack, "aws_vpc", "network/vpc")["cidr_block"]
    (rule,) = ingress["spec"]["rule"]
    assert rule["host"] == hostname
    (route,) = rule["http"]["path"]
    assert route["backend"] == {"service": {"name": "mlflow", "port": {"number": 80}}}
    assert ingress["wait_for_load_balancer"] is True
    # Created after MLflow and the controller, so deleted before them: the controller removes the ALB itself.
    assert {"platform/mlflow/mlflow", "platform/eks/components/aws-load-balancer-controller"} <= dependency_paths(
        stack, ingress
    )


@pytest.mark.parametrize("env", WITH_INGRESS)
def test_host_name_is_an_alias_of_the_alb_with_a_dns_validated_certificate(stacks, env) -> None:
    stack = stacks[env]
    hostname = EXPECTED[env].hostname
    zone = data_ref(stack, "aws_route53_zone", "mlflow/ingress/zone", "zone_id")
    (zone_data,) = stack["data"]["aws_route53_zone"].values()
    assert (zone_data["name"], zone_data["private_zone"]) == (HOSTED_ZONE, False)
    record = only(stack, "aws_route53_record", "mlflow/ingress/record")
    ingress = address(stack, "kubernetes_ingress_v1", "mlflow/ingress/ingress")
    assert (record["name"], record["type"], record["zone_id"]) == (hostname, "A", zone)
    assert record["alias"]["name"] == f"${{{ingress}.status[0].load_balancer[0].ingress[0].hostname}}"
    alb_zone = data_ref(stack, "aws_lb_hosted_zone_id", "mlflow/ingress/load-balancer-zone", "id")
    assert record["alias"]["zone_id"] == alb_zone
    certificate = only(stack, "aws_acm_certificate", "mlflow/ingress/certificate")
    assert (certificate["domain_name"], certificate["validation_method"]) == (hostname, "DNS")
    validation = only(stack, "aws_route53_record", "mlflow/ingress/validation-record")
    assert validation["zone_id"] == zone
    fqdn = ref(stack, "aws_route53_record", "mlflow/ingress/validation-record", "fqdn")
    checked = only(stack, "aws_acm_certificate_validation", "mlflow/ingress/validation")
    arn = ref(stack, "aws_acm_certificate", "mlflow/ingress/certificate", "arn")
    assert (checked["certificate_arn"], checked["validation_record_fqdns"]) == (arn, [fqdn])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_prod_keeps_a_disruption_budget_over_the_charts_pods(stacks, env) -> None:
    budgets = resources(stacks[env], "kubernetes_pod_disruption_budget_v1")
    if env != "prod":
        assert budgets == {}
        return
    (budget,) = budgets.values()
    assert budget["metadata"] == {"name": "mlflow", "namespace": "mlflow"}
    # It selects the chart's pods by the chart's own selector labels (the ones the zone spread uses as well).
    assert budget["spec"] == {"max_unavailable": "1", "selector": {"match_labels": CHART_SELECTOR}}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_outputs_tell_clients_where_mlflow_is_and_where_the_admin_password_lives(stacks, env) -> None:
    stack = stacks[env]
    hostname = EXPECTED[env].hostname
    uri = f"https://{hostname}" if hostname else "http://mlflow.mlflow.svc.cluster.local"
    assert output(stack, "mlflow_tracking_uri")["value"] == uri
    admin = ref(stack, "aws_secretsmanager_secret", "mlflow/admin-secret", "arn")
    admin_output = stack["output"].get("mlflow_admin_secret_arn", {}).get("value")
    assert admin_output == (admin if env in BASIC_AUTH else None)
