"""What an estimate is made of: priced lines, usage-based items, what could not be priced or resolved, and
the savings (scale-to-zero, schedules, one-year commitments) of one stack.

Figures are monthly, in the price table's currency, unrounded; the renderers round them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

COMPONENT_ORDER = (
    "EKS control plane",
    "NAT gateways + public IPv4",
    "Public IPv4 addresses",
    "Interface endpoints",
    "EKS CPU nodes",
    "EKS GPU nodes",
    "GPU training cluster",
    "Auto Scaling groups",
    "SageMaker endpoints",
    "RDS databases",
    "Load balancers",
    "WAF",
    "KMS keys",
    "Secrets Manager",
    "CloudWatch alarms",
)
"""The order components are listed in (anything else follows, alphabetically)."""


@dataclass(frozen=True)
class Line:
    """One priced item: a resource (or a group of alike resources) and what it costs a month.

    component: the row it adds to (one of :data:`COMPONENT_ORDER`).
    item: what is priced, with its counts ("3 x m6i.xlarge, 50 GB gp3 root volumes").
    addresses: the Terraform addresses priced (``aws_nat_gateway.<name>``).
    at_min: the monthly cost of what runs idle (minimum sizes, desired counts).
    at_max: the monthly cost with every group at its maximum size (equal to ``at_min`` for fixed items).
    detail: the unit prices the figure comes from.
    commitment: the one-year commitment that covers the sustained part (a ``commitment_discount`` key), if any.
    committable: the monthly amount, at minimum, that such a commitment covers (instances, not storage).
    """

    component: str
    item: str
    addresses: tuple[str, ...]
    at_min: float
    at_max: float
    detail: str = ""
    commitment: str | None = None
    committable: float = 0.0


@dataclass(frozen=True)
class UsageItem:
    """A cost that depends on use (storage, data, requests): named with its unit price, never summed.

    component: what it belongs to ("S3", "NAT gateways + public IPv4").
    name: what is billed ("data processed").
    price: the price of one unit.
    unit: the unit ("GB processed").
    basis: which resources incur it ("4 buckets").
    """

    component: str
    name: str
    price: float
    unit: str
    basis: str


@dataclass(frozen=True)
class Unpriced:
    """Something the estimate would include but the price table cannot price.

    address: the Terraform address (or the stack, for a region without a table).
    what: what is missing from the table ("EC2 instance type x2idn.large").
    """

    address: str
    what: str


@dataclass(frozen=True)
class Unresolved:
    """A value the estimate needs that the JSON gives as a reference or not at all, so it is not guessed.

    address: the Terraform address.
    field: the argument ("scaling_config.min_size").
    value: what the JSON holds there (a ``${...}`` reference, or "absent").
    """

    address: str
    field: str
    value: str


@dataclass(frozen=True)
class ScaleToZero:
    """Capacity that rests at (or near) zero: what it costs at rest versus running all month at its maximum.

    component: the component of the capacity.
    item: which group ("training ASG mlp-prod-training").
    addresses: its Terraform addresses.
    at_rest: the monthly cost at rest.
    at_max_always_on: the monthly cost if it ran 24x7 at its maximum size.
    per_node_hour: what one node costs an hour while it runs, as text (on demand and at typical spot).
    """

    component: str
    item: str
    addresses: tuple[str, ...]
    at_rest: float
    at_max_always_on: float
    per_node_hour: str

    @property
    def saving(self) -> float:
        """What resting saves against running at maximum all month."""
        return self.at_max_always_on - self.at_rest


@dataclass(frozen=True)
class ScheduleEffect:
    """A scheduled scaling action (a night or weekend stop, a morning start) and what it does to the bill.

    address: the schedule's Terraform address (several, for the actions of one group, joined).
    target: the group or endpoint it scales.
    description: the schedule as written (recurrence and time zone) and what it sets.
    monthly_saving: what it saves a month against the group's configured resting size (0 when the group rests
        at that size anyway).
    bound_hours: for a stop, the longest time a group someone scaled up and forgot keeps running before the
        next stop; None when the schedule has no stop.
    bound_cost: what that longest run costs at the group's maximum size.
    """

    address: str
    target: str
    description: str
    monthly_saving: float
    bound_hours: float | None = None
    bound_cost: float | None = None


@dataclass(frozen=True)
class Commitment:
    """A one-year, no-upfront commitment on the sustained part of one component.

    component: the component.
    kind: the commitment (``ec2_compute_savings_plan``, ``sagemaker_savings_plan``, ``rds_reserved_instance``).
    covered: the monthly on-demand amount it covers.
    discount: the assumed discount (0-1).
    """

    component: str
    kind: str
    covered: float
    discount: float

    @property
    def saving(self) -> float:
        """What the commitment saves a month."""
        return self.covered * self.discount


@dataclass
class Estimate:
    """The monthly estimate of one synthesized stack.

    stack: the stack's name (dev, staging, prod, bootstrap).
    region: the AWS region of its provider, or None when the JSON does not name one.
    account_level: the stack holds account-wide resources (the bootstrap stack), not an environment.
    price_date, price_source: the price table's retrieval date and file, when there is one.
    """

    stack: str
    region: str | None
    account_level: bool = False
    price_date: str | None = None
    price_source: str | None = None
    currency: str = "USD"
    lines: list[Line] = field(default_factory=list)
    usage: list[UsageItem] = field(default_factory=list)
    unpriced: list[Unpriced] = field(default_factory=list)
    unresolved: list[Unresolved] = field(default_factory=list)
    scale_to_zero: list[ScaleToZero] = field(default_factory=list)
    schedules: list[ScheduleEffect] = field(default_factory=list)
    commitments: list[Commitment] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Everything the stack creates was priced: nothing unpriced, no value left unresolved."""
        return not self.unpriced and not self.unresolved

    @property
    def total_min(self) -> float:
        """The monthly total of what runs idle."""
        return sum(line.at_min for line in self.lines)

    @property
    def total_max(self) -> float:
        """The monthly total with every group at its maximum size."""
        return sum(line.at_max for line in self.lines)

    def components(self) -> dict[str, tuple[float, float]]:
        """(at minimum, at maximum) of each component, in :data:`COMPONENT_ORDER`."""
        totals: dict[str, tuple[float, float]] = {}
        for line in self.lines:
            low, high = totals.get(line.component, (0.0, 0.0))
            totals[line.component] = (low + line.at_min, high + line.at_max)
        return {name: totals[name] for name in ordered(totals)}

    def dominant(self) -> tuple[str, float] | None:
        """The component that costs most at minimum, with its share of the minimum total; None when empty."""
        components = self.components()
        total = self.total_min
        if not components or total <= 0:
            return None
        name = max(components, key=lambda key: components[key][0])
        return name, components[name][0] / total

    @property
    def scale_to_zero_saving(self) -> float:
        """What the capacity resting at zero saves against running 24x7 at its maximum."""
        return sum(entry.saving for entry in self.scale_to_zero)

    @property
    def schedule_saving(self) -> float:
        """What the schedules save a month against the configured resting sizes."""
        return sum(effect.monthly_saving for effect in self.schedules)

    @property
    def commitment_saving(self) -> float:
        """What one-year commitments on the sustained part would save a month."""
        return sum(commitment.saving for commitment in self.commitments)


def ordered(names: Iterable[str]) -> list[str]:
    """Component names in :data:`COMPONENT_ORDER`, unknown ones after them alphabetically."""
    known = {name: index for index, name in enumerate(COMPONENT_ORDER)}
    return sorted(set(names), key=lambda name: (known.get(name, len(known)), name))
