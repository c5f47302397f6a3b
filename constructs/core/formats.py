"""String and number formats the settings of several features share: networks, retention, e-mail, regions,
schedules and IAM role ARNs. Each is an annotated type whose validator says, in words, what it allows.

Like :mod:`constructs.core.settings`, this module imports no construct, no cdktf and no provider binding.
"""

from __future__ import annotations

import functools
import importlib.resources
import ipaddress
import re
import typing
from collections.abc import Callable, Sequence
from typing import Annotated, ClassVar, Self

from constructs.core.errors import one_of, require_field
from constructs.core.settings import Check, Settings, choice, cidr_block, matches, predicate
from pydantic import Field, model_validator

RFC1918_BLOCKS = tuple(ipaddress.IPv4Network(block) for block in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
"""The private address space of RFC 1918."""
SHARED_ADDRESS_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
"""RFC 6598's shared address space: carrier-grade NAT, never routed on the internet; AWS accepts it in VPCs."""
PRIVATE_BLOCKS = (*RFC1918_BLOCKS, SHARED_ADDRESS_SPACE)
"""Where a private network of the platform may lie."""
DOCUMENTATION_BLOCKS = tuple(
    ipaddress.IPv4Network(block) for block in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)
"""RFC 5737's documentation ranges (TEST-NET-1 to 3): routed nowhere, so a rule naming one admits no one."""
# RFC 6890's IETF protocol assignments are not globally reachable, but Python before 3.11.10 reports them as
# global (the is_global fix of CVE-2024-4032), so they are rejected by name whatever the interpreter.
_IETF_PROTOCOL_ASSIGNMENTS = ipaddress.IPv4Network("192.0.0.0/24")


def _network(block: Check, value: str) -> ipaddress.IPv4Network:
    """``value`` as a network, once ``block`` (a :func:`cidr_block` validator) has accepted it."""
    accept = typing.cast(Callable[[str], str], block.func)
    return ipaddress.IPv4Network(accept(value))


def private_cidr_block(
    min_prefix: int, max_prefix: int, allowed: str, avoid: Sequence[ipaddress.IPv4Network] = ()
) -> Check:
    """A validator for an IPv4 CIDR block inside :data:`PRIVATE_BLOCKS` (RFC 1918 or RFC 6598 space), with a
    prefix in the range, that overlaps none of ``avoid``."""
    block = cidr_block(min_prefix, max_prefix, allowed)

    def check(value: str) -> str:
        network = _network(block, value)
        inside = any(network.subnet_of(private) for private in PRIVATE_BLOCKS)
        if not inside or any(network.overlaps(other) for other in avoid):
            raise ValueError(allowed)
        return value

    return Check(check, allowed)


def public_cidr_block(min_prefix: int, max_prefix: int, allowed: str) -> Check:
    """A validator for a globally routable IPv4 CIDR block with a prefix in the range.

    Routable is the ``ipaddress`` module's ``is_global`` (no private, shared, loopback, link-local, benchmarking,
    reserved or "this network" space) and not ``is_multicast``; :data:`DOCUMENTATION_BLOCKS` pass as well, so
    examples can be written without naming someone's real network. ``min_prefix`` must be 24 or more: every
    special-purpose range is then either wholly inside or wholly outside the block (the smaller ones lie inside
    ranges rejected as a whole), which is what makes the properties of its first and last address decide.
    """
    if min_prefix < 24:
        raise ValueError(f"public_cidr_block needs min_prefix >= 24, not {min_prefix}")
    block = cidr_block(min_prefix, max_prefix, allowed)

    def check(value: str) -> str:
        network = _network(block, value)
        documentation = any(network.subnet_of(example) for example in DOCUMENTATION_BLOCKS)
        routable = network.is_global and not network.is_multicast and not network.overlaps(_IETF_PROTOCOL_ASSIGNMENTS)
        if not (documentation or routable):
            raise ValueError(allowed)
        return value

    return Check(check, allowed)


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

LogRetentionDays = Annotated[
    int, choice(LOG_RETENTION_DAYS, "a CloudWatch Logs retention, " + one_of(LOG_RETENTION_DAYS))
]
"""Days a CloudWatch Logs group keeps its events."""

IDLE_PERIOD_MINUTES = 5
"""The period of an idle alarm (GPU training cluster, SageMaker endpoint): CloudWatch evaluates 5-minute periods."""
IdleMinutes = Annotated[
    int,
    Field(
        ge=15,
        le=1440,
        multiple_of=IDLE_PERIOD_MINUTES,
        description="a multiple of 5 from 15 to 1440 (the alarm evaluates 5-minute periods over at most a day)",
    ),
]
"""How long something stays idle before an idle policy acts on it, in whole idle-alarm periods."""

# RFC 5321 limits (64-character local part, 253-character domain of 63-character labels), restricted to what
# SNS e-mail subscriptions and budget notifications accept without surprises: ASCII, no quoted local parts.
_EMAIL_LOCAL = r"[A-Za-z0-9!#%&'*+/=?^_`|~-]+(?:\.[A-Za-z0-9!#%&'*+/=?^_`|~-]+)*"
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"(?=[^@]{{1,64}}@)(?=.{{6,254}}$){_EMAIL_LOCAL}@(?:{_DNS_LABEL}\.)+[A-Za-z]{{2,63}}")
Email = Annotated[
    str,
    matches(
        _EMAIL,
        "e-mail addresses such as 'ml-platform@example.com' (ASCII; at most 64 characters before the '@' and "
        "254 in all; a domain of dot-separated labels ending in a letters-only top-level domain)",
    ),
]
"""An e-mail address."""

