"""BigQuery (google-cloud-bigquery): query results as DataFrames, tables written by load jobs.

``pip install 'treadle[gcp]'``. ``BigQuery.from_profile('dev')`` reads these keys of
``io_config.yaml`` (Mage's names, shared with ``GCS``):

* ``GOOGLE_SERVICE_ACC_KEY_FILEPATH``: a service account key file, relative to the project;
* ``GOOGLE_SERVICE_ACC_KEY``: the key's JSON inline (a string, or a YAML mapping);
* ``GOOGLE_PROJECT_ID``: the project that runs the jobs, and the one of a table named
  ``dataset.table``; by default the key's project, else the application default one;
* ``GOOGLE_LOCATION``: where jobs run and missing datasets are created (``EU``,
  ``europe-west1``); by default BigQuery chooses (``US`` for new datasets);
* ``BIGQUERY_ENDPOINT``: another API endpoint (the tests' stand-in); without a key its
  requests are anonymous.

Without a key, the application default credentials are used
(``gcloud auth application-default login``, or the machine's service account).

``load(query, params=...)`` runs a query job and returns its result as a pandas DataFrame
(integers with NULLs stay integers, ``DATE`` gives ``datetime.date`` objects, ``TIMESTAMP``
``datetime64[us, UTC]``); ``load_arrow`` returns a ``pyarrow.Table``, and ``execute`` runs
a statement whose result is not needed. Rows come through the REST API, so neither
google-cloud-bigquery-storage nor db-dtypes is needed; when google-cloud-bigquery-storage
is installed (and no ``BIGQUERY_ENDPOINT`` is set), large results are read through the
BigQuery Storage API instead. ``params`` are BigQuery named parameters (``@name`` in the
SQL): values are sent beside the query, never pasted into it.

``export(df, 'dataset.table')`` (or ``'project.dataset.table'``) converts the data to
Arrow, writes it as Parquet in memory and uploads it with one load job (never streaming
inserts, which cost more and leave rows in a buffer). The dataset is created when missing,
in ``GOOGLE_LOCATION``. Timestamps are written to the microsecond (nanoseconds are
truncated). ``if_exists``:

``replace``
    A load job with ``WRITE_TRUNCATE``: BigQuery commits it whole or not at all, so
    readers see the old rows or the new ones. The table takes the new data's schema.
``append``
    A load job with ``WRITE_APPEND`` (the table is created when missing); BigQuery
    matches Parquet columns to the table's by name.
``fail``
    ``UserInputError`` when the table exists, else a load job with ``WRITE_EMPTY``. It
    checks, then writes: a table created by someone else in between is written into if
    it is still empty (``WRITE_EMPTY`` refuses one that has rows).
``upsert``
    Needs ``unique_key``, with no missing and no repeated keys in the data. The rows are
    loaded into ``<table>__treadle_stage_<id>`` in the same dataset (set to expire after
    a day right after the load, should this process die before deleting it; a kill
    between the two leaves it without expiry), then one ``MERGE`` statement,
    atomic in BigQuery, updates the rows whose key matches and inserts the others; the
    staging table is deleted in every case. A missing table is created by a plain load.
    Loading the same rows twice leaves the table as after the first time.

Errors: credentials BigQuery refuses (401, 403) and credentials that cannot be used raise
``UserInputError`` naming the profile and what to check; so do a query BigQuery rejects
(its message, and the query), a dataset or table that is not there, and data a load job
refuses. Table and dataset names are checked against BigQuery's rules before any request.
Credentials appear in no message and no ``repr``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import decimal
import importlib.util
import io
import logging
import numbers
import re
import secrets
import time
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from treadle.errors import MissingExtra, UserInputError, did_you_mean
from treadle.io.base import (
    IF_EXISTS_WITH_UPSERT,
    Connector,
    check_if_exists,
    check_no_null_keys,
    check_unique_key,
    read_profile,
)
from treadle.io.google_credentials import (
    KEY_FILE,
    KEY_INLINE,
    service_account_key,
    text_setting,
)
from treadle.io.tables import to_arrow, to_pandas

try:
    import google.auth
    from google.api_core import exceptions as api_exceptions
    from google.auth.credentials import AnonymousCredentials, Credentials
    from google.auth.exceptions import DefaultCredentialsError, GoogleAuthError, RefreshError
    from google.cloud import bigquery
except ImportError as exc:
    raise MissingExtra(
        "the BigQuery connector needs google-cloud-bigquery", hint="pip install 'treadle[gcp]'"
    ) from exc

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("treadle.io.bigquery")

BigQueryIfExists = Literal["replace", "append", "fail", "upsert"]
IF_EXISTS = IF_EXISTS_WITH_UPSERT
WRITE_DISPOSITIONS = {
    "replace": bigquery.WriteDisposition.WRITE_TRUNCATE,
    "append": bigquery.WriteDisposition.WRITE_APPEND,
    "fail": bigquery.WriteDisposition.WRITE_EMPTY,
}
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
STAGING_MARK = "__treadle_stage_"
STAGING_LIFETIME = dt.timedelta(days=1)
CHECK_SECONDS = 30.0
MAX_NAME_BYTES = 1024
QUERY_IN_MESSAGES = 2000  # characters of a query quoted in an error

PROJECT_PATTERN = re.compile(r"(?:[a-z][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
DATASET_PATTERN = re.compile(r"[A-Za-z0-9_]{1,1024}")
PARAMETER_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
TABLE_CHARACTER_CATEGORIES = ("L", "M", "N", "Pc", "Pd", "Zs")


class BigQuery(Connector):
    """BigQuery through the official client; the client is created on first use."""

    def __init__(
        self,
        *,
        project_id: str | None = None,
        location: str | None = None,
        credentials: dict[str, Any] | None = None,
        endpoint: str | None = None,
        profile: str | None = None,
    ) -> None:
        """``credentials``: a service account key (parsed JSON); ``None`` for the default
        ones (anonymous with an ``endpoint``). ``profile`` only names where the settings
        came from, in messages."""
        self.project_id = project_id
        self.location = location
        self.endpoint = endpoint
        self.profile = profile
        self._key = credentials
        self._client: bigquery.Client | None = None

    @classmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """See ``Connector.from_profile``; the keys are in the module docstring."""
        root, settings = read_profile(profile, project)
        key = service_account_key(root, settings, profile)
        return cls(
            project_id=text_setting(settings.get("GOOGLE_PROJECT_ID"))
            or (key or {}).get("project_id"),
            location=text_setting(settings.get("GOOGLE_LOCATION")),
            credentials=key,
            endpoint=text_setting(settings.get("BIGQUERY_ENDPOINT")),
            profile=profile,
        )

    # -- the client ----------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"BigQuery({self._where()})"

    @property
    def client(self) -> bigquery.Client:
        """The google-cloud-bigquery client, for anything this class does not wrap."""
        if self._client is None:
            self._client = self._make_client()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _make_client(self) -> bigquery.Client:
        credentials, default_project = self._credentials()
        project = self.project_id or default_project
        if not project:
            raise UserInputError(
                f"no Google Cloud project for BigQuery{self._of_profile()}",
                hint="set GOOGLE_PROJECT_ID in io_config.yaml",
            )
        self.project_id = project
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        return bigquery.Client(
            project=project,
            credentials=credentials,
            location=self.location,
            client_options=options,
        )

    def _credentials(self) -> tuple[Credentials, str | None]:
        """The key's credentials, anonymous ones for an endpoint, else the default ones;
        and the default credentials' project."""
        if self._key is not None:
            return _key_credentials(self._key, self._of_profile()), None
        if self.endpoint:
            return AnonymousCredentials(), None
        try:
            credentials, project = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as exc:
            raise UserInputError(
                f"no usable BigQuery credentials{self._of_profile()}: {type(exc).__name__}",
                hint=f"set {KEY_FILE} or {KEY_INLINE} in io_config.yaml, or run"
                " `gcloud auth application-default login`",
            ) from None
        return credentials, project

    def check(self) -> str:
        """Run ``SELECT 1``: it proves the credentials, the project and the right to run
        jobs (which every load and export needs), and costs nothing."""
        retry = bigquery.DEFAULT_RETRY.with_deadline(CHECK_SECONDS)  # not 10 minutes
        with self._translated_errors("a test query"):
            job = self.client.query("SELECT 1", retry=retry, job_retry=None)
            job.result(retry=retry, timeout=CHECK_SECONDS)
        return f"BigQuery {self._where()}"

    # -- load ----------------------------------------------------------------------------

    def load(self, query: str, *, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """The result of ``query`` as a pandas DataFrame (see the module docstring).

        ``params`` maps ``@name`` parameters of the query to values: ``bool``, ``int``,
        ``float``, ``Decimal``, ``str``, ``bytes``, ``datetime`` (with a time zone:
        ``TIMESTAMP``; without: ``DATETIME``), ``date``, ``time``, a list of one of
        those (an ``ARRAY``), or a ready ``bigquery.ScalarQueryParameter`` (or Array,
        Struct …: sent as it is, under the key's name; the way to send a typed NULL).
        """
        return to_pandas(self.load_arrow(query, params=params))

    def load_arrow(self, query: str, *, params: Mapping[str, Any] | None = None) -> pa.Table:
        """The result of ``query`` as a ``pyarrow.Table``; see ``load``."""
        rows = self._run_query(query, params)
        with self._translated_errors("reading the query result", query=query):
            return rows.to_arrow(create_bqstorage_client=self._storage_api_available())

    def execute(self, query: str, *, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, DML, a script) and wait for it; see ``load`` for params."""
        self._run_query(query, params)

    def _run_query(self, query: str, params: Mapping[str, Any] | None) -> Any:
        config = bigquery.QueryJobConfig(query_parameters=query_parameters(params))
        with self._translated_errors("the query", query=query):
            return self.client.query(query, job_config=config).result()

    def _storage_api_available(self) -> bool:
        """The Storage API reads large results much faster, but it is a separate package
        and a gRPC service no custom endpoint stands in for."""
        if self.endpoint:
            return False
        return importlib.util.find_spec("google.cloud.bigquery_storage") is not None

    # -- export --------------------------------------------------------------------------

    def table_exists(self, table: str) -> bool:
        """Whether ``'dataset.table'`` or ``'project.dataset.table'`` exists."""
        return self._existing_table(self.table_name(table)) is not None

    def table_name(self, table: str) -> TableName:
        """``table`` checked against BigQuery's naming rules, with its project filled in."""
        return parse_table_name(table, self.project_id or self.client.project)

    def export(
        self,
        obj: Any,
        table: str,
        *,
        if_exists: BigQueryIfExists = "replace",
        unique_key: str | Sequence[str] | None = None,
    ) -> None:
        """Write ``obj`` to ``table`` with a load job (see ``Connector.export``).

        ``table`` is ``'dataset.table'`` (in the profile's project) or
        ``'project.dataset.table'``. For ``if_exists`` and ``unique_key`` see the module
        docstring. Bad arguments raise ``UserInputError`` before any request.
        """
        check_if_exists(if_exists, IF_EXISTS)
        data = to_arrow(obj)  # before any request: a bad object changes nothing
        keys = check_unique_key(unique_key, if_exists, data.schema.names)
        if keys:
            check_upsert_columns(data, keys)
        name = self.table_name(table)
        parquet = parquet_bytes(data)
        started = time.perf_counter()
        if if_exists == "upsert":
            self._upsert(parquet, name, data.schema.names, keys)
        else:
            if if_exists == "fail" and self._existing_table(name) is not None:
                raise UserInputError(
                    f"table {name} already exists",
                    hint="pass if_exists='replace', 'append' or 'upsert'",
                )
            self._ensure_dataset(name)
            self._load(parquet, name, WRITE_DISPOSITIONS[if_exists])
        logger.info(
            "exported %d rows to %s (%s) in %.2f s",
            data.num_rows,
            name,
            if_exists,
            time.perf_counter() - started,
        )

    def _upsert(self, parquet: bytes, name: TableName, columns: list[str], keys: list[str]) -> None:
        existing = self._existing_table(name)
        if existing is None:
            self._ensure_dataset(name)
            self._load(parquet, name, bigquery.WriteDisposition.WRITE_EMPTY)
            return
        check_columns_in_table(columns, [field.name for field in existing.schema], name)
        staging = name.staging()
        try:
            self._load(parquet, staging, bigquery.WriteDisposition.WRITE_TRUNCATE)
            self._expire_later(staging)
            self._run_statement(
                merge_statement(name, staging, columns, keys), f"upsert into {name}"
            )
        finally:
            with self._translated_errors(f"deleting the staging table {staging}"):
                self.client.delete_table(staging.reference, not_found_ok=True)

    def _existing_table(self, name: TableName) -> bigquery.Table | None:
        with self._translated_errors(f"looking up table {name}"):
            try:
                return self.client.get_table(name.reference)
            except api_exceptions.NotFound:
                return None

    def _ensure_dataset(self, name: TableName) -> None:
        """Create the dataset when it is missing. Looking first needs only the right to
        read it; creating needs the project-wide right, even when the dataset exists."""
        reference = bigquery.DatasetReference(name.project, name.dataset)
        with self._translated_errors(f"creating dataset {name.project}.{name.dataset}"):
            try:
                self.client.get_dataset(reference)
                return
            except api_exceptions.NotFound:
                pass
            dataset = bigquery.Dataset(reference)
            if self.location:
                dataset.location = self.location
            self.client.create_dataset(dataset, exists_ok=True)
            logger.info("created dataset %s.%s", name.project, name.dataset)

    def _load(self, parquet: bytes, name: TableName, disposition: str) -> None:
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET, write_disposition=disposition
        )
        with self._translated_errors(f"loading into {name}"):
            job = self.client.load_table_from_file(
                io.BytesIO(parquet), name.reference, size=len(parquet), job_config=config
            )
            job.result()

    def _expire_later(self, name: TableName) -> None:
        table = bigquery.Table(name.reference)
        table.expires = dt.datetime.now(dt.UTC) + STAGING_LIFETIME
        with self._translated_errors(f"setting the expiry of {name}"):
            self.client.update_table(table, ["expires"])

    def _run_statement(self, statement: str, doing: str) -> None:
        with self._translated_errors(doing, query=statement):
            self.client.query(statement).result()

    # -- errors --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translated_errors(self, doing: str, *, query: str | None = None) -> Iterator[None]:
        """BigQuery's refusals as ``UserInputError``: what was being done, BigQuery's own
        words, and for a query the query. Other failures (network, server) propagate."""
        try:
            yield
        except (api_exceptions.Unauthorized, api_exceptions.Forbidden) as exc:
            raise UserInputError(
                f"BigQuery refused {doing}{self._of_profile()}: {exc.code} {_reason(exc)}",
                hint=self._access_hint(),
            ) from None
        except RefreshError as exc:
            raise UserInputError(
                f"the Google token service refused the service account key"
                f"{self._of_profile()} ({type(exc).__name__})",
                hint=self._access_hint(),
            ) from None
        except GoogleAuthError as exc:  # a 401 the credentials cannot answer (anonymous ones)
            raise UserInputError(
                f"BigQuery refused {doing}{self._of_profile()}: the credentials were not"
                f" accepted and cannot be renewed ({type(exc).__name__})",
                hint=self._access_hint(),
            ) from None
        except api_exceptions.NotFound as exc:
            raise UserInputError(
                f"{_reason(exc)} ({doing}){_quoted(query)}",
                hint="check the project, dataset and table names, and GOOGLE_LOCATION",
            ) from None
        except (api_exceptions.BadRequest, api_exceptions.Conflict) as exc:
            raise UserInputError(
                f"BigQuery rejected {doing}: {_reason(exc)}{_quoted(query)}"
            ) from None

    def _access_hint(self) -> str:
        return (
            f"check the credentials of profile {self.profile!r} ({KEY_FILE} or {KEY_INLINE},"
            " else the application default ones), that the account has the BigQuery roles"
            f" it needs (Job User, Data Editor) and that the project is {self.project_id!r}"
            " (GOOGLE_PROJECT_ID)"
        )

    def _of_profile(self) -> str:
        return f" of profile {self.profile!r}" if self.profile else ""

    def _where(self) -> str:
        """Project, location, endpoint and profile; never credentials."""
        where = f"project {self.project_id or '(default)'}"
        where += f" (location {self.location or 'chosen by BigQuery'})"
        if self.endpoint:
            where += f" at {self.endpoint}"
        return where + (f", profile {self.profile!r}" if self.profile else "")


