"""Converting the table types blocks return (pandas, polars, pyarrow) to and from Arrow.

Arrow is what every connector writes from, so each converts once, here. polars is
optional: it is imported only when the object already comes from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from treadle.errors import UserInputError

if TYPE_CHECKING:
    import pandas as pd

TABLE_TYPES = "a pandas or polars DataFrame, or a pyarrow Table or RecordBatch"


def to_arrow(obj: Any) -> pa.Table:
    """``obj`` as a ``pyarrow.Table``; raises ``UserInputError`` for anything else.

    A pandas DataFrame keeps a named index as columns (an unnamed one, like the 0..n-1
    default or what is left after filtering rows, is dropped) and its dtypes in the
    schema's pandas metadata.
    """
    if isinstance(obj, pa.Table):
        return obj
    if isinstance(obj, pa.RecordBatch):
        return pa.Table.from_batches([obj])
    module = type(obj).__module__.partition(".")[0]
    try:
        if module == "pandas" and hasattr(obj, "columns"):
            return pa.Table.from_pandas(_with_named_index(obj), preserve_index=False)
        if module == "polars":
            import polars as pl

            if isinstance(obj, pl.LazyFrame):
                obj = obj.collect()
            if isinstance(obj, pl.DataFrame):
                return obj.to_arrow()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        raise UserInputError(
            f"could not convert the {_type_name(obj)} to an Arrow table: {exc}",
            hint="give each column a single type, e.g. with astype()",
        ) from None
    raise UserInputError(
        f"cannot export a {_type_name(obj)}: expected {TABLE_TYPES}",
        hint="return or pass a DataFrame; wrap lists or dicts with pandas.DataFrame(...)",
    )


def to_pandas(table: pa.Table) -> pd.DataFrame:
    """``table`` as a pandas DataFrame, keeping integer columns with nulls as integers.

    A table written from pandas gets its original dtypes back (from its pandas metadata);
    any other table maps integers and booleans to pandas' nullable dtypes (``Int64``,
    ``boolean``), so a null does not turn a column into floats.
    """
    if table.schema.metadata and b"pandas" in table.schema.metadata:
        return table.to_pandas()
    return table.to_pandas(types_mapper=_nullable_dtype)


def _nullable_dtype(arrow_type: pa.DataType) -> Any:
    import pandas as pd

    if pa.types.is_integer(arrow_type):  # int8 -> Int8, uint8 -> UInt8
        name = str(arrow_type)
        return pd.api.types.pandas_dtype(name[0].upper() + name[1:].replace("int", "Int"))
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _with_named_index(df: Any) -> Any:
    """A named index (``set_index('id')``, a groupby key) becomes columns; others are dropped."""
    return df.reset_index() if any(name is not None for name in df.index.names) else df


def _type_name(obj: Any) -> str:
    kind = type(obj)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
