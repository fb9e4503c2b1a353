"""Monitoring benchmarks: mloop vs Evidently and NannyML, each in its own interpreter.

    python benchmarks/monitoring/run.py                 # everything, writes RESULTS.md
    python benchmarks/monitoring/run.py --only speed --rows 10000 100000

Peers live in their own virtual environments under ~/.cache/mloop-bench/<peer>
(created by ``--setup``; never in the project venv). Every measurement runs in a
fresh subprocess so ``ru_maxrss`` is that tool's own peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH = Path.home() / ".cache" / "mloop-bench"
PYTHON = {
    "mloop": ROOT / ".venv" / "bin" / "python",
    "mloop-profile": ROOT / ".venv" / "bin" / "python",
    "scipy": ROOT / ".venv" / "bin" / "python",
    "evidently": BENCH / "evidently" / "bin" / "python",
    "nannyml": BENCH / "nannyml" / "bin" / "python",
}
SETUP = {
    "evidently": ["evidently", "pandas<3"],  # evidently 0.7 fails to import with pandas 3
    "nannyml": ["nannyml", "statsmodels"],  # nannyml imports statsmodels without declaring it
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "NML_DISABLE_USAGE_LOGGING": "1"}


def setup() -> None:
    uv = ROOT / ".venv" / "bin" / "uv"
    for peer, packages in SETUP.items():
        target = BENCH / peer
        if not PYTHON[peer].exists():
            subprocess.run([str(uv), "venv", "-q", "--python", "3.11", str(target)], check=True)
        subprocess.run(
            [str(uv), "pip", "install", "-q", "--python", str(PYTHON[peer]), *packages], check=True
        )


def work(mode: str, tool: str, *args: str, timeout: float = 900) -> dict | None:
    python = PYTHON[tool]
    if not python.exists():
        print(f"  {tool}: no venv at {python.parent.parent} (run with --setup)", flush=True)
        return None
    cmd = [str(python), str(HERE / "worker.py"), mode, tool, *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {mode} {tool} {' '.join(args)}: timed out after {timeout:.0f} s", flush=True)
        return {"tool": tool, "timeout": timeout}
    if done.returncode != 0:
        print(f"  {mode} {tool} {' '.join(args)} failed:\n{done.stderr[-2000:]}", flush=True)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_speed(rows: list[int], tools: list[str]) -> list[str]:
    lines = [
        "| rows | tool | wall s | CPU s | peak RSS MB | RSS before MB | x slower than mloop-profile (CPU) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for n in rows:
        results = {}
        for tool in tools:
            r = work("speed", tool, str(n))
            if r and "timeout" not in r:
                results[tool] = r
                print(
                    f"  speed {n:>9,} {tool:<14} {r['seconds']:8.3f} s wall {r['cpu_seconds']:8.3f} s CPU "
                    f"peak {r['peak_mb']:7.0f} MB",
                    flush=True,
                )
        base = results.get("mloop-profile", {}).get("cpu_seconds")
        for tool, r in results.items():
            ratio = f"{r['cpu_seconds'] / base:.1f}x" if base else "-"
            lines.append(
                f"| {n:,} | {tool} | {r['seconds']:.3f} | {r['cpu_seconds']:.3f} | "
                f"{r['peak_mb']:.0f} | {r['peak_before_mb']:.0f} | {ratio} |"
            )
    return lines


def run_quality(rows: int, seeds: int, tools: list[str]) -> list[str]:
    lines = [
        f"{rows:,} vs {rows:,} rows, 25 columns, {seeds} seeds. Power = share of runs that flag the "
        "shifted column; false alarms over untouched columns of shifted runs and all columns of "
        "no-shift runs.",
        "",
        "| tool | mean +0.1 sd | mean +0.2 sd | variance x1.5 | category 20%->30% | false alarms / column | no-shift runs with any alarm |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tool in tools:
        r = work("quality", tool, str(rows), str(seeds), timeout=3600)
        if not r or "timeout" in r:
            continue
        p = r["power"]
        print(
            f"  quality {tool:<14} {p} fa/col {r['false_alarm_per_column']:.4f} "
            f"calm-any {r['calm_runs_with_alarm']:.2f}",
            flush=True,
        )
        lines.append(
            f"| {tool} | {p['x0']:.0%} | {p['x1']:.0%} | {p['x2']:.0%} | {p['c0']:.0%} | "
            f"{r['false_alarm_per_column']:.2%} | {r['calm_runs_with_alarm']:.0%} |"
        )
    return lines


def run_irrelevant(rows: int, tools: list[str]) -> list[str]:
    lines = [
        f"{rows:,} vs {rows:,} rows: x0 +0.02 sd (irrelevant), x1 +0.05 sd, x2 +0.1 sd.",
        "",
        "| tool | flags x0 (+0.02 sd) | flags x1 (+0.05 sd) | flags x2 (+0.1 sd) | other columns flagged |",
        "|---|---|---|---|---:|",
    ]
    for tool in tools:
        r = work("irrelevant", tool, str(rows), timeout=1800)
        if not r or "timeout" in r:
            continue
        f = set(r["flagged"])
        print(f"  irrelevant {tool:<14} {sorted(f)}", flush=True)
        yes = {c: "yes" if c in f else "no" for c in ("x0", "x1", "x2")}
        lines.append(
            f"| {tool} | {yes['x0']} | {yes['x1']} | {yes['x2']} | {len(f - {'x0', 'x1', 'x2'})} |"
        )
    return lines


def _mae(estimated: list[dict], realized: list[float], metric: str) -> float:
    return sum(abs(e[metric] - r) for e, r in zip(estimated, realized, strict=True)) / len(realized)


def run_cbpe() -> list[str]:
    data = BENCH / "cbpe.npz"
    data.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [str(PYTHON["mloop"]), str(HERE / "_cbpe_data.py"), str(data)], check=True, env=ENV
    )
    mine = work("cbpe", "mloop", str(data))
    theirs = work("cbpe", "nannyml", str(data))
    if not mine:
        return []
    lines = [
        "Binary HistGradientBoosting model; 10 analysis chunks of 5,000 rows with growing "
        "covariate shift; calibration fitted on a 20,000-row labelled reference. Mean absolute "
        "error of the estimate against the realized metric per chunk.",
        "",
        "| metric | mloop MAE | NannyML MAE |",
        "|---|---:|---:|",
    ]
    for metric in ("accuracy", "roc_auc", "f1"):
        real = [c[metric] for c in mine["realized"]]
        ours = _mae(mine["estimated"], real, metric)
        other = f"{_mae(theirs['estimated'], real, metric):.4f}" if theirs else "-"
        lines.append(f"| {metric} | {ours:.4f} | {other} |")
        print(f"  cbpe {metric}: mloop {ours:.4f} nannyml {other}", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--setup", action="store_true", help="create the peer venvs first")
    parser.add_argument("--only", choices=["speed", "quality", "irrelevant", "cbpe"], nargs="*")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument(
        "--tools", nargs="*", default=["mloop", "mloop-profile", "evidently", "nannyml"]
    )
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    if args.setup:
        setup()
    only = set(args.only or ["speed", "quality", "irrelevant", "cbpe"])
    load = os.getloadavg()[0]
    sections = [
        "# Monitoring benchmark results",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with {os.cpu_count()} "
        f"cores, load average {load:.1f} at start (other engineers were running tests: wall times "
        "are noisy; CPU seconds are the steadier number). OMP_NUM_THREADS=1. Reproduce with "
        "`python benchmarks/monitoring/run.py`.",
        "",
        "`mloop` = `drift(reference_df, current_df)` (bins the reference, then the window); "
        "`mloop-profile` = `drift(profile, current_df)` with the reference profile built beforehand, "
        "as at model registration. Peers run their defaults: Evidently `DataDriftPreset`, NannyML "
        "`UnivariateDriftCalculator` (10 chunks; a column counts as flagged if any chunk alerts).",
    ]
    if "speed" in only:
        print("speed", flush=True)
        sections += [
            "",
            "## Speed and peak memory: 25 columns (20 numeric, 5 categorical)",
            "",
            *run_speed(args.rows, args.tools),
        ]
    if "quality" in only:
        print("quality", flush=True)
        sections += ["", "## Detection quality", "", *run_quality(10_000, args.seeds, args.tools)]
    if "irrelevant" in only:
        print("irrelevant", flush=True)
        sections += [
            "",
            "## Irrelevant shifts at a million rows",
            "",
            *run_irrelevant(1_000_000, args.tools),
        ]
    if "cbpe" in only:
        print("cbpe", flush=True)
        sections += ["", "## Label-free performance estimation (CBPE)", "", *run_cbpe()]
    Path(args.out).write_text("\n".join(sections) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
