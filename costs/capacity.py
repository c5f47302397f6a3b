"""Capacity that scales: EKS managed node groups, Auto Scaling groups (the GPU training cluster) and SageMaker
endpoint instances, priced at rest (desired or minimum counts) and at their maximum size.

Each scalable group is also returned as a :class:`Group`, so schedules (costs/schedules.py) can price the
counts they set, and groups that rest at zero are listed with what running all month at maximum would cost.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from costs.context import Pricing, money, plural
from costs.model import Line, ScaleToZero
from costs.pricing import InstancePrice
from costs.terraform import JsonObject, block, blocks, literal_int


@dataclass(frozen=True)
class Group:
    """A scalable group of instances, as the estimate prices it.

    addresses: the Terraform addresses that name it (the group; for SageMaker also its scaling target).
    label: how the report names it ("EKS node group mlp-prod-gpu-").
    rest: the count it runs at rest (desired, else minimum).
    minimum, maximum: its size limits.
    cost: the monthly cost of running ``n`` instances all month.
    demand: instances something keeps asking for (GPU nodes of served models): whenever a schedule allows
        them, the cluster autoscaler brings them back.
    """

    addresses: tuple[str, ...]
    label: str
    rest: int
    minimum: int
    maximum: int
    cost: Callable[[int], float]
    demand: int = 0


@dataclass(frozen=True)
class NodePrice:
    """What one node of a group costs an hour, by purchase option, with its root volumes.

    instance_type: the type priced (the first the group lists).
    on_demand: the on-demand price of an instance-hour.
    spot: the typical spot price of an instance-hour, or None when the table has no spot figure for the family.
    volume_hourly: the hourly cost of the node's root volumes.
    gpus: GPUs per node.
    """

    instance_type: str
    on_demand: float
    spot: float | None
    volume_hourly: float
    gpus: int

    def describe(self) -> str:
        """The per-node-hour prices as text."""
        text = f"{self.instance_type} {money(self.on_demand)}/h on demand"
        if self.spot is not None:
            text += f", ~{money(round(self.spot, 3))}/h at typical spot"
        return text


def _instance_prices(pricing: Pricing, address: str, types: list[str]) -> InstancePrice | None:
    """The price of the first type; every type the group may launch must be in the table."""
    prices = [pricing.prices.ec2(name) for name in types]
    for name, price in zip(types, prices, strict=True):
        if price is None:
            pricing.missing(address, f"EC2 instance type {name}")
    if not types or any(price is None for price in prices):
        return None
    return prices[0]


def _root_volumes(pricing: Pricing, address: str, template: JsonObject | None, disk_size: int | None) -> float | None:
    """The hourly cost of one node's EBS volumes from its launch template, else ``disk_size`` (gp2)."""
    mappings = [block(mapping.get("ebs")) for mapping in blocks((template or {}).get("block_device_mappings"))]
    volumes = [(literal_int(ebs.get("volume_size")), str(ebs.get("volume_type", "gp2"))) for ebs in mappings if ebs]
    if not volumes:
        if template is not None and disk_size is None:
            # The AMI's snapshot sets the size: not in the JSON, listed instead of guessed.
            pricing.usage("EC2 root volumes", "root volumes sized by the AMI", "ebs_gp3_volumes", address)
            return 0.0
        volumes = [(disk_size if disk_size is not None else 20, "gp2")]
    total = 0.0
    for size, volume_type in volumes:
        per_gb = pricing.prices.ebs(volume_type)
        if size is None:
            pricing.view.unresolve(address, "block_device_mappings.ebs.volume_size", "not a literal")
            return None
        if per_gb is None:
            pricing.missing(address, f"EBS volume type {volume_type}")
            return None
        total += size * per_gb
    return total / pricing.hours


def _node_price(
    pricing: Pricing, address: str, types: list[str], template: JsonObject | None, disk_size: int | None
) -> NodePrice | None:
    price = _instance_prices(pricing, address, types)
    volumes = _root_volumes(pricing, address, template, disk_size)
    if price is None or volumes is None:
        return None
    discount = pricing.prices.spot_discount(types[0])
    spot = None if discount is None else price.hourly * (1 - discount)
    return NodePrice(types[0], price.hourly, spot, volumes, price.gpus)


