"""API Gateway's account-level logging role, in every region the serving fronts run in (bootstrap stack)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from cdktf import TerraformProvider
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import service_role

# AWS's managed policy for exactly this role: create log groups and streams, put events, read their settings.
PUSH_TO_LOGS_POLICY = "service-role/AmazonAPIGatewayPushToCloudWatchLogs"


@dataclass(frozen=True)
class ApiGatewayLoggingProps:
    """Props for :class:`ApiGatewayLogging`.

    context: the account (bootstrap) context: it names the role ``<prefix>-apigateway-logs``.
    providers: the AWS provider of each region whose API Gateway gets the role, by region.
    """

    context: PlatformContext
    providers: Mapping[str, TerraformProvider]


class ApiGatewayLogging(Construct):
    """The role API Gateway writes its logs with, set in each region's API Gateway account settings.

    A stage can only log (access or execution logs) once its region's account settings name a CloudWatch Logs role,
    and that setting is one per account and region: so it lives here, in the account-level bootstrap stack, for
    every region an environment's serving front runs in (``failover``: its region and its secondary region).
    """

    def __init__(self, scope: Construct, id: str, props: ApiGatewayLoggingProps) -> None:
        super().__init__(scope, id)
        c = props.context
        # Only API Gateway of this account may assume it (confused deputy).
        self.role = service_role(
            self,
            "role",
            name=f"{c.name_prefix}-apigateway-logs",
            services=("apigateway.amazonaws.com",),
            description="API Gateway writes the serving fronts' access and execution logs to CloudWatch Logs",
            trust_conditions={"StringEquals": {"aws:SourceAccount": c.account_id}},
        )
        attachment = aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self, "push-to-logs", role=self.role.name, policy_arn=c.managed_policy_arn(PUSH_TO_LOGS_POLICY)
        )
        self.settings = {
            region: aws.api_gateway_account.ApiGatewayAccount(
                self,
                f"account-{region}",
                provider=provider,
                cloudwatch_role_arn=self.role.arn,
                # API Gateway checks the role can be assumed and holds the policy when the setting is made.
                depends_on=[attachment],
            )
            for region, provider in sorted(props.providers.items())
        }
