"""``mloop demo``: train on packaged data, register, serve, send traffic, and show monitoring."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli._context import state
from mloop.cli._table import make_console

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["demo", "penguins", "train_penguin_classifier"]

console = make_console()
MODEL = "penguins"
FEATURES = [
    "island",
    "bill_length_mm",
    "bill_depth_mm",
    "flipper_length_mm",
    "body_mass_g",
    "sex",
]


def penguins() -> tuple[pd.DataFrame, pd.Series]:
    """The Palmer penguins (ships inside the ``palmerpenguins`` package; no download)."""
    from palmerpenguins import load_penguins

    frame = load_penguins()
    return frame[FEATURES], frame["species"].astype(str)


def train_penguin_classifier(X: pd.DataFrame, y: pd.Series, seed: int = 0) -> Any:
    """A Pipeline with a ColumnTransformer over numeric and categorical columns with gaps."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in FEATURES if X[c].dtype.kind == "f"]
    categorical = [c for c in FEATURES if c not in numeric]
    prep = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            ),
        ]
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=1000, C=0.5))])
    return model.fit(X, y)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    import numpy as np

    return [
        {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
        for row in frame.to_dict(orient="records")
    ]


def demo(
    ctx: typer.Context,
    serve: Annotated[bool, typer.Option(help="Start the server and send traffic.")] = True,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Stop after the tour instead of serving until Ctrl-C.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for the demo server.")] = 8000,
    loop: Annotated[
        bool,
        typer.Option(
            "--loop",
            help="Show the closed loop instead: drift, alert, retrain, gate, shadow, canary.",
        ),
    ] = False,
) -> None:
    """Train a classifier on packaged data, register it, serve it and watch it."""
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    cli = state(ctx)
    if loop:
        from mloop.pipelines.demo import run_loop_demo

        run_loop_demo(cli.settings, console)
        console.print(f"Done in {time.perf_counter() - started:.1f} s.")
        return
    registry = cli.registry
    console.rule("[bold]mloop demo")
    console.print(f"home: {cli.settings.home}  database: {cli.settings.database_url}")

    X, y = penguins()
    X_train, X_ref, y_train, y_ref = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    model = train_penguin_classifier(X_train, y_train)
    accuracy = float(accuracy_score(y_ref, model.predict(X_ref)))
    console.print(
        f"1. Trained a scikit-learn Pipeline on the Palmer penguins ({len(X_train)} rows, "
        f"{len(FEATURES)} features, 3 species); holdout accuracy {accuracy:.3f}."
    )
    mv = registry.register(
        model,
        MODEL,
        training_data=X_train,
        target=y_train.to_numpy(),
        reference_data=X_ref,
        reference_target=y_ref.to_numpy(),
        metrics={"accuracy": accuracy},
        params={"C": 0.5, "model": "LogisticRegression"},
        tags={"dataset": "palmerpenguins", "demo": "true"},
        alias="production",
        description="Penguin species from bill, flipper, mass, island and sex.",
    )
    console.print(
        f"2. Registered {mv.ref} ({mv.flavor}) with its contract "
        f"({len(mv.schema.columns) if mv.schema else 0} columns) and reference profile; "
        f"{MODEL}@production → {mv.version}."
    )
    predictor = registry.load(f"{MODEL}@production")
    sample = _records(X_ref.head(2))
    out = predictor.predict(sample).to_records()
    console.print(f"3. Loaded {MODEL}@production (sha256 checked) and predicted: {out[0]}")

    if serve:
        from mloop.cli._demo_serving import serve_and_watch

        serve_and_watch(
            cli.settings, registry, X_ref, y_ref, port=port, exit_after=exit_after, started=started
        )
        return
    _next_steps()
    console.print(f"Done in {time.perf_counter() - started:.1f} s.")


def _next_steps() -> None:
    console.print("\nTry next:")
    for line in (
        f"mloop models show {MODEL}",
        f"mloop predict {MODEL}@production --input data.csv --output preds.parquet",
        "mloop serve",
        f"mloop alias history {MODEL}",
    ):
        console.print(f"  [cyan]{line}[/cyan]")
