"""What the object-storage connectors (``GCS``, ``S3``) share: one implementation on fsspec.

Each subclass only says how to build its fsspec filesystem (credentials, endpoint) and its
URL scheme; reading and writing are here, and reuse the ``Files`` connector's formats:
a table is first written to a local temporary folder exactly as ``Files`` writes it (CSV,
JSON Lines, Parquet, Hive-partitioned Parquet with its ``_common_metadata``), then uploaded.

What is atomic, and what is not (object storage has no rename and no multi-object
transaction):

* A single file (CSV, JSON, Parquet) is uploaded as one object. An object becomes visible
  only when its upload completes, so a reader sees the old object or the new one, never
  half of one; a failed upload leaves the old object as it was. ``append`` downloads the
  object, adds the rows and uploads the whole again: two exports appending at the same
  time can lose one's rows (the last upload wins).
* A partitioned dataset is uploaded under a hidden sibling prefix
  (``lake/.treadle-<time>-<id>.green_taxi/``) that readers of the dataset never list. Only when
  every object is there are they copied into the dataset (a server-side copy, each object
  whole), the schema file last; ``replace`` then deletes the old data files. New data files
  have unique names (``part-<id>-<n>.parquet``), so they never overwrite old ones. A
  failure before or during the copy deletes what this export copied, and the dataset is
  as it was. What a reader can see: while the copy runs, the old files plus some new ones;
  between the copy and the deletion, old and new rows together. If deleting the old files
  itself fails midway, the dataset keeps the new files and some old ones, and the error
  propagates. The hidden prefix is deleted at the end, even after a failure; one left by
  a process killed midway (readers ignore it) is deleted by a later export to the same
  dataset once it is an hour old (its name holds its creation time).
* ``if_exists='fail'`` checks, then writes: a writer in between is not detected.

``check()`` (``treadle io test``) lists the profile's bucket (``GCS_BUCKET``, ``S3_BUCKET``;
one object at most), or without one the buckets of the account: the cheapest calls that
need valid credentials.

Bad input raises ``UserInputError`` before anything is written: a bucket that does not
exist, credentials the service refuses, a partition column that is not in the table, an
unknown ``if_exists`` or format. A refusal midway (a permission that covers only part of
the bucket) raises ``UserInputError`` too, after the clean-up above. Credentials never
appear in messages or ``repr``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import tempfile
import time
import uuid
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from treadle.errors import UserInputError, did_you_mean
from treadle.io.base import Connector, IfExists, check_if_exists
from treadle.io.files import (
    COMPRESSIONS,
    PARTITION_KEY,
    SCHEMA_FILE,
    SUFFIXES,
    Files,
    append_file,
    check_same_columns,
    format_of,
    write_dataset,
    write_file,
)
from treadle.io.tables import to_arrow, to_pandas

if TYPE_CHECKING:
    import pandas as pd
    from fsspec import AbstractFileSystem

logger = logging.getLogger("treadle.io.object_store")

Kind = Literal["file", "folder"] | None
STAGING_PREFIX = ".treadle-"
STALE_AFTER = 3600.0  # seconds: a staging prefix this old was left by a killed process


class ObjectStore(Connector):
    """Load and export tables as objects in a bucket (``scheme://bucket/key``)."""

    scheme: ClassVar[str]  # "gs", "s3"
    service: ClassVar[str]  # "GCS", "S3": for messages
    bucket_key: ClassVar[str]  # "GCS_BUCKET", "S3_BUCKET": the profile key of ``bucket``

    def __init__(self, profile: str | None = None, bucket: str | None = None) -> None:
        """``bucket``: the one ``check()`` tests; ``None`` to list the account's buckets."""
        self.profile = profile
        self.bucket = bucket
        self._filesystem: AbstractFileSystem | None = None

    @abstractmethod
    def _make_filesystem(self) -> AbstractFileSystem:
        """A new fsspec filesystem with this connector's credentials and endpoint."""

    @abstractmethod
    def _where(self) -> str:
        """The endpoint requests go to, for ``check()``'s answer (no secrets)."""

    @abstractmethod
    def _list_one_object(self, bucket: str) -> None:
        """List at most one object of ``bucket``; ``FileNotFoundError`` if it does not exist."""

    @abstractmethod
    def _bucket_names(self) -> list[str]:
        """The buckets the credentials can see (of the account, or of the project)."""

    @property
    def filesystem(self) -> AbstractFileSystem:
        """The fsspec filesystem, made on first use (no network before that)."""
        if self._filesystem is None:
            self._filesystem = self._make_filesystem()
        return self._filesystem

    def close(self) -> None:
        self._filesystem = None

    def check(self) -> str:
        """Build the filesystem and make the cheapest call that needs valid credentials.

        With a bucket, list it (one object at most): ``GCS bucket gs://lake (endpoint …)``;
        without, count the buckets: ``S3 at http://127.0.0.1:5000, 3 buckets``. Raises
        ``UserInputError`` for a missing bucket or credentials the service refuses.
        """
        if self.bucket:
            with self._translated_errors(self.bucket):
                self._check_bucket_listable(self.bucket)
            return f"{self.service} bucket {self.url(self.bucket)} (endpoint {self._where()})"
        with self._translated_errors(""):
            count = len(self._bucket_names())
        return f"{self.service} at {self._where()}, {count} bucket{'' if count == 1 else 's'}"

    def _check_bucket_listable(self, bucket: str) -> None:
        try:
            self._list_one_object(bucket)
        except FileNotFoundError:
            raise UserInputError(
                f"bucket {bucket!r}{self._of_profile()} does not exist ({self.url(bucket)})",
                hint=f"create the bucket, or correct {self.bucket_key} in io_config.yaml",
            ) from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(profile={self.profile!r})"

    def url(self, path: str) -> str:
        """``bucket/key`` as a ``scheme://bucket/key`` URL, for messages."""
        return f"{self.scheme}://{path}"

    def load(
        self,
        url_or_bucket: str,
        key: str | None = None,
        *,
        format: str | None = None,
        **kwargs: Any,
    ) -> pd.DataFrame:
        """Read a CSV, JSON (lines or array) or Parquet object, or a partitioned Parquet folder.

        Takes a URL (``gs://bucket/trips.parquet``) or a bucket and a key. ``kwargs`` go to
        ``pandas.read_csv``, ``pandas.read_json`` or ``pyarrow.parquet.read_table``
        (``columns=``, ``filters=``). Raises ``UserInputError`` for a missing bucket or
        object, refused credentials or an unknown format.
        """
        path = self._path(url_or_bucket, key)
        with self._translated_errors(path):
            kind = self._kind(path)
            if kind is None:
                self._check_bucket(path)
                raise UserInputError(f"{self.url(path)} does not exist")
            format = remote_format(path, format, folder=kind == "folder")
            if format == "parquet":
                return to_pandas(self._read_parquet(path, kind, **kwargs))
            if kind == "folder":
                raise UserInputError(
                    f"{self.url(path)} is a folder: only Parquet datasets load from a folder",
                    hint="give the URL of one file",
                )
            with tempfile.TemporaryDirectory(prefix="treadle-") as local:
                name = PurePosixPath(path).name
                self.filesystem.get_file(path, str(Path(local) / name))
                return Files(local).load(name, format=format, **kwargs)

    def export(
        self,
        obj: Any,
        url_or_bucket: str,
        key: str | None = None,
        *,
        format: str | None = None,
        partition_by: str | Sequence[str] | None = None,
        if_exists: IfExists = "replace",
        **kwargs: Any,
    ) -> None:
        """Write ``obj`` to one object, or to a Hive-partitioned Parquet dataset.

        ``partition_by`` writes ``url/lpep_pickup_date=2020-10-01/part-….parquet``. What
        is atomic is in the module docstring. ``kwargs`` go to the writer, as for
        ``Files.export``. JSON is written as JSON Lines.
        """
        check_if_exists(if_exists)
        path = self._path(url_or_bucket, key)
        columns = [partition_by] if isinstance(partition_by, str) else list(partition_by or ())
        format = remote_format(path, format, folder=bool(columns))
        if columns and format != "parquet":
            raise UserInputError(f"partition_by needs the parquet format, not {format}")
        data = to_arrow(obj)
        check_partition_columns(data, columns)
        with self._translated_errors(path):
            self._check_bucket(path)
            kind = self._kind(path)
            if kind is not None and if_exists == "fail":
                raise UserInputError(
                    f"{self.url(path)} already exists", hint="pass if_exists='replace' or 'append'"
                )
            append = kind is not None and if_exists == "append"
            with tempfile.TemporaryDirectory(prefix="treadle-") as local:
                if columns:
                    self._export_dataset(data, path, kind, columns, append, Path(local), kwargs)
                else:
                    self._export_file(data, path, kind, format, append, Path(local), kwargs)
        logger.info("exported %d rows to %s", data.num_rows, self.url(path))

    def _path(self, url_or_bucket: str, key: str | None) -> str:
        """``bucket/key`` from a URL or a bucket and a key; checks the scheme and bucket."""
        prefix = f"{self.scheme}://"
        text = str(url_or_bucket)
        if key is None:
            if not text.startswith(prefix):
                raise UserInputError(
                    f"{text!r} is not a {prefix} URL",
                    hint=f"use {prefix}bucket/path, or pass the bucket and the key apart",
                )
            bucket, _, key = text[len(prefix) :].partition("/")
        else:
            bucket = text.removeprefix(prefix).strip("/")
        key = key.strip("/")
        if not bucket or "/" in bucket or not key:
            raise UserInputError(
                f"{prefix}{bucket}/{key} does not name an object: it needs a bucket and a path",
                hint=f"e.g. {prefix}my-bucket/data/trips.parquet",
            )
        return f"{bucket}/{key}"

    @contextlib.contextmanager
    def _translated_errors(self, path: str) -> Iterator[None]:
        """Refused credentials become a ``UserInputError`` naming the bucket, not the key."""
        try:
            yield
        except Exception as exc:
            if self._is_access_denied(exc):
                raise self._access_denied(path, exc) from None
            raise

    def _is_access_denied(self, exc: Exception) -> bool:
        """Whether ``exc`` is the service refusing the credentials or their permissions."""
        return isinstance(exc, PermissionError)

    def _access_denied(self, path: str, exc: BaseException) -> UserInputError:
        """Names the bucket of ``path``; an empty ``path`` is the listing of the buckets."""
        bucket = path.partition("/")[0]
        if bucket:
            what, scope = f"access to bucket {bucket!r}", "the bucket"
        else:
            what, scope = "to list the buckets", "the account"
        return UserInputError(
            f"{self.service} refused {what}: {_first_line(exc)}",
            hint=f"check the credentials{self._of_profile()} and their permissions on {scope}",
        )

    def _of_profile(self) -> str:
        return f" of profile {self.profile!r}" if self.profile else ""

    def _check_bucket(self, path: str) -> None:
        # Not filesystem.exists(): it answers False for refused credentials too.
        bucket = path.partition("/")[0]
        try:
            self.filesystem.info(bucket)
        except FileNotFoundError:
            raise UserInputError(
                f"bucket {bucket!r} does not exist (looked for {self.url(path)})",
                hint="create the bucket first, or check its name and the endpoint",
            ) from None

    def _kind(self, path: str) -> Kind:
        """Whether ``path`` is an object, a folder (a prefix holding objects), or neither."""
        try:
            info = self.filesystem.info(path)
        except FileNotFoundError:
            return None
        return "folder" if info.get("type") == "directory" else "file"

    def _read_parquet(self, path: str, kind: Kind, **kwargs: Any) -> pa.Table:
        """Like ``files.read_parquet``: a dataset Treadle wrote gets its partition types."""
        schema = self._dataset_schema(path) if kind == "folder" else None
        if schema is not None:
            names = json_list((schema.metadata or {}).get(PARTITION_KEY, b"[]"))
            partition_schema = pa.schema([schema.field(name) for name in names])
            kwargs.setdefault("schema", schema)
            kwargs.setdefault("partitioning", ds.partitioning(partition_schema, flavor="hive"))
        return pq.read_table(path, filesystem=self.filesystem, **kwargs)

    def _dataset_schema(self, path: str) -> pa.Schema | None:
        try:
            with self.filesystem.open(f"{path}/{SCHEMA_FILE}", "rb") as file:
                return pq.read_schema(file)
        except FileNotFoundError:
            return None

    def _export_file(
        self,
        data: pa.Table,
        path: str,
        kind: Kind,
        format: str,
        append: bool,
        local: Path,
        kwargs: dict[str, Any],
    ) -> None:
        """Write the file locally (with the old rows first when appending), upload it whole."""
        if kind == "folder":
            raise UserInputError(
                f"{self.url(path)} is a folder: will not replace it with a file",
                hint="export to another path, or pass partition_by to write a dataset",
            )
        name = PurePosixPath(path).name
        temp = local / name
        if append:
            old = local / "old" / name
            old.parent.mkdir()
            self.filesystem.get_file(path, str(old))
            data = append_file(data, old, temp, format)
        write_file(data, temp, format, append, kwargs)
        self.filesystem.put_file(str(temp), path)

    def _export_dataset(
        self,
        data: pa.Table,
        path: str,
        kind: Kind,
        columns: list[str],
        append: bool,
        local: Path,
        kwargs: dict[str, Any],
    ) -> None:
        """Write the dataset locally, upload it to a hidden prefix, then copy it into place."""
        if kind == "file":
            raise UserInputError(
                f"{self.url(path)} is a file: will not replace it with a partitioned dataset",
                hint="export the dataset to another path",
            )
        dataset = local / "dataset"
        write_dataset(data, dataset, columns, kwargs)
        files = sorted(str(p.relative_to(dataset)) for p in dataset.rglob("*") if p.is_file())
        new_data = [name for name in files if name != SCHEMA_FILE]
        old: list[str] = []
        if kind == "folder" and append:
            self._check_appendable(path, pq.read_schema(dataset / SCHEMA_FILE))
        elif kind == "folder":
            old = self._replaceable_objects(path)
        keep_old_schema = append and self._dataset_schema(path) is not None
        self._remove_stale_staging(path)
        staging = self._staging_prefix(path)
        try:
            self.filesystem.put(
                [str(dataset / name) for name in files], [f"{staging}/{name}" for name in files]
            )
            self._copy_in(staging, path, new_data, copy_schema=not keep_old_schema)
        finally:
            self._remove_quietly([staging], recursive=True)
        placed = {f"{path}/{name}" for name in files}
        stale = [name for name in old if name not in placed]
        if stale:
            self.filesystem.rm(stale)

    def _copy_in(self, staging: str, path: str, names: list[str], copy_schema: bool) -> None:
        """Copy the staged data files into ``path``, then the schema; undo on failure."""
        targets = [f"{path}/{name}" for name in names]
        try:
            if names:
                self.filesystem.copy([f"{staging}/{name}" for name in names], targets)
            if copy_schema:
                self.filesystem.copy(f"{staging}/{SCHEMA_FILE}", f"{path}/{SCHEMA_FILE}")
        except BaseException:
            self._remove_quietly(targets)
            raise

    def _staging_prefix(self, path: str) -> str:
        """A hidden sibling of ``path``, named with its creation time (whole seconds)."""
        parent, name = path.rsplit("/", 1)
        return f"{parent}/{STAGING_PREFIX}{int(time.time())}-{uuid.uuid4().hex[:8]}.{name}"

    def _remove_stale_staging(self, path: str) -> None:
        """Staging prefixes of earlier exports to ``path`` whose process was killed midway;
        recent ones may belong to another export, still uploading."""
        parent, name = path.rsplit("/", 1)
        pattern = re.compile(rf"{re.escape(STAGING_PREFIX)}(\d+)-[0-9a-f]+\.{re.escape(name)}")
        try:
            entries = self.filesystem.ls(parent, detail=False)
        except FileNotFoundError:  # the dataset's folder is new
            return
        now = time.time()
        stale = []
        for entry in entries:
            match = pattern.fullmatch(PurePosixPath(entry.rstrip("/")).name)
            if match and now - int(match[1]) > STALE_AFTER:
                stale.append(entry.rstrip("/"))
        self._remove_quietly(stale, recursive=True)

    def _remove_quietly(self, paths: list[str], recursive: bool = False) -> None:
        """Best-effort clean-up after a failure: an error here must not hide the first one."""
        for path in paths:
            try:
                self.filesystem.rm(path, recursive=recursive)
            except (FileNotFoundError, OSError) as exc:
                logger.warning("could not remove %s: %s", self.url(path), _first_line(exc))

    def _check_appendable(self, path: str, new_schema: pa.Schema) -> None:
        old_schema = self._dataset_schema(path)
        if old_schema is None:
            return
        check_same_columns(old_schema.names, new_schema.names, PurePosixPath(path))
        old_partitions = (old_schema.metadata or {}).get(PARTITION_KEY, b"[]")
        if old_partitions != new_schema.metadata[PARTITION_KEY]:
            raise UserInputError(
                f"cannot append to {self.url(path)}: it is partitioned by"
                f" {json_list(old_partitions)}"
            )

    def _replaceable_objects(self, path: str) -> list[str]:
        """Every object of the dataset at ``path``; refuses a folder holding other files."""
        objects = self.filesystem.find(path)
        for name in objects:
            relative = PurePosixPath(name).relative_to(path)
            if relative.suffix != ".parquet" and not relative.name.startswith(("_", ".")):
                raise UserInputError(
                    f"will not replace {self.url(path)}: it holds {relative},"
                    " which is not part of a Parquet dataset",
                    hint="export to a new path, or remove the folder first",
                )
        return objects


def remote_format(path: str, format: str | None, folder: bool) -> str:
    """The format of the object at ``path``: ``format``, else its suffix; a folder is Parquet."""
    name = PurePosixPath(path)
    suffixes = [s.lower() for s in name.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes.pop()
    known = bool(suffixes) and suffixes[-1] in SUFFIXES
    if format is None and folder and not known:
        return "parquet"
    return format_of(Path(name), format, None)


def check_partition_columns(data: pa.Table, columns: list[str]) -> None:
    for column in columns:
        if column not in data.column_names:
            raise UserInputError(
                f"cannot partition by {column!r}: there is no such column",
                hint=did_you_mean(column, data.column_names),
            )


def json_list(raw: bytes) -> list[str]:
    return list(json.loads(raw))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
