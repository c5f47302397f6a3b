"""Plans for pull requests: which environments a change touches, the sticky plan comment, its failure
variant, and the fingerprint of a plan.

    python -m gitops.plans touched BASE_OUTDIR HEAD_OUTDIR
    python -m gitops.plans comment --env ENV --plan-json PLAN.json --plan-text PLAN.txt [--commit SHA] [--out FILE]
    python -m gitops.plans failure --env ENV --log PLAN.log [--out FILE]
    python -m gitops.plans fingerprint PLAN.json

``PLAN.json`` is ``terraform show -json tfplan`` and ``PLAN.txt`` ``terraform show -no-color tfplan``. Every
comment starts with the hidden marker ``<!-- ml-platform-plan:ENV -->``, by which the workflow finds and
updates its one comment per environment. Exit codes: 0 done, 1 an error (named on stderr), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from gitops.plan_json import (
    PlanFormatError,
    ResourceChange,
    environment,
    fingerprint,
    load_plan,
    output_changes,
    resource_changes,
)

BOOTSTRAP_STACK = "bootstrap"
"""The account-level stack: synthesized beside the environments, deployed by hand, never planned here."""

COMMENT_LIMIT = 65_536
"""GitHub's limit on a comment's body (characters). Comments are kept within it in UTF-8 bytes, a count never
smaller than the number of characters, so plans with non-ASCII text fit too."""

STATEFUL_TYPES = frozenset(
    (
        # Everything rule PROT-1 protects in a protected environment (constructs/policy/rules.py,
        # ProtectedData.PROTECTED_TYPES; a test keeps this a superset of it). That module loads cdktf, which
        # these commands must not, so the list is repeated here rather than imported.
        *("aws_s3_bucket", "aws_efs_file_system", "aws_fsx_lustre_file_system", "aws_ebs_volume"),
        *("aws_dynamodb_table", "aws_db_instance", "aws_rds_cluster", "aws_docdb_cluster", "aws_neptune_cluster"),
        *("aws_backup_vault", "aws_secretsmanager_secret", "aws_kms_key"),
        *("aws_cloudwatch_log_group", "aws_ecr_repository", "aws_sagemaker_model_package_group"),
        *("aws_sagemaker_endpoint", "aws_eks_cluster", "aws_vpc"),
        # Data or identity the platform does not create today, so PROT-1 has no rule for them, but whose loss
        # a reviewer must see: a feature store, other databases and file systems, DNS zones, user
        # directories, the identity providers the deploy roles trust.
        *("aws_sagemaker_feature_group", "aws_sagemaker_domain", "aws_fsx_ontap_file_system"),
        *("aws_fsx_openzfs_file_system", "aws_fsx_windows_file_system", "aws_elasticache_replication_group"),
        *("aws_elasticache_cluster", "aws_opensearch_domain", "aws_redshift_cluster", "aws_kinesis_stream"),
        *("aws_glacier_vault", "aws_route53_zone", "aws_cognito_user_pool", "aws_iam_openid_connect_provider"),
        *("aws_acmpca_certificate_authority", "aws_ssm_parameter", "aws_secretsmanager_secret_version"),
    )
)
"""Resource types that hold data or identity: destroying or replacing one loses what it holds."""

# Names listed in a headline or warning before "and N more".
MAX_NAMED = 30
# Lines of a failed plan's log shown in its comment.
LOG_TAIL_LINES = 150
# Characters of one line of a plan or log kept when the text must be cut to fit a comment.
MAX_LINE = 2_000
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR_LINE = re.compile(r"^[\s│|╷╵]*Error: (?P<summary>.+?)\s*$")


def marker(env: str) -> str:
    """The hidden first line of every plan comment of ``env``."""
    return f"<!-- ml-platform-plan:{env} -->"


# --- touched ---------------------------------------------------------------------------------------------


def _stack_files(stack_dir: Path) -> dict[str, str]:
    """``{path relative to the stack directory: sha256 of its content}`` of every file under it."""
    files = {}
    for root, _, names in os.walk(stack_dir):
        for name in names:
            path = Path(root) / name
            files[path.relative_to(stack_dir).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def touched(base_outdir: Path, head_outdir: Path) -> list[str]:
    """The environments whose ``stacks/<env>/`` differs between two cdktf output directories, sorted.

    A stack differs when any file under it (``cdk.tf.json``, an asset) was added, removed or changed, or when
    it exists only at HEAD. The bootstrap stack is never listed. A base without ``stacks/`` (nothing was
    synthesized there) makes every environment of HEAD touched; HEAD without stacks is an error.
    """
    if not base_outdir.is_dir():
        raise FileNotFoundError(f"{base_outdir} is not a directory")
    head_stacks = head_outdir / "stacks"
    environments = sorted(path.name for path in head_stacks.iterdir() if path.is_dir()) if head_stacks.is_dir() else []
    if not environments:
        raise FileNotFoundError(f"{head_outdir} holds no synthesized stacks (no {head_stacks}/<env>/): run the synth")
    changed = []
    for env in environments:
        if env == BOOTSTRAP_STACK:
            continue
        base_stack = base_outdir / "stacks" / env
        if not base_stack.is_dir() or _stack_files(base_stack) != _stack_files(head_stacks / env):
            changed.append(env)
    return changed


# --- the plan comment ------------------------------------------------------------------------------------


def _named(addresses: Sequence[str]) -> str:
    shown = ", ".join(f"`{address}`" for address in addresses[:MAX_NAMED])
    rest = len(addresses) - MAX_NAMED
    return f"{shown} and {rest} more" if rest > 0 else shown


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def headline(env: str, changes: Sequence[ResourceChange], outputs: Sequence[str]) -> str:
    """``Plan for `dev`: 1 to add, 2 to change, 1 to destroy`` (with imports and forgets when there are any)."""
    if not changes:
        if outputs:
            return f"### Plan for `{env}`: no resource changes, outputs change: {_named(outputs)}"
        return f"### Plan for `{env}`: no changes"
    add = sum(1 for change in changes if "create" in change.actions)
    update = sum(1 for change in changes if change.actions == ("update",))
    destroy = sum(1 for change in changes if "delete" in change.actions)
    counts = [f"{add} to add", f"{update} to change", f"{destroy} to destroy"]
    imports = sum(1 for change in changes if change.importing)
    forgets = sum(1 for change in changes if change.actions == ("forget",))
    counts = ([f"{imports} to import"] if imports else []) + counts + ([f"{forgets} to forget"] if forgets else [])
    return f"### Plan for `{env}`: {', '.join(counts)}"


def stateful_losses(changes: Sequence[ResourceChange]) -> list[ResourceChange]:
    """The managed resources of a :data:`STATEFUL_TYPES` type that the plan destroys or replaces."""
    return [
        change
        for change in changes
        if change.mode == "managed" and change.type in STATEFUL_TYPES and (change.is_destroy or change.is_replace)
    ]


def fence(text: str) -> str:
    """A code fence longer than any run of backticks in ``text``, so the text cannot close it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _fit_lines(lines: Sequence[str], budget: int, keep_end: bool) -> list[str]:
    """The most lines (from the start, or from the end if ``keep_end``) whose text fits ``budget`` bytes."""
    kept: list[str] = []
    used = 0
    for line in reversed(lines) if keep_end else lines:
        used += _size(line) + 1
        if used > budget:
            break
        kept.append(line)
    return kept[::-1] if keep_end else kept