# A lowercase fully qualified host name (RFC 1123 labels, 253 characters at most, at least two labels, a
# letters-only top-level domain): what an ACM certificate, an ALB host rule and a Route53 record all accept.
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{4,253}}$)(?:{_HOST_LABEL}\.)+[a-z]{{2,63}}")
Hostname = Annotated[
    str,
    matches(
        _HOSTNAME,
        "a lowercase fully qualified host name such as 'mlflow.ml.example.com' (dot-separated labels of letters, "
        "digits and '-', not starting or ending with '-', at most 63 characters each and 253 in all, ending in "
        "a letters-only top-level domain; no trailing dot, no wildcard)",
    ),
]
"""A fully qualified DNS host name, lowercase, without a trailing dot."""


ACM_COMMON_NAME_MAX = 64


class HostInZone(Settings):
    """A host name inside a public Route53 hosted zone of the account, as a load balancer's address.

    hostname: the host name clients use, inside ``hosted_zone_name``.
    hosted_zone_name: the zone (it must exist): it validates the certificate and holds the alias record.
    A subclass names an example host for its messages (``EXAMPLE_HOST``).
    """

    EXAMPLE_HOST: ClassVar[str] = "app"

    hostname: Hostname
    hosted_zone_name: Hostname

    @model_validator(mode="after")
    def _hostname_in_zone(self) -> Self:
        # The certificate's common name is the host name, and ACM takes at most 64 characters there.
        require_field(
            len(self.hostname) <= ACM_COMMON_NAME_MAX,
            "hostname",
            self.hostname,
            f"a host name of at most {ACM_COMMON_NAME_MAX} characters (its certificate's common name)",
        )
        require_field(
            self.hostname.endswith(f".{self.hosted_zone_name}"),
            "hostname",
            self.hostname,
            f"a name inside hosted_zone_name {self.hosted_zone_name!r}, such as "
            f"'{self.EXAMPLE_HOST}.{self.hosted_zone_name}'",
        )
        return self


# Every public AWS region (commercial, China, GovCloud) at the time of writing; a new region is added here.
AWS_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-south-1",
    "eu-south-2",
    "eu-north-1",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "mx-central-1",
    "sa-east-1",
    "cn-north-1",
    "cn-northwest-1",
    "us-gov-east-1",
    "us-gov-west-1",
)


# --- schedules ------------------------------------------------------------------------------------------------

# Unix cron as EC2 Auto Scaling scheduled actions (and the other schedules of the platform) read it: minute,
# hour, day of month, month (1-12 or JAN-DEC), day of week (0-6 or SUN-SAT, 0 is Sunday); each field a list of
# '*', a value or a range, optionally stepped ('*/15', '1-5/2').
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_CRON_FIELDS: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (0, 59, ()),
    (0, 23, ()),
    (1, 31, ()),
    (1, 12, _MONTHS),
    (0, 6, _DAYS),
)
_CRON_ITEM = re.compile(
    r"(?P<base>\*|(?P<start>[0-9]{1,2}|[A-Za-z]{3})(?:-(?P<end>[0-9]{1,2}|[A-Za-z]{3}))?)(?:/(?P<step>[0-9]{1,2}))?"
)


