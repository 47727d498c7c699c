"""PostgreSQL's types and binary COPY format, to and from Arrow (for ``postgres.py``).

``column_specs`` maps an Arrow schema to PostgreSQL column types (None for a type that
cannot be mapped); ``encode_batch`` turns a record batch into binary COPY rows with numpy
and Arrow kernels, not a Python loop per row; ``rows_to_batch`` and ``concat_batches``
turn fetched rows back into Arrow for ``load``.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.types.numeric import DecimalBinaryDumper, FloatLoader
from psycopg.types.string import TextLoader

from treadle.errors import UserInputError

MAX_NAME_BYTES = 63  # longer identifiers are silently truncated by PostgreSQL


# -- Arrow → PostgreSQL: types and binary COPY encoding ---------------------------------
#
# A binary COPY stream is a header, then per row a 16-bit field count and per field a
# 32-bit length (-1 for NULL) and the value in PostgreSQL's binary form (big-endian), then
# a trailer. Each column becomes its length-prefixed fields with numpy: fixed-width ones
# (numbers, dates, timestamps) side by side in one byte matrix, as long as every row's
# field has the same size; one Arrow kernel then joins the pieces of each row.


@dataclass(frozen=True)
class FixedWidth:
    """A column of fixed-width values: ``values`` (big-endian numpy, one per row),
    ``valid`` (False where NULL; None when no value is), ``all_null`` (every value is).
    ``prefixed`` False: raw bytes with no length (the field count that starts a row)."""

    values: np.ndarray
    valid: pa.BooleanArray | None = None
    all_null: bool = False
    prefixed: bool = True

    @classmethod
    def of(cls, values: np.ndarray, array: pa.Array) -> FixedWidth:
        if not array.null_count:
            return cls(values)
        return cls(values, array.is_valid(), all_null=array.null_count == len(array))

    @property
    def same_size(self) -> bool:
        """Every row's field has the same size: no NULL, or all NULL."""
        return self.valid is None or self.all_null

    @property
    def size(self) -> int:
        if self.all_null:
            return 4
        return self.values.dtype.itemsize + (4 if self.prefixed else 0)

    def write(self, out: np.ndarray) -> None:
        """Write the fields into ``out`` (rows × ``size`` bytes), as if none were NULL
        unless all are."""
        if self.all_null:
            out[:] = 0xFF  # length -1: NULL, and no value bytes
            return
        width = self.values.dtype.itemsize
        if self.prefixed:
            out[:, :4] = length_prefix(width)
        out[:, -width:] = np.ascontiguousarray(self.values).view(np.uint8).reshape(-1, width)

    def fields(self) -> pa.Array:
        """The fields as binary values, NULL where ``valid`` is False."""
        out = np.empty((len(self.values), self.size), dtype=np.uint8)
        self.write(out)
        return pc.if_else(self.valid, binary_rows(out), NULL_SCALAR)


Encoded = FixedWidth | list[pa.Array]  # fixed-width values, or finished binary fields
Encoder = Callable[[pa.Array], Encoded]

COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, extension length
COPY_TRAILER = b"\xff\xff"
EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL counts time from 2000-01-01
EPOCH_2000_DAYS = 10_957
NULL_FIELD = b"\xff\xff\xff\xff"
NULL_SCALAR = pa.scalar(NULL_FIELD, pa.large_binary())
EMPTY = pa.scalar(b"", pa.large_binary())


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    pg_type: str  # spelled as format_type() spells it
    encode: Encoder