def _code_block(
    head: str, summary: str | None, text: str, *, keep_end: bool, what: str, limit: int = COMMENT_LIMIT
) -> str:
    """``head``, then ``text`` in a code block (inside ``<details>`` if ``summary``), within ``limit`` bytes.

    Text that does not fit is cut at a line boundary, keeping its start (a plan: the resources in the order
    Terraform lists them) or its end (``keep_end``: a log, whose errors come last), with a note saying so.
    """
    lines = text.strip("\n").splitlines()

    def render(shown: Sequence[str], note: str) -> str:
        body = "\n".join(shown)
        marks = fence(body)
        block = f"{marks}text\n{body}\n{marks}\n"
        if summary is not None:
            block = f"<details><summary>{summary}</summary>\n\n{block}\n</details>\n"
        return f"{head}{note}{block}"

    whole = render(lines, "")
    if _size(whole) <= limit:
        return whole
    # One line longer than a screenful says nothing more in full; cut, it leaves room for the others.
    lines = [line if len(line) <= MAX_LINE else line[:MAX_LINE] + " [line cut]" for line in lines]
    note = (
        f"> [!NOTE]\n> {what} was cut to fit GitHub's {COMMENT_LIMIT:,}-character comment limit: "
        f"{{shown:,}} of its {len(lines):,} lines are shown. The whole text is in the log of the workflow run.\n\n"
    )
    # The note's length grows with the count it prints, so room is reserved for the largest count, and for
    # the longest fence the text could need (it appears twice).
    reserved = _size(render([], note.format(shown=len(lines)))) + 2 * len(fence("\n".join(lines)))
    shown = _fit_lines(lines, limit - reserved, keep_end)
    return render(shown, note.format(shown=len(shown)))


