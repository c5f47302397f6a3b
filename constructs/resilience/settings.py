"""Settings of the environment's resilience across regions: multi-region failover of model serving."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from constructs.core.formats import HostInZone
from constructs.network.settings import NetworkSettings
from pydantic import Field


class ServingFailoverSettings(HostInZone):
    """Multi-region failover of the SageMaker endpoint: the same model served in the secondary region too, and one
    host name that Route53 answers with the healthy region's regional API (docs/disaster-recovery.md).

    hostname, hosted_zone_name: the serving host name clients call, inside a public Route53 hosted zone of the
      account; each region's regional API gets a certificate for it.
    network: the secondary region's minimal network for the endpoint there: its own VPC block (overlapping no
      environment's), two or more zone IDs of the secondary region, one NAT gateway and no interface endpoint are
      enough for a standby that only serves when the primary fails.
    health_check_interval_seconds: how often Route53 checks each region (10 or 30 s; 10 s costs more).
    failure_threshold: consecutive failed checks before Route53 answers with the other region (1-10).
    throttling_rate_limit, throttling_burst_limit: the steady requests per second and the burst each region's API
      accepts before it answers 429 (at most the account's regional API Gateway limits, 10,000 and 5,000).
    """

    EXAMPLE_HOST: ClassVar[str] = "models"

    network: NetworkSettings
    health_check_interval_seconds: Literal[10, 30] = 30
    failure_threshold: Annotated[int, Field(ge=1, le=10)] = 3
    throttling_rate_limit: Annotated[float, Field(gt=0, le=10000)] = 100
    throttling_burst_limit: Annotated[int, Field(ge=1, le=5000)] = 200