def _burstable(pricing: Pricing, component: str, name: str, types: list[str]) -> None:
    """T instances launch in unlimited mode (EKS and the EC2 default): CPU use above the baseline is billed."""
    burstable = [t for t in types if t.split(".", 1)[0] in ("t2", "t3", "t3a", "t4g")]
    if burstable:
        basis = f"{name} ({', '.join(burstable)})"
        pricing.usage(component, "CPU credits above the baseline", "burstable_cpu_credits", basis)


def _template(pricing: Pricing, reference: object) -> JsonObject | None:
    found = pricing.view.referenced(reference, "aws_launch_template")
    return found[1] if found else None


def served_gpus(pricing: Pricing) -> tuple[int, list[str]]:
    """GPUs that served models hold at rest: Deployments requesting ``nvidia.com/gpu`` times their minimum
    replicas (the HorizontalPodAutoscaler's ``min_replicas``, else ``spec.replicas``)."""
    view = pricing.view
    minimums = {}
    for _, hpa in view.resources("kubernetes_horizontal_pod_autoscaler_v2"):
        spec = block(hpa.get("spec"))
        target = block(spec.get("scale_target_ref"))
        key = (block(hpa.get("metadata")).get("namespace"), target.get("name"))
        minimums[key] = literal_int(spec.get("min_replicas", 1))
    total, notes = 0, []
    for address, deployment in view.resources("kubernetes_deployment_v1"):
        metadata, spec = block(deployment.get("metadata")), block(deployment.get("spec"))
        containers = blocks(block(block(spec.get("template")).get("spec")).get("container"))
        gpus = sum(
            literal_int(block(c.get("resources")).get("requests", {}).get("nvidia.com/gpu", 0)) or 0 for c in containers
        )
        if not gpus:
            continue
        key = (metadata.get("namespace"), metadata.get("name"))
        replicas = minimums[key] if key in minimums else literal_int(spec.get("replicas", 1))
        if replicas is None:
            view.unresolve(address, "spec.replicas", spec.get("replicas"))
            continue
        total += replicas * gpus
        notes.append(f"{metadata.get('name', address)}: {plural(replicas, 'replica')} x {plural(gpus, 'GPU')}")
    return total, notes


def node_groups(pricing: Pricing) -> list[Group]:
    """EKS managed node groups at rest and at maximum; GPU groups also hold the nodes served models need."""
    view, groups = pricing.view, []
    held_gpus, held_notes = served_gpus(pricing)
    for address, config in view.resources("aws_eks_node_group"):
        lt_ref = block(config.get("launch_template"))
        template = _template(pricing, lt_ref.get("id") or lt_ref.get("name"))
        types = config.get("instance_types")
        if types is None:
            types = [template["instance_type"]] if template and "instance_type" in template else ["t3.medium"]
        if not isinstance(types, list) or not all(isinstance(t, str) and "${" not in t for t in types):
            view.unresolve(address, "instance_types", types)
            continue
        minimum = view.integer(address, config, "scaling_config.min_size")
        maximum = view.integer(address, config, "scaling_config.max_size")
        desired = view.integer(address, config, "scaling_config.desired_size", default=-1)
        disk = literal_int(config["disk_size"]) if "disk_size" in config else None
        node = _node_price(pricing, address, types, template, disk)
        if node is None or minimum is None or maximum is None or desired is None:
            continue
        spot = config.get("capacity_type", "ON_DEMAND") == "SPOT"
        if spot and node.spot is None:
            pricing.missing(address, f"typical spot discount of the {types[0].split('.')[0]} family")
            continue
        hourly = (node.spot if spot else node.on_demand) or 0.0

        def cost(n: int, hourly: float = hourly, node: NodePrice = node) -> float:
            return n * (hourly + node.volume_hourly) * pricing.hours

        rest = desired if desired >= 0 else minimum
        name = str(config.get("node_group_name") or config.get("node_group_name_prefix") or address)
        component = "EKS GPU nodes" if node.gpus else "EKS CPU nodes"
        held, needed = "", 0
        if node.gpus and held_gpus:
            needed = math.ceil(held_gpus / node.gpus)
            rest, held = max(rest, needed), f", {needed} held by served models ({'; '.join(held_notes)})"
        purchase = "spot" if spot else "on demand"
        _burstable(pricing, component, name, types)
        item = f"{name}: {rest}-{maximum} x {types[0]} ({purchase}){held}"
        detail = f"{node.describe()}; root volumes {money(node.volume_hourly * pricing.hours)}/node-month"
        if len(types) > 1:
            detail += f"; may also launch {', '.join(types[1:])}"
        committable = 0.0 if spot else rest * node.on_demand * pricing.hours
        commitment = "ec2_compute_savings_plan" if committable else None
        pricing.add(Line(component, item, (address,), cost(rest), cost(maximum), detail, commitment, committable))
        group = Group((address,), f"EKS node group {name}", rest, minimum, maximum, cost, needed)
        groups.append(group)
        if minimum == 0 and maximum > 0:
            pricing.estimate.scale_to_zero.append(
                ScaleToZero(component, f"node group {name}", (address,), cost(rest), cost(maximum), node.describe())
            )
    if held_gpus and not any(line.component == "EKS GPU nodes" for line in pricing.estimate.lines):
        pricing.missing("kubernetes_deployment_v1", f"GPU node group for {'; '.join(held_notes)}")
    return groups


