"""``mloop monitor status|report|alerts`` and ``mloop feedback import``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mloop.cli._context import state, when
from mloop.cli._table import Table, make_console
from mloop.errors import InvalidInput

if TYPE_CHECKING:
    from mloop.monitor.live import Monitor

__all__ = ["feedback_app", "monitor_app"]

console = make_console()
monitor_app = typer.Typer(
    help="Watch logged predictions: drift, data quality, performance.", no_args_is_help=True
)
feedback_app = typer.Typer(help="Send delayed ground-truth labels.", no_args_is_help=True)


class Format(StrEnum):
    """Output formats of monitor commands."""

    table = "table"
    json = "json"


def _monitor(ctx: typer.Context) -> Monitor:
    from mloop.monitor.live import Monitor

    st = state(ctx)
    return Monitor(st.settings, st.registry)


def _fmt(value: float | None, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.1%}" if pct else f"{value:.3g}"


@monitor_app.command("status")
def status(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    since: Annotated[str, typer.Option(help="Start: 24h (ago), an ISO time or epoch.")] = "24h",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    window: Annotated[str | None, typer.Option(help="Window length, e.g. 1h.")] = None,
    version: Annotated[int | None, typer.Option(help="Only this version's traffic.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
    empty: Annotated[
        bool, typer.Option("--empty", help="Also list windows without traffic.")
    ] = False,
) -> None:
    """Per-window rows, drift, missing and out-of-contract rates, realized and estimated accuracy."""
    mon = _monitor(ctx)
    try:
        result = mon.status(model, since=since, until=until, window=window, version=version)
    finally:
        mon.close()
    if fmt is Format.json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=str))
        return
    for stream, count in result.quarantined.items():
        console.print(
            f"[yellow]{count} {stream} record(s) could not be stored and were quarantined; "
            f"see {', '.join(p for p in result.dead_letters if f'/{stream}/' in p)}.[/yellow]"
        )
    if result.compaction_error is not None:
        console.print(
            f"[yellow]Compaction failed ({result.compaction_error}); the numbers below may "
            "miss the newest records, which stay in the spool for the next pass.[/yellow]"
        )
    table = Table(
        "window",
        "rows",
        "drift share",
        "drifted features",
        "pred. drift",
        "missing",
        "out of contract",
        "labelled",
        "accuracy",
        "est. accuracy",
        title=f"{model} (reference v{result.reference_version})",
    )
    shown = [w for w in result.windows if empty or w.rows]
    if not shown:
        console.print(
            f"No predictions of {model} were logged since {since}. Serve it (mloop serve) "
            "and send traffic, or widen --since."
        )
        return
    for w in shown:
        drifted = ", ".join(w.drift.drifted_columns) if w.drift is not None else ""
        pred = w.metric("prediction_drift")
        pred_drifted = (
            w.prediction_drift is not None
            and bool(w.prediction_drift.columns)
            and w.prediction_drift.columns[0].drifted
        )
        table.add_row(
            when(w.start, "%m-%d %H:%M"),
            str(w.rows),
            _fmt(w.drift_share, pct=True),
            f"[red]{drifted}[/red]" if drifted else "",
            f"[red]{_fmt(pred)}[/red]" if pred_drifted else _fmt(pred),
            _fmt(w.missing_rate, pct=True),
            _fmt(w.out_of_contract_rate, pct=True),
            str(w.labelled),
            _fmt(w.metric("accuracy") if w.metric("accuracy") is not None else w.metric("rmse")),
            _fmt(w.metric("estimated_accuracy")),
        )
    console.print(table)
    hidden = len(result.windows) - len(shown)
    if hidden:
        console.print(f"({hidden} windows without traffic hidden; --empty lists them.)")


@monitor_app.command("report")
def report(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="Model name.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write.")] = Path("report.html"),
    since: Annotated[str, typer.Option(help="Start: 24h (ago), an ISO time or epoch.")] = "24h",
    until: Annotated[str | None, typer.Option(help="End (default: now).")] = None,
    window: Annotated[str | None, typer.Option(help="Window length, e.g. 1h.")] = None,
    version: Annotated[int | None, typer.Option(help="Only this version's traffic.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="html or json.")] = "html",
) -> None:
    """Write a self-contained HTML report (plots inline) or the full JSON status."""
    if fmt not in ("html", "json"):
        raise InvalidInput(f"--format {fmt!r} is not known; use html or json.")
    mon = _monitor(ctx)
    try:
        result, html = mon.report(model, since=since, until=until, window=window, version=version)
    finally:
        mon.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        out.write_text(json.dumps(result.to_dict(detail=True), indent=2, default=str))
    else:
        out.write_text(html, encoding="utf-8")
    console.print(f"Wrote {out} ({len(result.windows)} windows).")


@monitor_app.command("alerts")
def alerts(
    ctx: typer.Context,
    evaluate: Annotated[bool, typer.Option(help="Evaluate the rules now first.")] = True,
    fmt: Annotated[Format, typer.Option("--format", help="table or json.")] = Format.table,
) -> None:
    """Evaluate the [[alerts]] rules of mloop.toml and show their state."""
    from mloop.monitor.live import Alerter

    mon = _monitor(ctx)
    try:
        alerter = Alerter(mon)
        events = alerter.evaluate() if evaluate else []
        states = {r.name: (r, alerter.state(r.name)) for r in alerter.rules}
    finally:
        mon.close()
    if fmt is Format.json:
        body: dict[str, Any] = {
            "events": [e.to_dict() for e in events],
            "rules": {n: s.to_dict() for n, (_r, s) in states.items()},
        }
        typer.echo(json.dumps(body, indent=2))
        return
    if not states:
        console.print("No [[alerts]] rules in mloop.toml.", markup=False)
        return
    table = Table("rule", "model", "metric", "condition", "status", "last value")
    for name, (rule, st) in states.items():
        colour = {"firing": "red", "pending": "yellow"}.get(st.status, "green")
        table.add_row(
            name,
            rule.model,
            rule.metric,
            f"{rule.op} {rule.threshold:g} for {rule.for_}",
            f"[{colour}]{st.status}[/{colour}]",
            _fmt(st.last_value),
        )
    console.print(table)
    for event in events:
        console.print(event.message)


@monitor_app.command("prune")
def prune(
    ctx: typer.Context,
    older_than: Annotated[str, typer.Option(help="Delete log data older than this.")] = "30d",
) -> None:
    """Delete logged predictions and labels older than --older-than (retention)."""
    mon = _monitor(ctx)
    try:
        mon.compact()
        removed = mon.prune(older_than)
    finally:
        mon.close()
    console.print(f"Removed {removed} partitions/rows older than {older_than}.")


def _read_labels(path: Path, rows: int) -> Any:
    from mloop.cli._io import read_chunks

    # Ids stay text even when they look like numbers.
    yield from read_chunks(path, rows, dtype={"request_id": str, "entity_key": str})


def _label_batches(
    path: Path, batch: int, model: str | None
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """``(index of the first label, labels)`` per batch of the file."""
    first = 0
    for chunk in _read_labels(path, batch):
        if "label" not in chunk.columns or not ({"request_id", "entity_key"} & set(chunk.columns)):
            raise InvalidInput(
                f"{path} has columns {list(chunk.columns)}; it needs 'label' and "
                "'request_id' (optionally 'row') or 'entity_key'."
            )
        records = chunk.astype(object).where(chunk.notna(), None).to_dict("records")
        if model is not None:
            for r in records:
                r["model"] = model
        yield first, records
        first += len(records)


def _check_file(mon: Monitor, path: Path, batch: int, model: str | None) -> None:
    """Check every label of the file, storing none; one error names every bad one."""
    violations: list[dict[str, Any]] = []
    bad = total = 0
    for first, records in _label_batches(path, batch, model):
        total += len(records)
        try:
            mon.check_feedback(records, first_index=first)
        except InvalidInput as exc:
            bad += int(exc.details.get("invalid_items", 1))
            violations.extend(exc.details.get("violations", ()))
    if bad:
        quoted = " ".join(str(v["message"]) for v in violations[:3])
        raise InvalidInput(
            f"{bad} of {total} labels in {path} are invalid, so none was imported (items "
            f"count from 0, the first data row): {quoted}",
            violations=violations[:100],
        )


@feedback_app.command("import")
def import_labels(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="CSV/Parquet/JSONL: request_id[,row] or entity_key, label.")
    ],
    model: Annotated[str | None, typer.Option(help="Model the labels belong to.")] = None,
    batch: Annotated[int, typer.Option(help="Labels per durable batch.")] = 10_000,
) -> None:
    """Import delayed labels, all or none: the whole file is checked before any is stored.

    A bad label is reported by its place among the file's labels (0 = first data row);
    then each batch is on disk before the next is read.
    """
    mon = _monitor(ctx)
    if not 1 <= batch <= mon.max_feedback_items:
        mon.close()
        raise InvalidInput(f"--batch {batch} must be between 1 and {mon.max_feedback_items}.")
    totals = {"accepted": 0, "matched": 0, "unmatched": 0}
    try:
        _check_file(mon, path, batch, model)
        mon.compact()  # so labels for recent predictions count as matched
        for first, records in _label_batches(path, batch, model):
            result = mon.feedback(records, first_index=first)
            for key, value in result.to_dict().items():
                totals[key] += value
    finally:
        mon.close()
    console.print(
        f"Imported {totals['accepted']} labels: {totals['matched']} matched a logged "
        f"prediction, {totals['unmatched']} not (yet)."
    )
