"""GitHub Actions' way into the account: the OIDC identity provider and roles trusted for exact workflow subjects.

A workflow asks GitHub for an OIDC token whose ``sub`` claim names the repository and what the job runs for
(``repo:acme/ml-platform:environment:prod``, ``...:pull_request``, ``...:ref:refs/heads/main``) and exchanges it
with STS for a role session. No long-lived AWS key is stored in GitHub. Each role's trust lists the exact
subjects it accepts (``StringEquals``, never a wildcard), so a workflow of another repository, a fork's pull
request or a job outside the named GitHub Environment cannot assume it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.iam import PolicyStatement, grant, policy_document
from constructs.gitops.settings import GITHUB_OIDC_HOST

STS_AUDIENCE = "sts.amazonaws.com"
"""The audience configure-aws-credentials requests, and the only one the provider and the trusts accept."""


def environment_subject(repository: str, environment: str) -> str:
    """The ``sub`` claim of a job that runs in the GitHub Environment ``environment`` of ``repository``."""
    return f"repo:{repository}:environment:{environment}"


def pull_request_subject(repository: str) -> str:
    """The ``sub`` claim of a job run for a pull request of ``repository`` (without an environment)."""
    return f"repo:{repository}:pull_request"


def branch_subject(repository: str, branch: str) -> str:
    """The ``sub`` claim of a job run for a push or schedule on ``branch`` (without an environment)."""
    return f"repo:{repository}:ref:refs/heads/{branch}"


class GithubOidcProvider(Construct):
    """The account's IAM OIDC identity provider for GitHub Actions' tokens (one per account and issuer URL).

    IAM verifies tokens of this issuer against its trusted certificate authorities, so no thumbprint is pinned
    (the provider argument is optional since IAM stopped using it for GitHub).
    """

    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.provider = aws.iam_openid_connect_provider.IamOpenidConnectProvider(
            self, "provider", url=f"https://{GITHUB_OIDC_HOST}", client_id_list=[STS_AUDIENCE]
        )

    @property
    def arn(self) -> str:
        """The provider's ARN, the ``Federated`` principal of the roles' trust."""
        return self.provider.arn


@dataclass(frozen=True)
class GithubActionsRoleProps:
    """Props for :class:`GithubActionsRole`.

    name: the role's name.
    description: what the role may do, in a sentence (shown in IAM).
    provider: the account's GitHub OIDC provider.
    subjects: the exact ``sub`` claims trusted (see :func:`environment_subject` and its siblings).
    session_hours: the longest session one token buys.
    """

    name: str
    description: str
    provider: GithubOidcProvider
    subjects: Sequence[str]
    session_hours: int = 1


class GithubActionsRole(Construct):
    """An IAM role that GitHub Actions jobs with one of the trusted subjects may assume, and nothing else.

    The trust requires the token's audience to be STS and its subject to equal one of ``subjects``. The role has
    no permissions until :meth:`grant` or :meth:`attach_managed_policy` gives them.
    """

    def __init__(self, scope: Construct, id: str, props: GithubActionsRoleProps) -> None:
        super().__init__(scope, id)
        subjects = list(props.subjects)
        self.role = aws.iam_role.IamRole(
            self,
            "role",
            name=props.name,
            description=props.description,
            max_session_duration=props.session_hours * 3600,
            assume_role_policy=policy_document(
                PolicyStatement(
                    sid="GithubActionsJobs",
                    principals={"Federated": props.provider.arn},
                    actions=("sts:AssumeRoleWithWebIdentity",),
                    conditions={
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                            f"{GITHUB_OIDC_HOST}:sub": subjects[0] if len(subjects) == 1 else subjects,
                        }
                    },
                )
            ),
        )

    @property
    def arn(self) -> str:
        """The role's ARN (what a workflow's ``role-to-assume`` names)."""
        return self.role.arn

    @property
    def name(self) -> str:
        """The role's name."""
        return self.role.name

    @property
    def friendly_unique_id(self) -> str:
        """The role resource's unique id, for naming grants."""
        return self.role.friendly_unique_id

    def grant(self, id: str, *statements: PolicyStatement) -> None:
        """Give the role ``statements`` as one inline policy named ``id`` (its intent, such as ``deploy-dev``)."""
        grant(self, id, self.role, *statements)

    def attach_managed_policy(self, id: str, policy_arn: str) -> None:
        """Attach the managed policy ``policy_arn`` to the role."""
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(self, id, role=self.role.name, policy_arn=policy_arn)
