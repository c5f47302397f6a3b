"""``python -m costs``: the monthly cost estimate of the synthesized stacks.

    python -m costs [--out cdktf.out] [--format text|markdown|json] [--prices DIR] [--allow-incomplete]
    python -m costs --write-readme README.md

Reads ``<out>/stacks/*/cdk.tf.json`` (``make cost`` synthesizes first). Exit codes: 0 every stack priced;
2 something is unpriced (an instance type or region missing from the price tables) or unresolved (a count or
type given as a reference), unless ``--allow-incomplete``; 1 error (no stacks, a broken price table, a README
without the generated section).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from costs.estimate import StacksNotFound, estimate_stacks, load_stacks
from costs.pricing import PRICES_DIR, PriceTableError
from costs.render import as_json, markdown, readme_block, replace_block, text

EXIT_OK, EXIT_ERROR, EXIT_INCOMPLETE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    """The command line."""
    arguments = argparse.ArgumentParser(prog="python -m costs", description=__doc__.splitlines()[0])
    arguments.add_argument("--out", type=Path, default=Path("cdktf.out"), help="the synthesis output directory")
    arguments.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    arguments.add_argument("--prices", type=Path, default=PRICES_DIR, help="the directory of <region>.json tables")
    arguments.add_argument("--write-readme", type=Path, metavar="README", help="regenerate the README's cost section")
    arguments.add_argument(
        "--allow-incomplete", action="store_true", help="exit 0 even when something is unpriced or unresolved"
    )
    return arguments


def main(argv: list[str] | None = None) -> int:
    """Run the estimate; the process exit code."""
    options = parser().parse_args(argv)
    try:
        estimates = estimate_stacks(load_stacks(options.out), options.prices)
    except (StacksNotFound, PriceTableError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if options.write_readme is not None:
        try:
            document = options.write_readme.read_text()
            options.write_readme.write_text(replace_block(document, readme_block(estimates)))
        except (OSError, ValueError) as error:
            print(f"error: {options.write_readme}: {error}", file=sys.stderr)
            return EXIT_ERROR
        print(f"updated the cost estimate in {options.write_readme}")
    else:
        render = {"text": text, "markdown": markdown, "json": as_json}[options.format]
        print(render(estimates), end="" if options.format != "json" else "\n")
    incomplete = [estimate for estimate in estimates if not estimate.complete]
    for estimate in incomplete:
        gaps = len(estimate.unpriced) + len(estimate.unresolved)
        print(f"{estimate.stack}: {gaps} item(s) unpriced or unresolved: the totals leave them out", file=sys.stderr)
    if incomplete and not options.allow_incomplete:
        return EXIT_INCOMPLETE
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
