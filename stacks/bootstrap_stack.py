"""The account-level bootstrap stack: deployed once by hand, before the environments and their workflows.

It holds what the environment stacks cannot manage themselves: the Terraform state bucket (their state lives in
it), the GitHub OIDC provider with the roles the workflows assume (.github/workflows, docs/gitops.md), the
account-wide cost allocation (the owner tags activated, the team cost category the team budgets filter on), and the
registries' image replication to the secondary regions of environments with failover (one configuration per
registry: constructs/resilience/image_replication.py). Its own state starts local and moves into the bucket it
creates (docs/state-bootstrap.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cdktf import (
    TerraformOutput,
    TerraformProvider,
    TerraformStack,
    TerraformVariable,
    TerraformVariableValidationConfig,
)
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.checks import suppress
from constructs.core.context import PlatformContext
from constructs.core.errors import ConfigurationError
from constructs.cost.allocation import CostAllocation
from constructs.gitops.github import (
    GithubActionsRole,
    GithubActionsRoleProps,
    GithubOidcProvider,
    branch_subject,
    environment_subject,
    pull_request_subject,
)
from constructs.gitops.permissions import READ_ONLY_POLICY, Account, DeployTarget, deploy_statements, plan_denials
from constructs.gitops.settings import GITHUB_REPOSITORY_PATTERN
from constructs.gitops.state import StateStore, StateStoreProps
from constructs.policy.pack import security_checks
from constructs.resilience.api_logging import ApiGatewayLogging, ApiGatewayLoggingProps
from constructs.resilience.image_replication import ImageReplication, ImageReplicationProps, ReplicatedRepositories
from constructs.storage.settings import RESERVED_BUCKET_PREFIXES, RESERVED_BUCKET_SUFFIXES

from stacks.account import SHARED_ENVIRONMENT_TAG, BootstrapConfig
from stacks.backend import configure_backend, state_key
from stacks.deployment import ENV_PREFIX, DeploymentSettings
from stacks.emulator import iam_service_prefixes
from stacks.environment import EnvironmentConfig

BOOTSTRAP_STACK = "bootstrap"
"""The stack's name: ``cdktf deploy bootstrap``; its state key is ``ml-platform/bootstrap/terraform.tfstate``."""

# The state bucket's access logs go to '<name>-logs', which must be a bucket name too (63 characters at most).
_MAX_STATE_BUCKET_LENGTH = 58


def _expression(text: str) -> str:
    # Terraform JSON reads a string as a template: an expression must be interpolated to be evaluated.
    return "${" + text + "}"


def _check_state_bucket(name: str | None, prefixes: list[str]) -> None:
    """The rules of the bucket variable, applied at synth time to ``ML_PLATFORM_STATE_BUCKET`` when it is set."""
    if name is None:
        return
    variable = ENV_PREFIX + "STATE_BUCKET"
    if len(name) > _MAX_STATE_BUCKET_LENGTH:
        raise ConfigurationError(
            "deployment", variable, name, f"at most {_MAX_STATE_BUCKET_LENGTH} characters (its log bucket adds '-logs')"
        )
    inside = [prefix for prefix in prefixes if name.startswith(prefix)]
    if inside:
        raise ConfigurationError(
            "deployment",
            variable,
            name,
            f"a name that does not start with {inside[0]!r}: that environment's deploy role owns every bucket so named",
        )


def _variables(stack: TerraformStack, deployment: DeploymentSettings, prefixes: list[str]) -> tuple[str, str]:
    """The repository and the bucket name: from ``ML_PLATFORM_*`` when set, else asked for at plan time.

    prefixes: the environments' bucket-name prefixes (``mlp-dev-``), which the state bucket may not start with.
    """
    _check_state_bucket(deployment.state_bucket, prefixes)
    repository = TerraformVariable(
        stack,
        "github_repository",
        type="string",
        default=deployment.github_repository,
        description="GitHub repository (owner/name) whose workflows plan and deploy (ML_PLATFORM_GITHUB_REPOSITORY)",
        validation=[
            TerraformVariableValidationConfig(
                condition=_expression(f'can(regex("^{GITHUB_REPOSITORY_PATTERN}$", var.github_repository))'),
                error_message="github_repository must be a GitHub repository as owner/name, such as acme/ml-platform.",
            )
        ],
    )
    bucket = TerraformVariable(
        stack,
        "state_bucket",
        type="string",
        default=deployment.state_bucket,
        description="Name of the Terraform state bucket to create (ML_PLATFORM_STATE_BUCKET)",
        validation=[
            TerraformVariableValidationConfig(
                condition=_expression(
                    " && ".join(
                        [
                            f"length(var.state_bucket) >= 3 && length(var.state_bucket) <= {_MAX_STATE_BUCKET_LENGTH}",
                            'can(regex("^[a-z0-9][a-z0-9.-]*[a-z0-9]$", var.state_bucket))',
                            '!strcontains(var.state_bucket, "..")',
                            '!can(regex("^[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+$", var.state_bucket))',
                            *(f'!startswith(var.state_bucket, "{p}")' for p in (*RESERVED_BUCKET_PREFIXES, *prefixes)),
                            *(f'!endswith(var.state_bucket, "{suffix}")' for suffix in RESERVED_BUCKET_SUFFIXES),
                        ]
                    )
                ),
                error_message=(
                    f"state_bucket must be an S3 bucket name of at most {_MAX_STATE_BUCKET_LENGTH} characters "
                    "(its access-log bucket adds '-logs'): lowercase letters, digits, '.' and '-', not an IP "
                    "address, not starting with an environment's resource prefix (its deploy role owns those)."
                ),
            )
        ],
    )
    return repository.string_value, bucket.string_value


