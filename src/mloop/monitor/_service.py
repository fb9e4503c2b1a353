"""The monitor service: reads the compacted log, joins feedback, reports windows.

I/O edge of the live side: it owns the log store choice (Parquet under the home
folder, or SQL tables when the metadata database is PostgreSQL), compacts the
spool before it reads, and hands rows to the pure ``observe_rows``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from mloop._clock import Clock, SystemClock
from mloop._duration import parse_duration
from mloop.config import Settings
from mloop.errors import InvalidInput
from mloop.journal import (
    LAST_EPOCH_S,
    MAX_FEEDBACK_ITEMS,
    BackgroundCompactor,
    FeedbackLog,
    FeedbackResult,
    LabelSpaces,
    LogStore,
    ParquetLogStore,
    PredictionLog,
    SqlLogStore,
    check_feedback,
    compact_stream,
    dead_letter_count,
    join_feedback,
    label_array,
)
from mloop.monitor._catalog import ModelCatalog, MonitoredVersion
from mloop.monitor._observe import (
    WindowDrift,
    WindowStatus,
    contract_violations,
    drift_of_windows,
    observe_table,
)
from mloop.monitor._reference import Reference, as_reference

__all__ = ["Monitor", "MonitorStatus", "parse_since"]

_log = logging.getLogger("mloop.monitor")

_MAX_WINDOWS = 1000
_FEEDBACK_LOOKBACK_S = 7 * 86400.0  # how far back a label looks for its prediction (count only)
_LABEL_SPACES_TTL_S = 5.0  # a new version's classes are known to feedback within this
_UNKNOWN_MODEL_RELOAD_S = 1.0  # a label naming an unknown model re-reads at most this often


def _items(records: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> list[Any]:
    items = [records] if isinstance(records, Mapping) else list(records)
    if not items:
        raise InvalidInput("No feedback given; send one label or a list of labels.")
    return items


def parse_since(value: str | float | int | dt.datetime | None, now: float, default: str) -> float:
    """Epoch seconds from ``"24h"`` (ago), an epoch number, an ISO date/time or a datetime."""
    seconds = _since_seconds(value, now, default)
    if not -LAST_EPOCH_S <= seconds <= LAST_EPOCH_S:  # also NaN
        raise InvalidInput(
            f"since/until {value!r} is not a time between years 1 and 9999; give a duration "
            "(24h, 7d), an epoch time in seconds or an ISO date."
        )
    return seconds


def _since_seconds(
    value: str | float | int | dt.datetime | None, now: float, default: str
) -> float:
    if value is None:
        value = default
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text[-1:].isalpha():  # "24h" means 24 hours ago; a bare number is an epoch time
        try:
            return now - parse_duration(text, "since")
        except InvalidInput:
            pass  # maybe an ISO date ending in a letter, e.g. "…Z"
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"since={value!r} is neither a duration (24h, 7d), an epoch time nor an ISO date."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class MonitorStatus:
    """A model's monitoring windows from ``since`` to ``until``."""

    model: str
    reference_version: int | None
    since: float
    until: float
    window: float
    windows: list[WindowStatus] = field(default_factory=list)
    version: int | None = None
    # Records compaction could not store, per stream, and the files that hold them.
    quarantined: dict[str, int] = field(default_factory=dict)
    dead_letters: list[str] = field(default_factory=list)
    # Why the last compaction before this read failed (the numbers may be stale).
    compaction_error: str | None = None

    @property
    def total(self) -> WindowStatus | None:
        """The last (most recent) window, or None without windows."""
        return self.windows[-1] if self.windows else None

    def to_dict(self, *, detail: bool = False) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "model": self.model,
            "reference_version": self.reference_version,
            "version": self.version,
            "since": self.since,
            "until": self.until,
            "window_s": self.window,
            "windows": [w.to_dict(detail=detail) for w in self.windows],
            "quarantined": self.quarantined,
            "dead_letters": self.dead_letters,
            "compaction_error": self.compaction_error,
        }


