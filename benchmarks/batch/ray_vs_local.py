"""Batch scoring and drift counting over Parquet partitions: the Ray engine against one process.

Same model (HistGradientBoostingClassifier on 20 numeric features with gaps), same
partitions (``--rows`` rows in ``--parts`` files, generated), one run: rows per
second and peak memory (this process plus its Ray workers, sampled) for each engine,
and a check that both engines' outputs are identical.

    .venv/bin/python benchmarks/batch/ray_vs_local.py --rows 1000000 --parts 8
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


class PeakMemory:
    """Peak resident memory of this process tree, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):  # a worker that just exited
                    total += p.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import ray
    from sklearn.ensemble import HistGradientBoostingClassifier

    from mloop.batch import partition_counts, score_partitions
    from mloop.config import load_settings
    from mloop.registry import Registry

    rng = np.random.default_rng(0)
    columns = [f"f{i}" for i in range(20)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = load_settings(env={}, config_file=None, home=folder / "home")
        train = pd.DataFrame(rng.normal(size=(20_000, 20)), columns=columns)
        y = (train["f0"] + train["f1"] > 0).astype(int).to_numpy()
        train.loc[rng.random(len(train)) < 0.05, "f0"] = np.nan  # gaps, as in the partitions
        model = HistGradientBoostingClassifier(random_state=0).fit(train, y)
        registry = Registry(settings)
        profile = registry.register(
            model, "hgb", training_data=train, target=y, alias="production"
        ).profile
        per_part = args.rows // args.parts
        for i in range(args.parts):
            part = pd.DataFrame(rng.normal(size=(per_part, 20)), columns=columns)
            part.loc[rng.random(per_part) < 0.05, "f0"] = np.nan
            part.to_parquet(folder / f"part-{i:03d}.parquet")
        sources = str(folder / "part-*.parquet")
        t0 = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        results = {}
        for engine in ("local", "ray"):
            with PeakMemory() as mem:
                start = time.perf_counter()
                rows = score_partitions(
                    settings,
                    "hgb@production",
                    sources,
                    folder / f"{engine}.parquet",
                    engine=engine,
                    workers=args.workers,
                    batch_rows=50_000,
                )
                scoring = time.perf_counter() - start
                start = time.perf_counter()
                counts = partition_counts(profile, sources, engine=engine)
                counting = time.perf_counter() - start
            results[engine] = (rows, scoring, counting, mem.peak, counts)
        ray.shutdown()
        same_scores = pd.read_parquet(folder / "local.parquet").equals(
            pd.read_parquet(folder / "ray.parquet")
        )
        a, b = results["local"][4], results["ray"][4]
        same_counts = a.n == b.n and all(np.array_equal(a.counts[k], b.counts[k]) for k in a.counts)
    print(
        f"{args.rows:,} rows in {args.parts} partitions, {os.cpu_count()} CPUs; "
        f"ray.init took {ray_start:.1f} s (not counted below)"
    )
    print(f"{'engine':7s} {'score rows/s':>13s} {'drift rows/s':>13s} {'peak MB':>9s}")
    for engine, (rows, scoring, counting, peak, _c) in results.items():
        print(f"{engine:7s} {rows / scoring:13,.0f} {rows / counting:13,.0f} {peak / 2**20:9.0f}")
    local, on_ray = results["local"], results["ray"]
    print(
        f"ray / local: scoring {local[1] / on_ray[1]:.2f}x, drift {local[2] / on_ray[2]:.2f}x "
        f"(>1 means Ray is faster); identical scores: {same_scores}, identical counts: {same_counts}"
    )


if __name__ == "__main__":
    main()
