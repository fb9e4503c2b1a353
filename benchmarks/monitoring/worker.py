"""Run one tool in this interpreter and print one JSON line (used by ``run.py``).

python worker.py speed <tool> <rows>
python worker.py quality <tool> <rows> <seeds>
python worker.py cbpe <tool> <data.npz>
python worker.py stream <tool> <window.parquet> <reference rows>
python worker.py wide <tool> <rows> <columns>
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
sys.path.insert(0, str(Path(__file__).parent))

from _data import SHIFTS, make_frame, make_wide
from _tools import PREPARE, TOOLS


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def speed(tool: str, rows: int) -> dict[str, object]:
    ref = make_frame(rows, 1)
    cur = make_frame(rows, 2, SHIFTS)
    prepared = PREPARE[tool](ref) if tool in PREPARE else None
    # warm imports and caches on a small call first, so only the computation is timed
    small = PREPARE[tool](ref.iloc[:2_000]) if tool in PREPARE else None
    TOOLS[tool](ref.iloc[:2_000], cur.iloc[:2_000], small)
    base = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    flagged = TOOLS[tool](ref, cur, prepared)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "tool": tool,
        "rows": rows,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb(),
        "peak_before_mb": base,
        "flagged": sorted(flagged),
    }


def _timed(tool: str, run: Any) -> dict[str, object]:
    base = _peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    flagged = run()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {
        "tool": tool,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mb": _peak_mb(),
        "peak_before_mb": base,
        "flagged": sorted(flagged),
    }


def stream(tool: str, path: str, reference_rows: int) -> dict[str, object]:
    """A Parquet window against a reference frame: mloop streams it, the scipy loop loads it."""
    ref = make_frame(reference_rows, 1)
    TOOLS[tool](ref.iloc[:2_000], ref.iloc[:2_000], None)
    if tool == "scipy":
        import pandas as pd

        return _timed(tool, lambda: TOOLS[tool](ref, pd.read_parquet(path), None))
    from mloop.monitor import drift

    return _timed(tool, lambda: set(drift(ref, path).drifted_columns))


def wide(tool: str, rows: int, columns: int) -> dict[str, object]:
    """Many columns: every 100th numeric and 50th categorical column is shifted."""
    ref, _ = make_wide(rows, columns, 1)
    cur, moved = make_wide(rows, columns, 2, shifted=True)
    TOOLS[tool](ref.iloc[:2_000], cur.iloc[:2_000], None)
    out = _timed(tool, lambda: TOOLS[tool](ref, cur, None))
    flagged = set(out.pop("flagged"))  # type: ignore[arg-type]
    out["shifted_found"] = len(flagged & set(moved))
    out["shifted"] = len(moved)
    out["false_alarms"] = len(flagged - set(moved))
    return out


def quality(tool: str, rows: int, seeds: int) -> dict[str, object]:
    shifted = {name: 0 for name in SHIFTS}
    false_alarms = tested = runs_with_alarm = 0
    for seed in range(seeds):
        ref = make_frame(rows, 1_000 + seed)
        prepared = PREPARE[tool](ref) if tool in PREPARE else None
        flagged = TOOLS[tool](ref, make_frame(rows, 2_000 + seed, SHIFTS), prepared)
        for name in shifted:
            shifted[name] += name in flagged
        false_alarms += len(flagged - set(SHIFTS))
        tested += 25 - len(SHIFTS)
        calm = TOOLS[tool](ref, make_frame(rows, 3_000 + seed), prepared)
        runs_with_alarm += bool(calm)
        false_alarms += len(calm)
        tested += 25
    return {
        "tool": tool,
        "rows": rows,
        "seeds": seeds,
        "power": {k: v / seeds for k, v in shifted.items()},
        "false_alarm_per_column": false_alarms / tested,
        "calm_runs_with_alarm": runs_with_alarm / seeds,
    }


def irrelevant(tool: str, rows: int) -> dict[str, object]:
    """At large n: is a 0.02 sd shift flagged (it should not be) and a 0.05 sd one (it should)?"""
    ref = make_frame(rows, 11)
    prepared = PREPARE[tool](ref) if tool in PREPARE else None
    shifts = {"x0": ("mean", 0.02), "x1": ("mean", 0.05), "x2": ("mean", 0.1)}
    flagged = TOOLS[tool](ref, make_frame(rows, 12, shifts), prepared)
    return {"tool": tool, "rows": rows, "flagged": sorted(flagged)}


def main() -> None:
    mode, tool = sys.argv[1], sys.argv[2]
    if mode == "speed":
        out = speed(tool, int(sys.argv[3]))
    elif mode == "quality":
        out = quality(tool, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "irrelevant":
        out = irrelevant(tool, int(sys.argv[3]))
    elif mode == "stream":
        out = stream(tool, sys.argv[3], int(sys.argv[4]))
    elif mode == "wide":
        out = wide(tool, int(sys.argv[3]), int(sys.argv[4]))
    elif mode == "cbpe":
        from _cbpe_tools import CBPE_TOOLS

        out = CBPE_TOOLS[tool](sys.argv[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
