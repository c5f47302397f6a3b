"""Resources billed by the hour or the month whatever the load: the EKS control plane, NAT gateways and public
IPv4 addresses, interface endpoints, databases, load balancers, WAF, KMS keys, secrets and alarms.
"""

from __future__ import annotations

from collections import defaultdict

from costs.context import Pricing, money, plural
from costs.model import Line, UsageItem
from costs.terraform import JsonObject, block, blocks, is_reference, literal_int


def _counted(pricing: Pricing, resource_type: str) -> list[tuple[str, JsonObject, int]]:
    """``(address, arguments, count)`` of every resource of a type whose count resolves."""
    found = []
    for address, config in pricing.view.resources(resource_type):
        count = pricing.view.count(address, config)
        if count is not None:
            found.append((address, config, count))
    return found


def eks_control_planes(pricing: Pricing) -> None:
    """One line per EKS cluster: standard support per hour; extended support noted, not assumed."""
    for address, config, count in _counted(pricing, "aws_eks_cluster"):
        price = pricing.hourly(address, "eks_standard_support")
        if price is None:
            continue
        support = str(block(config.get("upgrade_policy")).get("support_type", "STANDARD"))
        name = config.get("name", address)
        detail = f"{money(price)}/h standard support"
        if support == "EXTENDED":
            extended = pricing.hourly(address, "eks_extended_support")
            if extended is None:
                continue
            detail += (
                f"; support_type EXTENDED: {money(extended)}/h ({money(extended * pricing.hours)}/month) once "
                f"version {config.get('version', '?')} leaves standard support instead of upgrading"
            )
        monthly = count * price * pricing.hours
        pricing.add(Line("EKS control plane", f"{name}", (address,), monthly, monthly, detail))


def nat_gateways(pricing: Pricing) -> None:
    """NAT gateways per hour, and every public IPv4 address (Elastic IP) per hour beside them."""
    gateways = _counted(pricing, "aws_nat_gateway")
    nat_eips: set[str] = set()
    if gateways:
        price = pricing.hourly(gateways[0][0], "nat_gateway")
        count = count_of(gateways)
        if price is not None:
            monthly = count * price * pricing.hours
            addresses = tuple(address for address, _, _ in gateways)
            pricing.add(
                Line(
                    "NAT gateways + public IPv4",
                    plural(count, "NAT gateway"),
                    addresses,
                    monthly,
                    monthly,
                    f"{money(price)}/h each",
                )
            )
        for _, config, _ in gateways:
            found = pricing.view.referenced(config.get("allocation_id"), "aws_eip")
            if found is not None:
                nat_eips.add(found[0])
        pricing.usage("NAT gateways + public IPv4", "data processed", "nat_gateway_data", plural(count, "gateway"))
    addresses_by_component: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for address, _, count in _counted(pricing, "aws_eip"):
        component = "NAT gateways + public IPv4" if address in nat_eips else "Public IPv4 addresses"
        addresses_by_component[component].append((address, count))
    for component, eips in addresses_by_component.items():
        price = pricing.hourly(eips[0][0], "public_ipv4")
        if price is None:
            continue
        count = sum(n for _, n in eips)
        monthly = count * price * pricing.hours
        label = "of the NAT gateways" if component.startswith("NAT") else "(Elastic IPs)"
        pricing.add(
            Line(
                component,
                f"{plural(count, 'public IPv4 address', 'public IPv4 addresses')} {label}",
                tuple(a for a, _ in eips),
                monthly,
                monthly,
                f"{money(price)}/h each",
            )
        )


def count_of(found: list[tuple[str, JsonObject, int]]) -> int:
    """The total count of resources found by :func:`_counted`."""
    return sum(n for _, _, n in found)


def interface_endpoints(pricing: Pricing) -> None:
    """Interface endpoints per AZ-hour: one network interface in each subnet; gateway endpoints are free."""
    priced: list[tuple[str, int]] = []
    for address, config, count in _counted(pricing, "aws_vpc_endpoint"):
        kind = config.get("vpc_endpoint_type", "Gateway")
        if kind == "Gateway":
            continue
        if kind != "Interface":
            pricing.missing(address, f"VPC endpoint type {kind!r}")
            continue
        subnets = pricing.view.strings(address, config, "subnet_ids")
        if subnets is not None:
            priced.append((address, count * len(subnets)))
    if not priced:
        return
    price = pricing.hourly(priced[0][0], "interface_endpoint_az")
    if price is None:
        return
    az_hours = sum(n for _, n in priced)
    monthly = az_hours * price * pricing.hours
    pricing.add(
        Line(
            "Interface endpoints",
            f"{plural(len(priced), 'endpoint')}, {az_hours} endpoint-AZs",
            tuple(address for address, _ in priced),
            monthly,
            monthly,
            f"{money(price)} per endpoint per AZ-hour",
        )
    )
    pricing.usage("Interface endpoints", "data processed", "interface_endpoint_data", plural(len(priced), "endpoint"))