def _key_credentials(key: dict[str, Any], of_profile: str) -> Credentials:
    from google.oauth2 import service_account

    try:
        return service_account.Credentials.from_service_account_info(key, scopes=SCOPES)
    except (ValueError, TypeError, KeyError) as exc:
        raise UserInputError(
            f"the BigQuery credentials{of_profile} are not a valid service account key"
            f" ({type(exc).__name__})",
            hint=f"check {KEY_FILE} or {KEY_INLINE}",
        ) from None


def _reason(exc: api_exceptions.GoogleAPICallError) -> str:
    """BigQuery's message, without the request URL or job footer the client adds."""
    for error in exc.errors or ():
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(exc.message).split("\n", 1)[0]


def _quoted(query: str | None) -> str:
    if query is None:
        return ""
    shown = query if len(query) <= QUERY_IN_MESSAGES else query[:QUERY_IN_MESSAGES] + " …"
    return f"\nquery:\n{shown}"


# -- names -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableName:
    """A table's project, dataset and name, each checked against BigQuery's rules."""

    project: str
    dataset: str
    table: str

    def __str__(self) -> str:
        return f"{self.project}.{self.dataset}.{self.table}"

    @property
    def sql(self) -> str:
        """The name quoted for SQL: safe, since no part may hold a backtick."""
        return f"`{self}`"

    @property
    def reference(self) -> bigquery.TableReference:
        return bigquery.TableReference(
            bigquery.DatasetReference(self.project, self.dataset), self.table
        )

    def staging(self) -> TableName:
        """``<table>__treadle_stage_<random>``, cut short to fit BigQuery's 1,024 bytes."""
        suffix = f"{STAGING_MARK}{secrets.token_hex(4)}"
        base = self.table.encode()[: MAX_NAME_BYTES - len(suffix)].decode("utf-8", "ignore")
        return TableName(self.project, self.dataset, base + suffix)


