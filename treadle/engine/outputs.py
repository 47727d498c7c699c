"""The output store: every block output of every run, kept under ``.treadle/outputs/``.

Layout, one folder per run::

    .treadle/outputs/<run_id>/run.json              what ran: pipeline, dates, statuses
    .treadle/outputs/<run_id>/<key>.meta.json       kind, type, rows, bytes, columns, preview
    .treadle/outputs/<run_id>/<key>.arrow           a table (Arrow IPC), or .parquet
    .treadle/outputs/<run_id>/<key>.json|.pickle    any other value (small JSON stays in meta)

``<key>`` is the block name, or ``name.3`` for item 3 of a dynamic fan-out. Tables are
stored as Arrow, so a reader in another process maps the file instead of copying it, and
the metadata (with a 10-row preview) is readable without loading the output. Every file
is written to a temporary name and renamed, so a reader never sees half an output.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

PREVIEW_ROWS = 10
INLINE_JSON_LIMIT = 64 * 1024
TABLE_TYPES = {"pandas": "DataFrame", "polars": "DataFrame", "pyarrow": "Table"}
_JSON_SCALARS = (type(None), bool, int, float, str)


@dataclass(frozen=True, slots=True)
class OutputMeta:
    key: str
    kind: str  # "table" | "json" | "pickle"
    python_type: str  # "pandas" | "polars" | "pyarrow" for tables, else the type's name
    rows: int | None
    bytes: int
    columns: tuple[tuple[str, str], ...] | None = None
    preview: Any = None
    file: str | None = None  # data file beside the meta; None when the value is inline
    value: Any = None  # the value itself, for small JSON outputs

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _META_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OutputMeta:
        columns = data.get("columns")
        return cls(**{**data, "columns": tuple(map(tuple, columns)) if columns else None})


_META_FIELDS = tuple(OutputMeta.__dataclass_fields__)


def table_library(value: Any) -> str | None:
    """``pandas``, ``polars`` or ``pyarrow`` when ``value`` is one of their tables."""
    module = type(value).__module__.partition(".")[0]
    if module in TABLE_TYPES and type(value).__name__ in ("DataFrame", "Table", "RecordBatch"):
        return module
    return None


def to_arrow_table(value: Any, library: str) -> Any:
    import pyarrow as pa

    if library == "pandas":
        return pa.Table.from_pandas(value, preserve_index=None)
    if library == "polars":
        return value.to_arrow()
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    return value


def from_arrow_table(table: Any, library: str) -> Any:
    if library == "pandas":
        return table.to_pandas()
    if library == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table


class OutputStore:
    """Outputs of one run. Safe to read from many processes; each key is written once."""

    def __init__(self, outputs_root: Path, run_id: str, table_format: str = "arrow") -> None:
        self.outputs_root = outputs_root
        self.run_id = run_id
        self.run_dir = outputs_root / run_id
        self.table_format = table_format
        self._run_dir_text = str(self.run_dir)
        self._dir_ready = False

    # -- writing ---------------------------------------------------------------------------

    def save(self, key: str, value: Any) -> OutputMeta:
        """Write ``value`` under ``key`` and return its metadata."""
        library = table_library(value)
        if library is not None:
            return self.save_table(key, to_arrow_table(value, library), library)
        self._ensure_dir()
        if _is_json(value):
            text = json.dumps(value, allow_nan=False)
            rows = len(value) if isinstance(value, list) else None  # a dict is one record
            if len(text) <= INLINE_JSON_LIMIT:
                meta = OutputMeta(key, "json", type(value).__name__, rows, len(text), value=value)
                return self._write_meta(meta)
            file = f"{key}.json"
            self._write_bytes(file, text.encode())
            return self._write_meta(
                OutputMeta(
                    key,
                    "json",
                    type(value).__name__,
                    rows,
                    len(text),
                    preview=_preview(value),
                    file=file,
                )
            )
        data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        file = f"{key}.pickle"
        self._write_bytes(file, data)
        rows = len(value) if isinstance(value, list | tuple) else None
        meta = OutputMeta(
            key, "pickle", type(value).__name__, rows, len(data), preview=_preview(value), file=file
        )
        return self._write_meta(meta)

    def save_table(self, key: str, table: Any, library: str) -> OutputMeta:
        """Write an Arrow table (converted from ``library``'s type) under ``key``."""
        self._ensure_dir()
        file = f"{key}.{self.table_format}"
        temp = self.run_dir / f".{file}.{os.getpid()}.tmp"  # unique: two writers never share one
        with _removed_on_failure(temp):
            if self.table_format == "parquet":
                import pyarrow.parquet as pq

                pq.write_table(table, temp)
            else:
                import pyarrow as pa

                with (
                    pa.OSFile(str(temp), "wb") as sink,
                    pa.ipc.new_file(sink, table.schema) as writer,
                ):
                    writer.write_table(table)
            os.replace(temp, self.run_dir / file)
        shown = _without_pandas_index(table)
        meta = OutputMeta(
            key=key,
            kind="table",
            python_type=library,
            rows=table.num_rows,
            bytes=(self.run_dir / file).stat().st_size,
            columns=tuple((f.name, str(f.type)) for f in shown.schema),
            preview=_json_safe(shown.slice(0, PREVIEW_ROWS).to_pylist()),
            file=file,
        )
        return self._write_meta(meta)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self._ensure_dir()
        self._write_bytes("run.json", json.dumps(manifest, default=str, indent=1).encode())

    # -- reading ---------------------------------------------------------------------------

    def meta(self, key: str) -> OutputMeta | None:
        try:
            text = (self.run_dir / f"{key}.meta.json").read_text()
        except FileNotFoundError:
            return None
        return OutputMeta.from_dict(json.loads(text))

    def load(self, key: str) -> Any:
        """The value stored under ``key``; tables come back as the library they went in as."""
        meta = self.meta(key)
        if meta is None:
            raise KeyError(f"run {self.run_id} has no output {key!r}")
        if meta.file is None:
            return meta.value
        path = self.run_dir / meta.file
        if meta.kind == "table":
            return from_arrow_table(self.load_arrow(meta), meta.python_type)
        if meta.kind == "json":
            return json.loads(path.read_bytes())
        return pickle.loads(path.read_bytes())

    def load_arrow(self, meta: OutputMeta) -> Any:
        """A stored table as Arrow, memory-mapped (zero-copy) when stored as Arrow IPC."""
        path = str(self.run_dir / meta.file)  # type: ignore[operator]
        if meta.file and meta.file.endswith(".parquet"):
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow as pa

        return pa.ipc.open_file(pa.memory_map(path, "r")).read_all()

    def item_count(self, block: str) -> int:
        """How many items of a fanned ``block`` have a stored output in this run."""
        return len(list(self.run_dir.glob(f"{block}.*.meta.json")))

    def read_manifest(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.run_dir / "run.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    # -- internals -------------------------------------------------------------------------

    def _ensure_dir(self) -> None:
        if not self._dir_ready:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._dir_ready = True

    def _write_bytes(self, name: str, data: bytes) -> None:
        final = f"{self._run_dir_text}/{name}"
        temp = f"{self._run_dir_text}/.{name}.{os.getpid()}.tmp"
        with _removed_on_failure(Path(temp)):
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                view = memoryview(data)
                while view:  # one write() stops short of 2 GiB on Linux
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(temp, final)

    def _write_meta(self, meta: OutputMeta) -> OutputMeta:
        self._write_bytes(f"{meta.key}.meta.json", json.dumps(meta.to_dict(), default=str).encode())
        return meta


@dataclass(frozen=True, slots=True)
class PendingOutput:
    """A table being written on the writer thread; its row count is already known."""

    rows: int
    future: Future[OutputMeta]


class BackgroundWriter:
    """Saves outputs on a thread so the next block starts while the last one is written.

    Tables are converted to Arrow on the caller's thread (so later changes to a pandas
    frame cannot tear the copy being written); the file is written on the writer thread,
    where pyarrow releases the GIL.
    """

    def __init__(self, store: OutputStore) -> None:
        self.store = store
        self._pool: ThreadPoolExecutor | None = None

    def save(self, key: str, value: Any) -> OutputMeta | PendingOutput:
        """Store ``value``: other values at once (errors raise here, in the block's
        boundary); tables converted at once and written on the writer thread."""
        library = table_library(value)
        if library is None:
            return self.store.save(key, value)
        table = to_arrow_table(value, library)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="treadle-writer")
        return PendingOutput(
            table.num_rows, self._pool.submit(self.store.save_table, key, table, library)
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


@contextmanager
def _removed_on_failure(temp: Path) -> Iterator[None]:
    """A write that fails (a full disk) leaves no half-written temporary file behind."""
    try:
        yield
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def list_runs(outputs_root: Path) -> list[str]:
    """Run ids with a folder in the output store, newest first (run ids sort by time)."""
    try:
        return sorted((p.name for p in outputs_root.iterdir() if p.is_dir()), reverse=True)
    except FileNotFoundError:
        return []


def _is_json(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return not (isinstance(value, float) and value != value)  # NaN is not JSON
    if isinstance(value, list | tuple):
        return type(value) is list and all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False


UNNAMED_INDEX = re.compile(r"__index_level_\d+__")


def _without_pandas_index(table: Any) -> Any:
    """The table without the columns that hold an unnamed pandas index
    (``__index_level_0__`` after a filter): stored, so the DataFrame comes back as it was,
    but not data to show. A named index (``groupby("vendor")``, ``set_index``) is data."""
    meta = table.schema.pandas_metadata or {}
    unnamed = [
        c
        for c in meta.get("index_columns", [])
        if isinstance(c, str) and UNNAMED_INDEX.fullmatch(c)
    ]
    return table.drop_columns(unnamed) if unnamed else table


def _preview(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return _json_safe(list(value[:PREVIEW_ROWS]))
    if isinstance(value, dict):
        return _json_safe(dict(list(value.items())[:PREVIEW_ROWS]))
    text = repr(value)
    return text if len(text) <= 500 else text[:500] + "…"


def _json_safe(value: Any) -> Any:
    """``value`` with anything JSON cannot hold (dates, decimals, bytes) turned into text."""
    return json.loads(json.dumps(value, default=str))
