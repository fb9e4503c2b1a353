"""Window counts: exact bins, missing and unseen values, incremental and mergeable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mloop.contracts import build_profile, infer_schema
from mloop.errors import InvalidInput
from mloop.monitor import WindowCounts, as_reference


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(size=n)
    x[::7] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 4, n),
            "c": np.array(["red", "green", "blue"], dtype=object)[rng.integers(0, 3, n)],
        }
    )


def test_numeric_counts_equal_a_binary_search_on_the_reference_edges() -> None:
    ref = as_reference(_frame(5_000, 0))
    rng = np.random.default_rng(1)
    # values exactly on edges, far outside them, infinities and NaN
    edges = ref["x"].edges
    x = np.concatenate([rng.lognormal(size=50_000), edges, edges * 10, [np.inf, -np.inf, np.nan]])
    counts = WindowCounts(ref, columns=["x"]).update({"x": x}).counts["x"]
    finite = x[~np.isnan(x)]
    expected = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    assert counts[:-1].tolist() == expected.tolist()
    assert counts[-1] == 1


def test_categorical_unseen_values_go_to_other_and_missing_to_missing() -> None:
    ref = as_reference(pd.DataFrame({"c": ["a", "a", "b", None]}))
    window = pd.DataFrame({"c": pd.Series(["a", "z", None, "b", "y"], dtype=object)})
    counts = WindowCounts(ref).update(window).counts["c"]
    assert ref["c"].categories == ("a", "b")
    assert counts.tolist() == [1, 1, 2, 1]  # a, b, other, missing


@pytest.mark.parametrize("dtype", [object, "str", "category"])
def test_categorical_counts_do_not_depend_on_the_string_dtype(dtype: object) -> None:
    values = ["a", "b", "b", "c", None, "d"]
    ref = as_reference(pd.DataFrame({"c": pd.Series(["a", "b", "c"], dtype=object)}))
    counts = WindowCounts(ref).update(pd.DataFrame({"c": pd.Series(values, dtype=dtype)}))
    assert counts.counts["c"].tolist() == [1, 2, 1, 1, 1]


def test_updates_and_merges_equal_counting_everything_at_once() -> None:
    data = _frame(9_000, 2)
    ref = as_reference(_frame(3_000, 3))
    whole = WindowCounts(ref).update(data)
    a = WindowCounts(ref).update(data.iloc[:4_000])
    b = WindowCounts(ref).update(data.iloc[4_000:])
    merged = a.merge(b)
    stepwise = WindowCounts(ref).update(data.iloc[:100]).update(data.iloc[100:])
    for name in ref:
        assert merged.counts[name].tolist() == whole.counts[name].tolist()
        assert stepwise.counts[name].tolist() == whole.counts[name].tolist()
    assert merged.n == whole.n == 9_000


def test_counts_round_trip_through_json_ready_dicts() -> None:
    ref = as_reference(_frame(1_000, 4))
    window = WindowCounts(ref).update(_frame(500, 5))
    again = WindowCounts.from_dict(ref, window.to_dict())
    assert again.n == 500
    assert {k: v.tolist() for k, v in again.counts.items()} == {
        k: v.tolist() for k, v in window.counts.items()
    }


def test_a_profile_from_contracts_bins_like_its_own_reference_counts() -> None:
    frame = _frame(2_000, 6)
    profile = build_profile(frame, infer_schema(frame))
    ref = as_reference(profile)
    counts = WindowCounts(ref).update(frame).counts
    for name, fp in profile.features.items():
        expected = (
            [*fp.counts, fp.missing] if fp.kind == "numeric" else [*fp.category_counts, fp.missing]
        )
        assert counts[name].tolist() == list(expected)


def test_a_window_without_a_reference_column_is_refused_by_name() -> None:
    ref = as_reference(_frame(100, 7))
    with pytest.raises(InvalidInput, match="'c'"):
        WindowCounts(ref).update(pd.DataFrame({"x": [1.0], "k": [1]}))


def test_merging_windows_of_different_references_is_refused() -> None:
    a = WindowCounts(as_reference(pd.DataFrame({"x": np.arange(100.0)})))
    b = WindowCounts(as_reference(pd.DataFrame({"x": np.arange(5.0)})))
    with pytest.raises(InvalidInput, match="slots"):
        a.merge(b)


def test_counts_over_many_kernel_chunks_equal_a_binary_search() -> None:
    ref = as_reference(_frame(5_000, 0))
    edges = ref["x"].edges
    rng = np.random.default_rng(7)
    x = rng.lognormal(size=300_000)
    x[rng.integers(0, x.size, 5_000)] = np.nan
    x[rng.integers(0, x.size, 100)] = np.inf
    x[rng.integers(0, x.size, 1_000)] = edges[rng.integers(0, edges.size, 1_000)]
    counts = WindowCounts(ref, columns=["x"]).update({"x": x}).counts["x"]
    finite = x[~np.isnan(x)]
    expected = np.bincount(np.searchsorted(edges, finite, side="right"), minlength=edges.size + 1)
    assert counts[:-1].tolist() == expected.tolist()
    assert counts[-1] == np.isnan(x).sum()


def test_arrow_columns_count_as_their_pandas_form() -> None:
    import pyarrow as pa

    rng = np.random.default_rng(3)
    n = 2_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "b": rng.integers(0, 2, n).astype(bool),
            "c": np.array(["red", "green", None], dtype=object)[rng.integers(0, 3, n)],
        }
    )
    frame.loc[::9, "k"] = pd.NA
    ref = as_reference(frame.iloc[:500], categorical=["k"])
    table = pa.Table.from_pandas(frame, preserve_index=False)
    as_dictionary = table.set_column(3, "c", table["c"].dictionary_encode())
    in_memory = WindowCounts(ref).update(frame).counts
    for arrow_form in (table, as_dictionary, table.to_batches(max_chunksize=300)[0]):
        rows = arrow_form.num_rows
        counted = WindowCounts(ref).update(arrow_form).counts
        expected = WindowCounts(ref).update(frame.iloc[:rows]).counts
        assert {k: v.tolist() for k, v in counted.items()} == {
            k: v.tolist() for k, v in expected.items()
        }
    assert sum(in_memory["k"]) == n


def test_a_large_window_with_text_in_a_numeric_column_is_refused_by_name() -> None:
    # large enough that text columns are counted in background threads meanwhile
    ref = as_reference(_frame(2_000, 0))
    window = _frame(120_000, 1)
    window["c"] = window["c"].astype("str")
    window["x"] = pd.Series(["high", "low"] * 60_000, dtype="str")
    with pytest.raises(InvalidInput, match="'x' is numeric in the reference"):
        WindowCounts(ref).update(window)


def test_a_forked_process_counts_text_columns_in_threads_of_its_own() -> None:
    import multiprocessing
    import warnings

    ref = as_reference(_frame(2_000, 0))
    window = _frame(120_000, 1)
    window["c"] = window["c"].astype("str")
    expected = WindowCounts(ref).update(window).counts  # the parent's pool now exists
    with warnings.catch_warnings():
        # Python 3.12+ warns that forking a threaded process may deadlock: the case here
        warnings.simplefilter("ignore", DeprecationWarning)
        with multiprocessing.get_context("fork").Pool(1) as pool:
            counted = pool.apply_async(_count_in_child, (ref, window)).get(timeout=60)
    assert counted == {k: v.tolist() for k, v in expected.items()}


def _count_in_child(ref: object, window: pd.DataFrame) -> dict[str, list[int]]:
    counts = WindowCounts(ref).update(window).counts  # type: ignore[arg-type]
    return {k: v.tolist() for k, v in counts.items()}
