"""Register N small models (one per customer) with a production alias, once, for the Zipf scenario."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from mloop.config import load_settings
from mloop.registry import Registry


def main(home: Path, n: int) -> None:
    reg = Registry(load_settings(env={}, config_file=None, home=home))
    have = set(reg.with_alias("production"))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(n):
        name = f"customer{i:04d}"
        x = pd.DataFrame(rng.normal(size=(200, 5)), columns=[f"f{j}" for j in range(5)])
        if name in have:
            continue
        y = (x.to_numpy() @ rng.normal(size=5) > 0).astype(int)
        reg.register(
            LogisticRegression().fit(x.to_numpy(), y),
            name,
            training_data=x,
            target=y,
            alias="production",
        )
        if i % 50 == 0:
            print(f"{i} registered, {time.perf_counter() - started:.0f} s", flush=True)
    (home / ".complete").write_text(str(n))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
