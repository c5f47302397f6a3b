"""The serving standby: the environment's SageMaker endpoint built a second time, in its secondary region."""

from __future__ import annotations

from dataclasses import dataclass

from constructs import Construct
from constructs.core.errors import require
from constructs.resilience.region import SecondaryRegion
from constructs.resilience.replication import ArtifactReplication, ArtifactReplicationProps
from constructs.sagemaker.endpoint import SageMakerEndpoint, SageMakerEndpointProps


@dataclass(frozen=True)
class ServingStandby:
    """What :func:`serving_standby` builds.

    endpoint: the standby endpoint, below the secondary region's scope (path ``<region>/standby``).
    replication: the replication of the served artifacts to the region's replica bucket, beside the primary.
    """

    endpoint: SageMakerEndpoint
    replication: ArtifactReplication


def serving_standby(scope: Construct, region: SecondaryRegion, primary: SageMakerEndpoint) -> ServingStandby:
    """``primary`` built again in ``region`` (built with failover), fed by replication of what it serves.

    The endpoint is built below the region's scope, so every resource of it (its image repository, the ECR
    replication's destination, included) lands in that region, with the region's context (global names end in its
    code), the replica bucket, the recovery key, the region's logs key and its network; it has the primary's
    settings, so the same name, variants, autoscaling and guardrails. The replication of ``primary``'s artifact
    prefix is built in ``scope``, the primary region's, where the source bucket is.
    """
    replica, logs_key, network = region.model_artifacts, region.logs_key, region.network
    require(
        replica is not None and logs_key is not None and network is not None,
        region.node.path,
        "failover",
        None,
        "the failover settings (the standby's network, logs key and replica bucket)",
    )
    assert replica is not None and logs_key is not None and network is not None
    endpoint = SageMakerEndpoint(
        region,
        "standby",
        SageMakerEndpointProps(
            context=region.context,
            settings=primary.props.settings,
            model_artifacts=replica,
            data_key=region.recovery_key,
            logs_key=logs_key,
            vpc=network.vpc,
            private_subnets=tuple(network.private_subnets),
        ),
    )
    replication = ArtifactReplication(
        scope,
        "artifact-replication",
        ArtifactReplicationProps(
            context=primary.props.context,
            replica_context=region.context,
            source=primary.props.model_artifacts,
            replica=replica,
            prefix=primary.artifact_prefix,
        ),
    )
    return ServingStandby(endpoint=endpoint, replication=replication)
