"""The log read column-wise: typed feature and probability columns that equal what the
clients sent, kept beside each Parquet part and rebuilt when the part changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pytest

from mloop.journal._columns import (
    feature_values,
    monitoring_table,
    probability_matrix,
    unify_tables,
)
from mloop.journal._logstore import PREDICTION_SCHEMA, ParquetLogStore
from mloop.journal._spool import SpoolPosition

from ._records import record

TS = 1_700_000_000.0


def stored(inputs: list[Any], outputs: list[Any] | None = None) -> pa.Table:
    """Stored prediction rows (JSON inputs/outputs) as the log store keeps them."""
    n = len(inputs)
    outputs = outputs if outputs is not None else [{"label": "a"}] * n
    rows: dict[str, list[Any]] = {name: [None] * n for name in PREDICTION_SCHEMA.names}
    rows.update(
        request_id=[f"r{i}" for i in range(n)],
        row=[0] * n,
        ts=[TS + i for i in range(n)],
        version=[1] * n,
        inputs=[orjson.dumps(x).decode() for x in inputs],
        outputs=[orjson.dumps(x).decode() for x in outputs],
    )
    return pa.Table.from_pydict(rows, schema=PREDICTION_SCHEMA)


def values(table: pa.Table, name: str) -> list[Any]:
    got = feature_values(table, name)
    return got.to_pylist() if isinstance(got, pa.ChunkedArray) else got.tolist()


def test_each_feature_is_typed_from_what_clients_sent() -> None:
    table = monitoring_table(
        stored(
            [
                {"n": 1, "f": 1.5, "t": "a", "b": True, "m": 3, "w": 2},
                {"n": 2, "f": None, "t": None, "b": False, "m": "three", "w": 3},
                {"n": 3, "t": "c", "b": None, "m": [1, 2], "w": 2**63 + 5},
            ]
        )
    )
    types = {f.name: f.type for f in table.schema if f.name.startswith("i:")}
    assert types["i:n"] == pa.int64()  # whole numbers, none missing
    assert types["i:f"] == pa.float64()  # missing (None and left out) is null
    assert types["i:t"] == pa.string()
    assert types["i:b"] == pa.bool_()
    assert values(table, "f") == [1.5, None, None]
    # mixed kinds, and integers beyond int64 (JSON holds up to uint64), come back as sent
    assert values(table, "m") == [3, "three", [1, 2]]
    assert values(table, "w") == [2, 3, 2**63 + 5]
    assert values(table, "never sent") == [None, None, None]


def test_probabilities_form_a_matrix_only_when_every_row_has_every_class() -> None:
    full = monitoring_table(
        stored(
            [{}, {}], [{"probabilities": {"a": 0.2, "b": 0.8}}, {"probabilities": {"a": 1, "b": 0}}]
        )
    )
    matrix = probability_matrix(full, ["a", "b"])
    assert matrix is not None and matrix.tolist() == [[0.2, 0.8], [1.0, 0.0]]
    partial = monitoring_table(
        stored([{}, {}], [{"probabilities": {"a": 0.2, "b": 0.8}}, {"label": "a"}])
    )
    assert probability_matrix(partial, ["a", "b"]) is None
    assert probability_matrix(full, ["a", "b", "c"]) is None


def test_parts_typed_differently_unify_without_losing_a_value() -> None:
    ints = monitoring_table(stored([{"x": 1, "y": 1.0}, {"x": 2, "y": 2.0}]))
    floats = monitoring_table(stored([{"x": 0.5, "y": "text"}]))
    only_z = monitoring_table(stored([{"z": "new"}]))
    table = unify_tables([ints, floats, only_z])
    assert table is not None and table.num_rows == 4
    assert table.schema.field("i:x").type == pa.float64()  # whole and fractional numbers
    assert values(table, "x") == [1.0, 2.0, 0.5, None]
    assert values(table, "y") == [1.0, 2.0, "text", None]  # numbers here, text there
    assert values(table, "z") == [None, None, None, "new"]
    assert unify_tables([]) is None


def _commit(store: ParquetLogStore, writer: Path, records: list[dict[str, Any]]) -> list[Path]:
    writer.mkdir(parents=True, exist_ok=True)
    store.commit("predictions", writer, records, SpoolPosition(0, 0), 100)
    return sorted((store.home / "predictions").rglob("part-*.parquet"))


def test_the_monitoring_table_is_written_with_the_part_and_read_back(tmp_path: Path) -> None:
    store = ParquetLogStore(tmp_path)
    (part,) = _commit(store, tmp_path / "w", [record(i, ts=TS + i, rows=2) for i in range(5)])
    assert part.with_name("mon-" + part.name).exists()
    table = store.monitoring_rows("churn", TS, TS + 3)
    assert table is not None and table.num_rows == 6  # ts in [TS, TS + 3): records 0..2
    assert table.column("ts").to_pylist() == sorted(table.column("ts").to_pylist())
    assert values(table, "x") == [0.0, 1.0, 1.0, 2.0, 2.0, 3.0]
    assert store.monitoring_rows("churn", TS + 100, TS + 200) is None
    assert store.monitoring_rows("other", TS, TS + 3) is None


@pytest.mark.parametrize("damage", ["missing", "torn", "stale"])
def test_a_missing_torn_or_stale_monitoring_table_is_rebuilt_from_the_part(
    tmp_path: Path, damage: str
) -> None:
    store = ParquetLogStore(tmp_path)
    writer = tmp_path / "w"
    (part,) = _commit(store, writer, [record(i, ts=TS + i) for i in range(4)])
    sidecar = part.with_name("mon-" + part.name)
    if damage == "missing":
        sidecar.unlink()
    elif damage == "torn":
        sidecar.write_bytes(sidecar.read_bytes()[:100])
    else:  # a retried compaction rewrote the part under the same name, with fewer rows
        kept = sidecar.read_bytes()
        (part,) = _commit(store, writer, [record(i, ts=TS + i) for i in range(2)])
        sidecar.write_bytes(kept)
    rows = 2 if damage == "stale" else 4
    table = store.monitoring_rows("churn", TS, TS + 10)
    assert table is not None and table.num_rows == rows
    assert values(table, "x") == [float(i) for i in range(rows)]
    again = store.monitoring_rows("churn", TS, TS + 10)
    assert again is not None and again.equals(table)
    assert np.array_equal(again.column("ts").to_numpy(), table.column("ts").to_numpy())


def test_odd_model_outputs_never_stop_the_table_from_being_built() -> None:
    whole = monitoring_table(
        stored(
            [{}, {}], [{"probabilities": {"a": 2**60, "b": 0}}, {"probabilities": {"a": 1, "b": 0}}]
        )
    )
    assert whole.column("p:a").to_pylist() == [float(2**60), 1.0]
    table = monitoring_table(
        stored(
            [{}, {}, {}],
            [
                {"probabilities": {"a": 2**60, "b": 0}},  # no exact float64 for it
                {"probabilities": {"a": "high", "b": None}},
                {"label": "a"},
            ],
        )
    )
    assert table.column("p:a").to_pylist() == [float(2**60), None, None]
    assert probability_matrix(table, ["a", "b"]) is None  # rows 2 and 3 lack them