def parse_table_name(name: str, default_project: str | None) -> TableName:
    """``'dataset.table'`` or ``'project.dataset.table'`` (a domain-scoped project,
    ``example.com:project``, may hold dots) as a ``TableName``."""
    parts = name.split(".") if isinstance(name, str) else []
    if len(parts) < 2:
        raise _bad_table_name(name, "it is not 'dataset.table' or 'project.dataset.table'")
    project = ".".join(parts[:-2]) if len(parts) > 2 else default_project
    dataset, table = parts[-2:]
    if not project or not PROJECT_PATTERN.fullmatch(project):
        raise _bad_table_name(
            name,
            f"the project {project!r} is not a Google Cloud project ID (6 to 30 lowercase"
            " letters, digits and hyphens, starting with a letter)",
        )
    if not DATASET_PATTERN.fullmatch(dataset):
        raise _bad_table_name(
            name, f"the dataset {dataset!r} may hold only letters, digits and underscores"
        )
    if not _is_table_id(table):
        raise _bad_table_name(
            name,
            f"the table {table!r} may hold only letters, marks, digits, underscores, dashes"
            " and spaces (at most 1,024 bytes)",
        )
    return TableName(project, dataset, table)


def _is_table_id(table: str) -> bool:
    if not table or len(table.encode()) > MAX_NAME_BYTES:
        return False
    return all(unicodedata.category(char).startswith(TABLE_CHARACTER_CATEGORIES) for char in table)


