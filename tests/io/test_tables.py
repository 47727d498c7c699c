from __future__ import annotations

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from treadle.errors import UserInputError
from treadle.io.tables import to_arrow, to_pandas


def test_accepts_pandas_polars_and_arrow():
    expected = pa.table({"a": [1, 2], "b": ["x", "y"]})
    for obj in (
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
        pl.DataFrame({"a": [1, 2], "b": ["x", "y"]}),
        pl.LazyFrame({"a": [1, 2], "b": ["x", "y"]}),
        expected,
        expected.to_batches()[0],
    ):
        table = to_arrow(obj)
        assert isinstance(table, pa.Table)
        assert table.to_pylist() == expected.to_pylist()


def test_pandas_index_named_is_kept_unnamed_is_dropped():
    df = pd.DataFrame({"id": [1, 2, 3], "v": [10, 20, 30]})
    assert to_arrow(df[df.v > 10]).column_names == ["id", "v"]
    assert to_arrow(df.set_index("id")).column_names == ["id", "v"]


@pytest.mark.parametrize("obj", [[{"a": 1}], {"a": [1]}, None, pd.Series([1, 2])])
def test_anything_else_is_a_clear_error(obj):
    with pytest.raises(UserInputError, match="expected a pandas or polars DataFrame"):
        to_arrow(obj)


def test_unconvertible_pandas_column_is_a_user_error():
    with pytest.raises(UserInputError, match="could not convert"):
        to_arrow(pd.DataFrame({"mixed": [1, "a", 2.5]}))


def test_to_pandas_keeps_nullable_integers():
    table = pa.table({"i": pa.array([1, None], pa.int32()), "b": [True, None], "f": [1.5, None]})
    df = to_pandas(table)
    assert str(df["i"].dtype) == "Int32"
    assert str(df["b"].dtype) == "boolean"
    assert df["f"].dtype == "float64"


def test_to_pandas_restores_pandas_dtypes():
    df = pd.DataFrame({"n": [1, 2], "i": pd.array([1, None], dtype="Int64")})
    back = to_pandas(to_arrow(df))
    assert back.dtypes.to_dict() == df.dtypes.to_dict()
