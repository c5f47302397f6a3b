"""The offline provider mirror as the emulator tests find it, and the Terraform environment they run in."""

from __future__ import annotations

import os

from gitops.terraform import MIRROR_ENV, emulator_cli_env

MACHINE_MIRROR = "/opt/tf-plugins"
"""Where these machines keep the offline mirror: the tests (not the product) fall back to it."""


def offline_mirror() -> str:
    """``$ML_PLATFORM_TF_MIRROR``, or the machine's mirror when it is unset."""
    return os.environ.get(MIRROR_ENV) or MACHINE_MIRROR


def emulator_terraform_env(directory: str | os.PathLike[str]) -> dict[str, str]:
    """The environment of terraform commands against the emulator, with a CLI config of their own in ``directory``."""
    return emulator_cli_env(directory, offline_mirror())
