#!/usr/bin/env python3
"""Run ``main.py`` once and count its round trips to the jsii kernel, by kind, with the time each kind took.

Every request the Python runtime sends to the Node.js kernel (load an assembly, create an object, read or
set a property, call a method, answer a callback) waits for its answer: a round trip across the process
boundary. The counting wraps the runtime's one sending method, so it sees all of them; the wrapper adds
a few microseconds per call, which is why ``bench/synth.py`` counts in a run of its own and times others.
Writes a JSON report to the path given as the only argument::

    .venv/bin/python bench/count_calls.py /tmp/calls.json
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jsii._kernel.providers import process  # noqa: E402

# The request classes' names without the "Request" suffix; the runtime's reply to a callback is _CompleteRequest.
_KINDS = {
    "LoadRequest": "load",
    "CreateRequest": "create",
    "GetRequest": "get",
    "SetRequest": "set",
    "InvokeRequest": "invoke",
    "StaticGetRequest": "static_get",
    "StaticSetRequest": "static_set",
    "StaticInvokeRequest": "static_invoke",
    "_CompleteRequest": "callback",
    "DeleteRequest": "delete",
}

calls: Counter[str] = Counter()
seconds: Counter[str] = Counter()
_send = process._NodeProcess.send


def _counting_send(self, request, response_type):  # type: ignore[no-untyped-def]
    kind = _KINDS.get(type(request).__name__, type(request).__name__)
    start = time.perf_counter()
    try:
        return _send(self, request, response_type)
    finally:
        calls[kind] += 1
        seconds[kind] += time.perf_counter() - start


process._NodeProcess.send = _counting_send  # type: ignore[method-assign]


def main() -> int:
    """Synthesize with counting on and write the report."""
    import main as app

    start = time.perf_counter()
    status = app.main()
    report = {
        "status": status,
        "wall_seconds": round(time.perf_counter() - start, 3),
        "round_trips": sum(calls.values()),
        "calls": dict(calls.most_common()),
        "kernel_seconds": {kind: round(value, 3) for kind, value in seconds.most_common()},
        # The provider packages whose assemblies the app loaded: the floor loads the same ones.
        "provider_packages": sorted(
            name.removesuffix("._jsii")
            for name in sys.modules
            if name.startswith("cdktf_cdktf_provider_") and name.endswith("._jsii")
        ),
    }
    Path(sys.argv[1]).write_text(json.dumps(report, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
