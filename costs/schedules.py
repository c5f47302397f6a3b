"""Scheduled scaling: nightly and weekend stops, morning starts, endpoint parking.

Two resource types are read: ``aws_autoscaling_schedule`` (Auto Scaling groups, including the group behind an
EKS managed node group) and ``aws_appautoscaling_scheduled_action`` (a SageMaker variant's scaling target).
Recurring schedules are laid out over one week (cron fields for minute, hour and day of week; a schedule that
names days of the month or months is listed but not evaluated), and each group's resting count is followed
through the week, so the saving is the week's average against the largest count it rests at. A stop also
bounds a run someone scaled up and forgot: at most until the next stop. Daylight saving time is ignored.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from costs.capacity import Group
from costs.context import Pricing, money
from costs.model import Line, ScheduleEffect
from costs.terraform import JsonObject, block, literal_int, references

WEEK_MINUTES = 7 * 24 * 60
_DAYS = {name: index for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_AWS_CRON = re.compile(r"cron\((.+)\)")


class CronError(ValueError):
    """A cron expression this estimator does not evaluate (days of the month, L, W, #, rate())."""


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    """The values of one cron field: ``*``, ``?``, numbers, names, ranges ``a-b`` and steps ``/n``."""
    values: set[int] = set()
    for part in text.upper().split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() else 1 if not step_text else -1
        if step < 1:
            raise CronError(f"step {step_text!r}")
        if body in ("*", "?"):
            start, end = low, high
        else:
            first, _, last = body.partition("-")
            start = _number(first, names)
            end = _number(last, names) if last else (high if step_text else start)
        if not low <= start <= end <= high:
            raise CronError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"{text!r}")
    return int(text)


def weekly_minutes(expression: str) -> list[int]:
    """The minutes of the week (0 = Sunday 00:00) a recurring schedule fires at, sorted.

    Unix cron (``aws_autoscaling_schedule``: ``m h dom mon dow``, Sunday 0 or 7) and AWS cron
    (``cron(m h dom mon dow year)``, Sunday 1) are read; a schedule restricted to days of the month or months
    is not weekly and raises :class:`CronError`, and so do ``L``, ``W``, ``#`` and ``rate()``.
    """
    aws = _AWS_CRON.fullmatch(expression.strip())
    fields = (aws.group(1) if aws else expression).split()
    if len(fields) != (6 if aws else 5):
        raise CronError(f"{expression!r} has {len(fields)} fields")
    minute, hour, day, month = fields[:4]
    if day not in ("*", "?") or month not in ("*", "?"):
        raise CronError("days of the month or months")
    names = {name: index + 1 for name, index in _DAYS.items()} if aws else {**_DAYS}
    days = _field(fields[4], 1 if aws else 0, 7, names)
    days = {(d - 1) % 7 for d in days} if aws else {d % 7 for d in days}
    return sorted(d * 1440 + h * 60 + m for d in days for h in _field(hour, 0, 23) for m in _field(minute, 0, 59))


def longest_gap(minutes: list[int]) -> int:
    """The longest time, in minutes, from one of the week's ``minutes`` to the next (the week wraps around)."""
    ordered = sorted(set(minutes))
    wrap = WEEK_MINUTES - ordered[-1] + ordered[0]
    return max([b - a for a, b in itertools.pairwise(ordered)] + [wrap])


@dataclass(frozen=True)
class _Action:
    """One scheduled action and when it fires.

    count: the resting count it sets (desired capacity; a variant's minimum), if any.
    floor: a minimum it raises the resting count to (an Auto Scaling group's ``min_size``), if any.
    cap: the maximum it sets, if any; 0 stops the group.
    """

    address: str
    description: str
    minutes: tuple[int, ...]
    count: int | None
    floor: int | None
    cap: int | None

    def apply(self, state: tuple[int, int], demand: int = 0) -> tuple[int, int]:
        """The (resting count, maximum) after the action; ``demand`` comes back as soon as the maximum allows."""
        count, cap = state
        if self.cap is not None:
            cap = self.cap
        if self.count is not None:
            count = self.count
        if self.floor is not None:
            count = max(count, self.floor)
        return min(max(count, demand), cap), cap

    @property
    def stops(self) -> bool:
        """The action brings the group to zero (a desired count or a maximum of 0)."""
        return self.count == 0 or self.cap == 0


def _capacity(value: object) -> int | None:
    """A scheduled size: None when absent or -1 (Auto Scaling's "leave unchanged")."""
    number = literal_int(value)
    return number if number is not None else None


def _asg_actions(pricing: Pricing, index: dict[str, Group]) -> dict[str, list[_Action]]:
    names = {str(c.get("name")): a for a, c in pricing.view.resources("aws_autoscaling_group") if "name" in c}
    actions: dict[str, list[_Action]] = {}
    for address, config in pricing.view.resources("aws_autoscaling_schedule"):
        target_value = config.get("autoscaling_group_name")
        target = next((a for a in references(target_value) if a in index), names.get(str(target_value)))
        recurrence = config.get("recurrence")
        what = ", ".join(
            f"{key} {config[key]}" for key in ("desired_capacity", "min_size", "max_size") if config.get(key, -1) != -1
        )
        when = f"{recurrence or config.get('start_time', 'once')} ({config.get('time_zone', 'UTC')})"
        action = _action(
            pricing, address, f"{when}: {what}", recurrence, config, ("desired_capacity", "min_size", "max_size")
        )
        _collect(pricing, actions, target, action, address, f"{when}: {what}")
    return actions


