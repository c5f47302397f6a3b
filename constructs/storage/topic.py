"""An SNS topic one AWS service publishes to, encrypted with a key of its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.iam import PolicyStatement, policy_document
from constructs.core.protection import prevent_destroy
from constructs.storage.keys import KeyAdministrators, key_policy
from constructs.storage.settings import PlatformKeysSettings

# SNS retries a confirmation for an HTTPS endpoint; an endpoint that has not confirmed by then never will.
CONFIRMATION_TIMEOUT_MINUTES = 5


@dataclass(frozen=True)
class EncryptedTopicProps:
    """Props for :class:`EncryptedTopic`.

    context: the environment (protection of the key, the account of the conditions).
    name: the topic's name, and its key's alias (``alias/<name>``).
    description: the key's description.
    publisher: the AWS service principal that publishes (``budgets.amazonaws.com``).
    publisher_sid: names the two statements that admit it (``<sid>PublishToTopic`` on the key, ``<sid>Publish`` on
      the topic).
    source_arn: the ``aws:SourceArn`` pattern of the publisher's resources of this account (its budgets, alarms).
    key_administrators: who administers the key (the platform's key administrators).
    keys: the environment's key settings (deletion window), which the key follows.
    emails: addresses subscribed with protocol ``email``.
    https_endpoints: endpoints subscribed with protocol ``https``; Terraform waits for their confirmation.
    """

    context: PlatformContext
    name: str
    description: str
    publisher: str
    publisher_sid: str
    source_arn: str
    key_administrators: KeyAdministrators
    keys: PlatformKeysSettings
    emails: Sequence[str] = ()
    https_endpoints: Sequence[str] = ()


class EncryptedTopic(Construct):
    """An SNS topic that one AWS service publishes to, encrypted with a customer managed key of its own.

    A service publishes to an SSE-KMS topic only when the key policy lets it use the key, and the AWS managed
    ``aws/sns`` key's policy cannot be changed, so the topic has its own key. Both the key and the topic admit the
    publisher only for this account's resources (``aws:SourceAccount`` and ``aws:SourceArn``), against the
    confused-deputy problem. Each e-mail address and HTTPS endpoint is subscribed.
    """

    def __init__(self, scope: Construct, id: str, props: EncryptedTopicProps) -> None:
        super().__init__(scope, id)
        c = props.context
        from_own_resources: dict[str, dict[str, Any]] = {
            "StringEquals": {"aws:SourceAccount": c.account_id},
            "ArnLike": {"aws:SourceArn": props.source_arn},
        }
        self.key = aws.kms_key.KmsKey(
            self,
            "key",
            description=props.description,
            enable_key_rotation=True,
            deletion_window_in_days=props.keys.deletion_window_days,
            lifecycle=prevent_destroy(c.protected),
            policy=key_policy(
                c,
                props.key_administrators,
                PolicyStatement(
                    sid=f"{props.publisher_sid}PublishToTopic",
                    principals={"Service": props.publisher},
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    resources=("*",),
                    conditions=from_own_resources,
                ),
            ),
        )
        aws.kms_alias.KmsAlias(self, "key-alias", name=f"alias/{props.name}", target_key_id=self.key.key_id)
        self.topic = aws.sns_topic.SnsTopic(self, "topic", name=props.name, kms_master_key_id=self.key.arn)
        self.policy = aws.sns_topic_policy.SnsTopicPolicy(
            self,
            "policy",
            arn=self.topic.arn,
            policy=policy_document(
                PolicyStatement(
                    sid=f"{props.publisher_sid}Publish",
                    principals={"Service": props.publisher},
                    actions=("sns:Publish",),
                    resources=(self.topic.arn,),
                    conditions=from_own_resources,
                )
            ),
        )
        self.subscriptions: list[Any] = [
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=address
            )
            for index, address in enumerate(props.emails)
        ]
        self.subscriptions.extend(
            aws.sns_topic_subscription.SnsTopicSubscription(
                self,
                f"https-{index}",
                topic_arn=self.topic.arn,
                protocol="https",
                endpoint=endpoint,
                # Terraform waits for the endpoint's confirmation: one that cannot confirm fails the deploy
                # instead of silently never receiving a notification.
                endpoint_auto_confirms=True,
                confirmation_timeout_in_minutes=CONFIRMATION_TIMEOUT_MINUTES,
            )
            for index, endpoint in enumerate(props.https_endpoints)
        )

    @property
    def arn(self) -> str:
        """ARN of the topic."""
        return self.topic.arn

    @property
    def ready(self) -> list[Any]:
        """What a publisher's resource waits for so that its first notification is delivered: the policy and key."""
        return [self.policy, self.key]