def column_specs(schema: pa.Schema) -> list[ColumnSpec]:
    """The PostgreSQL column of each Arrow field; ``UserInputError`` for one with none."""
    if not schema.names:
        raise UserInputError("nothing to export: the data has no columns")
    seen: set[str] = set()
    specs = []
    for field in schema:
        name = check_name(field.name, "column")
        if name in seen:
            raise UserInputError(f"the data has two columns named {name!r}")
        seen.add(name)
        mapped = postgres_type(field.type)
        if mapped is None:
            raise UserInputError(
                f"column {name!r} has type {field.type}, which export cannot store in PostgreSQL",
                hint="convert it first: lists and dicts to JSON text (e.g. with json.dumps),"
                " other objects to str; export takes integers, floats, booleans, strings,"
                " bytes, dates, times, timestamps, durations and decimals",
            )
        specs.append(ColumnSpec(name, *mapped))
    return specs


def postgres_type(arrow_type: pa.DataType) -> tuple[str, Encoder] | None:
    """The PostgreSQL type for ``arrow_type`` and its encoder, or None."""
    if pa.types.is_dictionary(arrow_type):
        mapped = postgres_type(arrow_type.value_type)
        if mapped is None:
            return None
        pg_type, encode_values = mapped
        return pg_type, lambda array: encode_values(array.dictionary_decode())
    for matches, mapped in SIMPLE_TYPES:
        if matches(arrow_type):
            return mapped
    if pa.types.is_decimal(arrow_type):
        precision, scale = arrow_type.precision, arrow_type.scale
        pg_type = f"numeric({precision},{scale})" if 0 <= scale <= precision else "numeric"
        return pg_type, encode_decimals
    return None


def encode_batch(batch: pa.RecordBatch, columns: Sequence[ColumnSpec]) -> pa.Buffer:
    """``batch`` as binary COPY rows (without the header and trailer)."""
    count = FixedWidth(np.full(batch.num_rows, len(columns), dtype=">i2"), prefixed=False)
    encoded = [count, *(c.encode(a) for c, a in zip(columns, batch.columns, strict=True))]
    pieces: list[pa.Array] = []
    run: list[FixedWidth] = []  # consecutive same-size fields, packed into one piece
    for field in encoded:
        if isinstance(field, FixedWidth) and field.same_size:
            run.append(field)
            continue
        if run:
            pieces.append(pack(run))
            run = []
        pieces.extend([field.fields()] if isinstance(field, FixedWidth) else field)
    if run:
        pieces.append(pack(run))
    rows = pieces[0] if len(pieces) == 1 else pc.binary_join_element_wise(*pieces, EMPTY)
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    first, last = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
    return rows.buffers()[2].slice(first, last - first)


def pack(run: Sequence[FixedWidth]) -> pa.Array:
    """Same-size fields of consecutive columns side by side, as one binary value per row."""
    out = np.empty((len(run[0].values), sum(field.size for field in run)), dtype=np.uint8)
    start = 0
    for field in run:
        field.write(out[:, start : start + field.size])
        start += field.size
    return binary_rows(out)


@functools.cache
def length_prefix(width: int) -> np.ndarray:
    return np.array([width], dtype=">i4").view(np.uint8)


def binary_rows(matrix: np.ndarray) -> pa.Array:
    """Each row of a 2-D uint8 ``matrix`` as one ``large_binary`` value."""
    rows, width = matrix.shape
    fixed = pa.Array.from_buffers(pa.binary(width), rows, [None, pa.py_buffer(matrix)])
    return fixed.cast(pa.large_binary())


def numbers(arrow_type: pa.DataType, dtype: str, minus: int = 0) -> Encoder:
    """Encoder of values cast to ``arrow_type`` (then to an integer, for dates and times),
    minus ``minus``, as the big-endian numpy ``dtype``."""

    is_number = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    counter = pa.int64() if dtype == ">i8" else pa.int32()  # of days, microseconds …

    def encode(array: pa.Array) -> FixedWidth:
        values = array
        if values.type != arrow_type:
            values = values.cast(arrow_type, safe=not _is_nanoseconds(array.type))
        if not is_number:
            values = values.cast(counter)
        if values.null_count:
            values = values.fill_null(0)
        raw = values.to_numpy()
        return FixedWidth.of((raw - minus if minus else raw).astype(dtype), array)

    return encode


