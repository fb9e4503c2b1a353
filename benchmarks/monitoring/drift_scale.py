"""Drift at scale: mloop against a plain scipy KS/chi-square loop (and the peers) in one run.

    python benchmarks/monitoring/drift_scale.py                   # all three, writes SCALE.md
    python benchmarks/monitoring/drift_scale.py --only frames --repeat 5
    python benchmarks/monitoring/drift_scale.py --peers           # NannyML, Evidently at 1M too

* frames: ``drift(reference_df, current_df)`` on 1M x 25 (20 numeric, 5 categorical),
  both frames raw (the reference is binned in the call), against ``scipy_loop`` in
  ``_tools.py`` (``ks_2samp`` per numeric column, ``chi2_contingency`` per categorical);
* stream: a 10M x 25 Parquet window (generated once under ~/.cache/mloop-bench) against
  a 100k-row reference frame; mloop streams it, the scipy loop has to load it whole;
* wide: 1,000 columns x 100k rows (800 numeric, 200 categorical), Holm across all.

Every measurement runs in a fresh interpreter (``worker.py``) so peak RSS is that
tool's own; the tools alternate and the median of ``--repeat`` runs is reported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run import BENCH, ENV, HERE, PYTHON, work

STREAM_ROWS = 10_000_000
STREAM_REFERENCE_ROWS = 100_000


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _measure(mode: str, tools: list[str], args: list[str], repeat: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {t: [] for t in tools}
    for i in range(repeat):
        for tool in tools if i % 2 == 0 else reversed(tools):
            r = work(mode, tool, *args, timeout=1800)
            if r and "timeout" not in r:
                runs[tool].append(r)
                print(
                    f"  {mode} {tool:<10} {r['seconds']:7.3f} s wall {r['cpu_seconds']:7.3f} s CPU "
                    f"peak {r['peak_mb']:6.0f} MB (before {r['peak_before_mb']:.0f})",
                    flush=True,
                )
    return {t: v for t, v in runs.items() if v}


def _table(runs: dict[str, list[dict]], extra: str = "") -> list[str]:
    lines = [
        "| tool | runs | wall s (median) | CPU s (median) | peak RSS MB | RSS before MB "
        "| scipy loop / tool, wall | scipy loop / tool, CPU |" + (f" {extra} |" if extra else ""),
        "|---|---:|---:|---:|---:|---:|---:|---:|" + ("---|" if extra else ""),
    ]
    base = runs.get("scipy")
    for tool, rs in runs.items():
        wall, cpu = _median(rs, "seconds"), _median(rs, "cpu_seconds")
        ratio_wall = f"{_median(base, 'seconds') / wall:.1f}x" if base else "-"
        ratio_cpu = f"{_median(base, 'cpu_seconds') / cpu:.1f}x" if base else "-"
        peak = max(r["peak_mb"] for r in rs)
        before = max(r["peak_before_mb"] for r in rs)
        cells = [tool, str(len(rs)), f"{wall:.3f}", f"{cpu:.3f}", f"{peak:.0f}", f"{before:.0f}"]
        cells += [ratio_wall, ratio_cpu]
        if extra:
            r = rs[-1]
            cells.append(
                ", ".join(sorted(r["flagged"]))
                if "flagged" in r
                else f"{r['shifted_found']}/{r['shifted']} found, {r['false_alarms']} false"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _stream_file() -> Path:
    path = BENCH / f"drift-{STREAM_ROWS // 1_000_000}m.parquet"
    if not path.exists():
        print(f"  writing {path} (once)", flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); from _data import SHIFTS, write_parquet; "
            "write_parquet(sys.argv[2] + '.tmp', int(sys.argv[3]), 2, SHIFTS)"
        )
        subprocess.run(
            [str(PYTHON["mloop"]), "-c", code, str(HERE), str(path), str(STREAM_ROWS)],
            check=True,
            env=ENV,
        )
        Path(f"{path}.tmp").rename(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["frames", "stream", "wide"], nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--peers", action="store_true", help="NannyML and Evidently at --rows")
    parser.add_argument(
        "--no-scipy-stream", action="store_true", help="skip loading 10M rows for scipy"
    )
    parser.add_argument("--out", default=str(HERE / "SCALE.md"))
    args = parser.parse_args()
    only = set(args.only or ["frames", "stream", "wide"])
    load = os.getloadavg()[0]
    sections = [
        "# Drift at scale: mloop vs a plain scipy loop",
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.machine()} with "
        f"{os.cpu_count()} cores, load average {load:.1f} at start (the machine is shared: "
        "wall times are noisy). OMP_NUM_THREADS=1. Reproduce with "
        "`python benchmarks/monitoring/drift_scale.py`.",
    ]
    if "frames" in only:
        print("frames", flush=True)
        tools = ["scipy", "mloop"] + (["nannyml", "evidently"] if args.peers else [])
        runs = _measure("speed", ["scipy", "mloop"], [str(args.rows)], args.repeat)
        if args.peers:
            runs.update(_measure("speed", ["nannyml", "evidently"], [str(args.rows)], 1))
        sections += [
            "",
            f"## {args.rows:,} x 25 from two raw frames ({', '.join(tools)})",
            "",
            *_table(runs, "flagged (x0, x1, x2, c0 are shifted)"),
        ]
    if "stream" in only:
        print("stream", flush=True)
        path = _stream_file()
        runs = _measure("stream", ["mloop"], [str(path), str(STREAM_REFERENCE_ROWS)], args.repeat)
        if not args.no_scipy_stream:
            runs = {
                **_measure("stream", ["scipy"], [str(path), str(STREAM_REFERENCE_ROWS)], 1),
                **runs,
            }
        size = path.stat().st_size / 1e9
        sections += [
            "",
            f"## {STREAM_ROWS:,} x 25 streamed from Parquet ({size:.1f} GB, 1M-row row groups) "
            f"against a {STREAM_REFERENCE_ROWS:,}-row reference frame",
            "",
            "mloop reads the file chunk by chunk (`drift(ref, 'window.parquet')`); the scipy "
            "loop has to `pd.read_parquet` it whole first (included in its time).",
            "",
            *_table(runs, "flagged (x0, x1, x2, c0 are shifted)"),
        ]
    if "wide" in only:
        print("wide", flush=True)
        runs = _measure("wide", ["scipy", "mloop"], ["100000", "1000"], args.repeat)
        sections += [
            "",
            "## 1,000 columns x 100,000 rows (800 numeric, 200 categorical; 12 shifted)",
            "",
            *_table(runs, "shifted columns found, false alarms"),
        ]
    Path(args.out).write_text("\n".join(sections) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