def comment(env: str, plan_json: str, plan_text: str, commit: str | None = None) -> str:
    """The Markdown comment for the plan of ``env`` (see the module docstring)."""
    plan = load_plan(plan_json)
    changes = resource_changes(plan)
    outputs = sorted(output_changes(plan))
    parts = [marker(env), headline(env, changes, outputs), ""]
    losses = stateful_losses(changes)
    if losses:
        parts += [
            "> [!CAUTION]",
            f"> This plan destroys or replaces {_plural(len(losses), 'resource')} holding data or identity. "
            f"What {'it holds' if len(losses) == 1 else 'they hold'} is lost: make sure that is intended, and "
            "backed up.",
        ]
        parts += [f"> - `{change.address}`: {'replaced' if change.is_replace else 'destroyed'}" for change in losses]
        parts.append("")
    replaced = [change.address for change in changes if change.is_replace]
    if replaced:
        parts += [f"Replaced (destroyed and created again): {_named(replaced)}", ""]
    if commit:
        parts += [f"Planned at commit {commit}.", ""]
    head = "\n".join(parts) + "\n"
    return _code_block(head, "Full plan", plan_text, keep_end=False, what="The plan")


def failure(env: str, log: str) -> str:
    """The comment for a plan of ``env`` that failed: its errors and the end of its log."""
    clean = _ANSI_ESCAPE.sub("", log)
    errors = list(dict.fromkeys(m["summary"] for line in clean.splitlines() if (m := _ERROR_LINE.match(line))))
    parts = [marker(env), f"### The plan of `{env}` failed", ""]
    if errors:
        parts += ["Errors:", *(f"- {error}" for error in errors[:MAX_NAMED]), ""]
    lines = clean.strip("\n").splitlines()
    tail = lines[-LOG_TAIL_LINES:]
    cut = len(tail) < len(lines)
    title = f"The end of the log (its last {len(tail)} of {len(lines)} lines):" if cut else "The log:"
    head = "\n".join([*parts, title, ""]) + "\n"
    return _code_block(head, None, "\n".join(tail), keep_end=True, what="The end of the log")


# --- the command line ------------------------------------------------------------------------------------


def _commit(value: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{7,40}", value):
        raise ValueError(f"not a commit hash: {value!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gitops.plans", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    touched_parser = commands.add_parser("touched", help="environments whose synthesized stack differs")
    touched_parser.add_argument("base_outdir", type=Path)
    touched_parser.add_argument("head_outdir", type=Path)
    comment_parser = commands.add_parser("comment", help="the pull-request comment of one plan")
    comment_parser.add_argument("--env", required=True, type=environment)
    comment_parser.add_argument("--plan-json", required=True, type=Path)
    comment_parser.add_argument("--plan-text", required=True, type=Path)
    comment_parser.add_argument("--commit", type=_commit)
    comment_parser.add_argument("--out", type=Path)
    failure_parser = commands.add_parser("failure", help="the pull-request comment of a failed plan")
    failure_parser.add_argument("--env", required=True, type=environment)
    failure_parser.add_argument("--log", required=True, type=Path)
    failure_parser.add_argument("--out", type=Path)
    fingerprint_parser = commands.add_parser("fingerprint", help="sha256 of what a plan would change")
    fingerprint_parser.add_argument("plan_json", type=Path)
    return parser


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "touched":
            print(json.dumps(touched(args.base_outdir, args.head_outdir)))
        elif args.command == "comment":
            plan_json = args.plan_json.read_text(encoding="utf-8")
            plan_text = args.plan_text.read_text(encoding="utf-8")
            _emit(comment(args.env, plan_json, plan_text, args.commit), args.out)
        elif args.command == "failure":
            _emit(failure(args.env, args.log.read_text(encoding="utf-8", errors="replace")), args.out)
        else:
            print(fingerprint(load_plan(args.plan_json.read_text(encoding="utf-8"))))
    except (OSError, PlanFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
