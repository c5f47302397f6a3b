"""The environment matrix: everything that differs between dev, staging and prod, in one place.

This is the file an operator edits. Each environment is an :class:`~stacks.environment.EnvironmentConfig`
whose sections are the feature constructs' own settings models, so a value here is exactly what the feature
receives; unset fields keep the defaults documented on each settings class. Every value is validated when
this module is imported (field limits) and when the matrix is loaded (rules across sections and
environments); ``make check-config`` does both without synthesizing.

Values can also be overridden without editing this file, through ``ML_PLATFORM_OVERRIDES`` (inline JSON) or
``ML_PLATFORM_OVERRIDES_FILE`` (a JSON file), keyed by environment and dotted field path (see
:mod:`stacks.overrides`)::

    ML_PLATFORM_OVERRIDES='{"staging": {"network.flow_log_retention_days": 60, "budget.monthly_limit_usd": 900}}'
"""

from __future__ import annotations

from collections.abc import Mapping

from constructs.cost.settings import BudgetSettings
from constructs.eks.settings import EksClusterSettings, EksGpuNodeGroupSettings, EksNodeGroupSettings, OffHours
from constructs.kubeflow.settings import GpuNodeQuota, KubeflowSettings, NodeQuota, TeamSettings
from constructs.mlflow.settings import MlflowDatabaseSettings, MlflowIngressSettings, MlflowSettings
from constructs.monitoring.settings import AlarmThresholds, MonitoringSettings
from constructs.network.settings import NetworkSettings
from constructs.resilience.settings import ServingFailoverSettings
from constructs.sagemaker.idle_settings import EndpointIdleSettings
from constructs.sagemaker.settings import (
    DEFAULT_CONTAINER_ENVIRONMENT,
    InstanceVariantSettings,
    SageMakerEndpointSettings,
    SageMakerTrainingSettings,
    ServerlessVariantSettings,
)
from constructs.storage.settings import PlatformKeysSettings, StorageSettings
from constructs.training.settings import GpuTrainingClusterSettings

from stacks.account import BootstrapConfig
from stacks.environment import EnvironmentConfig, OwnerTags

_OWNERS = OwnerTags(team="ml-platform", cost_center="cc-4711", project="mlp")
_ALERTS = ("ml-platform-alerts@example.com",)
# The public Route53 hosted zone of the platform's DNS names (it must exist in the account): replace it with yours.
_DNS_ZONE = "ml.example.com"