def _app_actions(pricing: Pricing, index: dict[str, Group]) -> dict[str, list[_Action]]:
    targets = {str(c.get("resource_id")): a for a, c in pricing.view.resources("aws_appautoscaling_target")}
    actions: dict[str, list[_Action]] = {}
    for address, config in pricing.view.resources("aws_appautoscaling_scheduled_action"):
        if config.get("service_namespace") not in ("sagemaker", None):
            continue
        resource_id = config.get("resource_id")
        target = next((a for a in references(resource_id) if a in index), targets.get(str(resource_id)))
        scaling = block(config.get("scalable_target_action"))
        what = ", ".join(f"{key} {scaling[key]}" for key in ("min_capacity", "max_capacity") if key in scaling)
        schedule = config.get("schedule")
        when = f"{schedule} ({config.get('timezone', 'UTC')})"
        action = _action(pricing, address, f"{when}: {what}", schedule, scaling, ("min_capacity", None, "max_capacity"))
        _collect(pricing, actions, target, action, address, f"{when}: {what}")
    return actions


def _action(
    pricing: Pricing, address: str, text: str, recurrence: object, config: JsonObject, keys: tuple[str, str | None, str]
) -> _Action | None:
    """The action of one schedule, or None (listed as not evaluated) when it does not recur weekly."""
    try:
        if not isinstance(recurrence, str) or recurrence.startswith(("at(", "rate(")):
            raise CronError("not a recurring cron schedule")
        minutes = tuple(weekly_minutes(recurrence))
    except CronError as error:
        pricing.estimate.schedules.append(ScheduleEffect(address, "-", f"{text}; not evaluated: {error}", 0.0))
        return None
    count_key, floor_key, cap_key = keys
    floor = _capacity(config.get(floor_key)) if floor_key else None
    return _Action(address, text, minutes, _capacity(config.get(count_key)), floor, _capacity(config.get(cap_key)))


def _collect(
    pricing: Pricing,
    actions: dict[str, list[_Action]],
    target: str | None,
    action: _Action | None,
    address: str,
    text: str,
) -> None:
    if action is None:
        return
    if target is None:
        pricing.estimate.schedules.append(ScheduleEffect(address, "-", f"{text}; its target is not in this stack", 0.0))
        return
    actions.setdefault(target, []).append(action)


def _minutes(group: Group, actions: list[_Action]) -> list[tuple[int, int]]:
    """The (resting count, maximum) of every minute of one week, from the state the previous week ended in."""
    events: dict[int, list[_Action]] = {}
    for action in actions:
        for minute in action.minutes:
            events.setdefault(minute, []).append(action)
    state = (group.rest, group.maximum)
    for minute in sorted(events):
        for action in events[minute]:
            state = action.apply(state, group.demand)
    week = []
    for minute in range(WEEK_MINUTES):
        for action in events.get(minute, []):
            state = action.apply(state, group.demand)
        week.append(state)
    return week


def _longest_run(week: list[tuple[int, int]], stops: set[int]) -> float | None:
    """The longest a group scaled up at any moment it may run keeps running before a stop, in hours."""
    if not stops:
        return None
    longest, next_stop = 0, None
    for minute in range(2 * WEEK_MINUTES - 1, -1, -1):
        # A run started in this minute ends at the next stop after it.
        if minute < WEEK_MINUTES and next_stop is not None and week[minute][1] > 0:
            longest = max(longest, next_stop - minute)
        if minute % WEEK_MINUTES in stops:
            next_stop = minute
    return longest / 60


def schedules(pricing: Pricing, groups: list[Group]) -> None:
    """Price every schedule against the group it scales."""
    index = {address: group for group in groups for address in group.addresses}
    found = _asg_actions(pricing, index)
    for target, actions in _app_actions(pricing, index).items():
        found.setdefault(target, []).extend(actions)
    for target, actions in found.items():
        group = index[target]
        week = _minutes(group, actions)
        counts = [count for count, _ in week]
        reference = max([group.rest, *counts])
        average = sum(group.cost(count) for count in counts) / WEEK_MINUTES
        saving = group.cost(reference) - average
        addresses = ", ".join(action.address for action in actions)
        stops = {minute for action in actions if action.stops for minute in action.minutes}
        bound = _longest_run(week, stops)
        bound_cost = group.cost(group.maximum) / pricing.hours * bound if bound is not None else None
        description = "; ".join(action.description for action in actions)
        parked = sum(1 for count in counts if count < reference) / 60
        if parked:
            description += f"; below {reference} for {parked:.0f} h a week"
        pricing.estimate.schedules.append(
            ScheduleEffect(addresses, group.label, description, saving, bound, bound_cost)
        )
        extra = average - group.cost(group.rest)
        if extra > 0.005:
            # The schedules start capacity the group does not rest at: that running time is part of the minimum.
            component = next(
                line.component for line in pricing.estimate.lines if set(line.addresses) & set(group.addresses)
            )
            pricing.add(
                Line(
                    component,
                    f"{group.label}: scheduled capacity above its resting {group.rest}",
                    tuple(action.address for action in actions),
                    extra,
                    0.0,
                    f"{money(extra)}/month averaged over the week's schedule",
                )
            )
