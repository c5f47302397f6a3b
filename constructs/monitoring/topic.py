"""The environment's alert topic: encrypted with its own key, published to by the account's alarms only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, policy_document
from constructs.core.protection import prevent_destroy
from constructs.monitoring.settings import MonitoringSettings
from constructs.storage.keys import KeyAdministrators, key_policy
from constructs.storage.settings import PlatformKeysSettings

CLOUDWATCH_SERVICE = "cloudwatch.amazonaws.com"
# SNS retries a confirmation for an HTTPS endpoint; an endpoint that has not confirmed by then never will.
CONFIRMATION_TIMEOUT_MINUTES = 5


@dataclass(frozen=True)
class AlertTopicProps:
    """Props for :class:`AlertTopic`.

    context: the environment: the topic is ``<name prefix>-alerts``, its key ``alias/<name prefix>-alerts``, and
      only the alarms of its account and region may publish.
    settings: the environment's monitoring settings: the subscribers.
    key_administrators: who administers the topic's key (the platform's key administrators).
    keys: the environment's key settings, which the topic's key follows (deletion window).
    """

    context: PlatformContext
    settings: MonitoringSettings
    key_administrators: KeyAdministrators
    keys: PlatformKeysSettings


class AlertTopic(Construct):
    """An SNS topic that the account's CloudWatch alarms notify, encrypted with a key of its own.

    CloudWatch publishes to an SSE-KMS topic only when the key policy lets ``cloudwatch.amazonaws.com`` use the
    key (the AWS managed ``aws/sns`` key's policy cannot be changed), so the topic has its own customer managed
    key. Both the key and the topic admit CloudWatch only for alarms of this account and region
    (``aws:SourceAccount`` and ``aws:SourceArn``), against the confused-deputy problem. Each e-mail address and
    HTTPS endpoint of the settings is subscribed.
    """

    def __init__(self, scope: Construct, id: str, props: AlertTopicProps) -> None:
        super().__init__(scope, id)
        self.props = props
        c = props.context
        self.name = f"{c.name_prefix}-alerts"
        from_own_alarms = {
            "StringEquals": {"aws:SourceAccount": c.account_id},
            "ArnLike": {"aws:SourceArn": c.arn("cloudwatch", "alarm:*")},
        }
        self.key = aws.kms_key.KmsKey(
            self,
            "key",
            description=f"{c.name_prefix}: monitoring alert notifications",
            enable_key_rotation=True,
            deletion_window_in_days=props.keys.deletion_window_days,
            lifecycle=prevent_destroy(c.protected),
            policy=key_policy(
                c,
                props.key_administrators,
                PolicyStatement(
                    sid="CloudWatchAlarmsPublishToTopic",
                    principals={"Service": CLOUDWATCH_SERVICE},
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    resources=("*",),
                    conditions=from_own_alarms,
                ),
            ),
        )
        aws.kms_alias.KmsAlias(self, "key-alias", name=f"alias/{self.name}", target_key_id=self.key.key_id)
        self.topic = aws.sns_topic.SnsTopic(self, "topic", name=self.name, kms_master_key_id=self.key.arn)
        self.policy = aws.sns_topic_policy.SnsTopicPolicy(
            self,
            "policy",
            arn=self.topic.arn,
            policy=policy_document(
                PolicyStatement(
                    sid="CloudWatchAlarmsPublish",
                    principals={"Service": CLOUDWATCH_SERVICE},
                    actions=("sns:Publish",),
                    resources=(self.topic.arn,),
                    conditions=from_own_alarms,
                )
            ),
        )
        self.subscriptions: list[Any] = [
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=address
            )
            for index, address in enumerate(props.settings.alert_emails)
        ]
        self.subscriptions.extend(
            aws.sns_topic_subscription.SnsTopicSubscription(
                self,
                f"https-{index}",
                topic_arn=self.topic.arn,
                protocol="https",
                endpoint=endpoint,
                # Terraform waits for the endpoint's confirmation: one that cannot confirm fails the deploy
                # instead of silently never receiving an alert.
                endpoint_auto_confirms=True,
                confirmation_timeout_in_minutes=CONFIRMATION_TIMEOUT_MINUTES,
            )
            for index, endpoint in enumerate(props.settings.alert_https_endpoints)
        )

    @property
    def arn(self) -> str:
        """ARN of the topic, for alarm and OK actions."""
        return self.topic.arn

    @property
    def ready(self) -> list[Any]:
        """What an alarm waits for so that its first notification is delivered: the topic policy and the key."""
        return [self.policy, self.key]