def _bad_table_name(name: Any, why: str) -> UserInputError:
    return UserInputError(
        f"invalid BigQuery table name {name!r}: {why}",
        hint="write 'dataset.table' or 'project.dataset.table', e.g. 'analytics.trips'",
    )


def quote_column(name: str) -> str:
    """A column name in backticks, for the ``MERGE`` statement. A backtick, backslash or
    control character (none allowed in BigQuery column names) is refused, not escaped."""
    if not name or any(char in "`\\" or unicodedata.category(char) == "Cc" for char in name):
        raise UserInputError(
            f"column name {name!r} cannot be used in a BigQuery MERGE",
            hint="rename the column: no backticks, backslashes or control characters",
        )
    return f"`{name}`"


def merge_statement(
    target: TableName, staging: TableName, columns: Sequence[str], keys: Sequence[str]
) -> str:
    """``MERGE``: update the target's rows whose keys match a staged row, insert the rest."""
    on = " AND ".join(f"target.{quote_column(key)} = source.{quote_column(key)}" for key in keys)
    lines = [f"MERGE INTO {target.sql} AS target", f"USING {staging.sql} AS source", f"ON {on}"]
    others = [column for column in columns if column not in keys]
    if others:
        updates = ", ".join(f"{quote_column(c)} = source.{quote_column(c)}" for c in others)
        lines.append(f"WHEN MATCHED THEN UPDATE SET {updates}")
    names = ", ".join(quote_column(column) for column in columns)
    values = ", ".join(f"source.{quote_column(column)}" for column in columns)
    lines.append(f"WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})")
    return "\n".join(lines)


