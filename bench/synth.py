#!/usr/bin/env python3
"""Benchmark a cold synth of every stack against the floor, and record the figures.

One run of ``make bench`` measures, on this machine and in one go:

- **synth**: the app command of ``cdktf.json`` (what ``cdktf synth`` runs), cold: a fresh process each run;
- **floor**: ``bench/floor.py`` with the same interpreter and flags, loading only ``cdktf`` and the provider
  assemblies the app loads; no Python CDKTF app can be faster, so ``synth / floor`` is the app's own overhead;
- **peak memory** of each (Python plus the Node.js kernel processes, sampled from /proc);
- **round trips** to the jsii kernel by kind (``bench/count_calls.py``, in a run of its own);
- **resources** per stack, from the synthesized JSON;
- **naive**: the synth with the provider packages imported the usual way (``ML_PLATFORM_IMPORT_MODE=naive``),
  which must write byte-identical stacks (the run fails otherwise);
- with ``--parallel N``: the stacks split between N processes that run at once (``ML_PLATFORM_STACKS``), each
  paying the floor; their stacks must be byte-identical too.

Floor and synth runs alternate, so a machine that slows down during the run slows both. Medians are reported.
Each run appends one line to ``bench/history.jsonl`` (date, revision, machine, figures) so that they can be
compared over time; ``--json`` also writes the whole report.

    .venv/bin/python bench/synth.py                 # 5 floor and 5 synth runs, 1 naive run
    .venv/bin/python bench/synth.py --runs 3 --naive-runs 0 --json /tmp/bench.json
    .venv/bin/python bench/synth.py --parallel 2   # also: the stacks split between 2 processes run at once
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import filecmp
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HISTORY = ROOT / "bench" / "history.jsonl"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MIB = 2**20


def _tree_rss_bytes(root_pid: int) -> int:
    """Resident memory of ``root_pid`` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)  # fields[1] is the parent pid
        rss[pid] = int(fields[21]) * PAGE_SIZE  # fields[21] is rss in pages
    total, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(command: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run ``command`` once; returns (wall seconds, peak bytes of its processes)."""
    return measure_together([(command, env)])


def measure_together(jobs: list[tuple[list[str], dict[str, str]]]) -> tuple[float, int]:
    """Start every (command, environment) at once and wait for all; returns (wall seconds, peak bytes of all).

    The wall time ends when the last process does (waited for, not polled); a thread samples the memory.
    """
    with contextlib.ExitStack() as files:
        errors = [files.enter_context(tempfile.TemporaryFile()) for _ in jobs]
        start = time.perf_counter()
        processes = [
            subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=error)
            for (command, env), error in zip(jobs, errors, strict=True)
        ]
        peak, finished = [0], threading.Event()

        def sample() -> None:
            # Coarse sampling: scanning /proc costs CPU that the synth would otherwise get on 2 cores,
            # and the ~1 GB peak builds up over seconds, so 4 samples a second find it.
            while not finished.is_set():
                peak[0] = max(peak[0], sum(_tree_rss_bytes(process.pid) for process in processes))
                finished.wait(0.25)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for process in processes:
            process.wait()
        elapsed = time.perf_counter() - start
        finished.set()
        sampler.join()
        for (command, _), process, error in zip(jobs, processes, errors, strict=True):
            if process.returncode != 0:
                error.seek(0)
                raise SystemExit(f"{shlex.join(command)} failed ({process.returncode}):\n{error.read().decode()}")
    return elapsed, peak[0]


def app_command() -> list[str]:
    """The app command of cdktf.json, split; its interpreter (and flags) also run the floor."""
    command = shlex.split(json.loads((ROOT / "cdktf.json").read_text())["app"])
    if not command or not command[-1].endswith(".py"):
        raise SystemExit(f"cdktf.json app {command!r} is not '<python> [flags] <script>.py'")
    return command


def resources_per_stack(outdir: Path) -> dict[str, dict[str, int]]:
    """Resources, data sources and outputs of every synthesized stack."""
    counts = {}
    for stack_file in sorted((outdir / "stacks").glob("*/cdk.tf.json")):
        config = json.loads(stack_file.read_text())
        counts[stack_file.parent.name] = {
            "resources": sum(len(named) for named in config.get("resource", {}).values()),
            "data_sources": sum(len(named) for named in config.get("data", {}).values()),
            "outputs": len(config.get("output", {})),
        }
    return counts


def same_output(a: Path, b: Path) -> bool:
    """Both synth directories hold the same stacks, byte for byte."""
    stacks_a = sorted(path.relative_to(a) for path in (a / "stacks").glob("*/cdk.tf.json"))
    stacks_b = sorted(path.relative_to(b) for path in (b / "stacks").glob("*/cdk.tf.json"))
    return stacks_a == stacks_b and all(filecmp.cmp(a / path, b / path, shallow=False) for path in stacks_a)


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def _git(*args: str) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return result.stdout.strip()


def _machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError, StopIteration):
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {"cores": os.cpu_count(), "cpu": model, "python": platform.python_version()}


def stack_groups(stacks: dict[str, dict[str, int]], processes: int) -> list[list[str]]:
    """``stacks`` split into ``processes`` groups of about equal resources (largest first, each to the lightest)."""
    groups: list[list[str]] = [[] for _ in range(min(processes, len(stacks)))]
    weights = [0] * len(groups)
    for stack in sorted(stacks, key=lambda name: -stacks[name]["resources"]):
        lightest = weights.index(min(weights))
        groups[lightest].append(stack)
        weights[lightest] += stacks[stack]["resources"]
    return groups


def _parallel(
    command: list[str], env: dict[str, str], stacks: dict[str, dict[str, int]], processes: int, scratch: Path
) -> dict[str, Any]:
    """The stacks synthesized by ``processes`` processes at once (``ML_PLATFORM_STACKS`` selects each one's)."""
    groups = stack_groups(stacks, processes)
    jobs = [
        (command, {**env, "ML_PLATFORM_STACKS": ",".join(group), "CDKTF_OUTDIR": str(scratch / str(number))})
        for number, group in enumerate(groups)
    ]
    seconds, peak = measure_together(jobs)
    written = {stack: scratch / str(number) for number, group in enumerate(groups) for stack in group}
    return {
        "seconds": round(seconds, 3),
        "peak_mib": round(peak / MIB),
        "groups": groups,
        "written": written,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement of one benchmark run."""
    command = app_command()
    env = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    env.pop("ML_PLATFORM_IMPORT_MODE", None)
    report: dict[str, Any] = {"command": shlex.join(command)}
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as scratch_name:
        scratch = Path(scratch_name)
        calls_file = scratch / "calls.json"
        counting = [*command[:-1], "bench/count_calls.py", str(calls_file)]
        measure(counting, {**env, "CDKTF_OUTDIR": str(scratch / "counted")})
        calls = json.loads(calls_file.read_text())
        floor_command = [*command[:-1], "bench/floor.py", *calls["provider_packages"]]
        report["floor_command"] = shlex.join(floor_command)

        samples: dict[str, list[tuple[float, int]]] = {"floor": [], "synth": []}
        for number in range(1, args.runs + 1):
            samples["floor"].append(measure(floor_command, env))
            samples["synth"].append(measure(command, {**env, "CDKTF_OUTDIR": str(scratch / "fast")}))
            floor, synth = samples["floor"][-1], samples["synth"][-1]
            print(
                f"  run {number}: floor {floor[0]:5.2f} s {floor[1] / MIB:5.0f} MiB   "
                f"synth {synth[0]:5.2f} s {synth[1] / MIB:5.0f} MiB",
                flush=True,
            )
        for name, runs in samples.items():
            report[name] = {
                "median_seconds": _median([seconds for seconds, _ in runs]),
                "median_peak_mib": round(statistics.median(peak for _, peak in runs) / MIB),
                "runs": [round(seconds, 3) for seconds, _ in runs],
            }
        report["ratio"] = round(report["synth"]["median_seconds"] / report["floor"]["median_seconds"], 3)
        report["round_trips"] = calls["round_trips"]
        report["calls"] = calls["calls"]
        report["kernel_seconds"] = calls["kernel_seconds"]
        report["stacks"] = resources_per_stack(scratch / "fast")

        if args.naive_runs:
            naive_env = {**env, "ML_PLATFORM_IMPORT_MODE": "naive", "CDKTF_OUTDIR": str(scratch / "naive")}
            naive = [measure(command, naive_env)[0] for _ in range(args.naive_runs)]
            report["naive"] = {"median_seconds": _median(naive), "runs": [round(s, 3) for s in naive]}
            report["identical_to_naive"] = same_output(scratch / "naive", scratch / "fast")
        if args.parallel:
            parallel = _parallel(command, env, report["stacks"], args.parallel, scratch / "parallel")
            written = parallel.pop("written")
            report["parallel"] = parallel
            report["identical_parallel"] = all(
                filecmp.cmp(
                    written[stack] / "stacks" / stack / "cdk.tf.json",
                    scratch / "fast" / "stacks" / stack / "cdk.tf.json",
                    shallow=False,
                )
                for stack in report["stacks"]
            )
    return report


def print_report(report: dict[str, Any]) -> None:
    """The figures as a small table."""
    floor, synth = report["floor"], report["synth"]
    print()
    print(f"synth  {synth['median_seconds']:6.2f} s  {synth['median_peak_mib']:6d} MiB   {report['command']}")
    print(f"floor  {floor['median_seconds']:6.2f} s  {floor['median_peak_mib']:6d} MiB   {report['floor_command']}")
    print(f"ratio  {report['ratio']:6.2f}x (synth / floor; budget 1.3x)")
    calls = ", ".join(f"{kind} {count}" for kind, count in report["calls"].items())
    print(f"jsii round trips {report['round_trips']}: {calls}")
    for stack, counts in report["stacks"].items():
        print(
            f"  {stack:10} {counts['resources']:4d} resources  {counts['data_sources']:3d} data sources"
            f"  {counts['outputs']:3d} outputs"
        )
    if "naive" in report:
        print(
            f"naive imports {report['naive']['median_seconds']:6.2f} s;"
            f" identical output: {report['identical_to_naive']}"
        )
    if "parallel" in report:
        parallel = report["parallel"]
        print(
            f"{len(parallel['groups'])} processes at once {parallel['groups']}: {parallel['seconds']:6.2f} s"
            f" {parallel['peak_mib']:6d} MiB; identical output: {report['identical_parallel']}"
        )


def main() -> int:
    """Run the benchmark, print it, record it."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="floor and synth runs (medians are reported)")
    parser.add_argument("--naive-runs", type=int, default=1, help="synth runs with the usual imports (0: skip)")
    parser.add_argument(
        "--parallel", type=int, metavar="N", default=0, help="also time N processes at once, each with some stacks"
    )
    parser.add_argument("--json", type=Path, help="also write the whole report to this file")
    parser.add_argument("--no-history", action="store_true", help=f"do not append to {HISTORY.relative_to(ROOT)}")
    args = parser.parse_args()
    if args.runs < 1 or args.naive_runs < 0 or args.parallel < 0:
        parser.error("--runs must be at least 1; --naive-runs and --parallel at least 0")

    report = run(args)
    report = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        # The history file itself does not make the work tree dirty.
        "revision": _git("rev-parse", "--short", "HEAD")
        + ("-dirty" if _git("status", "--porcelain", "--", ".", f":!{HISTORY.relative_to(ROOT)}") else ""),
        "machine": _machine(),
        **report,
    }
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_history:
        with HISTORY.open("a") as history:
            history.write(json.dumps(report, separators=(",", ":")) + "\n")
    identical = report.get("identical_to_naive", True) and report.get("identical_parallel", True)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
