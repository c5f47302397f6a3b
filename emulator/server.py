"""A local AWS emulator that ``terraform apply`` can run this platform's resources against.

It runs moto's ``ThreadedMotoServer`` in this process on 127.0.0.1 and patches, at run time, what moto
5.2.5 lacks or gets wrong for the resource types the platform provisions, so that ``terraform apply`` ->
``terraform plan -detailed-exitcode`` (exit 0) -> ``terraform destroy`` works with the hashicorp/aws
5.100.0 provider. The patches of each AWS service are in ``emulator.patches``; this module
holds the server, and the two patches of the server itself, found by deploying the platform's own stacks
(``tests/test_emulator_deploy.py``):

* The server sends each response in one write: werkzeug wrote headers and body separately, and the
  provider's Go client sometimes gave up between the two and retried a request the emulator had
  already carried out.
* It handles one request at a time: moto's backends have no locks.

``apply_patches`` (called by ``start_emulator``) applies every patch once per process. Being process-wide,
the patches also apply to ``moto.mock_aws`` used later in the same process; each one only makes moto
closer to AWS, so that is harmless.

moto keeps its state in process-global backends: every emulator started in one process shares it, and
``Emulator.reset()`` clears all of it (including the stores the patches add, which hang off the backends
that moto rebuilds on reset).

The provider settings that point Terraform at an emulator are the product's own (``stacks/emulator.py``,
plain Python: importing it starts no jsii kernel), so the list of emulated services is kept in one place.

Run it standalone from the repository root with ``python -m emulator.server --port 4566``
(``--port 0`` picks a free port); it prints the endpoint and serves until interrupted.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import urllib.request
from collections.abc import Callable
from typing import Any

from emulator.moto_helpers import wrap
from emulator.patches import PATCH_MODULES
from stacks.emulator import EMULATOR_CREDENTIALS, emulator_provider_arguments

REGION = "us-east-1"
"""The region the provider block and the tests use."""

ACCOUNT_ID = "123456789012"
"""moto's default account: the one every request signed with access key ``test`` lands in."""

_patch_lock = threading.Lock()
_patched = False
# Held while the server handles one request (see _patch_one_request_at_a_time).
_request_lock = threading.Lock()


def _patch_one_request_at_a_time() -> None:
    """Handle the server's requests one at a time.

    moto's backends are plain dicts and lists without locks, and moto does not support concurrent
    access to them (its documentation says so), while its threaded server runs every request on a
    thread of its own, and the deploy test points two terraform processes (ten parallel operations
    each) and boto3 at one emulator. Requests take milliseconds and Python runs one thread at a time
    anyway, so serializing them costs almost nothing and rules interleaved updates out.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    def serialize(original: Callable[..., Any]) -> Callable[..., Any]:
        def __call__(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
            with _request_lock:
                # moto's responses are built in full here, before the lock is released.
                return original(self, environ, start_response)

        return __call__

    wrap(DomainDispatcherApplication, "__call__", serialize)


def _patch_whole_responses() -> None:
    """Send each response (status line, headers and body) in one write.

    werkzeug writes the headers and the body of a response separately. Traced with strace, the
    provider's Go HTTP client now and then read the headers, found the body not there yet, dropped
    the connection and retried the request, which the emulator had already carried out: a repeated
    create or delete then failed (a NAT gateway's Elastic IP "already associated", a security group
    rule "not found"). A buffered writer, flushed once per response by werkzeug, sends it whole.
    """
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    # socketserver makes wfile a buffered writer of this size (0: unbuffered, one send per write).
    MotoRequestHandler.wbufsize = 1 << 20


def apply_patches() -> None:
    """Apply the server's patches, then every patch module in order, once per process.

    Safe to call repeatedly and from several threads.
    """
    global _patched
    with _patch_lock:
        if _patched:
            return
        _patch_one_request_at_a_time()
        _patch_whole_responses()
        for module in PATCH_MODULES:
            module.apply()
        _patched = True


class Emulator:
    """A running moto server; stop it with ``stop()`` or by leaving a ``with`` block."""

    def __init__(self, server: Any, host: str, port: int) -> None:
        """Wrap an already started ``ThreadedMotoServer`` listening on ``host:port``."""
        self._server = server
        self.host = host
        self.port = port
        self._stopped = False

    @property
    def endpoint(self) -> str:
        """The URL every AWS client (boto3, the Terraform provider) should use."""
        return f"http://{self.host}:{self.port}"

    def client(self, service: str, region: str = REGION) -> Any:
        """A boto3 client for ``service`` (boto3's name) in ``region``, with the credentials the provider uses."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=EMULATOR_CREDENTIALS["access_key"],
            aws_secret_access_key=EMULATOR_CREDENTIALS["secret_key"],
        )

    def reset(self) -> None:
        """Forget every resource in every account and region (moto's ``/moto-api/reset``)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        """Shut the server down and join its thread; calling it again does nothing."""
        if not self._stopped:
            self._stopped = True
            self._server.stop()

    def __enter__(self) -> Emulator:
        """Return the running emulator."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the emulator, whatever happened in the block."""
        self.stop()

    def __repr__(self) -> str:
        """Show where the emulator listens."""
        return f"Emulator(endpoint={self.endpoint!r}, stopped={self._stopped})"


def start_emulator(port: int = 0) -> Emulator:
    """Patch moto and start it on 127.0.0.1:``port`` (``0``: a free port chosen by the OS).

    Returns once the socket is bound, so ``.endpoint`` is immediately usable. Use the result as a
    context manager, or call ``.stop()`` yourself.
    """
    from moto.server import ThreadedMotoServer

    apply_patches()
    # werkzeug logs one INFO line per request; keep warnings and tracebacks of failed requests, but
    # leave the level alone if the caller configured it.
    werkzeug_logger = logging.getLogger("werkzeug")
    if werkzeug_logger.level == logging.NOTSET:
        werkzeug_logger.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound_port = server.get_host_and_port()
    return Emulator(server, host, bound_port)


def terraform_provider_block(endpoint: str) -> dict[str, Any]:
    """Return the ``provider.aws`` settings (Terraform JSON) that point the provider at ``endpoint``.

    They are the product's emulator switch (``stacks.emulator.emulator_provider_arguments``: fake
    credentials, every emulated service's endpoint, ``max_retries = 3`` so an action moto does not
    implement fails fast instead of being retried for 10+ minutes) plus :data:`REGION`, which the
    product sets from its environment configuration.
    """
    return {"region": REGION, **emulator_provider_arguments(endpoint)}


def _serve_forever(port: int) -> None:
    """Run the emulator until SIGINT or SIGTERM (the script entry point)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with start_emulator(port) as emulator:
        print(f"moto emulator listening on {emulator.endpoint}", flush=True)
        stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point: ``python -m emulator.server --port N``."""
    parser = argparse.ArgumentParser(description="Local AWS emulator (patched moto) for Terraform tests.")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 picks a free one")
    _serve_forever(parser.parse_args(argv).port)


if __name__ == "__main__":
    main()
