"""The estimate as text (``make cost``), Markdown, JSON, and the README's generated cost section."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from decimal import ROUND_HALF_UP, Decimal

from costs.context import money
from costs.model import COMPONENT_ORDER, Estimate, ScheduleEffect, ordered

README_BEGIN = "<!-- cost-estimate:begin -->"
README_END = "<!-- cost-estimate:end -->"
COMMAND = "python -m costs --write-readme README.md"
KINDS = {
    "ec2_compute_savings_plan": "Compute Savings Plan",
    "sagemaker_savings_plan": "SageMaker Savings Plan",
    "rds_reserved_instance": "RDS reserved instance",
}


def _rounded(value: float, places: str) -> Decimal:
    # Half up, as people round money (format() rounds half to even: $36.50 would show as $36).
    return Decimal(repr(value)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def dollars(value: float) -> str:
    """A monthly figure rounded to whole units (``$1,027``)."""
    return f"${_rounded(value, '1'):,}"


def cents(value: float) -> str:
    """A monthly figure with cents (``$36.50``)."""
    return f"${_rounded(value, '0.01'):,}"


def _cell(value: float) -> str:
    # Whole units keep the table readable; a few cents (a secret, two alarms) would round to a misleading $0.
    return cents(value) if 0 < abs(value) < 10 else dollars(value)


def _range(low: float, high: float) -> str:
    return _cell(low) if _cell(low) == _cell(high) else f"{_cell(low)} - {_cell(high)}"


def _gaps(estimate: Estimate) -> list[str]:
    lines = [f"  unpriced: {item.address}: {item.what}" for item in estimate.unpriced]
    lines += [f"  unresolved: {item.address}: {item.field} = {item.value}" for item in estimate.unresolved]
    return lines


def text(estimates: Sequence[Estimate]) -> str:
    """The report ``make cost`` prints: every stack's lines, totals, savings, usage items and gaps."""
    out: list[str] = []
    for estimate in estimates:
        kind = "account-level stack" if estimate.account_level else "environment"
        prices = (
            f"prices of {estimate.price_date} (costs/prices/{estimate.price_source})"
            if estimate.price_date
            else "no prices"
        )
        out.append(
            f"{estimate.stack} ({kind}, {estimate.region or 'no region'}, {prices}), {estimate.currency} a month"
        )
        out.append(f"  {'component':<28} {'at rest':>12} {'at maximum':>12}  item")
        for line in sorted(estimate.lines, key=lambda line: _position(line.component)):
            out.append(f"  {line.component:<28} {cents(line.at_min):>12} {cents(line.at_max):>12}  {line.item}")
            if line.detail:
                out.append(" " * 58 + line.detail)
        out.append(f"  {'total':<28} {cents(estimate.total_min):>12} {cents(estimate.total_max):>12}")
        dominant = estimate.dominant()
        if dominant:
            out.append(f"  dominated by {dominant[0]} ({dominant[1]:.0%} of the total at rest)")
        for entry in estimate.scale_to_zero:
            out.append(
                f"  scale to zero: {entry.item} costs {cents(entry.at_rest)} at rest, {cents(entry.at_max_always_on)} "
                f"if it ran 24x7 at maximum (saves {cents(entry.saving)}); {entry.per_node_hour}"
            )
        for effect in estimate.schedules:
            out.append(f"  schedule: {effect.target}: {_schedule(effect)}")
        for commitment in estimate.commitments:
            out.append(
                f"  one-year {KINDS.get(commitment.kind, commitment.kind)} on {commitment.component} at rest "
                f"({cents(commitment.covered)}, {commitment.discount:.0%} off): saves {cents(commitment.saving)}"
            )
        if estimate.usage:
            out.append("  usage-based, not included:")
            for item in estimate.usage:
                out.append(f"    {item.component}, {item.name}: {money(item.price)} per {item.unit}; {item.basis}")
        out += _gaps(estimate)
        out.append("")
    return "\n".join(out)


def _position(component: str) -> int:
    return COMPONENT_ORDER.index(component) if component in COMPONENT_ORDER else len(COMPONENT_ORDER)


def _schedule(effect: ScheduleEffect) -> str:
    parts = [effect.description]
    if effect.monthly_saving > 0.005:
        parts.append(f"saves {cents(effect.monthly_saving)} a month")
    if effect.bound_hours is not None and effect.bound_cost is not None:
        parts.append(
            f"a run left at maximum stops within {effect.bound_hours:.0f} h (at most {cents(effect.bound_cost)})"
        )
    return "; ".join(parts)


def as_json(estimates: Sequence[Estimate]) -> str:
    """The estimates as JSON, with the totals and savings worked out."""
    documents = []
    for estimate in estimates:
        document = asdict(estimate)
        dominant = estimate.dominant()
        document.update(
            complete=estimate.complete,
            total_min=round(estimate.total_min, 2),
            total_max=round(estimate.total_max, 2),
            components={
                name: {"at_min": round(a, 2), "at_max": round(b, 2)} for name, (a, b) in estimate.components().items()
            },
            dominant={"component": dominant[0], "share": round(dominant[1], 4)} if dominant else None,
            scale_to_zero_saving=round(estimate.scale_to_zero_saving, 2),
            schedule_saving=round(estimate.schedule_saving, 2),
            commitment_saving=round(estimate.commitment_saving, 2),
        )
        documents.append(document)
    return json.dumps(documents, indent=2, sort_keys=True)


