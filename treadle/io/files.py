"""Files inside the project: CSV, JSON and Parquet, single or Hive-partitioned.

Paths are relative to the project root and must stay inside it. Remote URLs (``gs://``,
``s3://`` …) are for the ``GCS`` and ``S3`` connectors, which reuse these writers.

Every write goes to a hidden temporary sibling first and is renamed into place, so a
reader never sees a half-written file and a failed export leaves the old data as it was.
Replacing a folder renames the old one aside, renames the new one in, then deletes the
old. Appending to a partitioned dataset moves each new file in once all are written.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from treadle.errors import UserInputError, did_you_mean
from treadle.io.base import Connector, IfExists, check_if_exists, project_root_and_variables
from treadle.io.tables import to_arrow, to_pandas

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "json", "parquet")
SUFFIXES = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json"}
SUFFIXES |= {".parquet": "parquet", ".pq": "parquet"}
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")
SCHEMA_FILE = "_common_metadata"  # a partitioned dataset's full schema, partition columns too
PARTITION_KEY = b"treadle.partition_by"
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


class Files(Connector):
    """Read and write tables as files in the project folder."""

    def __init__(self, root: str | Path | None = None) -> None:
        """``root`` defaults to the active project, looked up at each call."""
        self._root = Path(root) if root is not None else None

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """Files of ``project``; ``profile`` is accepted for symmetry (no settings are read)."""
        return cls(project_root_and_variables(project)[0])

    @property
    def root(self) -> Path:
        return (self._root or project_root_and_variables()[0]).resolve()

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        """``path`` made absolute; raises ``UserInputError`` if it leaves the project."""
        text = os.fspath(path)
        if _URL.match(text):
            raise UserInputError(
                f"remote path {text!r}: Files reads and writes inside the project only",
                hint="use GCS or S3 from treadle.io for gs:// and s3:// URLs",
            )
        root = self.root
        full = (root / Path(text).expanduser()).resolve()
        if full == root or not full.is_relative_to(root):
            raise UserInputError(
                f"{text!r} is not inside the project folder {root}",
                hint="use a path to a file or folder inside the project, relative to its root",
            )
        return full

    def load(
        self, path: str | os.PathLike[str], format: str | None = None, **kwargs: Any
    ) -> pd.DataFrame:
        """Read a CSV, JSON (lines or array) or Parquet file, or a partitioned Parquet folder.

        ``kwargs`` go to ``pandas.read_csv``, ``pandas.read_json`` or
        ``pyarrow.parquet.read_table`` (``columns=``, ``filters=``). Raises
        ``UserInputError`` for a path outside the project, a missing file or an unknown
        format.
        """
        import pandas as pd

        full = self.resolve(path)
        if not full.exists():
            raise UserInputError(f"{os.fspath(path)!r} does not exist (looked for {full})")
        format = format_of(full, format, folder_format="parquet")
        if format == "csv":
            return pd.read_csv(full, **kwargs)
        if format == "json":
            kwargs.setdefault("lines", _is_json_lines(full))
            return pd.read_json(full, **kwargs)
        return to_pandas(read_parquet(full, **kwargs))

    def export(
        self,
        obj: Any,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        partition_by: str | Sequence[str] | None = None,
        if_exists: IfExists = "replace",
        **kwargs: Any,
    ) -> None:
        """Write ``obj`` to ``path`` atomically (see ``Connector.export``).

        ``partition_by`` writes a Hive-partitioned Parquet folder
        (``path/lpep_pickup_date=2020-10-01/part-….parquet``). ``kwargs`` go to the writer
        (``DataFrame.to_csv``/``to_json``, ``pyarrow.parquet.write_table``,
        ``pyarrow.dataset.write_dataset``). JSON is written as JSON Lines.
        """
        check_if_exists(if_exists)
        target = self.resolve(path)
        columns = [partition_by] if isinstance(partition_by, str) else list(partition_by or ())
        format = format_of(target, format, folder_format="parquet" if columns else None)
        if columns and format != "parquet":
            raise UserInputError(f"partition_by needs the parquet format, not {format}")
        exists = target.exists()
        if exists and if_exists == "fail":
            raise UserInputError(
                f"{os.fspath(path)!r} already exists", hint="pass if_exists='replace' or 'append'"
            )
        if exists and if_exists == "replace":
            _check_replaceable(target)
        data = to_arrow(obj)
        for column in columns:
            if column not in data.column_names:
                raise UserInputError(
                    f"cannot partition by {column!r}: there is no such column",
                    hint=did_you_mean(column, data.column_names),
                )
        append = exists and if_exists == "append"
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(target)
        temp = target.with_name(f".treadle-{uuid.uuid4().hex[:12]}.{target.name}")
        try:
            if columns:
                write_dataset(data, temp, columns, kwargs)
                if append:
                    _move_files_into(temp, target)
                else:
                    _swap_in(temp, target)
            else:
                if append:
                    data = append_file(data, target, temp, format)
                write_file(data, temp, format, append, kwargs)
                _swap_in(temp, target)
        finally:
            _remove(temp)


STALE_AFTER = 3600.0  # seconds: an export's temporary this old was left by a killed process


def _remove_stale_temporaries(target: Path) -> None:
    """Temporaries of earlier exports to ``target`` whose process was killed midway
    (``kill -9`` leaves no chance to clean up); recent ones may be another export's."""
    now = time.time()
    for leftover in target.parent.glob(f".treadle-*.{target.name}"):
        try:
            if now - leftover.stat().st_mtime > STALE_AFTER:
                _remove(leftover)
        except FileNotFoundError:
            pass


