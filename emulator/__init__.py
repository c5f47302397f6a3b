"""The local AWS emulator: moto's threaded server, patched for the hashicorp/aws 5.100.0 provider.

``server`` runs it (``python -m emulator.server --port 4566``), ``patches`` holds one
module per AWS service of what moto lacks, ``moto_helpers`` what those modules share.

The public names below are looked up in ``server`` on first use rather than imported here: an eager
import would load ``server`` while ``python -m`` is about to run it as ``__main__``, leaving two copies
of it (and a RuntimeWarning from runpy) in that process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.server import ACCOUNT_ID, REGION, Emulator, start_emulator, terraform_provider_block

__all__ = ["ACCOUNT_ID", "REGION", "Emulator", "start_emulator", "terraform_provider_block"]


def __getattr__(name: str) -> Any:
    """Return the public name ``name`` from ``server``, importing it on first use."""
    if name in __all__:
        from emulator import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