def _cron_value(text: str, low: int, names: tuple[str, ...]) -> int | None:
    if text.isascii() and text.isdigit():
        return int(text)
    return names.index(text.upper()) + low if text.upper() in names else None


def _cron_field(text: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    for item in text.split(","):
        match = _CRON_ITEM.fullmatch(item)
        if match is None:
            return False
        if match["step"] is not None and not 1 <= int(match["step"]) <= high - low + 1:
            return False
        if match["base"] == "*":
            continue
        start = _cron_value(match["start"], low, names)
        end = start if match["end"] is None else _cron_value(match["end"], low, names)
        if start is None or end is None or not low <= start <= end <= high:
            return False
        if match["step"] is not None and match["end"] is None:
            return False
    return True


def is_cron(expression: str) -> bool:
    """A 5-field Unix cron expression whose every value is in its field's range."""
    fields = expression.split(" ")
    return len(fields) == len(_CRON_FIELDS) and all(
        _cron_field(text, *limits) for text, limits in zip(fields, _CRON_FIELDS, strict=True)
    )


Cron = Annotated[
    str,
    predicate(
        is_cron,
        "a 5-field cron expression such as '0 20 * * 1-5' (minute 0-59, hour 0-23, day of month 1-31, month "
        "1-12 or JAN-DEC, day of week 0-6 or SUN-SAT; lists, ranges and steps such as '*/15'; one space apart)",
    ),
]
"""A recurring schedule in Unix cron syntax."""


@functools.cache
def time_zones() -> frozenset[str]:
    """The IANA time zone names of the pinned ``tzdata`` release."""
    return frozenset(importlib.resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split())


TimeZone = Annotated[
    str,
    predicate(
        lambda value: value in time_zones(),
        "an IANA time zone name such as 'UTC' or 'America/New_York' (case-sensitive, from the tz database)",
    ),
]
"""The IANA name of a time zone."""


AwsRegion = Annotated[str, choice(AWS_REGIONS, "an AWS region code such as 'us-east-1' (" + one_of(AWS_REGIONS) + ")")]
"""The code of an AWS region."""


# IAM names and paths: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html (role names
# 1-64 of letters, digits and +=,.@_-; paths up to 512 characters between slashes). Partitions the platform
# deploys to; a principal ARN never holds a wildcard.
AWS_PARTITIONS = ("aws", "aws-cn", "aws-us-gov")
_IAM_NAME = r"[A-Za-z0-9+=,.@_-]"
_IAM_ROLE_ARN = re.compile(
    rf"arn:(?:{'|'.join(AWS_PARTITIONS)}):iam::\d{{12}}:role/(?=[A-Za-z0-9+=,.@_/-]{{1,576}}$)(?:{_IAM_NAME}+/)*"
    rf"{_IAM_NAME}{{1,64}}"
)
IamRoleArn = Annotated[
    str,
    matches(
        _IAM_ROLE_ARN,
        "IAM role ARNs such as 'arn:aws:iam::123456789012:role/PlatformAdmins' (partition aws, aws-cn or "
        "aws-us-gov; a 12-digit account; an optional /path/; a role name of 1-64 letters, digits and +=,.@_-)",
    ),
]
"""The ARN of one IAM role (no wildcard)."""

IamRoleName = Annotated[
    str,
    matches(rf"{_IAM_NAME}{{1,64}}", "an IAM role name: 1-64 letters, digits and +=,.@_- (no path, no wildcard)"),
]
"""The name of one IAM role of the account."""


# --- tags -------------------------------------------------------------------------------------------------------

# AWS allows Unicode letters, digits, spaces and _ . : / = + - @ in tag values (up to 256). The platform keeps
# them ASCII, with no space at either end: Cost Explorer and budget filters match tag values exactly, and a
# tab, a newline or a trailing space is a second, invisible value of the same tag.
TagValue = Annotated[
    str,
    matches(
        r"[A-Za-z0-9_.:/=+\-@](?:[A-Za-z0-9_.:/=+\-@ ]{0,254}[A-Za-z0-9_.:/=+\-@])?",
        "a tag value of 1-256 ASCII letters, digits, spaces and _ . : / = + - @, not starting or ending with a space",
    ),
]
"""A cost-attribution tag value (``team``, ``cost_center``, ``project``): what Cost Explorer and budgets match."""
