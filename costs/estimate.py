"""The estimate of synthesized stacks: each stack's region picks its price table, every pricing function adds
what it finds, and the savings are worked out from the lines.

Input is what ``python main.py`` writes (``cdktf.out/stacks/<stack>/cdk.tf.json``) or the same JSON already
parsed. The account-level ``bootstrap`` stack is estimated like any other but marked ``account_level``: the
reports show it apart from the environments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from costs import capacity, fixed, sagemaker, schedules, usage
from costs.context import Pricing
from costs.model import Commitment, Estimate, Unpriced
from costs.pricing import PRICES_DIR, PriceTable, available_regions, table_for
from costs.terraform import JsonObject, StackView, region_of

ACCOUNT_STACKS = frozenset({"bootstrap"})
"""Stacks of account-wide resources (state bucket, deploy roles), reported apart from the environments."""

ENVIRONMENT_ORDER = ("dev", "test", "staging", "prod")
"""Environments are reported along the promotion path, others after them alphabetically."""


class StacksNotFound(FileNotFoundError):
    """No synthesized stack where one was expected."""


def stack_order(names: Iterable[str]) -> list[str]:
    """Stack names along the promotion path (dev, staging, prod), others alphabetically, account stacks last."""
    rank = {name: index for index, name in enumerate(ENVIRONMENT_ORDER)}
    return sorted(names, key=lambda name: (name in ACCOUNT_STACKS, rank.get(name, len(rank)), name))


def load_stacks(out: Path) -> dict[str, JsonObject]:
    """Every ``<out>/stacks/<name>/cdk.tf.json``, parsed, by stack name in report order."""
    paths = {path.parent.name: path for path in (out / "stacks").glob("*/cdk.tf.json")}
    if not paths:
        raise StacksNotFound(f"no synthesized stack in {out / 'stacks'}: run `python main.py` (make synth) first")
    return {name: json.loads(paths[name].read_text()) for name in stack_order(paths)}


def estimate_stack(name: str, stack: JsonObject, prices_dir: Path = PRICES_DIR) -> Estimate:
    """The monthly estimate of one parsed stack."""
    region = region_of(stack)
    estimate = Estimate(stack=name, region=region, account_level=name in ACCOUNT_STACKS)
    table = table_for(region, prices_dir) if region is not None else None
    if table is None:
        known = ", ".join(available_regions(prices_dir)) or "none"
        what = f"region {region!r}: no price table (tables exist for: {known})"
        estimate.unpriced.append(Unpriced(f"{name} (provider.aws.region)", what))
        return estimate
    return price(name, stack, table, estimate)


def price(name: str, stack: JsonObject, table: PriceTable, estimate: Estimate) -> Estimate:
    """Fill ``estimate`` from ``stack`` with the prices of ``table``."""
    estimate.price_date, estimate.price_source, estimate.currency = table.retrieved, table.path.name, table.currency
    view = StackView(stack)
    pricing = Pricing(view, table, estimate)
    fixed.eks_control_planes(pricing)
    fixed.nat_gateways(pricing)
    fixed.interface_endpoints(pricing)
    groups = capacity.node_groups(pricing) + capacity.auto_scaling_groups(pricing) + sagemaker.endpoints(pricing)
    fixed.databases(pricing)
    fixed.load_balancers(pricing)
    fixed.web_acls(pricing)
    fixed.kms_keys(pricing)
    fixed.secrets(pricing)
    fixed.alarms(pricing)
    schedules.schedules(pricing, groups)
    sagemaker.idle_policies(pricing, groups)
    usage.usage_items(pricing)
    estimate.unresolved.extend(view.unresolved)
    estimate.commitments.extend(commitments(estimate, table))
    return estimate


def commitments(estimate: Estimate, table: PriceTable) -> list[Commitment]:
    """One-year commitments on the sustained part of each component (what runs at rest, on demand)."""
    covered: dict[tuple[str, str], float] = {}
    for line in estimate.lines:
        if line.commitment and line.committable > 0:
            key = (line.component, line.commitment)
            covered[key] = covered.get(key, 0.0) + line.committable
    found = []
    for (component, kind), amount in covered.items():
        discount = table.commitment(kind)
        if discount is None:
            estimate.unpriced.append(Unpriced(component, f"commitment discount {kind!r}"))
            continue
        found.append(Commitment(component, kind, amount, discount))
    return found


def estimate_stacks(stacks: Mapping[str, JsonObject], prices_dir: Path = PRICES_DIR) -> list[Estimate]:
    """The estimate of every stack, in report order."""
    return [estimate_stack(name, stacks[name], prices_dir) for name in stack_order(stacks)]
