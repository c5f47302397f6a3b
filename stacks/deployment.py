"""Where the platform's Terraform state lives and where AWS calls go: one setting for every environment of
an installation, read from ``ML_PLATFORM_*`` environment variables."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from constructs.core.errors import ConfigurationError
from constructs.core.formats import AwsRegion
from constructs.core.settings import LiteralInput, matches, predicate, settings_error
from constructs.gitops.settings import GithubRepository
from constructs.storage.settings import BucketName
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from stacks.emulator import LOOPBACK_ENDPOINT

ENV_PREFIX = "ML_PLATFORM_"
_TABLE = re.compile(r"[A-Za-z0-9_.-]{3,255}")

LockTable = Annotated[str, matches(_TABLE, "a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -)")]
EmulatorEndpoint = Annotated[
    str,
    predicate(
        lambda value: (match := LOOPBACK_ENDPOINT.fullmatch(value)) is not None and 1 <= int(match["port"]) <= 65535,
        "an http URL on the loopback interface with a port from 1 to 65535, such as 'http://127.0.0.1:5000'",
    ),
]


class DeploymentSettings(LiteralInput, BaseSettings):
    """Where state lives; the same for every environment of one installation.

    Each field is read from ``ML_PLATFORM_<FIELD>`` (``ML_PLATFORM_STATE_BUCKET``); an empty variable counts as
    unset.

    backend: ``"s3"`` (remote, locked state; the default) or ``"local"`` (offline rehearsal: state in
      ``terraform.<env>.tfstate`` beside the synthesized stack).
    state_bucket: S3 bucket holding every environment's state (see docs/state-bootstrap.md). There is no
      default: a guessed global bucket name could belong to someone else. Unset, the stacks get a partial S3
      backend and ``terraform init`` needs ``-backend-config=bucket=<name>``.
    state_region: region of that bucket.
    lock_table: optional DynamoDB lock table, for Terraform versions before S3-native locking.
    github_repository: ``owner/name`` of the GitHub repository whose workflows the bootstrap stack's roles trust
      (docs/gitops.md). Unset, ``cdktf deploy bootstrap`` asks for the Terraform variable ``github_repository``.
    emulator_endpoint: a local AWS emulator (``http://127.0.0.1:<port>``) to send every AWS API call to instead
      of AWS. Only the provider block changes; the resources are exactly those of the real environment. Used by
      the emulator deploy test; loopback addresses only.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True, strict=True, extra="ignore"
    )

    backend: Literal["s3", "local"] = "s3"
    state_bucket: BucketName | None = None
    state_region: AwsRegion = "us-east-1"
    lock_table: LockTable | None = None
    github_repository: GithubRepository | None = None
    emulator_endpoint: EmulatorEndpoint | None = None


def load_deployment() -> DeploymentSettings:
    """The deployment settings from the environment. Raises :class:`ConfigurationError` naming the variable."""
    try:
        return DeploymentSettings()
    except ValidationError as error:
        problem = settings_error(error, "deployment", DeploymentSettings)
        raise ConfigurationError(
            "deployment", ENV_PREFIX + problem.field.upper(), problem.value, problem.allowed
        ) from None
