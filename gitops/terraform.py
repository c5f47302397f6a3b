"""Run the real ``terraform`` binary from tests: an isolated CLI config, a timeout, captured output.

The machines this project runs on have no internet, so ``terraform init`` must install providers from
a filesystem mirror. The mirror's root comes from ``ML_PLATFORM_TF_MIRROR`` (the project's variable,
discovered by ``.ci/run`` and the Makefile when unset); without it the CLI config written here installs
providers the normal way, which is what a user with internet wants. Every run gets its own CLI config
file through ``TF_CLI_CONFIG_FILE``, so a user's ``~/.terraformrc`` or the machine's setting never
leaks into a test.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MIRROR_ENV = "ML_PLATFORM_TF_MIRROR"
"""Environment variable naming the root of an offline provider mirror (``registry.terraform.io/...``)."""

DEFAULT_TIMEOUT = 300.0
"""Seconds one terraform command may take before it is killed (an apply against moto takes seconds)."""


class TerraformError(RuntimeError):
    """A terraform command failed or timed out; the message carries the command and its output."""

    def __init__(self, args: Sequence[str], cwd: Path, returncode: int | None, output: str) -> None:
        """Record what ran, where, how it ended (``None``: killed on timeout) and what it printed."""
        self.args_run = list(args)
        self.cwd = cwd
        self.returncode = returncode
        self.output = output
        ending = "timed out and was killed" if returncode is None else f"exited with {returncode}"
        super().__init__(f"`{' '.join(self.args_run)}` in {cwd} {ending}:\n{output}")


def cli_config_text(mirror: str | None) -> str:
    """Return a Terraform CLI config installing ``hashicorp/*`` from ``mirror`` (or normally if ``None``)."""
    if not mirror:
        # An empty config still isolates the run from ~/.terraformrc and a stale TF_CLI_CONFIG_FILE.
        return "# No provider mirror configured: providers install from their registries.\n"
    # json.dumps gives a correctly escaped HCL string literal for any path.
    return (
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {json.dumps(mirror)}\n"
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "  direct {\n"
        '    exclude = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )


def terraform_cli_env(tmpdir: str | os.PathLike[str], mirror: str | None = None) -> dict[str, str]:
    """Write a CLI config into ``tmpdir`` and return an environment for terraform subprocesses.

    ``mirror`` defaults to ``$ML_PLATFORM_TF_MIRROR``. The environment is a copy of this process's with
    ``TF_CLI_CONFIG_FILE`` pointing at the new file, plus switches that keep terraform from prompting
    (``TF_INPUT=0``), from phoning home for version checks (``CHECKPOINT_DISABLE``, which also avoids a
    network timeout offline) and from printing next-step hints (``TF_IN_AUTOMATION``).
    """
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV) or None
    config = Path(tmpdir) / "terraform.tfrc"
    config.write_text(cli_config_text(mirror), encoding="utf-8")
    env = dict(os.environ)
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(config),
            "TF_INPUT": "0",
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            # Each command starts the AWS provider several times; less garbage collection cuts its CPU by about a
            # third, for a little more memory.
            "GOGC": "400",
        }
    )
    return env


def emulator_cli_env(tmpdir: str | os.PathLike[str], mirror: str | None = None) -> dict[str, str]:
    """:func:`terraform_cli_env` for runs against the local AWS emulator.

    A profile, session token or endpoint from the developer's shell must not reach the provider, and instance
    metadata is never asked for (offline, each lookup waits for its timeout).
    """
    env = terraform_cli_env(tmpdir, mirror)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(name, None)
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    return env


def run_terraform(
    args: Sequence[str],
    cwd: str | os.PathLike[str],
    env: Mapping[str, str],
    timeout: float = DEFAULT_TIMEOUT,
    ok_returncodes: Iterable[int] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run ``terraform *args`` in ``cwd`` and return the completed process (stdout and stderr merged).

    Raises ``TerraformError`` with the full output if the exit code is not in ``ok_returncodes`` (pass
    ``(0, 2)`` for ``plan -detailed-exitcode``) or if the command outlives ``timeout`` seconds. On timeout
    the whole process group is killed: terraform runs each provider as a child process, and killing only
    terraform would leave the provider running.
    """
    binary = shutil.which("terraform", path=env.get("PATH"))
    if binary is None:
        raise FileNotFoundError("terraform is not on PATH")
    command = [binary, *args]
    workdir = Path(cwd)
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # start_new_session made terraform the leader of a group holding only it and its providers.
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        raise TerraformError(["terraform", *args], workdir, None, output) from None
    if process.returncode not in tuple(ok_returncodes):
        raise TerraformError(["terraform", *args], workdir, process.returncode, output)
    return subprocess.CompletedProcess(command, process.returncode, output, None)


# --- the part of a stack that validates offline ------------------------------------------------------

IN_CLUSTER_PROVIDERS = ("helm", "kubernetes")


# A reference to an in-cluster resource or data source inside an expression: `helm_release.x`,
# `data.kubernetes_namespace_v1.y` (but not an attribute such as `.kubernetes_network_config`).
IN_CLUSTER_REFERENCE = re.compile(rf"(?<![\w.])(?:data\.)?(?:{'|'.join(IN_CLUSTER_PROVIDERS)})_\w+\.[\w-]+")


def is_in_cluster_address(address: str) -> bool:
    """Whether a ``depends_on`` address (``type.name`` or ``data.type.name``) names an in-cluster resource."""
    resource_type = address.removeprefix("data.").split(".", 1)[0]
    return resource_type.startswith(tuple(f"{provider}_" for provider in IN_CLUSTER_PROVIDERS))


def _drop_in_cluster_dependencies(body: dict[str, Any]) -> None:
    if "depends_on" in body:
        kept = [address for address in body["depends_on"] if not is_in_cluster_address(address)]
        if kept:
            body["depends_on"] = kept
        else:
            del body["depends_on"]


def aws_only(config: dict[str, Any], *, keep_backend: bool = False) -> dict[str, Any]:
    """The stack without the in-cluster (helm, kubernetes) providers, and without its backend unless
    ``keep_backend`` (a run against the emulator's S3 state backend keeps it).

    References to what is removed go with it: ``depends_on`` entries naming an in-cluster resource
    are dropped from the remaining resources, data sources and outputs, and outputs whose value reads
    an in-cluster resource are dropped (they describe the in-cluster part). An AWS resource whose
    arguments read an in-cluster resource (the DNS record of a load balancer an Ingress makes the
    controller create) belongs to the in-cluster part as well, and goes too. Any other reference is
    left as it is, so that terraform reports it.
    """
    config = json.loads(json.dumps(config))
    if not keep_backend:
        config["terraform"].pop("backend", None)
    for provider in IN_CLUSTER_PROVIDERS:
        config["terraform"].get("required_providers", {}).pop(provider, None)
        config.get("provider", {}).pop(provider, None)
        for block in ("resource", "data"):
            for resource_type in [t for t in config.get(block, {}) if t.startswith(f"{provider}_")]:
                del config[block][resource_type]
    for block in ("resource", "data"):
        for resource_type, bodies in list(config.get(block, {}).items()):
            for name, body in list(bodies.items()):
                arguments = {key: value for key, value in body.items() if key != "depends_on"}
                if IN_CLUSTER_REFERENCE.search(json.dumps(arguments)):
                    del bodies[name]
            if not bodies:
                del config[block][resource_type]
    for block in ("resource", "data"):
        for bodies in config.get(block, {}).values():
            for body in bodies.values():
                _drop_in_cluster_dependencies(body)
    outputs = config.get("output", {})
    for name in list(outputs):
        if IN_CLUSTER_REFERENCE.search(json.dumps(outputs[name].get("value"))):
            del outputs[name]
        else:
            _drop_in_cluster_dependencies(outputs[name])
    return config


def validate_offline(configs: Mapping[str, dict[str, Any]], root: Path, env: Mapping[str, str]) -> dict[str, list[str]]:
    """``terraform init`` + ``validate`` of each configuration (in ``root/<name>``), two at a time.

    Returns the diagnostics of each configuration as ``severity: summary: detail`` lines, plus an
    ``invalid`` line when terraform judged it invalid: a clean configuration has none. Deprecated or
    ignored arguments are warnings, so they count too.
    """

    # One init at a time: two inits filling the same empty plugin cache race to create its directories
    # ("mkdir ...: file exists"); once the cache is filled an init only links from it and takes a second.
    initializing = threading.Lock()

    def validate(name: str) -> list[str]:
        workdir = root / name
        workdir.mkdir(parents=True)
        (workdir / "cdk.tf.json").write_text(json.dumps(configs[name], indent=2))
        with initializing:
            run_terraform(["init", "-backend=false", "-input=false", "-no-color"], workdir, env)
        result = run_terraform(["validate", "-no-color", "-json"], workdir, env, ok_returncodes=(0, 1))
        report = json.loads(result.stdout)
        problems = [f"{d['severity']}: {d['summary']}: {d.get('detail', '')}" for d in report["diagnostics"]]
        return problems if report["valid"] else ["invalid", *problems]

    # Validation is mostly the provider loading its schema: two in parallel use both cores.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(configs, pool.map(validate, configs), strict=True))