def databases(pricing: Pricing) -> None:
    """RDS instances: instance hours and provisioned storage (both doubled by Multi-AZ), the managed secret."""
    view = pricing.view
    for address, config, count in _counted(pricing, "aws_db_instance"):
        engine = view.string(address, config, "engine", default="postgres")
        instance_class = view.string(address, config, "instance_class")
        storage = view.integer(
            address, config, "allocated_storage", default=0 if "replicate_source_db" in config else None
        )
        storage_type = view.string(address, config, "storage_type", default="io1" if "iops" in config else "gp2")
        multi_az = config.get("multi_az", False)
        if is_reference(multi_az):
            view.unresolve(address, "multi_az", multi_az)
            continue
        if engine is None or instance_class is None or storage is None or storage_type is None:
            continue
        hourly = pricing.prices.rds(engine, instance_class)
        per_gb = pricing.prices.rds_storage(storage_type)
        if hourly is None:
            pricing.missing(address, f"RDS instance class {instance_class} ({engine})")
        if per_gb is None:
            pricing.missing(address, f"RDS storage type {storage_type}")
        if hourly is None or per_gb is None:
            continue
        copies = 2 if multi_az else 1
        instances = count * copies * hourly * pricing.hours
        volume = count * copies * storage * per_gb
        secret = 0.0
        detail = (
            f"{instance_class} {money(hourly)}/h x {copies}{' (Multi-AZ)' if multi_az else ''}; "
            f"{storage} GB {storage_type} at {money(per_gb)}/GB-month x {copies}"
        )
        if config.get("manage_master_user_password") is True:
            secret_price = pricing.monthly(address, "secret")
            if secret_price is None:
                continue
            secret = count * secret_price
            detail += f"; master user secret (Secrets Manager) {money(secret_price)}/month"
        name = config.get("identifier", address)
        monthly = instances + volume + secret
        pricing.add(
            Line("RDS databases", f"{name}", (address,), monthly, monthly, detail, "rds_reserved_instance", instances)
        )
        ceiling = literal_int(config.get("max_allocated_storage"))
        if ceiling:
            unit = "GB-month (twice for Multi-AZ)" if multi_az else "GB-month"
            basis = f"{name}: storage autoscaling from {storage} up to {ceiling} GB"
            pricing.estimate.usage.append(UsageItem("RDS databases", "storage growth", per_gb * copies, unit, basis))
        pricing.usage("RDS databases", "backup storage", "rds_backup_storage", str(name))


def kms_keys(pricing: Pricing) -> None:
    """Customer managed keys (and replica keys) per month."""
    keys = _counted(pricing, "aws_kms_key") + _counted(pricing, "aws_kms_replica_key")
    if not keys:
        return
    price = pricing.monthly(keys[0][0], "kms_key")
    if price is None:
        return
    count = count_of(keys)
    rotated = sum(n for _, config, n in keys if config.get("enable_key_rotation") is True)
    detail = f"{money(price)} per key-month"
    if rotated:
        detail += (
            f"; {rotated} rotate yearly: each of the first two rotations adds {money(price)}/month "
            f"(up to {money(3 * price)} per key from the third year)"
        )
    pricing.add(
        Line("KMS keys", plural(count, "key"), tuple(a for a, _, _ in keys), count * price, count * price, detail)
    )
    pricing.usage("KMS keys", "requests", "kms_requests", plural(count, "key"))


def load_balancers(pricing: Pricing) -> None:
    """Load balancers: ``aws_lb`` resources and those the AWS Load Balancer Controller creates for Ingresses
    (one per Ingress, or per ``group.name``) and for Services of type LoadBalancer."""
    balancers: list[tuple[str, str, str]] = []  # (address, kind, label)
    for address, config, count in _counted(pricing, "aws_lb"):
        kind = config.get("load_balancer_type", "application")
        balancers += [(address, str(kind), str(config.get("name", address)))] * count
    groups: dict[str, list[str]] = defaultdict(list)
    for address, config, _ in _counted(pricing, "kubernetes_ingress_v1") + _counted(pricing, "kubernetes_ingress"):
        annotations = block(config.get("metadata")).get("annotations", {}) or {}
        spec = block(config.get("spec"))
        alb = spec.get("ingress_class_name") == "alb" or annotations.get("kubernetes.io/ingress.class") == "alb"
        if not alb:
            continue
        metadata = block(config.get("metadata"))
        name = f"Ingress {metadata.get('namespace', 'default')}/{metadata.get('name', address)}"
        group = annotations.get("alb.ingress.kubernetes.io/group.name")
        groups[f"Ingress group {group}" if group else name].append(address)
    for label, members in groups.items():
        balancers.append((members[0], "application", label))
    for address, config, _ in _counted(pricing, "kubernetes_service_v1") + _counted(pricing, "kubernetes_service"):
        if block(config.get("spec")).get("type") != "LoadBalancer":
            continue
        annotations = block(config.get("metadata")).get("annotations", {}) or {}
        flavour = annotations.get("service.beta.kubernetes.io/aws-load-balancer-type", "")
        kind = "network" if flavour in ("external", "nlb", "nlb-ip") else "classic"
        metadata = block(config.get("metadata"))
        balancers.append(
            (address, kind, f"Service {metadata.get('namespace', 'default')}/{metadata.get('name', address)}")
        )
    keys = {"application": ("application_load_balancer", "alb_lcu"), "network": ("network_load_balancer", "nlb_lcu")}
    for address, kind, label in balancers:
        if kind not in keys:
            pricing.missing(address, f"{kind} load balancer")
            continue
        price = pricing.hourly(address, keys[kind][0])
        if price is None:
            continue
        monthly = price * pricing.hours
        pricing.add(
            Line("Load balancers", f"{kind} load balancer: {label}", (address,), monthly, monthly, f"{money(price)}/h")
        )
    for kind in sorted({kind for _, kind, _ in balancers if kind in keys}):
        count = sum(1 for _, k, _ in balancers if k == kind)
        pricing.usage(
            "Load balancers", f"{kind} load balancer capacity units", keys[kind][1], plural(count, "load balancer")
        )


