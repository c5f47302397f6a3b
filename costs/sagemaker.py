"""SageMaker endpoints: instance-backed production variants at their autoscaling minimum and maximum, and
serverless variants as a usage price (per GB-second of memory while requests run).

An endpoint configuration costs nothing by itself; only what an ``aws_sagemaker_endpoint`` deploys is priced.
"""

from __future__ import annotations

from costs.capacity import Group
from costs.context import Pricing, money, plural
from costs.model import Line, ScheduleEffect
from costs.schedules import CronError, longest_gap, weekly_minutes
from costs.terraform import JsonObject, block, blocks, references


def _configuration(pricing: Pricing, address: str, endpoint: JsonObject) -> tuple[str, JsonObject] | None:
    """The endpoint configuration an endpoint deploys: by reference, or by its literal name."""
    name = endpoint.get("endpoint_config_name")
    found = pricing.view.referenced(name, "aws_sagemaker_endpoint_configuration")
    if found is not None:
        return found
    for candidate, config in pricing.view.resources("aws_sagemaker_endpoint_configuration"):
        if isinstance(name, str) and config.get("name") == name:
            return candidate, config
    pricing.view.unresolve(address, "endpoint_config_name", name)
    return None


def _scaling_target(pricing: Pricing, endpoint: str, variant: str) -> tuple[str, JsonObject] | None:
    """The Application Auto Scaling target of one variant (``endpoint/<endpoint>/variant/<variant>``)."""
    for address, target in pricing.view.resources("aws_appautoscaling_target"):
        resource_id = target.get("resource_id")
        if not isinstance(resource_id, str) or not resource_id.endswith(f"/variant/{variant}"):
            continue
        if endpoint in references(resource_id):
            return address, target
    return None


def endpoints(pricing: Pricing) -> list[Group]:
    """Every endpoint's variants: instances at the scaling minimum (else the initial count) and maximum."""
    view, groups = pricing.view, []
    for address, endpoint in view.resources("aws_sagemaker_endpoint"):
        found = _configuration(pricing, address, endpoint)
        if found is None:
            continue
        config_address, config = found
        name = str(endpoint.get("name", address))
        variants = blocks(config.get("production_variants")) + blocks(config.get("shadow_production_variants"))
        for variant in variants:
            variant_name = str(variant.get("variant_name", "?"))
            serverless = block(variant.get("serverless_config"))
            if serverless:
                _serverless(pricing, config_address, name, variant_name, serverless)
                continue
            group = _instances(pricing, address, config_address, name, variant)
            if group is not None:
                groups.append(group)
    return groups


def _serverless(pricing: Pricing, address: str, endpoint: str, variant: str, config: JsonObject) -> None:
    if "provisioned_concurrency" in config:
        pricing.missing(address, f"provisioned concurrency of the serverless variant {variant} of {endpoint}")
        return
    memory = pricing.view.integer(address, config, "memory_size_in_mb")
    if memory is None:
        return
    basis = f"{endpoint}/{variant}: {memory} MB, at most {config.get('max_concurrency', '?')} concurrent requests"
    pricing.usage("SageMaker endpoints", "serverless inference compute", "sagemaker_serverless_compute", basis)
    pricing.usage("SageMaker endpoints", "serverless inference data", "sagemaker_serverless_data", basis)


def _instances(pricing: Pricing, endpoint_address: str, address: str, name: str, variant: JsonObject) -> Group | None:
    view = pricing.view
    variant_name = str(variant.get("variant_name", "?"))
    instance_type = view.string(address, variant, "instance_type")
    initial = view.integer(address, variant, "initial_instance_count", default=1)
    if instance_type is None or initial is None:
        return None
    price = pricing.prices.sagemaker(instance_type)
    if price is None:
        pricing.missing(address, f"SageMaker hosting instance type {instance_type}")
        return None
    addresses: tuple[str, ...] = (endpoint_address,)
    target = _scaling_target(pricing, endpoint_address, variant_name)
    managed = block(variant.get("managed_instance_scaling"))
    if target is not None:
        target_address, scaling = target
        minimum = view.integer(target_address, scaling, "min_capacity")
        maximum = view.integer(target_address, scaling, "max_capacity")
        addresses += (target_address,)
    elif managed.get("status") == "ENABLED":
        minimum = view.integer(address, managed, "min_instance_count")
        maximum = view.integer(address, managed, "max_instance_count")
    else:
        minimum = maximum = initial
    if minimum is None or maximum is None:
        return None

    def cost(n: int) -> float:
        return n * price.hourly * pricing.hours

    range_text = f"{minimum}-{maximum}" if maximum != minimum else f"{minimum}"
    item = f"{name}/{variant_name}: {range_text} x {instance_type}"
    detail = f"{instance_type} {money(price.hourly)}/h per instance ({plural(initial, 'instance')} at deployment)"
    pricing.add(
        Line(
            "SageMaker endpoints",
            item,
            addresses,
            cost(minimum),
            cost(maximum),
            detail,
            "sagemaker_savings_plan",
            cost(minimum),
        )
    )
    return Group(addresses, f"SageMaker endpoint {name}/{variant_name}", minimum, minimum, maximum, cost)


def idle_policies(pricing: Pricing, groups: list[Group]) -> None:
    """Idle policies of endpoints: a function (with ``ENDPOINT_NAME`` and ``IDLE_ACTION`` in its environment)
    that an idle alarm and a parking schedule (EventBridge Scheduler) invoke.

    Nothing is subtracted from the estimate: when a parked endpoint comes back depends on traffic and deploys.
    What parking saves per hour is stated, and for ``scale_to_minimum`` the longest a scaled-out endpoint keeps
    its extra instances before the next parking.
    """
    view = pricing.view
    schedules: dict[str, list[tuple[str, JsonObject]]] = {}
    for address, schedule in view.resources("aws_scheduler_schedule"):
        found = view.referenced(block(schedule.get("target")).get("arn"), "aws_lambda_function")
        if found is not None:
            schedules.setdefault(found[0], []).append((address, schedule))
    for function_address, function in view.resources("aws_lambda_function"):
        variables = block(function.get("environment")).get("variables") or {}
        endpoint, action = variables.get("ENDPOINT_NAME"), variables.get("IDLE_ACTION")
        variants = [
            g for g in groups if isinstance(endpoint, str) and g.label.startswith(f"SageMaker endpoint {endpoint}/")
        ]
        if not variants or not isinstance(action, str):
            continue
        at_minimum = sum(group.cost(group.minimum) for group in variants)
        scaled_out = sum(group.cost(group.maximum) - group.cost(group.minimum) for group in variants)
        parked = at_minimum if action == "delete_endpoint" else 0.0
        text = f"after {variables.get('IDLE_MINUTES', '?')} idle minutes: {action}"
        if parked:
            text += f"; while parked it saves {money(parked / pricing.hours)} an hour (back with the next deploy)"
        addresses, minutes = [function_address], []
        for address, schedule in schedules.get(function_address, []):
            expression = str(schedule.get("schedule_expression"))
            text += f"; parked at {expression} ({schedule.get('schedule_expression_timezone', 'UTC')})"
            addresses.append(address)
            try:
                minutes += weekly_minutes(expression)
            except CronError as error:
                text += f" (not evaluated: {error})"
        bound = bound_cost = None
        if minutes and action == "scale_to_minimum" and scaled_out > 0:
            bound = longest_gap(minutes) / 60
            bound_cost = scaled_out / pricing.hours * bound
        effect = ScheduleEffect(", ".join(addresses), f"SageMaker endpoint {endpoint}", text, 0.0, bound, bound_cost)
        pricing.estimate.schedules.append(effect)