def read_parquet(path: Path, **kwargs: Any) -> pa.Table:
    """A Parquet file or folder; a folder Treadle wrote gets its partition columns' types."""
    schema_file = path / SCHEMA_FILE
    if path.is_dir() and schema_file.is_file():
        schema = pq.read_schema(schema_file)
        names = json.loads((schema.metadata or {}).get(PARTITION_KEY, b"[]"))
        partition_schema = pa.schema([schema.field(name) for name in names])
        kwargs.setdefault("schema", schema)
        kwargs.setdefault("partitioning", ds.partitioning(partition_schema, flavor="hive"))
    return pq.read_table(path, **kwargs)


def format_of(path: Path, format: str | None, folder_format: str | None) -> str:
    if format is not None:
        if format not in FORMATS:
            raise UserInputError(
                f"unknown file format {format!r}; the formats are {', '.join(FORMATS)}",
                hint=did_you_mean(format, FORMATS),
            )
        return format
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    if suffixes and suffixes[-1] in SUFFIXES:
        return SUFFIXES[suffixes[-1]]
    if folder_format and (path.is_dir() or not path.exists()):
        return folder_format
    raise UserInputError(
        f"cannot tell the format of {path.name!r} from its name",
        hint=f"pass format= one of {', '.join(FORMATS)}",
    )


def _is_json_lines(path: Path) -> bool:
    """JSON Lines unless the file starts with ``[`` (compressed files: by their name)."""
    if path.suffix.lower() in COMPRESSIONS:
        return path.suffixes[-2:-1] != [".json"]
    with path.open("rb") as file:
        head = file.read(4096).lstrip()
    return not head.startswith(b"[")


