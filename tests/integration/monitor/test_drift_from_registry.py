"""``mloop.drift(reference="name@alias", current=df)`` uses the stored profile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import mloop
from mloop.errors import InvalidInput, NotFound


def test_a_model_reference_compares_against_its_registered_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOOP_HOME", str(tmp_path / "home"))
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.normal(40, 10, 3000), "spend": rng.gamma(2.0, 50.0, 3000)})
    y = np.where(X["spend"] > 100, "yes", "no")
    mloop.register(LogisticRegression().fit(X, y), "churn", training_data=X, alias="production")

    current = X.sample(2000, random_state=1).assign(age=lambda f: f["age"] + 5.0)
    report = mloop.drift(reference="churn@production", current=current)
    assert report.drifted_columns == ["age"]
    with pytest.raises(NotFound, match="Known models: churn"):
        mloop.drift(reference="fraud@production", current=current)
    # The monitor area itself knows no registry: it is handed one, or says how.
    same = mloop.monitor.drift("churn@production", current, catalog=mloop.get_registry())
    assert same.drifted_columns == ["age"]
    with pytest.raises(InvalidInput, match=r"call mloop.drift\(...\)"):
        mloop.monitor.drift(reference="churn@production", current=current)