MATRIX: Mapping[str, EnvironmentConfig] = {
    # Dev: cheapest shape that still exercises every code path; no GPUs; throw-away data.
    "dev": EnvironmentConfig(
        name="dev",
        region="us-east-1",
        gpu_enabled=False,
        multi_az=False,
        protected=False,
        resource_prefix="mlp",
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.10.0.0/16",
            # Zones by ID (the same physical zone in every account). use1-az3 cannot host EKS; before changing
            # these, check the instance types of this environment are offered in each zone:
            # aws ec2 describe-instance-type-offerings --location-type availability-zone-id --region us-east-1
            zone_ids=("use1-az1", "use1-az2"),
            nat_gateways="single",
            interface_endpoints=(),
            flow_log_retention_days=14,
        ),
        keys=PlatformKeysSettings(deletion_window_days=7),
        storage=StorageSettings(
            force_destroy=True,
            prevent_destroy=False,
            checkpoint_expiry_days=7,
            backup_retention_days=31,
            access_logging=False,
        ),
        budget=BudgetSettings(monthly_limit_usd=500, alert_emails=_ALERTS),
        # A dashboard and Container Insights, no alarms: dev's capacity comes and goes on purpose and its outages
        # page no one. Alarm changes are rehearsed in staging, which has production's alarms.
        monitoring=MonitoringSettings(alarms=False, performance_log_retention_days=3),
        # A small CPU-only cluster. Its API endpoint is private as everywhere; an operator may open it
        # to named CIDRs with an override of eks.public_access_cidrs (never in a protected environment).
        eks=EksClusterSettings(
            log_retention_days=14,
            support_type="STANDARD",
            storage_reclaim_policy="Delete",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("t3.large", "m6i.large"),
                min_size=1,
                max_size=3,
                desired_size=1,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=None,
        ),
        # No GPUs in dev: training code is exercised in staging.
        training=None,
        # Serverless serving: nothing runs (or bills) between requests; cold starts are fine in dev.
        # No VPC, network isolation or data capture: Serverless Inference supports none of them.
        sagemaker=SageMakerEndpointSettings(
            variants=(ServerlessVariantSettings(memory_size_in_mb=2048, max_concurrency=5),),
            # One model-server worker per serverless container, as SageMaker recommends.
            container_environment=(*DEFAULT_CONTAINER_ENVIRONMENT, ("SAGEMAKER_MODEL_SERVER_WORKERS", "1")),
            network_isolation=False,
            vpc=False,
            data_capture_percentage=None,
            min_instance_count=1,
            max_instance_count=1,
            log_retention_days=14,
            image_keep_count=10,
            untagged_image_expiry_days=3,
            image_force_delete=True,
        ),
        # CPU training on spot capacity: exercises the job specification without GPU cost.
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.m5.xlarge",
            volume_size_gb=50,
            max_runtime_seconds=4 * 3600,
            max_wait_seconds=8 * 3600,
            vpc=False,
        ),
        # The smallest database, no standby, a day of backups, gone with the environment. No load balancer:
        # `kubectl port-forward` reaches the tracking server (README, "MLflow").
        mlflow=MlflowSettings(
            database=MlflowDatabaseSettings(
                instance_class="db.t4g.micro",
                allocated_storage_gib=20,
                multi_az=False,
                backup_retention_days=1,
                deletion_protection=False,
                final_snapshot=False,
                performance_insights=False,
                monitoring_interval_seconds=0,
                log_retention_days=14,
            ),
            replicas=1,
            ingress=None,
        ),
        # Trainer and Kueue as in staging, on CPU only: a team rehearses a TrainJob on the CPU nodes.
        kubeflow=KubeflowSettings(
            teams=(
                TeamSettings(name="vision", cpu_nodes=NodeQuota(cpu=2, memory_gib=6), storage_gib=50),
                TeamSettings(name="nlp", cpu_nodes=NodeQuota(cpu=2, memory_gib=6), storage_gib=50),
            ),
        ),
        # Models served on EKS: none until one is declared (examples/model-serving.json shows how).
        serving=(),
    ),
    # Staging: production's configuration at a smaller scale, so a change is proven before prod.
    "staging": EnvironmentConfig(
        name="staging",
        region="us-east-1",
        # Production's recovery rehearsed: the database's backups replicated to a second region.
        secondary_region="us-west-2",
        gpu_enabled=True,
        multi_az=True,
        protected=False,
        resource_prefix="mlp",
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.20.0.0/16",
            # The training cluster's placement group lives in the first zone (see dev for choosing zones).
            zone_ids=("use1-az1", "use1-az2", "use1-az4"),
            nat_gateways="per_az",
            interface_endpoints=("ecr.api", "ecr.dkr", "sts", "logs", "sagemaker.api", "sagemaker.runtime"),
            flow_log_retention_days=30,
        ),
        keys=PlatformKeysSettings(deletion_window_days=14),
        storage=StorageSettings(
            force_destroy=False,
            prevent_destroy=False,
            checkpoint_expiry_days=14,
            backup_retention_days=60,
            access_logging=True,
        ),
        budget=BudgetSettings(monthly_limit_usd=3000, alert_emails=_ALERTS),
        # Production's alarms with looser thresholds: a smaller database, spot GPUs that come and go, and an
        # endpoint tested under load on purpose. An HTTPS integration URL is a secret: add it with an override
        # file kept out of git (docs/monitoring.md), never here.
        monitoring=MonitoringSettings(
            alert_emails=_ALERTS,
            thresholds=AlarmThresholds(
                sagemaker_5xx_percent=10,
                sagemaker_latency_p99_ms=3000,
                rds_cpu_percent=90,
                # Storage autoscaling grows the 20 GiB volume at 10 % free; below 1 GiB it did not keep up.
                rds_free_storage_gib=1,
                rds_free_memory_mib=64,
                eks_pending_minutes=30,
                training_capacity_unmet_minutes=60,
            ),
            performance_log_retention_days=7,
        ),
        # Production's cluster shape; Spot GPU nodes, since a reclaimed node only costs a retried test.
        eks=EksClusterSettings(
            log_retention_days=30,
            support_type="STANDARD",
            storage_reclaim_policy="Delete",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("m6i.xlarge",),
                min_size=2,
                max_size=6,
                desired_size=2,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=EksGpuNodeGroupSettings(
                instance_types=("g5.xlarge", "g5.2xlarge"),
                min_size=0,
                max_size=4,
                desired_size=0,
                capacity_type="SPOT",
                disk_size_gib=100,
                # No GPU node from 20:00 to 07:00 on weekdays and over the weekend, like the training cluster.
                off_hours=OffHours(stop_cron="0 20 * * 1-5", start_cron="0 7 * * 1-5", time_zone="America/New_York"),
            ),
        ),
        # Production's node types at a quarter of its size, all spot, and switched off every night.
        training=GpuTrainingClusterSettings(
            instance_types=("g5.12xlarge", "g6.12xlarge"),
            max_size=2,
            on_demand_base_capacity=0,
            on_demand_percentage_above_base=0,
            idle_minutes=30,
            scale_to_zero_cron="0 20 * * *",
            schedule_time_zone="America/New_York",
            log_retention_days=30,
            notification_emails=_ALERTS,
        ),
        # Production's serving shape with one instance (autoscaling to two) and full data capture.
        sagemaker=SageMakerEndpointSettings(
            variants=(InstanceVariantSettings(instance_type="ml.g5.xlarge", initial_instance_count=1),),
            data_capture_percentage=100,
            min_instance_count=1,
            max_instance_count=2,
            target_invocations_per_instance=100,
            # A single instance cannot be split into a canary: all at once, baked, rolled back on alarms.
            traffic_shifting="ALL_AT_ONCE",
            wait_interval_seconds=600,
            termination_wait_seconds=300,
            log_retention_days=30,
            image_keep_count=30,
            # An hour without a request deletes the endpoint (configuration and model stay) until the next deploy;
            # weekday evenings park it whatever the traffic, so nights and weekends cost no GPU.
            idle=EndpointIdleSettings(
                idle_minutes=60,
                action="delete_endpoint",
                parking_cron="0 20 * * 1-5",
                schedule_time_zone="America/New_York",
                log_retention_days=30,
            ),
        ),
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.p3.8xlarge",
            max_runtime_seconds=24 * 3600,
            max_wait_seconds=48 * 3600,
        ),
        # Production's shape on a burstable class: a standby in a second AZ, a week of backups, two pods.
        mlflow=MlflowSettings(
            database=MlflowDatabaseSettings(
                instance_class="db.t4g.small",
                allocated_storage_gib=20,
                max_allocated_storage_gib=100,
                multi_az=True,
                backup_retention_days=7,
                replicated_backup_retention_days=7,
                deletion_protection=True,
                final_snapshot=True,
                performance_insights=True,
                monitoring_interval_seconds=60,
                log_retention_days=30,
            ),
            replicas=2,
            ingress=MlflowIngressSettings(hostname=f"mlflow.staging.{_DNS_ZONE}", hosted_zone_name=_DNS_ZONE),
        ),
        # The GPU node group's 4 GPUs split between two teams of one cohort, so either can borrow the other's idle
        # GPUs; a g5.xlarge gives each GPU about 3.5 cores and 14 GiB after the node's own reservation.
        kubeflow=KubeflowSettings(
            teams=(
                TeamSettings(
                    name="vision",
                    cpu_nodes=NodeQuota(cpu=4, memory_gib=16),
                    gpu_nodes=GpuNodeQuota(gpus=2, cpu=7, memory_gib=28),
                    cohort="research",
                ),
                TeamSettings(
                    name="nlp",
                    cpu_nodes=NodeQuota(cpu=4, memory_gib=16),
                    gpu_nodes=GpuNodeQuota(gpus=2, cpu=7, memory_gib=28),
                    cohort="research",
                ),
            ),
        ),
        # Models served on EKS: none until one is declared (examples/model-serving.json shows how).
        serving=(),
    ),
    # Prod: high availability, protected data, longest retention.
    "prod": EnvironmentConfig(
        name="prod",
        region="us-east-1",
        # Where prod recovers when us-east-1 fails (docs/disaster-recovery.md).
        secondary_region="us-west-2",
        gpu_enabled=True,
        multi_az=True,
        protected=True,
        resource_prefix="mlp",
        tags=_OWNERS,
        network=NetworkSettings(
            vpc_cidr="10.30.0.0/16",
            zone_ids=("use1-az1", "use1-az2", "use1-az4"),
            nat_gateways="per_az",
            interface_endpoints=("ecr.api", "ecr.dkr", "sts", "logs", "sagemaker.api", "sagemaker.runtime"),
            flow_log_retention_days=365,
        ),
        keys=PlatformKeysSettings(deletion_window_days=30),
        storage=StorageSettings(
            force_destroy=False,
            prevent_destroy=True,
            checkpoint_expiry_days=30,
            backup_retention_days=90,
            access_logging=True,
        ),
        budget=BudgetSettings(monthly_limit_usd=20000, alert_emails=_ALERTS),
        # The strictest thresholds; every alarm notifies the alert address (and, through an override file kept out
        # of git, the on-call integration: docs/monitoring.md).
        monitoring=MonitoringSettings(
            alert_emails=_ALERTS,
            thresholds=AlarmThresholds(
                sagemaker_5xx_percent=1,
                sagemaker_latency_p99_ms=1000,
                rds_cpu_percent=75,
                # Storage autoscaling grows the volume at 10 % free (5 GiB of the first 50): 4 GiB means it did not.
                rds_free_storage_gib=4,
                rds_free_memory_mib=512,
                eks_pending_minutes=15,
                training_capacity_unmet_minutes=30,
            ),
            # A year of Container Insights performance events, like every other prod log group.
            performance_log_retention_days=365,
        ),
        # On-Demand GPU nodes (serving must not be reclaimed), volumes kept after their claims, and
        # extended support so EKS never force-upgrades production when standard support ends.
        eks=EksClusterSettings(
            # Every control-plane log: scheduler and controller-manager decisions matter in an incident.
            log_types=("api", "audit", "authenticator", "controllerManager", "scheduler"),
            log_retention_days=365,
            support_type="EXTENDED",
            storage_reclaim_policy="Retain",
            cpu_node_group=EksNodeGroupSettings(
                instance_types=("m6i.xlarge",),
                min_size=2,
                max_size=6,
                desired_size=3,
                capacity_type="ON_DEMAND",
                disk_size_gib=50,
            ),
            gpu_node_group=EksGpuNodeGroupSettings(
                instance_types=("g5.xlarge", "g5.2xlarge"),
                min_size=0,
                max_size=10,
                desired_size=0,
                capacity_type="ON_DEMAND",
                disk_size_gib=100,
            ),
        ),
        # On-demand: a synchronous data-parallel job stops when any one node is interrupted, so spot
        # would put production runs' deadlines at risk; runs may last overnight, so no nightly stop.
        training=GpuTrainingClusterSettings(
            instance_types=("g5.12xlarge", "g6.12xlarge"),
            max_size=8,
            on_demand_base_capacity=0,
            on_demand_percentage_above_base=100,
            idle_minutes=60,
            log_retention_days=365,
            notification_emails=_ALERTS,
        ),
        # At least two instances spread over the private subnets' AZs, up to six under load; a new
        # model version reaches one canary instance first and is rolled back if the alarms fire.
        sagemaker=SageMakerEndpointSettings(
            variants=(InstanceVariantSettings(instance_type="ml.g5.xlarge", initial_instance_count=2),),
            data_capture_percentage=20,
            min_instance_count=2,
            max_instance_count=6,
            target_invocations_per_instance=100,
            traffic_shifting="CANARY",
            canary_instance_count=1,
            wait_interval_seconds=900,
            termination_wait_seconds=900,
            log_retention_days=365,
            image_keep_count=100,
            untagged_image_expiry_days=14,
        ),
        # Managed spot with S3 checkpoints: SageMaker resumes an interrupted job by itself.
        sagemaker_training=SageMakerTrainingSettings(
            instance_type="ml.p3.8xlarge",
            max_runtime_seconds=72 * 3600,
            max_wait_seconds=96 * 3600,
        ),
        # A general purpose Graviton class with a standby, two weeks of point-in-time recovery, OS metrics every
        # 15 s; three pods over the three zones, at most one down during a node drain.
        mlflow=MlflowSettings(
            database=MlflowDatabaseSettings(
                instance_class="db.m7g.large",
                allocated_storage_gib=50,
                max_allocated_storage_gib=500,
                multi_az=True,
                backup_retention_days=14,
                replicated_backup_retention_days=14,
                deletion_protection=True,
                final_snapshot=True,
                performance_insights=True,
                monitoring_interval_seconds=15,
                log_retention_days=365,
            ),
            replicas=3,
            pod_disruption_budget=True,
            cpu_millicores=1000,
            memory_mib=4096,
            ingress=MlflowIngressSettings(hostname=f"mlflow.{_DNS_ZONE}", hosted_zone_name=_DNS_ZONE),
        ),
        # The GPU node group's 10 GPUs: guaranteed shares that add up to them, lent within the cohort when idle.
        kubeflow=KubeflowSettings(
            teams=(
                TeamSettings(
                    name="vision",
                    cpu_nodes=NodeQuota(cpu=8, memory_gib=32),
                    gpu_nodes=GpuNodeQuota(gpus=6, cpu=21, memory_gib=84),
                    cohort="research",
                    storage_gib=1000,
                ),
                TeamSettings(
                    name="nlp",
                    cpu_nodes=NodeQuota(cpu=8, memory_gib=32),
                    gpu_nodes=GpuNodeQuota(gpus=4, cpu=14, memory_gib=56),
                    cohort="research",
                    storage_gib=1000,
                ),
            ),
            wait_for_pods_ready_minutes=20,
        ),
        # Models served on EKS: none until one is declared (examples/model-serving.json shows how).
        serving=(),
        # The SageMaker endpoint served from us-west-2 too, behind one host name that fails over between the regions
        # (docs/disaster-recovery.md); the standby's network is small: two zones, one NAT gateway.
        failover=ServingFailoverSettings(
            hostname=f"models.{_DNS_ZONE}",
            hosted_zone_name=_DNS_ZONE,
            network=NetworkSettings(
                vpc_cidr="10.130.0.0/16",
                zone_ids=("usw2-az1", "usw2-az2"),
                nat_gateways="single",
                flow_log_retention_days=365,
            ),
        ),
    ),
}


ENVIRONMENT_NAMES = tuple(MATRIX)
"""The environments, in deployment order."""

BOOTSTRAP = BootstrapConfig(resource_prefix="mlp", tags=_OWNERS)
"""The account-level bootstrap stack: the state bucket and the GitHub roles (docs/gitops.md)."""
