"""Ingest flows against a real HTTP API on loopback, files, SQLite and real PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pandas as pd
import pytest
import sqlalchemy as sa

from mloop.config import Settings
from mloop.errors import Unavailable
from mloop.pipelines import (
    FileSource,
    HttpJsonSource,
    IngestFlow,
    RunStore,
    SqlSink,
    run_ingest,
)
from mloop.store import MetadataStore

ITEMS = [
    {"id": i, "name": f"item-{i}", "price": 1.5 * i, "meta": {"color": "red"}} for i in range(1, 8)
]


class Api(BaseHTTPRequestHandler):
    """/pages?page=N (3 per page), /cursor?cursor=K, /linked (Link header), /flaky, /down."""

    calls: dict[str, int] = {}
    prices: dict[int, float] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        Api.calls[url.path] = Api.calls.get(url.path, 0) + 1
        items = [{**it, "price": Api.prices.get(it["id"], it["price"])} for it in ITEMS]
        if url.path == "/pages":
            page = int(query.get("page", "1"))
            self._send(200, {"data": {"items": items[(page - 1) * 3 : page * 3]}})
        elif url.path == "/cursor":
            start = int(query.get("cursor", "0"))
            nxt = start + 3 if start + 3 < len(items) else None
            self._send(200, {"results": items[start : start + 3], "next_cursor": nxt})
        elif url.path == "/linked":
            start = int(query.get("offset", "0"))
            headers = {}
            if start + 3 < len(items):
                headers["Link"] = f'</linked?offset={start + 3}>; rel="next"'
            self._send(200, items[start : start + 3], headers)
        elif url.path == "/flaky":
            if Api.calls[url.path] % 2 == 1:
                self._send(429, {"error": "slow down"}, {"Retry-After": "7"})
            else:
                self._send(200, items[:2])
        else:
            self._send(503, {"error": "down"})


@pytest.fixture
def api() -> Iterator[str]:
    Api.calls = {}
    Api.prices = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class FakeTime:
    """A clock that only moves when someone sleeps; records the sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def runs(settings: Settings) -> RunStore:
    return RunStore(MetadataStore.from_settings(settings))


@pytest.mark.parametrize(
    ("path", "source_options"),
    [
        ("/pages", {"pagination": "page", "records": "data.items"}),
        ("/cursor", {"pagination": "cursor", "records": "results"}),
        ("/linked", {"pagination": "next"}),
    ],
)
def test_every_pagination_reads_every_record(
    api: str, path: str, source_options: dict[str, Any]
) -> None:
    frame = HttpJsonSource(api + path, **source_options).read()
    assert frame["id"].tolist() == list(range(1, 8))
    assert frame["meta.color"].eq("red").all()


def test_rate_limit_and_retry_after_are_honoured_without_real_sleeps(api: str) -> None:
    fake = FakeTime()
    source = HttpJsonSource(api + "/pages", pagination="page", records="data.items", rate_per_s=4)
    source.read(clock=fake.clock, sleep=fake.sleep)
    assert Api.calls["/pages"] == 4  # three pages and the empty one that ends it
    assert fake.sleeps == [0.25, 0.25, 0.25]
    flaky = HttpJsonSource(api + "/flaky")
    fake = FakeTime()
    assert len(flaky.read(clock=fake.clock, sleep=fake.sleep)) == 2
    assert fake.sleeps == [7.0]


def test_an_api_that_stays_down_fails_after_backoff(api: str) -> None:
    fake = FakeTime()
    with pytest.raises(Unavailable, match="failed 4 times"):
        HttpJsonSource(api + "/down", max_attempts=4, backoff_s=0.5).read(sleep=fake.sleep)
    assert fake.sleeps == [0.5, 1.0, 2.0]


def test_rerunning_a_flow_upserts_instead_of_duplicating(
    api: str, runs: RunStore, tmp_path: Path
) -> None:
    sink = SqlSink(str(tmp_path / "shop.db"), "items", key=["id"])  # a path: SQLite
    flow = IngestFlow(
        "shop-items",
        HttpJsonSource(api + "/pages", pagination="page", records="data.items"),
        sink,
        transform=lambda f: f.drop(columns=["meta.color"]),
    )
    first = run_ingest(flow, runs)
    assert first.status == "succeeded", first.error
    assert [(s.name, s.status) for s in first.steps] == [
        ("extract", "succeeded"),
        ("transform", "succeeded"),
        ("load", "succeeded"),
    ]
    assert first.step("load").output == {"rows": 7, "inserted": 7, "updated": 0}
    Api.prices[3] = 99.0
    second = run_ingest(flow, runs)
    assert second.step("load").output == {"rows": 7, "inserted": 0, "updated": 7}
    table = pd.read_sql("SELECT * FROM items ORDER BY id", sa.create_engine(sink.sqlalchemy_url))
    assert table["id"].tolist() == list(range(1, 8))
    assert table.loc[table["id"] == 3, "price"].item() == 99.0
    assert [r.id for r in runs.list_runs("shop-items")] == [second.id, first.id]


