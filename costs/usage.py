"""Costs that depend on use, listed with their unit prices and the resources that incur them, never summed:
storage (S3, ECR, CloudWatch Logs, EBS volumes of persistent volume claims), data transfer, Lambda, Budgets.

NAT and endpoint data, load balancer capacity units, WAF requests and the like are listed where those
resources are priced (costs/fixed.py); SageMaker serverless inference in costs/sagemaker.py.
"""

from __future__ import annotations

from costs.context import Pricing, plural
from costs.terraform import block, literal_int


def _names(pricing: Pricing, resource_type: str) -> list[str]:
    return [address for address, _ in pricing.view.resources(resource_type)]


def usage_items(pricing: Pricing) -> None:
    """List every usage-based cost the stack's resources incur."""
    view = pricing.view
    buckets = _names(pricing, "aws_s3_bucket")
    if buckets:
        pricing.usage("S3", "Standard storage and requests", "s3_standard", plural(len(buckets), "bucket"))
    repositories = _names(pricing, "aws_ecr_repository")
    if repositories:
        pricing.usage("ECR", "image storage", "ecr_storage", plural(len(repositories), "repository", "repositories"))
    groups = list(view.resources("aws_cloudwatch_log_group"))
    if groups:
        days = sorted({literal_int(c.get("retention_in_days")) or 0 for _, c in groups})
        kept = (
            "kept forever"
            if 0 in days
            else f"kept {days[0]}-{days[-1]} days"
            if len(days) > 1
            else f"kept {days[0]} days"
        )
        basis = f"{plural(len(groups), 'log group')} {kept}"
        sources = []
        if _names(pricing, "aws_flow_log"):
            sources.append("VPC flow logs")
        if any(block(c).get("enabled_cluster_log_types") for _, c in view.resources("aws_eks_cluster")):
            sources.append("EKS control-plane logs")
        if sources:
            basis += f", with {' and '.join(sources)}"
        pricing.usage("CloudWatch Logs", "ingestion", "logs_ingestion", basis)
        pricing.usage("CloudWatch Logs", "storage", "logs_storage", basis)
    functions = list(view.resources("aws_lambda_function"))
    if functions:
        pricing.usage("Lambda", "requests", "lambda_requests", plural(len(functions), "function"))
        for architecture in sorted({str((c.get("architectures") or ["x86_64"])[0]) for _, c in functions}):
            count = sum(1 for _, c in functions if str((c.get("architectures") or ["x86_64"])[0]) == architecture)
            pricing.usage(
                "Lambda", f"duration ({architecture})", f"lambda_duration_{architecture}", plural(count, "function")
            )
    budgets = _names(pricing, "aws_budgets_budget")
    if budgets:
        pricing.usage("Budgets", "monthly budgets", "budget_day", plural(len(budgets), "budget"))
    classes = _names(pricing, "kubernetes_storage_class_v1")
    if classes:
        pricing.usage(
            "EBS volumes",
            "persistent volume claims",
            "ebs_gp3_volumes",
            plural(len(classes), "storage class", "storage classes"),
        )
    if _names(pricing, "aws_vpc") or _names(pricing, "aws_subnet"):
        pricing.usage("Data transfer", "out to the internet", "internet_egress", "every environment")
        pricing.usage("Data transfer", "between Availability Zones", "inter_az_transfer", "every environment")
