"""The platform's security policy, assembled for one environment and added to its stack as one Aspect."""

from __future__ import annotations

from collections.abc import Sequence

from constructs.core.checks import Rule, SynthChecks
from constructs.core.context import OWNER_TAG_KEYS
from constructs.policy.required_tags import RequiredTags
from constructs.policy.resource_policies import KeyAdministrationNamed, ServicePrincipalsBoundToSource
from constructs.policy.rules import (
    BucketEncryptedWithKms,
    BucketPublicAccessBlocked,
    BucketTlsOnly,
    BucketVersioned,
    EncryptedVolumes,
    GpuOnlyWhereAllowed,
    InstanceMetadataV2,
    KmsKeyRotation,
    NoAdminManagedPolicies,
    NoPublicIngress,
    NoWildcardActions,
    ProtectedData,
)
from constructs.policy.secret_literals import NoSecretLiterals

PACK_NAME = "ml-platform-security"


def security_pack(*, required_tags: Sequence[str], gpu_enabled: bool, protected: bool) -> list[Rule]:
    """Every rule of the platform's security policy, configured for one environment.

    required_tags: tag keys every taggable resource carries (TAG-1).
    gpu_enabled: whether the environment may run accelerated instances (GPU-1).
    protected: whether the environment holds data that must survive ``terraform destroy`` (PROT-1).
    """
    return [
        RequiredTags(required_tags),
        NoWildcardActions(),
        NoAdminManagedPolicies(),
        ServicePrincipalsBoundToSource(),
        NoSecretLiterals(),
        BucketPublicAccessBlocked(),
        BucketEncryptedWithKms(),
        BucketVersioned(),
        BucketTlsOnly(),
        InstanceMetadataV2(),
        EncryptedVolumes(),
        NoPublicIngress(),
        KmsKeyRotation(),
        KeyAdministrationNamed(),
        GpuOnlyWhereAllowed(gpu_enabled),
        ProtectedData(protected),
    ]


def security_checks(*, gpu_enabled: bool, protected: bool) -> SynthChecks:
    """The Aspect that runs the whole security policy (docs/security.md) on a stack's final configuration."""
    return SynthChecks(
        PACK_NAME, security_pack(required_tags=OWNER_TAG_KEYS, gpu_enabled=gpu_enabled, protected=protected)
    )