def summary_table(estimates: Sequence[Estimate]) -> list[str]:
    """The environments side by side: components, totals, what dominates and the savings (Markdown)."""
    envs = [estimate for estimate in estimates if not estimate.account_level]
    components = ordered(name for estimate in envs for name in estimate.components())
    rows = [f"| Component | {' | '.join(e.stack for e in envs)} |", f"|---|{'---:|' * len(envs)}"]
    for name in components:
        cells = []
        for estimate in envs:
            found = estimate.components().get(name)
            cells.append(_range(*found) if found else "-")
        rows.append(f"| {name} | {' | '.join(cells)} |")
    rows.append(f"| **Total at rest** | {' | '.join(f'**{_cell(e.total_min)}**' for e in envs)} |")
    rows.append(f"| Total at maximum | {' | '.join(_cell(e.total_max) for e in envs)} |")
    dominant = [e.dominant() for e in envs]
    rows.append(f"| Dominated by | {' | '.join(f'{d[0]} ({d[1]:.0%})' if d else '-' for d in dominant)} |")
    rows.append(
        "| Scale to zero saves (GPU capacity at rest vs 24x7 at maximum) | "
        f"{' | '.join(dollars(e.scale_to_zero_saving) if e.scale_to_zero else '-' for e in envs)} |"
    )
    rows.append(
        "| One-year commitments on the sustained part save | "
        f"{' | '.join(dollars(e.commitment_saving) if e.commitments else '-' for e in envs)} |"
    )
    return rows


def markdown(estimates: Sequence[Estimate], details: bool = True) -> str:
    """The summary table, the per-node-hour prices of GPU capacity, schedules, commitments and usage items;
    with ``details`` also every line of every stack."""
    envs = [estimate for estimate in estimates if not estimate.account_level]
    out = summary_table(estimates)
    out.append("")
    out.append('Where a component scales, "a - b" is at rest (minimum sizes, desired counts) - at maximum size.')
    out.append("")
    for estimate in envs:
        for entry in estimate.scale_to_zero:
            always_on = dollars(entry.at_max_always_on)
            out.append(
                f"- {estimate.stack}, {entry.item}: {_cell(entry.at_rest)} at rest, {always_on} if it ran 24x7 at "
                f"maximum; {entry.per_node_hour}."
            )
        for effect in estimate.schedules:
            out.append(f"- {estimate.stack}, schedule of {effect.target}: {_schedule(effect)}.")
    kinds = sorted({(c.kind, c.discount) for e in envs for c in e.commitments})
    if kinds:
        assumed = ", ".join(f"{KINDS.get(kind, kind)} {discount:.0%}" for kind, discount in kinds)
        out.append(f"- Commitments assumed (one year, no upfront): {assumed}; on instances at rest only, not storage.")
    usage: dict[tuple[str, str, float, str], list[str]] = {}
    for estimate in envs:
        for item in estimate.usage:
            usage.setdefault((item.component, item.name, item.price, item.unit), []).append(estimate.stack)
    if usage:
        out.append("")
        out.append("Usage-based, not included in the figures above:")
        out.append("")
        for (component, name, price, unit), stacks in usage.items():
            where = "" if len(stacks) == len(envs) else f" ({', '.join(dict.fromkeys(stacks))})"
            out.append(f"- {component}, {name}: {money(price)} per {unit}{where}")
    if details:
        for estimate in estimates:
            out += [
                "",
                f"### {estimate.stack}",
                "",
                "| Component | Item | At rest | At maximum | Prices |",
                "|---|---|---:|---:|---|",
            ]
            for line in estimate.lines:
                out.append(
                    f"| {line.component} | {line.item} | {cents(line.at_min)} | {cents(line.at_max)} | {line.detail} |"
                )
            out += [f"- {gap.strip()}" for gap in _gaps(estimate)]
    return "\n".join(out) + "\n"


def readme_block(estimates: Sequence[Estimate]) -> str:
    """The README's generated section, markers included."""
    envs = [estimate for estimate in estimates if not estimate.account_level]
    dates = sorted(
        {
            f"{e.region} list prices of {e.price_date} ([costs/prices/{e.price_source}](costs/prices/{e.price_source}))"
            for e in envs
            if e.price_date
        }
    )
    intro = (
        f"<!-- Generated from the synthesized stacks by `{COMMAND}` (docs/costs.md); edit the estimator, not this "
        "block. -->\n"
        f"Monthly estimate of the default matrix ({' and '.join(dates) or 'no prices'}, 730 hours a month, before "
        "tax, credits and the free tier):"
    )
    return f"{README_BEGIN}\n{intro}\n\n{markdown(estimates, details=False)}{README_END}"


def replace_block(document: str, block: str) -> str:
    """``document`` with the text between the README markers replaced by ``block``."""
    start, end = document.find(README_BEGIN), document.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no {README_BEGIN} ... {README_END} section")
    return document[:start] + block + document[end + len(README_END) :]