def timestamps(array: pa.Array) -> FixedWidth:
    """Microseconds since 2000-01-01 UTC (Arrow keeps tz-aware values in UTC)."""
    micros = pa.timestamp("us", tz=array.type.tz)
    return numbers(micros, ">i8", EPOCH_2000_US)(array)


def booleans(array: pa.Array) -> FixedWidth:
    values = array.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    return FixedWidth.of(values, array)


def intervals(array: pa.Array) -> FixedWidth:
    """PostgreSQL's interval: microseconds, days, months (all of it in microseconds)."""
    durations = array.cast(pa.duration("us"), safe=not _is_nanoseconds(array.type))
    micros = durations.cast(pa.int64()).fill_null(0).to_numpy()
    values = np.zeros(len(micros), dtype=[("us", ">i8"), ("days", ">i4"), ("months", ">i4")])
    values["us"] = micros
    return FixedWidth.of(values, array)


def byte_strings(array: pa.Array) -> list[pa.Array]:
    """Text as its UTF-8 bytes, bytea as itself: a length prefix, then the bytes."""
    if _is_text(array.type) and not pa.types.is_large_string(array.type):
        array = array.cast(pa.large_string())  # string, string_view
    if not pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary())
    lengths = pc.binary_length(array)
    if array.null_count:
        lengths, array = lengths.fill_null(-1), array.fill_null(EMPTY)
    prefixes = lengths.to_numpy().astype(">i4").view(np.uint8).reshape(-1, 4)
    return [binary_rows(prefixes), array]


def encode_nulls(array: pa.Array) -> FixedWidth:
    return FixedWidth.of(np.zeros(len(array), dtype=np.uint8), array)


def encode_decimals(array: pa.Array) -> list[pa.Array]:
    """numeric's binary form (base-10000 digits), one value at a time with psycopg's dumper:
    decimals are rare enough in bulk data not to need more."""
    if not pa.types.is_decimal(array.type):  # uint64
        array = array.cast(pa.decimal128(20, 0))
    dump = DecimalBinaryDumper(Decimal).dump
    fields = []
    for value in array.to_pylist():
        if value is None:
            fields.append(NULL_FIELD)
        else:
            body = bytes(dump(value))
            fields.append(len(body).to_bytes(4, "big") + body)
    return [pa.array(fields, type=pa.large_binary())]


def _is_nanoseconds(arrow_type: pa.DataType) -> bool:
    """Nanoseconds are truncated to PostgreSQL's microseconds; any other cast must be exact
    (a timestamp in seconds too far out to count in microseconds raises, not wraps)."""
    return getattr(arrow_type, "unit", None) == "ns"


def _is_text(arrow_type: pa.DataType) -> bool:
    is_string_view = getattr(pa.types, "is_string_view", lambda _: False)
    return bool(
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or is_string_view(arrow_type)
    )


def _is_bytes(arrow_type: pa.DataType) -> bool:
    is_binary_view = getattr(pa.types, "is_binary_view", lambda _: False)
    return bool(
        pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
        or pa.types.is_fixed_size_binary(arrow_type)
        or is_binary_view(arrow_type)
    )


def _is_type(*wanted: pa.DataType) -> Callable[[pa.DataType], bool]:
    return lambda arrow_type: arrow_type in wanted


def _has_time_zone(arrow_type: pa.DataType) -> bool:
    return pa.types.is_timestamp(arrow_type) and arrow_type.tz is not None


