"""A scale-to-zero GPU training cluster: placement group, launch template, spot-aware Auto Scaling group,
checkpoint-on-termination, interruption notifications and idle auto-shutdown.

Training runs start by raising the Auto Scaling group's desired capacity and end by lowering it again (or
by the idle alarm, or a nightly schedule). Nodes boot the AWS Deep Learning AMI, run
``assets/gpu_training_node.sh`` (rendered by :mod:`constructs.training.user_data`), restore the newest
checkpoint and save one before they terminate. docs/training-cluster.md is the operator's and the job's side.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cdktf import Fn, TerraformLocal, TerraformResourceLifecycle, Token
from constructs import Construct
from constructs.core.bindings import aws
from constructs.core.context import PlatformContext
from constructs.core.errors import ConfigurationError, require
from constructs.core.iam import PolicyStatement, grant, policy_document, service_role
from constructs.core.protection import prevent_destroy
from constructs.core.refs import KmsKeyRef
from constructs.storage.bucket import SecureBucket
from constructs.storage.keys import KEY_USE_ACTIONS, KeyAdministrators, key_policy
from constructs.storage.settings import PlatformKeysSettings
from constructs.training.idle_shutdown import FUNCTION_NAME_SUFFIX, METRICS_NAMESPACE, add_idle_shutdown
from constructs.training.settings import GpuTrainingClusterSettings
from constructs.training.user_data import GpuNodeBootstrapParams, render_gpu_node_user_data

TERMINATION_HOOK_NAME = "checkpoint-on-terminate"
SPOT_EVENT_TYPES = ("EC2 Spot Instance Interruption Warning", "EC2 Instance Rebalance Recommendation")
ASG_METRICS = (
    "GroupDesiredCapacity",
    "GroupInServiceInstances",
    "GroupPendingInstances",
    "GroupTerminatingInstances",
    "GroupTotalInstances",
)
SPOT_RULE_SUFFIX = "-spot-interruptions"
# Names built from the cluster name whose AWS limit binds: EventBridge rule names, Lambda function names and
# IAM role names are at most 64 characters. The spot interruption rule's suffix is the longest, so 45.
MAX_CLUSTER_NAME_LENGTH = 64 - max(len(SPOT_RULE_SUFFIX), len(FUNCTION_NAME_SUFFIX), len("-node"))
_CLUSTER_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@dataclass(frozen=True)
class GpuTrainingClusterProps:
    """Props for :class:`GpuTrainingCluster`.

    name: cluster name (lowercase, at most 45 characters); names the ASG, launch template, roles, function,
      alarm and topic, and the checkpoint prefix ``checkpoints/<name>/``.
    settings: the environment's cluster shape.
    context: the environment (account, region, partition, owner tags for launched instances and volumes,
      which provider default_tags cannot reach).
    vpc_id: VPC of the nodes' security group.
    subnet_id: the ONE private subnet the nodes run in (a cluster placement group lives in one AZ).
    data_key: KMS key encrypting the nodes' root volumes.
    logs_key: KMS key encrypting the function's log group.
    training_data: bucket nodes read the dataset from (under ``settings.data_prefix``).
    checkpoints: bucket nodes read and write checkpoints in (under ``checkpoints/<name>/``).
    artifacts: bucket jobs write outputs to (under ``artifacts/<name>/``).
    keys: the environment's key settings, which the notification topic's own key follows too.
    key_administrators: who administers the notification topic's key: the platform's key administrators.
    """

    name: str
    settings: GpuTrainingClusterSettings
    context: PlatformContext
    vpc_id: str
    subnet_id: str
    data_key: KmsKeyRef
    logs_key: KmsKeyRef
    training_data: SecureBucket
    checkpoints: SecureBucket
    artifacts: SecureBucket
    keys: PlatformKeysSettings
    key_administrators: KeyAdministrators


class GpuTrainingCluster(Construct):
    """GPU nodes in one cluster placement group, scaled from zero on demand and back to zero when idle.

    - Launch template: DLAMI resolved from SSM at launch, encrypted gp3 root volume, IMDSv2 only, the
      bootstrap script as user data, owner tags on instances and volumes, no SSH (SSM Session Manager).
    - Auto Scaling group in one private subnet: mixed instance types of equal GPU count, spot with
      price-capacity-optimized allocation and capacity rebalancing, min 0 / desired 0, and Terraform never
      resets the desired capacity of a running job.
    - A termination lifecycle hook gives nodes time to checkpoint; spot interruption and rebalance events
      are published to the cluster's SNS topic.
    - An idle alarm on GPU utilization invokes a Lambda function that scales the group to zero.
    """

    def __init__(self, scope: Construct, id: str, props: GpuTrainingClusterProps) -> None:
        super().__init__(scope, id)
        where = self.node.path
        require(
            bool(_CLUSTER_NAME.fullmatch(props.name)) and len(props.name) <= MAX_CLUSTER_NAME_LENGTH,
            where,
            "name",
            props.name,
            f"1-{MAX_CLUSTER_NAME_LENGTH} lowercase letters, digits and '-', starting with a letter or digit (the "
            "longest names built from it, such as the spot interruption rule's, must fit their 64-character limits)",
        )
        require(bool(props.subnet_id), where, "subnet_id", props.subnet_id, "one private subnet ID")
        self.props = props
        self.settings = props.settings
        self.context = props.context
        self.name = props.name
        self.asg_name = props.name
        self.asg_arn = self.context.arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{self.asg_name}")
        self.checkpoint_prefix = f"checkpoints/{props.name}/"
        self.artifacts_prefix = f"artifacts/{props.name}/"

        self._notifications()
        self._node_security_group()
        self._node_role()
        self._launch_template()
        self._auto_scaling_group()
        self._interruption_events()
        self.idle_shutdown = add_idle_shutdown(
            self,
            cluster_name=self.name,
            settings=self.settings,
            context=self.context,
            asg_name=self.asg_name,
            asg_arn=self.asg_arn,
            topic=self.topic,
            notifications_key=self.notifications_key,
            logs_key=props.logs_key,
        )

    def _notifications(self) -> None:
        p = self.props
        root = self.context.account_root
        # Built from the name: the key's policy cannot refer to the topic, which refers to the key.
        topic_arn = self.context.arn("sns", f"{p.name}-events")
        # A key of its own: EventBridge can only publish to an encrypted topic whose key policy lets it
        # use the key, and aws/sns cannot be changed; the data key should not serve EventBridge.
        self.notifications_key = aws.kms_key.KmsKey(
            self,
            "notifications-key",
            description=f"GPU training cluster {p.name}: SNS notifications",
            enable_key_rotation=True,
            deletion_window_in_days=p.keys.deletion_window_days,
            lifecycle=prevent_destroy(self.context.protected),
            policy=key_policy(
                self.context,
                p.key_administrators,
                PolicyStatement(
                    sid="AccountUsesKeyThroughSns",
                    principals={"AWS": root},
                    actions=KEY_USE_ACTIONS,
                    resources=("*",),
                    conditions={"StringEquals": {"kms:ViaService": self.context.via_service("sns")}},
                ),
                # The topic policy restricts publishing to this cluster's rule (aws:SourceArn). Here SNS
                # documents aws:SourceArn, aws:SourceAccount and aws:SourceOrgID as not supported for
                # EventBridge-to-encrypted topics (delivery fails with them), so the statement is bound to
                # this topic by the encryption context SNS puts on every data key it asks for.
                PolicyStatement(
                    sid="EventBridgePublishesToTopic",
                    principals={"Service": "events.amazonaws.com"},
                    actions=("kms:Decrypt", "kms:GenerateDataKey*"),
                    resources=("*",),
                    conditions={"StringEquals": {"kms:EncryptionContext:aws:sns:topicArn": topic_arn}},
                ),
            ),
        )
        aws.kms_alias.KmsAlias(
            self,
            "notifications-key-alias",
            name=f"alias/{p.name}-notifications",
            target_key_id=self.notifications_key.key_id,
        )
        self.topic = aws.sns_topic.SnsTopic(
            self, "events-topic", name=f"{p.name}-events", kms_master_key_id=self.notifications_key.arn
        )
        for index, email in enumerate(self.settings.notification_emails):
            aws.sns_topic_subscription.SnsTopicSubscription(
                self, f"events-email-{index}", topic_arn=self.topic.arn, protocol="email", endpoint=email
            )

    def _node_security_group(self) -> None:
        p = self.props
        self.security_group = aws.security_group.SecurityGroup(
            self,
            "nodes-sg",
            name=f"{p.name}-nodes",
            description="GPU training nodes: inbound only from each other, outbound HTTPS and to each other",
            vpc_id=p.vpc_id,
            tags={"Name": f"{p.name}-nodes"},
        )
        sg_id = self.security_group.id
        # NCCL (and EFA) open arbitrary ports between ranks, in both directions.
        aws.vpc_security_group_ingress_rule.VpcSecurityGroupIngressRule(
            self,
            "nodes-ingress-from-cluster",
            security_group_id=sg_id,
            description="All traffic from the cluster's own nodes (NCCL, EFA)",
            ip_protocol="-1",
            referenced_security_group_id=sg_id,
        )
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self,
            "nodes-egress-to-cluster",
            security_group_id=sg_id,
            description="All traffic to the cluster's own nodes (NCCL, EFA)",
            ip_protocol="-1",
            referenced_security_group_id=sg_id,
        )
        aws.vpc_security_group_egress_rule.VpcSecurityGroupEgressRule(
            self,
            "nodes-egress-https",
            security_group_id=sg_id,
            description="HTTPS to AWS APIs, S3, ECR and package repositories",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            cidr_ipv4="0.0.0.0/0",
        )

    def _node_role(self) -> None:
        p = self.props
        s = self.settings
        self.node_role = service_role(
            self,
            "node-role",
            name=f"{p.name}-node",
            services=("ec2.amazonaws.com",),
            description=f"GPU training nodes of {p.name}: data, checkpoints, images, metrics, lifecycle",
        )
        p.training_data.grant_read(self.node_role, prefix=s.data_prefix)
        p.checkpoints.grant_read_write(self.node_role, prefix=self.checkpoint_prefix)
        p.artifacts.grant_read_write(self.node_role, prefix=self.artifacts_prefix)
        repositories = s.ecr_repository_arns or (self.context.arn("ecr", "repository/*"),)
        self.node_policy = grant(
            self,
            "node-operations",
            self.node_role,
            # GetAuthorizationToken has no resource-level permissions; the token alone grants no image.
            PolicyStatement(sid="EcrAuthorizationToken", actions=("ecr:GetAuthorizationToken",), resources=("*",)),
            PolicyStatement(
                sid="EcrPullImages",
                actions=("ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"),
                resources=repositories,
            ),
            # PutMetricData has no resource-level permissions; the namespace condition scopes it.
            PolicyStatement(
                sid="PublishGpuMetrics",
                actions=("cloudwatch:PutMetricData",),
                resources=("*",),
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            ),
            # The CloudWatch agent reads the instance's aws:autoscaling:groupName tag to label metrics with
            # AutoScalingGroupName; DescribeTags has no resource-level permissions.
            PolicyStatement(sid="ReadOwnAutoScalingGroupTag", actions=("ec2:DescribeTags",), resources=("*",)),
            PolicyStatement(
                sid="CompleteTerminationLifecycleAction",
                actions=("autoscaling:CompleteLifecycleAction",),
                resources=(self.asg_arn,),
            ),
            name="node-operations",
        )
        # AWS-managed but narrow: the SSM agent's channel for Session Manager, so nodes need no SSH.
        aws.iam_role_policy_attachment.IamRolePolicyAttachment(
            self,
            "node-ssm-core",
            role=self.node_role.name,
            policy_arn=self.context.managed_policy_arn("AmazonSSMManagedInstanceCore"),
        )
        self.instance_profile = aws.iam_instance_profile.IamInstanceProfile(
            self, "node-profile", name=f"{p.name}-node", role=self.node_role.name
        )

    def _user_data(self) -> TerraformLocal:
        """The bootstrap script as a Terraform local: a plain template string, so Terraform resolves the bucket
        names in its header and unescapes ``$${`` in its body; the launch template base64-encodes the local."""
        p = self.props
        try:
            params = GpuNodeBootstrapParams(
                region=self.context.region,
                cluster_name=p.name,
                data_bucket=p.training_data.name,
                checkpoint_bucket=p.checkpoints.name,
                artifacts_bucket=p.artifacts.name,
                lifecycle_hook_name=TERMINATION_HOOK_NAME,
                asg_name=self.asg_name,
                data_prefix=self.settings.data_prefix,
                metrics_namespace=METRICS_NAMESPACE,
                checkpoint_grace_seconds=self.settings.checkpoint_grace_seconds,
            )
            script = render_gpu_node_user_data(params, escape_body=True)
        except ValueError as error:
            raise ConfigurationError(self.node.path, "user_data", p.name, str(error)) from None
        return TerraformLocal(self, "node-user-data", script)

    def _launch_template(self) -> None:
        p = self.props
        s = self.settings
        lt = aws.launch_template
        self.placement_group = aws.placement_group.PlacementGroup(
            self, "placement-group", name=p.name, strategy="cluster"
        )
        self.user_data = self._user_data()
        launched_tags = {**self.context.owner_tags, "Name": f"{p.name}-node"}
        network: dict[str, Any]
        if s.efa_enabled:
            network = {
                "network_interfaces": [
                    lt.LaunchTemplateNetworkInterfaces(
                        device_index=0,
                        interface_type="efa",
                        security_groups=[self.security_group.id],
                        delete_on_termination="true",
                    )
                ]
            }
        else:
            network = {"vpc_security_group_ids": [self.security_group.id]}
        self.launch_template = lt.LaunchTemplate(
            self,
            "launch-template",
            name=p.name,
            description=f"GPU training node of {p.name}",
            # Resolved by EC2 at each launch: nodes get the newest AMI of the line without a new template
            # version, so an AMI release never triggers an instance refresh of a running job.
            image_id=f"resolve:ssm:{s.ami_ssm_parameter}",
            instance_type=s.instance_types[0],
            update_default_version=True,
            iam_instance_profile=lt.LaunchTemplateIamInstanceProfile(arn=self.instance_profile.arn),
            metadata_options=lt.LaunchTemplateMetadataOptions(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=s.imds_hop_limit,
            ),
            monitoring=lt.LaunchTemplateMonitoring(enabled=True),
            # A node shut down from inside must not linger as a stopped instance with a billed volume.
            instance_initiated_shutdown_behavior="terminate",
            block_device_mappings=[
                lt.LaunchTemplateBlockDeviceMappings(
                    device_name=s.root_device_name,
                    ebs=lt.LaunchTemplateBlockDeviceMappingsEbs(
                        volume_size=s.root_volume_size_gb,
                        volume_type="gp3",
                        encrypted="true",
                        kms_key_id=p.data_key.arn,
                        delete_on_termination="true",
                    ),
                )
            ],
            user_data=Fn.base64encode(self.user_data.as_string),
            tag_specifications=[
                lt.LaunchTemplateTagSpecifications(resource_type=kind, tags=launched_tags)
                for kind in ("instance", "volume", "network-interface")
            ],
            **network,
        )

    def _auto_scaling_group(self) -> None:
        p = self.props
        s = self.settings
        asg = aws.autoscaling_group
        self.asg = asg.AutoscalingGroup(
            self,
            "asg",
            name=self.asg_name,
            min_size=s.min_size,
            max_size=s.max_size,
            desired_capacity=0,
            vpc_zone_identifier=[p.subnet_id],
            placement_group=self.placement_group.id,
            capacity_rebalance=True,
            default_cooldown=300,
            health_check_type="EC2",
            health_check_grace_period=300,
            # Spot capacity may not be there right away; Terraform must not wait for instances.
            wait_for_capacity_timeout="0",
            enabled_metrics=list(ASG_METRICS),
            metrics_granularity="1Minute",
            mixed_instances_policy=asg.AutoscalingGroupMixedInstancesPolicy(
                instances_distribution=asg.AutoscalingGroupMixedInstancesPolicyInstancesDistribution(
                    on_demand_allocation_strategy="prioritized",
                    on_demand_base_capacity=s.on_demand_base_capacity,
                    on_demand_percentage_above_base_capacity=s.on_demand_percentage_above_base,
                    spot_allocation_strategy="price-capacity-optimized",
                ),
                launch_template=asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplate(
                    launch_template_specification=asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplateLaunchTemplateSpecification(
                        launch_template_id=self.launch_template.id,
                        version=Token.as_string(self.launch_template.latest_version),
                    ),
                    override=[
                        asg.AutoscalingGroupMixedInstancesPolicyLaunchTemplateOverride(instance_type=t)
                        for t in s.instance_types
                    ],
                ),
            ),
            # Training nodes are not a serving fleet: replace them all at once; the termination hook
            # still lets each one checkpoint first.
            instance_refresh=asg.AutoscalingGroupInstanceRefresh(
                strategy="Rolling",
                preferences=asg.AutoscalingGroupInstanceRefreshPreferences(
                    min_healthy_percentage=0, skip_matching=True
                ),
            ),
            tag=[
                asg.AutoscalingGroupTag(key=key, value=value, propagate_at_launch=True)
                for key, value in {**self.context.owner_tags, "Name": f"{p.name}-node"}.items()
            ],
            # Desired capacity belongs to whoever runs jobs (and to the idle function): an apply during a
            # run must not scale it back to the configured 0.
            lifecycle=TerraformResourceLifecycle(ignore_changes=["desired_capacity"]),
        )
        self.termination_hook = aws.autoscaling_lifecycle_hook.AutoscalingLifecycleHook(
            self,
            "termination-hook",
            name=TERMINATION_HOOK_NAME,
            autoscaling_group_name=self.asg.name,
            lifecycle_transition="autoscaling:EC2_INSTANCE_TERMINATING",
            heartbeat_timeout=s.termination_heartbeat_seconds,
            default_result="CONTINUE",
        )
        self.schedule = None
        if s.scale_to_zero_cron is not None:
            # -1 leaves min and max alone; the provider's default of 0 would also zero max_size.
            self.schedule = aws.autoscaling_schedule.AutoscalingSchedule(
                self,
                "nightly-scale-to-zero",
                scheduled_action_name=f"{p.name}-scale-to-zero",
                autoscaling_group_name=self.asg.name,
                recurrence=s.scale_to_zero_cron,
                time_zone=s.schedule_time_zone,
                desired_capacity=0,
                min_size=-1,
                max_size=-1,
            )

    def _interruption_events(self) -> None:
        p = self.props
        # Spot events name only the instance, so the rule covers the account's spot instances in the region.
        self.interruption_rule = aws.cloudwatch_event_rule.CloudwatchEventRule(
            self,
            "spot-interruption-rule",
            name=f"{p.name}{SPOT_RULE_SUFFIX}",
            description="Spot interruption warnings and rebalance recommendations, for operators",
            event_pattern=json.dumps({"source": ["aws.ec2"], "detail-type": list(SPOT_EVENT_TYPES)}),
        )
        aws.cloudwatch_event_target.CloudwatchEventTarget(
            self,
            "spot-interruption-to-topic",
            rule=self.interruption_rule.name,
            target_id="events-topic",
            arn=self.topic.arn,
            input_transformer=aws.cloudwatch_event_target.CloudwatchEventTargetInputTransformer(
                input_paths={
                    "kind": "$.detail-type",
                    "instance": "$.detail.instance-id",
                    "time": "$.time",
                    "region": "$.region",
                },
                input_template=(
                    f'"<kind>: instance <instance> in <region> at <time>. A node of {p.name} saves a checkpoint '
                    f'to {p.checkpoints.s3_uri(self.checkpoint_prefix)} before it stops."'
                ),
            ),
        )
        aws.sns_topic_policy.SnsTopicPolicy(
            self,
            "events-topic-policy",
            arn=self.topic.arn,
            policy=policy_document(
                PolicyStatement(
                    sid="InterruptionRulePublishes",
                    principals={"Service": "events.amazonaws.com"},
                    actions=("sns:Publish",),
                    resources=(self.topic.arn,),
                    conditions={"ArnEquals": {"aws:SourceArn": self.interruption_rule.arn}},
                )
            ),
        )