def test_a_failing_source_is_recorded_on_its_step(api: str, runs: RunStore, tmp_path: Path) -> None:
    flow = IngestFlow(
        "down",
        HttpJsonSource(api + "/down", max_attempts=1),
        SqlSink(f"sqlite:///{tmp_path / 'x.db'}", "t", key=["id"]),
    )
    run = run_ingest(flow, runs)
    assert run.status == "failed" and "step extract" in (run.error or "")
    assert run.step("extract").status == "failed" and run.step("load").status == "pending"


def test_parquet_files_by_glob_into_postgresql(
    postgres_url: str, runs: RunStore, tmp_path: Path
) -> None:
    for day, ids in (("2026-12-01", [1, 2, 3]), ("2026-12-02", [3, 4])):
        part = pd.DataFrame({"id": ids, "amount": [10.0 * i for i in ids], "day": day})
        part.to_parquet(tmp_path / f"orders-{day}.parquet", index=False)
    flow = IngestFlow(
        "orders",
        FileSource(str(tmp_path / "orders-*.parquet")),
        SqlSink(postgres_url, "orders", key=["id"]),
    )
    for _ in range(2):
        run = run_ingest(flow, runs)
        assert run.status == "succeeded", run.error
    engine = sa.create_engine(postgres_url)
    try:
        table = pd.read_sql("SELECT id, amount, day FROM orders ORDER BY id", engine)
    finally:
        engine.dispose()
    assert table["id"].tolist() == [1, 2, 3, 4]
    assert table.loc[table["id"] == 3, "day"].item() == "2026-12-02"  # the later file wins
    assert run.step("load").output == {"rows": 4, "inserted": 0, "updated": 4}


def test_memory_filesystem_and_csv(runs: RunStore, tmp_path: Path) -> None:
    import fsspec

    with fsspec.open("memory://mloop-ingest/a.csv", "w") as handle:
        handle.write("id,name\n1,a\n2,b\n")
    frame = FileSource("memory://mloop-ingest/*.csv").read()
    assert frame.to_dict("records") == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_the_same_flow_runs_as_a_prefect_flow(runs: RunStore, tmp_path: Path) -> None:
    pytest.importorskip("prefect", reason="install the 'prefect' extra to test the Prefect flow")
    import atexit
    import logging

    from mloop.pipelines import as_prefect_ingest_flow

    pd.DataFrame({"id": [1, 2], "v": [0.5, 1.5]}).to_parquet(tmp_path / "in.parquet")
    flow = IngestFlow(
        "prefect-ingest",
        FileSource(str(tmp_path / "in.parquet")),
        SqlSink(f"sqlite:///{tmp_path / 'out.db'}", "t", key=["id"]),
    )
    result = as_prefect_ingest_flow(flow, runs)()
    # Prefect stops its ephemeral server at interpreter exit and logs to a stream pytest
    # has closed by then; keep that shutdown quiet (atexit runs this before Prefect's hook).
    atexit.register(setattr, logging, "raiseExceptions", False)
    assert result["status"] == "succeeded"
    assert runs.list_runs("prefect-ingest")[0].step("load").output["inserted"] == 2


def test_nested_values_are_stored_as_json_and_a_table_without_a_unique_key_is_explained(
    tmp_path: Path,
) -> None:
    from mloop.errors import ConfigurationError

    url = f"sqlite:///{tmp_path / 'n.db'}"
    sink = SqlSink(url, "events", key=["id"])
    sink.write(pd.DataFrame({"id": [1], "tags": [["a", "b"]]}))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        assert conn.execute(sa.text("SELECT tags FROM events")).scalar_one() == '["a", "b"]'
        conn.execute(sa.text("CREATE TABLE plain (id INTEGER, v TEXT)"))
    engine.dispose()
    with pytest.raises(ConfigurationError, match="needs a unique index"):
        SqlSink(url, "plain", key=["id"]).write(pd.DataFrame({"id": [1], "v": ["x"]}))


@pytest.mark.parametrize("stamps", ["epoch", "datetime"])
def test_a_pipeline_loads_its_window_from_the_ingested_table(
    runs: RunStore, tmp_path: Path, stamps: str
) -> None:
    from mloop.pipelines import SqlTableLoader, Window

    seconds = [1_000.0, 2_000.0, 3_000.0, 4_000.0]
    ts: Any = seconds if stamps == "epoch" else pd.to_datetime(seconds, unit="s")
    pd.DataFrame({"id": [1, 2, 3, 4], "x": [0.1, 0.2, 0.3, 0.4], "ts": ts}).to_parquet(
        tmp_path / "rows.parquet"
    )
    db = str(tmp_path / "lake.db")
    flow = IngestFlow(
        "lake", FileSource(str(tmp_path / "rows.parquet")), SqlSink(db, "rows", key=["id"])
    )
    assert run_ingest(flow, runs).status == "succeeded"
    frame = SqlTableLoader(db, "rows", time_column="ts")(Window(2_000.0, 4_000.0))
    assert frame["id"].tolist() == [2, 3]