def _check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that holds more than a Parquet dataset."""
    if not target.is_dir():
        return
    for file in target.rglob("*"):
        if file.is_file() and file.suffix != ".parquet" and not file.name.startswith(("_", ".")):
            raise UserInputError(
                f"will not replace the folder {target}: it holds {file.relative_to(target)},"
                " which is not part of a Parquet dataset",
                hint="export to a new path, or remove the folder first",
            )


def write_file(
    data: pa.Table, temp: Path, format: str, append: bool, kwargs: dict[str, Any]
) -> None:
    if format == "parquet":
        pq.write_table(data, temp, **kwargs)
        return
    mode = "a" if append else "w"
    if format == "csv":
        to_pandas(data).to_csv(temp, index=False, header=not append, mode=mode, **kwargs)
    else:
        kwargs = {"orient": "records", "lines": True, "date_format": "iso", **kwargs}
        to_pandas(_dates_as_text(data)).to_json(temp, mode=mode, **kwargs)


def _dates_as_text(data: pa.Table) -> pa.Table:
    """Date columns as ``2020-10-01`` (pandas would write a midnight timestamp into JSON)."""
    for i, field in enumerate(data.schema):
        if pa.types.is_date(field.type):
            data = data.set_column(i, field.name, data.column(i).cast(pa.string()))
    return data


def append_file(data: pa.Table, target: Path, temp: Path, format: str) -> pa.Table:
    """Prepare ``temp`` for appending ``data`` to ``target``; returns what is left to write.

    Parquet files are rewritten whole (old rows then new); CSV and JSON Lines files are
    copied to ``temp`` and the new rows are written after them.
    """
    if format == "parquet":
        old = pq.read_table(target)
        check_same_columns(old.column_names, data.column_names, target)
        try:
            new = data.select(old.column_names).cast(old.schema)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise UserInputError(f"cannot append to {target.name}: {exc}") from None
        return pa.concat_tables([old, new])
    import pandas as pd

    if format == "csv":
        old_columns = list(pd.read_csv(target, nrows=0).columns)
        check_same_columns(old_columns, data.column_names, target, ordered=True)
    elif not _is_json_lines(target):
        raise UserInputError(f"cannot append to {target.name}: it is a JSON array, not JSON Lines")
    elif target.stat().st_size:
        old_columns = list(pd.read_json(target, lines=True, nrows=1).columns)
        check_same_columns(old_columns, data.column_names, target)
    shutil.copyfile(target, temp)
    if temp.suffix.lower() not in COMPRESSIONS and temp.stat().st_size:
        with temp.open("rb+") as file:  # the new rows must start on a line of their own
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
    return data


def check_same_columns(old: list[str], new: list[str], target: Path, ordered: bool = False) -> None:
    if (old != new) if ordered else (set(old) != set(new)):
        raise UserInputError(
            f"cannot append to {target.name}: its columns are {old}, the new data's are {new}"
        )


def write_dataset(data: pa.Table, temp: Path, columns: list[str], kwargs: dict[str, Any]) -> None:
    # temp is a new folder, so "error" never fires; append moves uniquely named files in.
    kwargs = {"max_partitions": 100_000, "existing_data_behavior": "error", **kwargs}
    ds.write_dataset(
        data,
        temp,
        format="parquet",
        partitioning=columns,
        partitioning_flavor="hive",
        basename_template=f"part-{uuid.uuid4().hex[:12]}-{{i}}.parquet",
        **kwargs,
    )
    metadata = {**(data.schema.metadata or {}), PARTITION_KEY: json.dumps(columns).encode()}
    pq.write_metadata(data.schema.with_metadata(metadata), temp / SCHEMA_FILE)


def _move_files_into(new: Path, target: Path) -> None:
    """Append: move every data file of dataset ``new`` into dataset ``target``."""
    if not target.is_dir():
        raise UserInputError(f"cannot append a partitioned dataset to the file {target.name}")
    new_schema, old_file = pq.read_schema(new / SCHEMA_FILE), target / SCHEMA_FILE
    if old_file.is_file():
        old_schema = pq.read_schema(old_file)
        check_same_columns(old_schema.names, new_schema.names, target)
        old_partitions = (old_schema.metadata or {}).get(PARTITION_KEY, b"[]")
        if old_partitions != new_schema.metadata[PARTITION_KEY]:
            raise UserInputError(
                f"cannot append to {target.name}: it is partitioned by {json.loads(old_partitions)}"
            )
    for file in sorted(new.rglob("*.parquet")):
        destination = target / file.relative_to(new)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(file, destination)
    if not old_file.is_file():
        os.replace(new / SCHEMA_FILE, old_file)


def _swap_in(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``: one rename for a file, rename-aside for a folder."""
    if not target.exists() or (new.is_file() and target.is_file()):
        os.replace(new, target)
        return
    aside = target.with_name(f".treadle-old-{uuid.uuid4().hex[:12]}.{target.name}")
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise
    _remove(aside)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)