SIMPLE_TYPES: list[tuple[Callable[[pa.DataType], bool], tuple[str, Encoder]]] = [
    (_is_type(pa.int8(), pa.int16(), pa.uint8()), ("smallint", numbers(pa.int16(), ">i2"))),
    (_is_type(pa.int32(), pa.uint16()), ("integer", numbers(pa.int32(), ">i4"))),
    (_is_type(pa.int64(), pa.uint32()), ("bigint", numbers(pa.int64(), ">i8"))),
    (_is_type(pa.uint64()), ("numeric(20,0)", encode_decimals)),
    (pa.types.is_floating, ("double precision", numbers(pa.float64(), ">f8"))),
    (pa.types.is_boolean, ("boolean", booleans)),
    (_is_text, ("text", byte_strings)),
    (_is_bytes, ("bytea", byte_strings)),
    (_has_time_zone, ("timestamp with time zone", timestamps)),
    (pa.types.is_timestamp, ("timestamp without time zone", timestamps)),
    (pa.types.is_date, ("date", numbers(pa.date32(), ">i4", EPOCH_2000_DAYS))),
    (pa.types.is_time, ("time without time zone", numbers(pa.time64("us"), ">i8"))),
    (pa.types.is_duration, ("interval", intervals)),
    (pa.types.is_null, ("text", encode_nulls)),
]


# -- PostgreSQL → Arrow (load) ----------------------------------------------------------

#: Arrow types of the PostgreSQL types ``load`` knows; others are inferred from the values.
LOAD_TYPES = {
    "bool": pa.bool_(),
    "int2": pa.int16(),
    "int4": pa.int32(),
    "int8": pa.int64(),
    "oid": pa.int64(),
    "float4": pa.float32(),
    "float8": pa.float64(),
    "numeric": pa.float64(),
    "text": pa.string(),
    "varchar": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "json": pa.string(),
    "jsonb": pa.string(),
    "uuid": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "interval": pa.duration("us"),
}
LOAD_TYPES_BY_OID = {psycopg.postgres.types[name].oid: t for name, t in LOAD_TYPES.items()}
Columns = list[tuple[str, int]]  # (name, type oid) of each result column


def load_cursor(connection: psycopg.Connection[Any]) -> psycopg.ServerCursor[Any]:
    """A server-side cursor giving numeric as float and json, jsonb and uuid as text."""
    cursor = connection.cursor(name=f"treadle_load_{secrets.token_hex(4)}")
    for name in ("json", "jsonb", "uuid"):
        cursor.adapters.register_loader(name, TextLoader)
    cursor.adapters.register_loader("numeric", FloatLoader)
    return cursor


def rows_to_batch(rows: list[tuple[Any, ...]], columns: Columns) -> pa.RecordBatch:
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [
        column_to_arrow(column, oid) for column, (_, oid) in zip(values, columns, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, names=[name for name, _ in columns])


def column_to_arrow(values: Sequence[Any], oid: int) -> pa.Array:
    arrow_type = LOAD_TYPES_BY_OID.get(oid)
    if arrow_type is not None:
        return pa.array(values, type=arrow_type)
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([None if value is None else str(value) for value in values], pa.string())


def concat_batches(batches: list[pa.RecordBatch], columns: Columns) -> pa.Table:
    """One table; a column whose type was inferred may differ between chunks (all NULL in
    one, integers in another): those are unified, or reported."""
    if not batches:
        return pa.Table.from_batches([rows_to_batch([], columns)]) if columns else pa.table({})
    try:
        return pa.Table.from_batches(batches)
    except pa.ArrowInvalid:
        pass
    try:
        tables = [pa.Table.from_batches([batch]) for batch in batches]
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UserInputError(
            f"the query's columns changed type from one chunk of rows to the next ({exc})",
            hint="cast such columns in the query, e.g. select x::text",
        ) from None


def check_name(name: Any, what: str) -> str:
    """``name`` if PostgreSQL can hold it as given; ``UserInputError`` otherwise."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise UserInputError(f"{name!r} is not a valid {what} name")
    if len(name.encode()) > MAX_NAME_BYTES:
        raise UserInputError(
            f"{what} name {name!r} is longer than PostgreSQL's limit of {MAX_NAME_BYTES} bytes",
            hint="use a shorter name (PostgreSQL would cut it short)",
        )
    return name