# -- checking arguments (before any request) ---------------------------------------------


def check_upsert_columns(data: pa.Table, keys: list[str]) -> None:
    """Upserting: no missing and no repeated key (a MERGE matches a key at most once), and
    every column a name BigQuery takes."""
    check_no_null_keys(data, keys)
    for column in data.schema.names:
        quote_column(column)
    _check_no_repeated_keys(data, keys)


def _check_no_repeated_keys(data: pa.Table, keys: list[str]) -> None:
    counts = data.select(keys).group_by(keys).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows:
        example = {key: repeated.column(key)[0].as_py() for key in keys}
        raise UserInputError(
            f"{repeated.num_rows} unique_key value(s) appear more than once in the data,"
            f" e.g. {example}",
            hint="keep one row per key (e.g. drop_duplicates) before an upsert",
        )


def check_columns_in_table(
    columns: Sequence[str], existing: Sequence[str], name: TableName
) -> None:
    """Every column of the data is a column of the table (BigQuery names ignore case)."""
    known = {column.lower() for column in existing}
    for column in columns:
        if column.lower() not in known:
            raise UserInputError(
                f"column {column!r} is not in table {name}",
                hint=did_you_mean(column, list(existing)),
            )


# -- the data ----------------------------------------------------------------------------


def parquet_bytes(data: pa.Table) -> bytes:
    """``data`` as a Parquet file in memory, timestamps in microseconds (BigQuery's unit)."""
    buffer = io.BytesIO()
    try:
        pq.write_table(data, buffer, coerce_timestamps="us", allow_truncated_timestamps=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise UserInputError(f"the data cannot be written as Parquet for BigQuery: {exc}") from None
    return buffer.getvalue()


def query_parameters(params: Mapping[str, Any] | None) -> list[Any]:
    """``params`` as BigQuery named query parameters (``@name``)."""
    if params is None:
        return []
    if not isinstance(params, Mapping):
        raise UserInputError(
            f"params must be a dict of @name parameters, not {type(params).__name__}",
            hint="e.g. load('select * from d.t where id = @id', params={'id': 3})",
        )
    return [_query_parameter(str(name), value) for name, value in params.items()]


def _query_parameter(name: str, value: Any) -> Any:
    if not PARAMETER_PATTERN.fullmatch(name):
        raise UserInputError(
            f"query parameter name {name!r} is not valid in BigQuery",
            hint="letters, digits and underscores, starting with a letter or underscore",
        )
    if _is_query_parameter(value):
        parameter = copy.copy(value)
        parameter.name = name
        return parameter
    if isinstance(value, list | tuple):
        elements = [_scalar(name, element) for element in value]
        types = {kind for kind, _ in elements}
        if len(types) != 1:
            raise UserInputError(
                f"query parameter {name!r}: a list needs values of one type"
                + (", not none" if not types else f", not {', '.join(sorted(types))}"),
                hint="for an empty list, pass bigquery.ArrayQueryParameter(name, type, [])",
            )
        return bigquery.ArrayQueryParameter(name, types.pop(), [v for _, v in elements])
    return bigquery.ScalarQueryParameter(name, *_scalar(name, value))


def _is_query_parameter(value: Any) -> bool:
    """A ``bigquery.ScalarQueryParameter``, ``ArrayQueryParameter``, ``StructQueryParameter`` …"""
    return type(value).__module__.startswith("google.cloud.bigquery") and hasattr(
        value, "to_api_repr"
    )


def _scalar(name: str, value: Any) -> tuple[str, Any]:
    """The BigQuery type of a Python value, and the value as the client encodes it."""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "BOOL", bool(value)
    if isinstance(value, numbers.Integral):
        return "INT64", int(value)
    if isinstance(value, decimal.Decimal):
        return "NUMERIC", value
    if isinstance(value, numbers.Real):
        return "FLOAT64", float(value)
    if isinstance(value, str):
        return "STRING", value
    if isinstance(value, bytes):
        return "BYTES", value
    if isinstance(value, dt.datetime):
        return ("TIMESTAMP" if value.tzinfo is not None else "DATETIME"), value
    if isinstance(value, dt.date):
        return "DATE", value
    if isinstance(value, dt.time):
        return "TIME", value
    raise UserInputError(
        f"query parameter {name!r} is a {type(value).__name__}, which has no BigQuery type"
        " here" + (" (None has no type)" if value is None else ""),
        hint="pass bool, int, float, Decimal, str, bytes, datetime, date, time or a list;"
        " for NULL, pass bigquery.ScalarQueryParameter(name, 'INT64', None)",
    )
