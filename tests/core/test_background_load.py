"""Loading the AWS assembly in the background while main.py validates the configuration and imports its modules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from constructs.core import bindings

ROOT = Path(__file__).resolve().parent.parent.parent

# Runs main.main() with every kernel request recorded by thread, and any request made while another thread's
# request is still waiting for its answer counted: the kernel's Python client is not thread-safe.
_RECORDER = """
import json, sys, threading
from jsii._kernel.providers import process
send, busy, record = process._NodeProcess.send, threading.Lock(), {"overlaps": 0, "by_thread": {}}

def recorded(self, request, response_type):
    if not busy.acquire(blocking=False):
        record["overlaps"] += 1
        busy.acquire()
    try:
        kinds = record["by_thread"].setdefault(threading.current_thread().name, {})
        kinds[type(request).__name__] = kinds.get(type(request).__name__, 0) + 1
        return send(self, request, response_type)
    finally:
        busy.release()

process._NodeProcess.send = recorded
import main
status = main.main()
print(json.dumps({"status": status, **record}))
"""


@pytest.mark.slow
def test_the_background_load_never_overlaps_another_kernel_request(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_PLATFORM_")}
    env.update(CDKTF_OUTDIR=str(tmp_path / "out"), PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", _RECORDER], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert record["status"] == 0 and record["overlaps"] == 0
    # The loader thread made one request, the AWS assembly's load; everything else came from the main thread.
    assert record["by_thread"]["provider-assemblies"] == {"LoadRequest": 1}
    assert record["by_thread"]["MainThread"]["LoadRequest"] == 4  # constructs, cdktf, helm, kubernetes
    assert (tmp_path / "out" / "stacks" / "prod" / "cdk.tf.json").is_file()


def test_a_failed_background_load_is_raised_where_the_package_is_used() -> None:
    missing = bindings.ProviderBindings("cdktf_cdktf_provider_does_not_exist")
    loading = bindings.BackgroundLoad(missing)
    loading.wait()  # returns: the failure belongs to whoever uses the package
    assert bindings.BackgroundLoad._running is None
    with pytest.raises(ModuleNotFoundError, match=r"pip install -r requirements.txt"):
        _ = missing.vpc


def test_a_package_loaded_by_another_thread_is_waited_for() -> None:
    loading = bindings.BackgroundLoad(bindings.aws)
    assert bindings._load_package("cdktf_cdktf_provider_aws") is sys.modules["cdktf_cdktf_provider_aws"]
    assert not loading._thread.is_alive() and bindings.BackgroundLoad._running is None