def auto_scaling_groups(pricing: Pricing) -> list[Group]:
    """Auto Scaling groups (the GPU training cluster): on-demand and spot shares of the mixed instances
    policy, priced per node-hour, at rest and at maximum."""
    view, groups = pricing.view, []
    for address, config in view.resources("aws_autoscaling_group"):
        policy = block(config.get("mixed_instances_policy"))
        spec = block(block(policy.get("launch_template")).get("launch_template_specification"))
        reference = spec.get("launch_template_id") or spec.get("launch_template_name")
        if not policy:
            top = block(config.get("launch_template"))
            reference = top.get("id") or top.get("name")
        template = _template(pricing, reference)
        if template is None:
            view.unresolve(address, "launch_template", reference)
            continue
        overrides = [o.get("instance_type") for o in blocks(block(policy.get("launch_template")).get("override"))]
        candidates = overrides or [template.get("instance_type")]
        types = [t for t in candidates if isinstance(t, str) and "${" not in t]
        if not types or len(types) != len(candidates):
            view.unresolve(address, "instance_type", candidates)
            continue
        distribution = block(policy.get("instances_distribution"))
        base = literal_int(distribution.get("on_demand_base_capacity", 0))
        share = literal_int(distribution.get("on_demand_percentage_above_base_capacity", 100))
        minimum = view.integer(address, config, "min_size")
        maximum = view.integer(address, config, "max_size")
        desired = view.integer(address, config, "desired_capacity", default=-1)
        node = _node_price(pricing, address, types, template, None)
        if node is None or minimum is None or maximum is None or desired is None or base is None or share is None:
            continue
        if share < 100 and node.spot is None:
            pricing.missing(address, f"typical spot discount of the {node.instance_type.split('.')[0]} family")
            continue

        def on_demand_count(n: int, base: int = base, share: int = share) -> int:
            return min(n, base) + math.ceil(max(n - base, 0) * share / 100)

        def cost(n: int, node: NodePrice = node) -> float:
            od = on_demand_count(n)
            return (od * node.on_demand + (n - od) * (node.spot or 0.0) + n * node.volume_hourly) * pricing.hours

        rest = desired if desired >= 0 else minimum
        name = str(config.get("name", address))
        component = "GPU training cluster" if node.gpus else "Auto Scaling groups"
        _burstable(pricing, component, name, types)
        purchase = "on demand" if share == 100 else "spot" if share == 0 and not base else "on demand and spot"
        item = f"{name}: {rest}-{maximum} x {node.instance_type} ({purchase})"
        detail = f"{node.describe()}; root volumes {money(node.volume_hourly * pricing.hours)}/node-month"
        if len(types) > 1:
            detail += f"; may also launch {', '.join(types[1:])}"
        committable = on_demand_count(rest) * node.on_demand * pricing.hours
        commitment = "ec2_compute_savings_plan" if committable else None
        pricing.add(Line(component, item, (address,), cost(rest), cost(maximum), detail, commitment, committable))
        groups.append(Group((address,), f"Auto Scaling group {name}", rest, minimum, maximum, cost))
        if minimum == 0 and maximum > 0:
            pricing.estimate.scale_to_zero.append(
                ScaleToZero(
                    component, f"Auto Scaling group {name}", (address,), cost(rest), cost(maximum), node.describe()
                )
            )
    return groups
