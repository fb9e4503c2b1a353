"""The registry behaves the same on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mloop.config import Settings, load_settings
from mloop.errors import Conflict, IntegrityError, InvalidInput, NotFound
from mloop.registry import Registry


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return load_settings(env={}, home=tmp_path / "home")
    url = request.getfixturevalue("postgres_url")
    return load_settings(env={}, home=tmp_path / "home", database_url=url)


def _data(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"age": rng.normal(40, 10, 300), "spend": rng.gamma(2.0, 50.0, 300)})
    y = np.where(X["spend"] + rng.normal(0, 20, 300) > 100, "yes", "no")
    return X, y


def _model() -> tuple[LogisticRegression, pd.DataFrame, np.ndarray]:
    X, y = _data()
    return LogisticRegression().fit(X, y), X, y


def test_register_resolve_and_predict_original_labels(backend_settings: Settings) -> None:
    reg = Registry(backend_settings)
    model, X, y = _model()
    mv = reg.register(
        model,
        "churn",
        training_data=X,
        target=y,
        metrics={"auc": 0.9},
        params={"C": 1.0},
        tags={"team": "growth"},
        alias="staging",
    )
    assert (mv.name, mv.version, mv.aliases) == ("churn", 1, ("staging",))
    assert mv.task == "classification" and set(mv.classes) == {"no", "yes"}
    assert mv.metrics == {"auc": 0.9} and mv.tags == {"team": "growth"}
    assert mv.lineage["training_rows"] == 300 and len(mv.lineage["training_data_sha256"]) == 64
    assert mv.schema is not None and [c.name for c in mv.schema.columns] == ["age", "spend"]
    assert mv.profile is not None and mv.profile.n == 300

    predictor = reg.load("churn@staging")
    got = predictor.predict(X.head(5).to_dict(orient="records"))
    assert list(got.labels) == list(model.predict(X.head(5)))
    np.testing.assert_allclose(got.probabilities, model.predict_proba(X.head(5)))
    assert reg.get("churn:1").version == reg.get("churn").version == 1


def test_versions_count_up_and_aliases_move_with_audit(backend_settings: Settings) -> None:
    reg = Registry(backend_settings)
    model, X, y = _model()
    for _ in range(3):
        reg.register(model, "churn", training_data=X, target=y)
    assert [v.version for v in reg.versions("churn")] == [1, 2, 3]
    assert reg.set_alias("churn", "production", 2, actor="ana", reason="canary passed") is None
    assert reg.set_alias("churn", "production", 3, actor="ben") == 2
    assert reg.get("churn@production").version == 3
    assert reg.get("churn").version == 3  # bare name follows production
    moves = [e for e in reg.history("churn") if e["action"] == "alias.set"]
    assert [(e["actor"], e["details"]["from"], e["details"]["to"]) for e in moves] == [
        ("ben", 2, 3),
        ("ana", None, 2),
    ]
    assert reg.remove_alias("churn", "production") == 3
    assert reg.aliases("churn") == {}


def test_deleting_an_aliased_version_is_refused_and_names_the_alias(
    backend_settings: Settings,
) -> None:
    reg = Registry(backend_settings)
    model, X, y = _model()
    reg.register(model, "churn", training_data=X, target=y, alias="production")
    with pytest.raises(Conflict, match="churn@production"):
        reg.delete_version("churn", 1)
    reg.register(model, "churn", training_data=X, target=y)
    reg.delete_version("churn", 2)
    assert [v.version for v in reg.versions("churn")] == [1]


def test_unknown_names_say_what_exists(backend_settings: Settings) -> None:
    reg = Registry(backend_settings)
    model, X, y = _model()
    reg.register(model, "churn", training_data=X, target=y)
    with pytest.raises(NotFound, match="Known models: churn"):
        reg.get("fraud@production")
    with pytest.raises(NotFound, match="mloop alias set churn production"):
        reg.get("churn@production")
    with pytest.raises(NotFound, match="versions: 1"):
        reg.get("churn:7")
    with pytest.raises(InvalidInput):
        reg.get("churn:zero")


def test_a_changed_byte_refuses_the_load_naming_the_artifact(backend_settings: Settings) -> None:
    reg = Registry(backend_settings)
    model, X, y = _model()
    mv = reg.register(model, "churn", training_data=X, target=y)
    relative, digest = next(iter(mv.artifacts.items()))
    blob = Path(reg.artifacts.local_path(digest))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"churn:1/{relative}") as info:
        reg.load("churn:1")
    assert info.value.type == "operator_fixable"


def _register_in_process(
    settings: Settings, barrier: mp.synchronize.Barrier, out: mp.Queue
) -> None:  # type: ignore[type-arg]
    model, X, y = _model()
    reg = Registry(settings)
    barrier.wait()
    mv = reg.register(model, "churn", training_data=X, target=y)
    out.put(mv.version)


def test_concurrent_registrations_get_distinct_consecutive_versions(
    backend_settings: Settings,
) -> None:
    Registry(backend_settings)  # migrate once up front; the race under test is numbering
    ctx = mp.get_context("spawn")
    workers = 4
    barrier = ctx.Barrier(workers)
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [
        ctx.Process(target=_register_in_process, args=(backend_settings, barrier, out))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    versions = sorted(out.get(timeout=5) for _ in range(workers))
    assert versions == [1, 2, 3, 4]
    assert [v.version for v in Registry(backend_settings).versions("churn")] == [1, 2, 3, 4]
