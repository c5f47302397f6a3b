"""Settings of the account-level bootstrap: the GitHub repository trusted to deploy, and the state store."""

from __future__ import annotations

from typing import Annotated

from constructs.core.settings import Settings, matches
from pydantic import Field

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
"""The issuer of GitHub Actions' OIDC tokens (its URL is ``https://`` + this host)."""

GITHUB_REPOSITORY_ALLOWED = (
    "a GitHub repository as 'owner/name': the owner 1-39 letters, digits and single hyphens, the name 1-100 "
    "letters, digits, '.', '_' and '-'"
)
GITHUB_REPOSITORY_PATTERN = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,38}/[A-Za-z0-9._-]{1,100}"
"""A repository as GitHub spells it in the token's ``sub`` claim (``repo:<owner>/<name>:...``)."""

GithubRepository = Annotated[str, matches(GITHUB_REPOSITORY_PATTERN, GITHUB_REPOSITORY_ALLOWED)]
"""``owner/name`` of the repository whose workflows may assume the platform's roles."""

BranchName = Annotated[
    str,
    matches(
        r"[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*",
        "a branch name of letters, digits, '.', '_', '-' and '/' (no wildcards: the trust names one branch)",
    ),
]


class GithubActionsSettings(Settings):
    """Which workflows of the repository the roles trust.

    main_branch: the branch whose pushes deploy and whose scheduled runs check drift; the read-only plan role
      trusts it and pull requests. The deploy roles trust only their GitHub Environment (see docs/gitops.md).
    session_hours: how long one assumed session lasts (1-12): a deploy of the largest environment takes well
      under an hour, and a shorter session limits what a leaked token can do.
    """

    main_branch: BranchName = "main"
    session_hours: Annotated[int, Field(ge=1, le=12)] = 1


class StateStoreSettings(Settings):
    """The state bucket's history and its access logs.

    state_history_days: how long an overwritten state version is kept (a bad apply is undone by restoring one).
    access_log_days: how long the state bucket's S3 server access logs are kept (who read or wrote the state).
    """

    state_history_days: Annotated[int, Field(ge=31, le=3650)] = 365
    access_log_days: Annotated[int, Field(ge=1, le=3650)] = 365
