"""Small typed views of the resources one feature hands to another.

Features pass each other resource objects (a KMS key, a role, a subnet), never their props. These protocols
name the attributes a consumer may use, so a construct's signature says what it needs (``KmsKeyRef``: an ARN)
instead of ``Any``. The provider bindings' resource classes satisfy them structurally.
"""

from __future__ import annotations

from typing import Protocol


class KmsKeyRef(Protocol):
    """A customer-managed KMS key."""

    @property
    def arn(self) -> str: ...

    @property
    def key_id(self) -> str: ...


class RoleRef(Protocol):
    """An IAM role that policies can be attached to."""

    @property
    def name(self) -> str: ...

    @property
    def arn(self) -> str: ...

    @property
    def friendly_unique_id(self) -> str: ...


class VpcRef(Protocol):
    """A VPC."""

    @property
    def id(self) -> str: ...

    @property
    def arn(self) -> str: ...


class SubnetRef(Protocol):
    """A subnet."""

    @property
    def id(self) -> str: ...

    @property
    def arn(self) -> str: ...


class SecurityGroupRef(Protocol):
    """A security group."""

    @property
    def id(self) -> str: ...

    @property
    def arn(self) -> str: ...


class TopicRef(Protocol):
    """An SNS topic."""

    @property
    def arn(self) -> str: ...


class LogGroupRef(Protocol):
    """A CloudWatch Logs group."""

    @property
    def name(self) -> str: ...

    @property
    def arn(self) -> str: ...
