#!/usr/bin/env python3
"""Benchmark a cold ``python3 main.py`` (all three stacks) with naive vs fast provider imports.

Each run is a fresh process, so every run pays the full cold-start cost a user pays. For each run
the script records wall time and the peak resident memory of the whole process tree (Python plus
the jsii Node.js kernel), sampled from /proc. It prints the median of each mode and the ratio,
and checks that both modes wrote byte-identical stacks.

    .venv/bin/python bench/synth.py            # 3 runs per mode
    .venv/bin/python bench/synth.py --runs 5 --json bench/results/latest.json
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


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


def run_once(mode: str, outdir: Path) -> tuple[float, int]:
    """One cold synth in ``mode``; returns (seconds, peak bytes)."""
    env = {**os.environ, "ML_PLATFORM_IMPORT_MODE": mode, "CDKTF_OUTDIR": str(outdir)}
    env.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "main.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_bytes(process.pid))
        # Coarse sampling: scanning /proc costs CPU that the synth would otherwise get on 2 cores,
        # and the ~1 GB peak builds up over seconds, so 4 samples a second find it.
        time.sleep(0.25)
    elapsed = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"{mode} synth failed:\n{process.stderr.read().decode() if process.stderr else ''}")
    return elapsed, peak


def same_output(a: Path, b: Path) -> bool:
    """Both synth directories hold byte-identical stack files."""
    for env_dir in sorted((a / "stacks").iterdir()):
        other = b / "stacks" / env_dir.name / "cdk.tf.json"
        if not other.exists() or not filecmp.cmp(env_dir / "cdk.tf.json", other, shallow=False):
            return False
    return True


def main() -> int:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="cold runs per mode (median is reported)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()

    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="synth-bench-") as scratch:
        outdirs = {mode: Path(scratch) / mode for mode in ("naive", "fast")}
        for mode in ("naive", "fast"):
            times, peaks = [], []
            for run in range(args.runs):
                seconds, peak = run_once(mode, outdirs[mode])
                times.append(seconds)
                peaks.append(peak)
                print(f"  {mode:5} run {run + 1}: {seconds:6.2f} s  {peak / 2**20:7.0f} MiB", flush=True)
            results[mode] = {
                "median_seconds": statistics.median(times),
                "median_peak_mib": statistics.median(peaks) / 2**20,
                "runs": args.runs,
            }
        identical = same_output(outdirs["naive"], outdirs["fast"])

    naive, fast = results["naive"], results["fast"]
    speedup = naive["median_seconds"] / fast["median_seconds"]
    print()
    print("mode   median wall   median peak RSS (python + node)")
    for mode, figures in results.items():
        print(f"{mode:6} {figures['median_seconds']:8.2f} s   {figures['median_peak_mib']:8.0f} MiB")
    print(f"speed-up (naive / fast): {speedup:.1f}x   identical output: {identical}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**results, "speedup": speedup, "identical_output": identical}, indent=2))
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
