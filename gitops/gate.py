"""The deploy gate: no deploy on top of unexplained drift.

    python -m gitops.gate --env ENV --open-drift-issues JSON_LIST --labels JSON_LIST

``--open-drift-issues`` is what ``gh issue list --label drift --label env:ENV --state open --json number,url``
prints: ``[{"number": 12, "url": "..."}]``. ``--labels`` lists the label names of the pull request merged by
this push (``[]`` when there is none).

Exit codes: 0 the deploy may go ahead (no open drift issue for ENV, or the pull request carries the label
``drift-correction``, which says the change is the drift's correction); 1 blocked, with a message naming the
open issues and how to mark a change as the correction; 2 bad input (an argument that is not the JSON
described above), kept apart from 1 so that a broken workflow step is not mistaken for drift.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gitops.plan_json import environment

CORRECTION_LABEL = "drift-correction"
"""The pull-request label saying that the change corrects (explains) the open drift."""


@dataclass(frozen=True)
class DriftIssue:
    """An open drift issue: its number and address."""

    number: int
    url: str


def parse_issues(text: str) -> list[DriftIssue]:
    """The issues of ``gh issue list --json number,url``; ``ValueError`` naming what is wrong otherwise."""
    items = _json_list(text, "--open-drift-issues")
    issues = []
    for item in items:
        number = item.get("number") if isinstance(item, dict) else None
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError(f"--open-drift-issues: {item!r} is not an issue with a positive integer 'number'")
        url = item.get("url", "")
        if not isinstance(url, str):
            raise ValueError(f"--open-drift-issues: the url of issue {number} is not a string")
        issues.append(DriftIssue(number, url))
    return issues


def parse_labels(text: str) -> list[str]:
    """The label names of the merged pull request; ``ValueError`` unless a JSON list of strings."""
    labels = _json_list(text, "--labels")
    if not all(isinstance(label, str) for label in labels):
        raise ValueError(f"--labels: expected a JSON list of label names, got {text!r}")
    return labels


def _json_list(text: str, option: str) -> list[Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{option} is not JSON ({error}): {text[:200]!r}") from None
    if not isinstance(value, list):
        raise ValueError(f"{option}: expected a JSON list, got {text[:200]!r}")
    return value


def decide(env: str, issues: Sequence[DriftIssue], labels: Sequence[str]) -> tuple[bool, str]:
    """Whether the deploy of ``env`` may go ahead, and the message saying why."""
    if not issues:
        return True, f"No open drift issue for {env}: the deploy may go ahead."
    # GitHub treats label names case-insensitively.
    if CORRECTION_LABEL in {label.casefold() for label in labels}:
        numbers = ", ".join(f"#{issue.number}" for issue in issues)
        return True, f"{env} has open drift ({numbers}); this change is labelled {CORRECTION_LABEL}, so it deploys."
    listed = "\n".join(f"  #{issue.number} {issue.url}".rstrip() for issue in sorted(issues, key=lambda i: i.number))
    return False, (
        f"Deploy of {env} blocked: something changed in {env} outside Terraform and is not explained yet.\n"
        f"Open drift issues:\n{listed}\n"
        "Deploying now would apply the code over that change before anyone decided on it. Either undo the change\n"
        f"(the next drift check closes the issue once {env} is clean) or close the issue once it is explained;\n"
        f"or, if this change is the correction, add the label `{CORRECTION_LABEL}` to its pull request before merging."
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Decide, print the reason (stdout when allowed, stderr when blocked or misused); the exit code."""
    parser = argparse.ArgumentParser(prog="python -m gitops.gate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", required=True, type=environment)
    parser.add_argument("--open-drift-issues", required=True, metavar="JSON_LIST")
    parser.add_argument("--labels", required=True, metavar="JSON_LIST")
    args = parser.parse_args(argv)
    try:
        issues = parse_issues(args.open_drift_issues)
        labels = parse_labels(args.labels)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    allowed, message = decide(args.env, issues, labels)
    print(message, file=sys.stdout if allowed else sys.stderr)
    return 0 if allowed else 1


if __name__ == "__main__":
    sys.exit(main())
