"""Where a model came from: data fingerprint, code commit, library versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["collect_lineage", "fingerprint"]

_LIBRARIES = ("mloop", "scikit-learn", "numpy", "pandas", "xgboost", "lightgbm", "onnxruntime")


def fingerprint(frame: pd.DataFrame | np.ndarray | None, target: Any = None) -> str | None:
    """A sha256 over the training data's values, column names and target."""
    if frame is None:
        return None
    digest = hashlib.sha256()
    if isinstance(frame, pd.DataFrame):
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    else:
        digest.update(np.ascontiguousarray(frame).tobytes())
    if target is not None:
        digest.update(
            pd.util.hash_pandas_object(pd.Series(target), index=False).to_numpy().tobytes()
        )
    return digest.hexdigest()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _versions() -> dict[str, str]:
    found = {}
    for lib in _LIBRARIES:
        try:
            found[lib] = importlib.metadata.version(lib)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def collect_lineage(frame: Any, target: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Lineage recorded with every version."""
    rows = None if frame is None else len(frame)
    return {
        "training_data_sha256": fingerprint(frame, target),
        "training_rows": rows,
        "git_commit": _git_commit(),
        "python": platform.python_version(),
        "libraries": _versions(),
        **(extra or {}),
    }