class BootstrapStack(TerraformStack):
    """The account's state store and GitHub roles: a read-only plan role and one deploy role per environment.

    Outputs what the repository's GitHub settings need (docs/gitops.md, "One-time set-up"): the state bucket,
    the plan role's ARN (a repository variable) and each deploy role's ARN (a variable of its GitHub Environment).
    """

    def __init__(
        self,
        scope: Construct,
        config: BootstrapConfig,
        environments: Mapping[str, EnvironmentConfig],
        deployment: DeploymentSettings,
    ) -> None:
        super().__init__(scope, BOOTSTRAP_STACK)
        from stacks.ml_platform_stack import emulator_arguments

        emulator = emulator_arguments(deployment.emulator_endpoint) if deployment.emulator_endpoint else {}
        self.provider = aws.provider.AwsProvider(
            self,
            "aws",
            region=deployment.state_region,
            default_tags=[aws.provider.AwsProviderDefaultTags(tags=config.resource_tags)],
            **emulator,
        )
        configure_backend(self, BOOTSTRAP_STACK, deployment)
        repository, bucket_name = _variables(self, deployment, [f"{c.name_prefix}-" for c in environments.values()])
        identity = aws.data_aws_caller_identity.DataAwsCallerIdentity(self, "account")
        deployer = aws.data_aws_iam_session_context.DataAwsIamSessionContext(self, "deployer", arn=identity.arn)
        partition = aws.data_aws_partition.DataAwsPartition(self, "partition").partition
        context = PlatformContext(
            environment=SHARED_ENVIRONMENT_TAG,
            name_prefix=config.resource_prefix,
            account_id=identity.account_id,
            region=deployment.state_region,
            partition=partition,
            owner_tags=config.resource_tags,
            deployer_arn=deployer.issuer_arn,
            protected=True,
        )
        self.context = context
        account = Account(identity.account_id, partition)
        github = config.github
        oidc = GithubOidcProvider(self, "github-oidc")
        self.plan_role = GithubActionsRole(
            self,
            "plan-role",
            GithubActionsRoleProps(
                name=f"{config.resource_prefix}-github-plan",
                description="Read-only Terraform plans of every environment for pull requests and drift checks",
                provider=oidc,
                subjects=(pull_request_subject(repository), branch_subject(repository, github.main_branch)),
                session_hours=github.session_hours,
            ),
        )
        self.deploy_roles = {
            env: GithubActionsRole(
                self,
                f"deploy-role-{env}",
                GithubActionsRoleProps(
                    name=f"{config.resource_prefix}-github-deploy-{env}",
                    description=f"Terraform applies of the {env} environment from its GitHub Environment",
                    provider=oidc,
                    subjects=(environment_subject(repository, env),),
                    session_hours=github.session_hours,
                ),
            )
            for env in environments
        }
        roles = (self.plan_role, *self.deploy_roles.values())
        self.state = StateStore(
            self,
            "state",
            StateStoreProps(context=context, bucket_name=bucket_name, key_users=roles, settings=config.state),
        )
        self._grant_plans(environments)
        self._grant_deploys(environments, account, oidc, roles, iam_service_prefixes())
        self.cost_allocation = CostAllocation(self, "cost-allocation") if config.cost.activate_tags else None
        self.api_logging = self._api_logging(config, environments, deployment, emulator)
        self.image_replication = self._replicate_images(environments, deployment, identity.account_id, emulator)
        self._outputs(oidc)
        self.security_checks = security_checks(gpu_enabled=False, protected=True)
        self.security_checks.apply_to(self)

    def _api_logging(
        self,
        config: BootstrapConfig,
        environments: Mapping[str, EnvironmentConfig],
        deployment: DeploymentSettings,
        emulator: Mapping[str, Any],
    ) -> ApiGatewayLogging | None:
        """API Gateway's logging role in every region an environment's serving front runs in (both of its regions)."""
        regions = sorted(
            {r for c in environments.values() if c.failover is not None for r in (c.region, c.secondary_region) if r}
        )
        if not regions:
            return None
        providers: dict[str, TerraformProvider] = {
            region: self.provider
            if region == deployment.state_region
            else aws.provider.AwsProvider(
                self,
                f"aws-{region}",
                alias=region,
                region=region,
                default_tags=[aws.provider.AwsProviderDefaultTags(tags=config.resource_tags)],
                **emulator,
            )
            for region in regions
        }
        return ApiGatewayLogging(self, "api-logging", ApiGatewayLoggingProps(context=self.context, providers=providers))

    def _grant_plans(self, environments: Mapping[str, EnvironmentConfig]) -> None:
        keys = [state_key(env) for env in environments]
        self.plan_role.attach_managed_policy("read-only", self.context.managed_policy_arn(READ_ONLY_POLICY))
        self.state.grant_read(self.plan_role, keys)
        self.plan_role.grant("no-data-reads", *plan_denials(state_objects=self.state.state_objects(keys)))

    def _grant_deploys(
        self,
        environments: Mapping[str, EnvironmentConfig],
        account: Account,
        oidc: GithubOidcProvider,
        roles: tuple[GithubActionsRole, ...],
        services: tuple[str, ...],
    ) -> None:
        for env, role in self.deploy_roles.items():
            config = environments[env]
            self.state.grant_read_write(role, state_key(env))
            target = DeployTarget(
                environment=env,
                region=config.region,
                name_prefix=config.name_prefix,
                secondary_region=config.secondary_region,
            )
            suppress(
                role,
                "IAM-1",
                "a deploy role creates, changes and deletes every resource type of the platform's services; it is "
                "bounded by its region, by its environment's name prefix for S3 and IAM, and by explicit denials",
            )
            role.grant(
                f"deploy-{env}",
                *deploy_statements(
                    target,
                    account,
                    regional_services=services,
                    off_limits_roles=[r.arn for r in roles],
                    off_limits_identity_provider=oidc.arn,
                    off_limits_buckets=[self.state.bucket.arn, self.state.access_logs.arn],
                    state_key_arn=self.state.key.arn,
                ),
            )

    def _replicate_images(
        self,
        environments: Mapping[str, EnvironmentConfig],
        deployment: DeploymentSettings,
        account_id: str,
        emulator: dict[str, Any],
    ) -> dict[str, ImageReplication]:
        """The serving images of every environment with failover, copied to its secondary region on push.

        A registry has one replication configuration, so it is the account's, not an environment's: one per primary
        region, through an aliased provider where that is not the state's region.
        """
        by_region: dict[str, list[ReplicatedRepositories]] = {}
        for config in environments.values():
            if config.failover is not None and config.secondary_region is not None:
                by_region.setdefault(config.region, []).append(
                    ReplicatedRepositories(f"{config.name_prefix}/", config.secondary_region)
                )
        replications: dict[str, ImageReplication] = {}
        for region, repositories in sorted(by_region.items()):
            provider: TerraformProvider | None = None
            if region != deployment.state_region:
                # One provider per region for every account-level setting there (the API logging role's too).
                existing = self.node.try_find_child(f"aws-{region}")
                provider = (
                    existing
                    if isinstance(existing, TerraformProvider)
                    else aws.provider.AwsProvider(
                        self,
                        f"aws-{region}",
                        alias=region,
                        region=region,
                        default_tags=[aws.provider.AwsProviderDefaultTags(tags=self.context.owner_tags)],
                        **emulator,
                    )
                )
            replications[region] = ImageReplication(
                self,
                f"image-replication-{region}",
                ImageReplicationProps(
                    registry_id=account_id, source_region=region, repositories=repositories, provider=provider
                ),
            )
        return replications

    def _outputs(self, oidc: GithubOidcProvider) -> None:
        TerraformOutput(self, "state_bucket_name", value=self.state.bucket.name, description="ML_PLATFORM_STATE_BUCKET")
        TerraformOutput(self, "plan_role_arn", value=self.plan_role.arn, description="AWS_PLAN_ROLE_ARN (repository)")
        TerraformOutput(
            self,
            "deploy_role_arns",
            value={env: role.arn for env, role in self.deploy_roles.items()},
            description="AWS_DEPLOY_ROLE_ARN of each GitHub Environment",
        )
        TerraformOutput(self, "github_oidc_provider_arn", value=oidc.arn)