@dataclass(frozen=True)
class _Logged:
    """Logged rows of one model as a monitoring table, and the label of each row."""

    table: pa.Table | None
    labels: np.ndarray
    violations: np.ndarray | None = None  # rows that break the contract, once checked

    def checked(self, schema: Any) -> _Logged:
        """These rows with the contract checked once for all of them."""
        return replace(self, violations=contract_violations(schema, self.table))

    def of_version(self, version: int) -> _Logged:
        if self.table is None:
            return self
        keep = pc.equal(self.table.column("version"), version)
        mask = keep.to_numpy(zero_copy_only=False)
        if mask.all():
            return self  # one version served them all: no copy of every column
        bad = None if self.violations is None else self.violations[mask]
        return _Logged(self.table.filter(keep), self.labels[mask], bad)

    def stamps(self) -> np.ndarray:
        if self.table is None:
            return np.zeros(0)
        return np.asarray(self.table.column("ts").to_numpy())

    def slice(self, lo: int, hi: int) -> _Logged:
        if self.table is None:
            return self
        bad = None if self.violations is None else self.violations[lo:hi]
        return _Logged(self.table.slice(lo, hi - lo), self.labels[lo:hi], bad)


class Monitor:
    """Live monitoring of logged predictions: status, feedback, per-version observations."""

    max_feedback_items: ClassVar[int] = MAX_FEEDBACK_ITEMS  # labels per call

    def __init__(
        self,
        settings: Settings,
        registry: ModelCatalog,
        *,
        clock: Clock | None = None,
        prediction_log: PredictionLog | None = None,
        store: LogStore | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._spaces: tuple[float, LabelSpaces] | None = None
        self.clock = clock or SystemClock()
        self.prediction_log = prediction_log
        self._feedback_log: FeedbackLog | None = None
        self._compactor: BackgroundCompactor | None = None
        self._compaction_error: str | None = None
        self._owns_log = False
        self.store: LogStore = store or self._default_store()

    def _default_store(self) -> LogStore:
        if self.settings.database_url.startswith(("postgresql", "postgres")):
            return SqlLogStore(self.registry.store.engine)
        return ParquetLogStore(self.settings.home)

    @property
    def feedback_log(self) -> FeedbackLog:
        """The durable label log (opened on first use)."""
        if self._feedback_log is None:
            self._feedback_log = FeedbackLog(self.settings)
        return self._feedback_log

    def serving_sink(self) -> PredictionLog:
        """The prediction log a server hands to ``create_app(prediction_sink=...)``.

        Opened on first call (claiming a spool folder of this home) with background
        compaction started; ``close`` flushes and closes it.
        """
        if self.prediction_log is None:
            self.prediction_log = PredictionLog(self.settings)
            self._owns_log = True
        self.start_compaction()
        return self.prediction_log

    def start_compaction(self, interval_s: float | None = None) -> BackgroundCompactor:
        """Compact the spools in the background (servers call this; stopped by ``close``)."""
        if self._compactor is None:
            every = self.settings.monitor.compact_interval_s if interval_s is None else interval_s
            self._compactor = BackgroundCompactor(
                self.store, self.settings.home / "spool", every
            ).start()
        return self._compactor

    def compact(self) -> int:
        """Move spooled predictions and labels into the log store; return records moved."""
        root = self.settings.home / "spool"
        return compact_stream(self.store, root, "predictions") + compact_stream(
            self.store, root, "feedback"
        )

    def _compact_before_reading(self) -> None:
        # A store that takes no writes just now must not stop monitoring from answering
        # with what is compacted; the spool keeps the rest for the next pass.
        try:
            self.compact()
        except Exception as exc:
            _log.warning("compaction before a monitor read failed", exc_info=True)
            self._compaction_error = f"{type(exc).__name__}: {exc}"
        else:
            self._compaction_error = None

    def prune(self, older_than: str | float = "30d") -> int:
        """Delete logged predictions and labels older than ``older_than`` (a duration)."""
        return self.store.prune(self.clock.now() - parse_duration(older_than, "older_than"))

    # --- feedback ----------------------------------------------------------------------

    def feedback(
        self,
        records: Iterable[Mapping[str, Any]] | Mapping[str, Any],
        *,
        first_index: int = 0,
    ) -> FeedbackResult:
        """Store labels durably (returns once they are on disk) and count the matched ones.

        Every label is checked first (bounds, and that it can score its model: see
        ``_feedback_door``): one bad label refuses the whole batch with a 422 that
        lists every bad item by index (counted from ``first_index``). ``unmatched``
        counts labels whose prediction is not in the compacted log (yet): they are
        kept and join as soon as their prediction is compacted.
        """
        items = _items(records)
        clean = self._add_feedback(items, self._label_spaces(items), first_index)
        self.feedback_log.flush()
        return self._match(clean)

    async def afeedback(
        self, records: Iterable[Mapping[str, Any]] | Mapping[str, Any]
    ) -> FeedbackResult:
        """``feedback`` for async servers: waits for disk without blocking the loop."""
        items = _items(records)
        spaces = await asyncio.to_thread(self._label_spaces, items)
        clean = self._add_feedback(items, spaces, 0)
        await self.feedback_log.durable()
        return await asyncio.to_thread(self._match, clean)

    def check_feedback(
        self, records: Iterable[Mapping[str, Any]] | Mapping[str, Any], *, first_index: int = 0
    ) -> int:
        """Check labels as ``feedback`` does without storing them; return how many passed."""
        items = _items(records)
        return len(
            check_feedback(
                items, self.clock.now(), self._label_spaces(items), first_index=first_index
            )
        )

    def _add_feedback(
        self, items: list[Any], spaces: LabelSpaces, first_index: int
    ) -> list[dict[str, Any]]:
        log = self.prediction_log
        model_of = None if log is None else log.model_of
        return self.feedback_log.add(
            items, self.clock.now(), spaces, model_of, first_index=first_index
        )

    def _label_spaces(self, items: list[Any]) -> LabelSpaces:
        """The registry's tasks and classes per model, read at most every few seconds.

        Read again sooner (at most once a second) when a label names a model not
        among them: it may have been registered a moment ago.
        """
        now = self.clock.monotonic()
        cached = self._spaces
        named = {
            str(item["model"]).strip()
            for item in items
            if isinstance(item, Mapping) and isinstance(item.get("model"), str)
        }
        stale = cached is None or now - cached[0] >= _LABEL_SPACES_TTL_S
        if cached is not None and not stale and not named <= cached[1].keys():
            stale = now - cached[0] >= _UNKNOWN_MODEL_RELOAD_S
        if cached is None or stale:
            cached = self._spaces = (now, self.registry.label_spaces())
        return cached[1]

    def _match(self, clean: list[dict[str, Any]]) -> FeedbackResult:
        # Matched against the compacted log only: no compaction on the request path, so a
        # label for a prediction still in the spool counts as unmatched (yet joins later).
        now = self.clock.now()
        ids, keys = self.store.find(
            {i["request_id"] for i in clean if i["request_id"] is not None},
            {i["entity_key"] for i in clean if i["request_id"] is None},
            now - _FEEDBACK_LOOKBACK_S,
            now + 86400.0,
        )
        matched = sum(
            1
            for item in clean
            if (item["request_id"] is not None and item["request_id"] in ids)
            or (item["request_id"] is None and item["entity_key"] in keys)
        )
        return FeedbackResult(len(clean), matched, len(clean) - matched)

    # --- reading -----------------------------------------------------------------------

    def predictions(self, model: str | None, since: float, until: float) -> pd.DataFrame:
        """Logged prediction rows (one per predicted row) with their joined ``label``."""
        self._compact_before_reading()
        rows = self.store.predictions(model, since, until)
        labels = join_feedback(rows, self.store.feedback(since))
        return rows.assign(label=labels)

    def _logged(self, model: str, since: float, until: float) -> _Logged:
        """``model``'s logged rows in [since, until), column-wise and sorted by ts, with
        the label of each row."""
        self._compact_before_reading()
        table = self.store.monitoring_rows(model, since, until)
        if table is None:
            return _Logged(None, np.full(0, None, dtype=object))
        return _Logged(table, label_array(table, self.store.feedback(since)))

    def _reference(self, model: str, version: int | None) -> MonitoredVersion:
        return self.registry.get(model if version is None else f"{model}:{version}")

    def status(
        self,
        model: str,
        *,
        since: str | float | dt.datetime | None = None,
        until: str | float | dt.datetime | None = None,
        window: str | float | None = None,
        version: int | None = None,
    ) -> MonitorStatus:
        """Per-window drift, data quality and performance of ``model`` (one version or all).

        Windows lie on a grid of the window length (``since`` is rounded down to it);
        the last one ends at ``until`` (default now) and may be partial.
        """
        now = self.clock.now()
        start = parse_since(since, now, "24h")
        stop = now if until is None else parse_since(until, now, "0s")
        width = parse_duration(window or self.settings.monitor.window, "window")
        if width <= 0:
            raise InvalidInput(f"window {window!r} must be longer than zero, e.g. 1h.")
        if stop <= start:
            raise InvalidInput(f"until ({stop}) must be after since ({start}).")
        if (stop - start) / width > _MAX_WINDOWS:
            raise InvalidInput(
                f"{math.ceil((stop - start) / width)} windows of {width:g} s between since and "
                f"until; use a wider window (at most {_MAX_WINDOWS} windows)."
            )
        # Whole windows on a grid of the window length (hours start at :00), as alerts use.
        start = math.floor(start / width) * width
        mv = self._reference(model, version)
        logged = self._logged(model, start, stop)
        if version is not None:
            logged = logged.of_version(version)
        # Checked once, and every window counted in one pass; each window is a slice.
        logged = logged.checked(mv.schema)
        profile = mv.profile
        reference = None if profile is None else as_reference(profile)
        stamps = logged.stamps()
        edges = [start]
        while edges[-1] < stop:
            edges.append(min(edges[-1] + width, stop))
        cuts = np.searchsorted(stamps, edges, side="left").tolist()
        bounds = list(itertools.pairwise(cuts))
        drift: list[WindowDrift | None] = [None] * len(bounds)
        if profile is not None and reference is not None and logged.table is not None:
            features = list(profile.features)
            drift = list(drift_of_windows(reference, features, mv.task, logged.table, bounds))
        windows = [
            self._observe(mv, a, b, logged.slice(lo, hi), reference, drift[i])
            for i, ((a, b), (lo, hi)) in enumerate(
                zip(itertools.pairwise(edges), bounds, strict=True)
            )
        ]
        quarantined: dict[str, int] = {}
        dead_letters: list[str] = []
        for stream in ("predictions", "feedback"):
            count, path = dead_letter_count(self.settings.home / "spool", stream)
            if count:
                quarantined[stream] = count
                dead_letters.append(str(path))
        return MonitorStatus(
            model,
            mv.version,
            start,
            stop,
            width,
            windows,
            version,
            quarantined=quarantined,
            dead_letters=dead_letters,
            compaction_error=self._compaction_error,
        )

    def _observe(
        self,
        mv: MonitoredVersion,
        start: float,
        end: float,
        logged: _Logged,
        reference: Reference | None = None,
        drift: WindowDrift | None = None,
    ) -> WindowStatus:
        if logged.violations is None:
            logged = logged.checked(mv.schema)
        return observe_table(
            mv.name,
            start,
            end,
            logged.table,
            logged.labels,
            task=mv.task,
            classes=mv.classes,
            profile=mv.profile,
            reference=reference,
            violations=logged.violations,
            drift=drift,
        )

    def observe_window(
        self,
        model: str,
        version: int,
        *,
        since: str | float | dt.datetime,
        until: str | float | dt.datetime | None = None,
    ) -> WindowStatus:
        """One window of one version (for the rollout controller's guards).

        Reference = that version's own profile: prediction drift, realized accuracy
        (where labels arrived), estimated accuracy and data quality of its traffic.
        """
        now = self.clock.now()
        start = parse_since(since, now, "1h")
        stop = now if until is None else parse_since(until, now, "0s")
        mv = self._reference(model, version)
        logged = self._logged(model, start, stop).of_version(version)
        return self._observe(mv, start, stop, logged)

    def observe_versions(
        self,
        model: str,
        versions: Iterable[int],
        *,
        since: str | float | dt.datetime,
        until: str | float | dt.datetime | None = None,
    ) -> dict[int, WindowStatus]:
        """``observe_window`` for several versions from one read of the log."""
        now = self.clock.now()
        start = parse_since(since, now, "1h")
        stop = now if until is None else parse_since(until, now, "0s")
        logged = self._logged(model, start, stop)
        return {
            v: self._observe(self._reference(model, v), start, stop, logged.of_version(v))
            for v in versions
        }

    def report(
        self,
        model: str,
        *,
        since: str | float | dt.datetime | None = None,
        until: str | float | dt.datetime | None = None,
        window: str | float | None = None,
        version: int | None = None,
    ) -> tuple[MonitorStatus, str]:
        """The status and a self-contained HTML report (timeline + whole-period drift)."""
        from mloop.monitor._report import render_status_html

        status = self.status(model, since=since, until=until, window=window, version=version)
        mv = self._reference(model, version)
        logged = self._logged(model, status.since, status.until)
        if version is not None:
            logged = logged.of_version(version)
        overall = self._observe(mv, status.since, status.until, logged)
        return status, render_status_html(status, overall)

    def close(self) -> None:
        """Close the logs this monitor opened (flushing them) and stop background compaction."""
        if self._owns_log and self.prediction_log is not None:
            self.prediction_log.close()
            self.prediction_log = None
            self._owns_log = False
        if self._compactor is not None:
            self._compactor.stop()
            self._compactor = None
        if self._feedback_log is not None:
            self._feedback_log.close()
            self._feedback_log = None
