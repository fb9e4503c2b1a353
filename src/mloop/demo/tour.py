"""``mloop demo``: train on the penguins, register, serve in this process, send traffic, watch.

One full server (``run_in_background``: monitoring, rollouts, alerts) answers the
records API and the Open Inference Protocol; normal and shifted traffic and true
labels go in over HTTP, and the monitor's window says what it saw.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.markup import escape

from mloop.config import Settings
from mloop.demo.penguins import FEATURES, MODEL, TARGET, fit_classifier, penguins, records
from mloop.errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

    from mloop.registry import Registry
    from mloop.server import ServerHandle

__all__ = ["tour"]

console = Console(soft_wrap=True)  # URLs and commands stay on one line, copyable
BATCH = 8


def _start(settings: Settings, registry: Registry, port: int) -> ServerHandle:
    from mloop.server import run_in_background

    try:
        return run_in_background(settings, registry=registry, port=port, auth=False)
    except ConfigurationError as exc:
        if "Cannot listen" not in exc.message:
            raise
        console.print(f"   port {port} is taken; using a free one instead.")
        return run_in_background(settings, registry=registry, port=0, auth=False)


def _predict(http: httpx.Client, frame: pd.DataFrame) -> list[dict[str, Any]]:
    answers = []
    for start in range(0, len(frame), BATCH):
        body = {"records": records(frame.iloc[start : start + BATCH])}
        response = http.post(f"/models/{MODEL}/predict", json=body)
        response.raise_for_status()
        answers.append(response.json())
    return answers


def _v2(http: httpx.Client, registry: Registry, row: dict[str, Any]) -> dict[str, Any]:
    schema = registry.get(f"{MODEL}@production").schema
    inputs = [
        {
            "name": col,
            "shape": [1],
            "datatype": schema.v2_datatype(col) if schema is not None else "BYTES",
            "data": [row[col]],
        }
        for col in FEATURES
    ]
    response = http.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    response.raise_for_status()
    return dict(response.json())


def _shifted(frame: pd.DataFrame) -> pd.DataFrame:
    # Heavier penguins with longer flippers: what a new colony (or a broken scale) looks like.
    return frame.assign(
        body_mass_g=frame["body_mass_g"] * 1.25,
        flipper_length_mm=frame["flipper_length_mm"] * 1.10,
    )


def _feedback(
    http: httpx.Client, answers: list[dict[str, Any]], truth: pd.Series, every: int = 2
) -> tuple[int, int]:
    labels = []
    offset = 0
    for answer in answers:
        for row in range(len(answer["predictions"])):
            if (offset + row) % every == 0:
                labels.append(
                    {
                        "request_id": answer["request_id"],
                        "row": row,
                        "label": str(truth.iloc[offset + row]),
                    }
                )
        offset += len(answer["predictions"])
    response = http.post("/feedback", json=labels)
    response.raise_for_status()
    counts = response.json()
    return int(counts["accepted"]), int(counts["matched"])


def _summary(window: Any) -> tuple[str, str]:
    if window.rows == 0:
        return "no rows logged", ""
    drifted = [] if window.drift is None else window.drift.drifted_columns
    total = 0 if window.drift is None else len(window.drift.columns)
    drift = (
        f"drift in {', '.join(drifted)} ({len(drifted)} of {total} features)"
        if drifted
        else f"no drift in {total} features"
    )
    parts = []
    accuracy = window.metric("accuracy")
    if accuracy is not None:
        parts.append(f"realized accuracy {accuracy:.3f} on {window.labelled} labels")
    estimated = window.metric("estimated_accuracy")
    if estimated is not None:
        parts.append(f"estimated accuracy {estimated:.3f} (no labels needed)")
    return f"{window.rows} rows, {drift}", "; ".join(parts)


def tour(
    settings: Settings, registry: Registry, *, serve: bool, port: int, exit_after: bool
) -> None:
    """Train, register, load and predict; then, with ``serve``, the server part of the tour."""
    from sklearn.metrics import accuracy_score
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    console.rule("[bold]mloop demo")
    console.print(f"home: {settings.home}  database: {settings.database_url}")
    data = penguins()
    X, y = data[FEATURES], data[TARGET]
    X_train, X_ref, y_train, y_ref = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y
    )
    model = fit_classifier(X_train, y_train)
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
    out = predictor.predict(records(X_ref.head(2))).to_records()
    console.print(f"3. Loaded {MODEL}@production (sha256 checked) and predicted: {out[0]}")
    if serve:
        serve_and_watch(
            settings, registry, X_ref, y_ref, port=port, exit_after=exit_after, started=started
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
        "mloop demo --loop   (the real server heals its model by itself)",
    ):
        console.print(f"  [cyan]{line}[/cyan]")


def serve_and_watch(
    settings: Settings,
    registry: Registry,
    X_ref: pd.DataFrame,
    y_ref: pd.Series,
    *,
    port: int,
    exit_after: bool,
    started: float,
) -> None:
    """Start the full server, send normal and shifted traffic and labels, show the monitor."""
    cfg = replace(settings.serving, host="127.0.0.1", auth="off", access_log=False)
    settings = replace(settings, serving=cfg)
    handle = _start(settings, registry, port)
    url = handle.url
    console.print(
        f"4. Serving on {url} (auth off: loopback only) with monitoring, rollouts and alerts."
    )
    console.print(f"   API docs: {url}/docs")
    stack = handle.app.state.stack
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            normal = _predict(http, X_ref)
            row = records(X_ref.dropna().head(1))[0]
            v2 = _v2(http, registry, row)
            labels = next(o for o in v2["outputs"] if o["name"] == "label")
            console.print(
                f"5. Sent {len(X_ref)} rows in {len(normal)} requests to the records API, and one "
                f"Open Inference Protocol (v2) request → {escape(str(labels['data']))}"
            )
            shift_start = time.time()
            shifted = _predict(http, _shifted(X_ref))
            # Labels are counted as matched against the compacted log: compact it first.
            stack.monitor.prediction_log.flush()
            stack.monitor.compact()
            accepted, matched = _feedback(http, shifted, y_ref)
            console.print(
                f"6. Sent the same rows shifted (body_mass_g +25%, flipper_length_mm +10%), "
                f"then {accepted} true labels to POST /feedback ({matched} matched)."
            )
        stack.monitor.prediction_log.flush()
        version = registry.get(f"{MODEL}@production").version
        window = stack.monitor.observe_window(MODEL, version, since=shift_start)
        rows, performance = _summary(window)
        console.print(f"7. Monitor, shifted traffic: {rows}.")
        if performance:
            console.print(f"   {performance}.")
        _try_next(url)
        console.print(f"Tour done in {time.perf_counter() - started:.1f} s.")
        if exit_after:
            return
        console.print(f"Serving on {url} until Ctrl-C.")
        try:
            while handle.thread.is_alive():
                handle.thread.join(0.5)
        except KeyboardInterrupt:
            console.print("Stopping.")
    finally:
        handle.stop()


def _try_next(url: str) -> None:
    row = '{"records": [{"island": "Biscoe", "bill_length_mm": 45.1, "bill_depth_mm": 14.5, '
    row += '"flipper_length_mm": 215, "body_mass_g": 5000, "sex": "female"}]}'
    console.print("\nTry next:")
    for line in (
        f"mloop monitor status {MODEL}",
        f"mloop monitor report {MODEL} --out report.html",
        f"curl -s {url}/models/{MODEL}/predict -H 'content-type: application/json' -d '{row}'",
        f"curl -s {url}/models/{MODEL}/monitor/status?since=1h",
        f"curl -s {url}/feedback -H 'content-type: application/json' "
        f'-d \'{{"request_id": "<id>", "label": "Gentoo"}}\'',
        f"mloop deploy {MODEL}:2 --strategy canary   (after registering a second version)",
    ):
        console.print(f"  [cyan]{escape(line)}[/cyan]")