def web_acls(pricing: Pricing) -> None:
    """WAF web ACLs per month with their rules (a managed rule group counts as one rule)."""
    for address, config, count in _counted(pricing, "aws_wafv2_web_acl"):
        acl = pricing.monthly(address, "waf_web_acl")
        rule = pricing.monthly(address, "waf_rule")
        if acl is None or rule is None:
            continue
        rules = blocks(config.get("rule"))
        if "rule_json" in config:
            pricing.view.unresolve(address, "rule_json", "rules given as JSON are not counted")
            continue
        monthly = count * (acl + len(rules) * rule)
        pricing.add(
            Line(
                "WAF",
                f"web ACL {config.get('name', address)}, {plural(len(rules), 'rule')}",
                (address,),
                monthly,
                monthly,
                f"{money(acl)} per web ACL-month + {money(rule)} per rule-month",
            )
        )
        pricing.usage("WAF", "requests inspected", "waf_requests", str(config.get("name", address)))


def secrets(pricing: Pricing) -> None:
    """Secrets Manager secrets per month (each replica is billed as a secret)."""
    found = _counted(pricing, "aws_secretsmanager_secret")
    if not found:
        return
    price = pricing.monthly(found[0][0], "secret")
    if price is None:
        return
    count = sum(n * (1 + len(blocks(config.get("replica")))) for _, config, n in found)
    monthly = count * price
    pricing.add(
        Line(
            "Secrets Manager",
            plural(count, "secret"),
            tuple(a for a, _, _ in found),
            monthly,
            monthly,
            f"{money(price)} per secret-month",
        )
    )
    pricing.usage("Secrets Manager", "API calls", "secrets_api", plural(count, "secret"))


def alarms(pricing: Pricing) -> None:
    """CloudWatch alarms per month: standard or high resolution per metric, composite alarms."""
    standard = high = 0
    addresses: list[str] = []
    for address, config, count in _counted(pricing, "aws_cloudwatch_metric_alarm"):
        addresses.append(address)
        queries = blocks(config.get("metric_query"))
        if queries:
            metrics = [block(query.get("metric")) for query in queries if query.get("metric")]
            anomaly = any("ANOMALY_DETECTION_BAND" in str(query.get("expression", "")) for query in queries)
            periods = [literal_int(metric.get("period")) or 60 for metric in metrics]
            per_metric = 3 if anomaly else 1
            high += count * per_metric * sum(1 for period in periods if period < 60)
            standard += count * per_metric * sum(1 for period in periods if period >= 60)
            continue
        period = literal_int(config.get("period"))
        if period is None:
            pricing.view.unresolve(address, "period", config.get("period"))
            continue
        anomaly = "threshold_metric_id" in config
        if period < 60:
            high += count * (3 if anomaly else 1)
        else:
            standard += count * (3 if anomaly else 1)
    composite = _counted(pricing, "aws_cloudwatch_composite_alarm")
    addresses += [address for address, _, _ in composite]
    if not addresses:
        return
    prices = {
        key: pricing.monthly(addresses[0], key)
        for key in ("alarm_standard", "alarm_high_resolution", "alarm_composite")
    }
    counts = {"alarm_standard": standard, "alarm_high_resolution": high, "alarm_composite": count_of(composite)}
    if any(prices[key] is None for key, n in counts.items() if n):
        return
    monthly = sum(n * (prices[key] or 0.0) for key, n in counts.items())
    names = {"alarm_standard": "standard", "alarm_high_resolution": "high-resolution", "alarm_composite": "composite"}
    item = ", ".join(f"{n} {names[key]}" for key, n in counts.items() if n) or "no billable alarm metric"
    detail = "; ".join(f"{names[key]} {money(prices[key] or 0.0)}/alarm metric-month" for key, n in counts.items() if n)
    pricing.add(Line("CloudWatch alarms", item, tuple(addresses), monthly, monthly, detail))
