"""A local stand-in for the few BigQuery REST API calls the ``BigQuery`` connector makes.

No BigQuery emulator can be installed here, so this answers the official client
(google-cloud-bigquery) on ``http://127.0.0.1:<port>``: a ``ThreadingHTTPServer`` in a
thread, its state in memory. It implements

* datasets: list, get, insert (``409`` when it exists);
* tables: get, patch (only ``expirationTime`` is kept), delete;
* jobs: insert of a query job, get, and ``getQueryResults`` (``/queries/{jobId}``, pages
  by ``maxResults`` and ``pageToken``);
* load jobs through the upload endpoint, ``uploadType=multipart`` (what the client uses
  for data under 5 MiB) and ``resumable`` (at and above): the Parquet is read with
  pyarrow into the table, by ``writeDisposition``;
* ``POST /token``: an OAuth token service for service account keys whose ``token_uri``
  points here.

Every request is recorded (``requests``: method, path, query, JSON body, Authorization
header) so tests can assert what the client sends. ``fail_with`` makes every request but
``/token`` answer with an HTTP error until cleared (401, 403 …); ``refuse_tokens`` makes
``/token`` refuse keys.

Tables live in DuckDB: each project is an attached in-memory catalog, each dataset a
schema in it. A query job runs in DuckDB after two rewrites, documented because they are
not BigQuery: a backticked name (`` `p.d.t` ``, `` `d.t` ``, `` `col` ``) becomes
double-quoted parts (``"p"."d"."t"``), and ``@name`` becomes DuckDB's ``$name`` (also
inside string literals: tests do not put ``@`` in strings). So the SQL dialect is
DuckDB's: what passes here may not pass in BigQuery, and the other way round. ``MERGE``
runs as DuckDB's own ``MERGE INTO`` (DuckDB 1.4 or later). A failed statement makes a
job that is DONE with an ``errorResult`` (``notFound`` for a missing table, else
``invalidQuery``), as BigQuery reports it.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import email.parser
import email.policy
import io
import itertools
import json
import re
import socket
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_LOCATION = "US"
PROJECT = r"/projects/(?P<project>[^/]+)"
API = "/bigquery/v2" + PROJECT
UPLOAD = "/upload/bigquery/v2" + PROJECT


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it."""

    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON; for an upload, the job resource (its metadata part)
    authorization: str | None


class ApiError(Exception):
    """Answered as BigQuery's JSON error: ``{"error": {"code", "message", "errors"}}``."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.status,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
                "status": HTTPStatus(self.status).name,
            }
        }


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] | None = None


class BigQueryStandIn:
    """The server and its state; ``endpoint`` is what ``BIGQUERY_ENDPOINT`` points to."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.failure: ApiError | None = None
        self.refuse_tokens = False
        self._lock = threading.RLock()
        self._db = duckdb.connect()
        self._db.execute("SET TimeZone = 'UTC'")
        self._projects: set[str] = set()
        self._datasets: dict[tuple[str, str], dict[str, Any]] = {}
        self._expirations: dict[tuple[str, str, str], str] = {}
        self._jobs: dict[tuple[str, str], Job] = {}
        self._uploads: dict[str, tuple[str, dict[str, Any], bytearray]] = {}
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> BigQueryStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._db.close()

    # -- for tests -----------------------------------------------------------------------

    def fail_with(self, status: int | None, reason: str = "", message: str = "") -> None:
        """Answer every request (but ``/token``) with this error; ``None`` stops it."""
        self.failure = None if status is None else ApiError(status, reason, message)

    def reset_requests(self) -> None:
        self.requests.clear()

    def requests_to(self, method: str, pattern: str) -> list[Recorded]:
        """The recorded requests of ``method`` whose path matches ``pattern`` (a regex)."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def add_dataset(self, project: str, dataset: str, location: str = DEFAULT_LOCATION) -> None:
        with self._lock:
            self._create_dataset(project, dataset, location)

    def add_table(self, project: str, dataset: str, table: str, data: pa.Table) -> None:
        with self._lock:
            if (project, dataset) not in self._datasets:
                self._create_dataset(project, dataset, DEFAULT_LOCATION)
            self._write(project, dataset, table, data, "WRITE_TRUNCATE")

    def table(self, project: str, dataset: str, table: str) -> pa.Table | None:
        """A stored table's rows, or None when it does not exist."""
        with self._lock:
            if not self._table_exists(project, dataset, table):
                return None
            return _arrow(self._cursor(project), f"SELECT * FROM {_quoted(dataset, table)}")

    def tables(self, project: str, dataset: str) -> list[str]:
        with self._lock:
            rows = self._cursor(project).execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_catalog = ? AND table_schema = ? ORDER BY 1",
                [project, dataset],
            )
            return [name for (name,) in rows.fetchall()]

    def dataset(self, project: str, dataset: str) -> dict[str, Any] | None:
        return self._datasets.get((project, dataset))

    # -- requests ------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> Answer:
        url = urllib.parse.urlsplit(raw_path)
        path = urllib.parse.unquote(url.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        recorded_body = _request_body(headers.get("Content-Type", ""), body)
        self.requests.append(
            Recorded(method, path, query, recorded_body, headers.get("Authorization"))
        )
        try:
            if self.failure is not None and path != "/token":
                raise self.failure
            route, match = self._route(method, url.path)
            with self._lock:
                return route(match, query, headers, body)
        except ApiError as error:
            return Answer(error.status, error.body())

    def _route(self, method: str, path: str) -> tuple[Callable[..., Answer], dict[str, str]]:
        for verb, pattern, route in self._routes():
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                groups = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
                return route, groups
        raise ApiError(404, "notFound", f"the stand-in does not implement {method} {path}")

    def _routes(self) -> list[tuple[str, str, Callable[..., Answer]]]:
        dataset = API + r"/datasets/(?P<dataset>[^/]+)"
        table = dataset + r"/tables/(?P<table>[^/]+)"
        return [
            ("GET", API + "/datasets", self._list_datasets),
            ("POST", API + "/datasets", self._insert_dataset),
            ("GET", dataset, self._get_dataset),
            ("GET", table, self._get_table),
            ("PATCH", table, self._patch_table),
            ("DELETE", table, self._delete_table),
            ("POST", API + "/jobs", self._insert_job),
            ("GET", API + r"/jobs/(?P<job>[^/]+)", self._get_job),
            ("GET", API + r"/queries/(?P<job>[^/]+)", self._query_results),
            ("POST", UPLOAD + "/jobs", self._upload),
            ("PUT", UPLOAD + "/jobs", self._upload_chunk),
            ("POST", "/token", self._token),
        ]

    # -- datasets and tables -------------------------------------------------------------

    def _list_datasets(self, match, query, headers, body) -> Answer:
        project = match["project"]
        names = sorted(d for p, d in self._datasets if p == project)
        limit = int(query.get("maxResults") or len(names) or 1)
        items = [self._datasets[(project, name)] for name in names[:limit]]
        return Answer(body={"kind": "bigquery#datasetList", "datasets": items})

    def _insert_dataset(self, match, query, headers, body) -> Answer:
        resource = json.loads(body)
        reference = resource["datasetReference"]
        project, name = reference["projectId"], reference["datasetId"]
        if (project, name) in self._datasets:
            raise ApiError(409, "duplicate", f"Already Exists: Dataset {project}:{name}")
        return Answer(body=self._create_dataset(project, name, resource.get("location")))

    def _get_dataset(self, match, query, headers, body) -> Answer:
        return Answer(body=self._dataset_resource(match["project"], match["dataset"]))

    def _get_table(self, match, query, headers, body) -> Answer:
        return Answer(body=self._table_resource(match["project"], match["dataset"], match["table"]))

    def _patch_table(self, match, query, headers, body) -> Answer:
        key = (match["project"], match["dataset"], match["table"])
        self._table_resource(*key)
        changes = json.loads(body)
        if "expirationTime" in changes:
            self._expirations[key] = changes["expirationTime"]
        return Answer(body=self._table_resource(*key))

    def _delete_table(self, match, query, headers, body) -> Answer:
        project, dataset, table = match["project"], match["dataset"], match["table"]
        self._table_resource(project, dataset, table)
        self._cursor(project).execute(f"DROP TABLE {_quoted(dataset, table)}")
        self._expirations.pop((project, dataset, table), None)
        return Answer(204)

    def _create_dataset(self, project: str, dataset: str, location: str | None) -> dict[str, Any]:
        self._attach(project)
        self._db.execute(f"CREATE SCHEMA {_quoted(project, dataset)}")
        resource = {
            "kind": "bigquery#dataset",
            "id": f"{project}:{dataset}",
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": location or DEFAULT_LOCATION,
        }
        self._datasets[(project, dataset)] = resource
        return resource

    def _dataset_resource(self, project: str, dataset: str) -> dict[str, Any]:
        resource = self._datasets.get((project, dataset))
        if resource is None:
            raise ApiError(404, "notFound", f"Not found: Dataset {project}:{dataset}")
        return resource

    def _table_resource(self, project: str, dataset: str, table: str) -> dict[str, Any]:
        self._dataset_resource(project, dataset)
        if not self._table_exists(project, dataset, table):
            raise ApiError(404, "notFound", f"Not found: Table {project}:{dataset}.{table}")
        data = self.table(project, dataset, table)
        resource = {
            "kind": "bigquery#table",
            "id": f"{project}:{dataset}.{table}",
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": bigquery_fields(data.schema)},
            "numRows": str(data.num_rows),
            "type": "TABLE",
            "location": self._datasets[(project, dataset)]["location"],
        }
        if (project, dataset, table) in self._expirations:
            resource["expirationTime"] = self._expirations[(project, dataset, table)]
        return resource

    def _table_exists(self, project: str, dataset: str, table: str) -> bool:
        return table in self.tables(project, dataset)

    def _attach(self, project: str) -> None:
        if project not in self._projects:
            self._db.execute(f"ATTACH ':memory:' AS {_quoted(project)}")
            self._projects.add(project)

    def _cursor(self, project: str) -> duckdb.DuckDBPyConnection:
        """A cursor whose current catalog is ``project``: ``dataset.table`` resolves in it."""
        self._attach(project)
        cursor = self._db.cursor()
        cursor.execute(f"USE {_quoted(project)}")
        return cursor

    # -- jobs ----------------------------------------------------------------------------

    def _insert_job(self, match, query, headers, body) -> Answer:
        resource = json.loads(body)
        if "query" not in resource.get("configuration", {}):
            raise ApiError(400, "invalid", "the stand-in runs only query jobs through jobs.insert")
        job = self._new_job(match["project"], resource)
        job.run_query(self)
        return Answer(body=job.resource)

    def _get_job(self, match, query, headers, body) -> Answer:
        return Answer(body=self._job(match["project"], match["job"]).resource)

    def _query_results(self, match, query, headers, body) -> Answer:
        job = self._job(match["project"], match["job"])
        if job.error is not None:
            raise job.error
        return Answer(body=job.query_results(query))

    def _job(self, project: str, job_id: str) -> Job:
        job = self._jobs.get((project, job_id))
        if job is None:
            raise ApiError(404, "notFound", f"Not found: Job {project}:{job_id}")
        return job

    def _new_job(self, project: str, resource: dict[str, Any]) -> Job:
        reference = resource.setdefault("jobReference", {})
        reference.setdefault("projectId", project)
        reference.setdefault("jobId", f"standin_{next(self._ids)}")
        reference.setdefault("location", DEFAULT_LOCATION)
        job = Job(resource)
        self._jobs[(project, reference["jobId"])] = job
        return job

    def _upload(self, match, query, headers, body) -> Answer:
        project = match["project"]
        kind = query.get("uploadType")
        if kind == "multipart":
            resource, data = _multipart(headers.get("Content-Type", ""), body)
            return Answer(body=self._run_load(project, resource, data))
        if kind == "resumable":
            upload_id = f"upload_{next(self._ids)}"
            self._uploads[upload_id] = (project, json.loads(body), bytearray())
            location = f"{self.endpoint}/upload/bigquery/v2/projects/{project}/jobs"
            location += f"?uploadType=resumable&upload_id={upload_id}"
            return Answer(headers={"Location": location}, body={})
        raise ApiError(400, "invalid", f"uploadType {kind!r} is not implemented")

    def _upload_chunk(self, match, query, headers, body) -> Answer:
        project, resource, data = self._uploads[query["upload_id"]]
        data.extend(body)
        total = headers.get("Content-Range", "").rpartition("/")[2]
        if total == "*" or len(data) < int(total):
            return Answer(308, headers={"Range": f"bytes=0-{len(data) - 1}"})
        del self._uploads[query["upload_id"]]
        return Answer(body=self._run_load(project, resource, bytes(data)))

    def _run_load(self, project: str, resource: dict[str, Any], data: bytes) -> dict[str, Any]:
        job = self._new_job(project, resource)
        load = resource["configuration"]["load"]
        destination = load["destinationTable"]
        try:
            if load.get("sourceFormat") != "PARQUET":
                raise ApiError(400, "invalid", "the stand-in loads only PARQUET")
            table = pq.read_table(io.BytesIO(data))
            self._dataset_resource(destination["projectId"], destination["datasetId"])
            self._write(
                destination["projectId"],
                destination["datasetId"],
                destination["tableId"],
                table,
                load.get("writeDisposition", "WRITE_APPEND"),
            )
            job.finish(statistics={"load": {"outputRows": str(table.num_rows)}})
        except ApiError as error:
            job.finish(error=error)
        except duckdb.Error as error:
            job.finish(error=ApiError(400, "invalid", str(error)))
        return job.resource

    def _write(self, project: str, dataset: str, table: str, data: pa.Table, how: str) -> None:
        cursor = self._cursor(project)
        exists = self._table_exists(project, dataset, table)
        target = _quoted(dataset, table)
        cursor.register("incoming", data)
        try:
            if how == "WRITE_EMPTY" and exists and self.table(project, dataset, table).num_rows:
                raise ApiError(
                    409, "duplicate", f"Already Exists: Table {project}:{dataset}.{table}"
                )
            if how == "WRITE_APPEND" and exists:
                cursor.execute(f"INSERT INTO {target} BY NAME SELECT * FROM incoming")
            else:
                cursor.execute(f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM incoming")
        finally:
            cursor.unregister("incoming")

    def _token(self, match, query, headers, body) -> Answer:
        if self.refuse_tokens:
            return Answer(400, {"error": "invalid_grant", "error_description": "refused"})
        return Answer(
            body={"access_token": "standin-token", "expires_in": 3600, "token_type": "Bearer"}
        )


class Job:
    """A job resource, and for a query its result (Arrow) or its error."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.error: ApiError | None = None
        self.result: pa.Table | None = None
        self.affected_rows: int | None = None

    @property
    def reference(self) -> dict[str, Any]:
        return self.resource["jobReference"]

    def finish(self, *, error: ApiError | None = None, statistics: dict | None = None) -> None:
        now = str(int(dt.datetime.now(dt.UTC).timestamp() * 1000))
        self.error = error
        self.resource["kind"] = "bigquery#job"
        self.resource["id"] = f"{self.reference['projectId']}:{self.reference['jobId']}"
        self.resource["statistics"] = {
            "creationTime": now,
            "startTime": now,
            "endTime": now,
            **(statistics or {}),
        }
        status: dict[str, Any] = {"state": "DONE"}
        if error is not None:
            detail = {"reason": error.reason, "message": error.message}
            status |= {"errorResult": detail, "errors": [detail]}
        self.resource["status"] = status

    def run_query(self, standin: BigQueryStandIn) -> None:
        config = self.resource["configuration"]["query"]
        sql = duckdb_sql(config["query"])
        params = {p["name"]: parameter_value(p) for p in config.get("queryParameters", [])}
        cursor = standin._cursor(self.reference["projectId"])
        try:
            relation = cursor.sql(sql, params=params) if params else cursor.sql(sql)
            if returns_rows(sql):
                self.result = _relation_arrow(relation)
            else:
                self.affected_rows = relation.fetchall()[0][0] if relation is not None else 0
        except duckdb.CatalogException as error:
            return self.finish(error=ApiError(404, "notFound", f"Not found: {error}"))
        except duckdb.Error as error:
            return self.finish(error=ApiError(400, "invalidQuery", str(error)))
        kind = "SELECT" if self.result is not None else sql.split(None, 1)[0].upper()
        self.finish(statistics={"query": {"statementType": kind}})

    def query_results(self, query: dict[str, str]) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "kind": "bigquery#getQueryResultsResponse",
            "jobReference": self.reference,
            "jobComplete": True,
        }
        if self.result is None:
            return answer | {"numDmlAffectedRows": str(self.affected_rows or 0)}
        start = int(query.get("pageToken") or query.get("startIndex") or 0)
        size = int(query.get("maxResults") or self.result.num_rows)
        page = self.result.slice(start, size)
        answer |= {
            "schema": {"fields": bigquery_fields(self.result.schema)},
            "totalRows": str(self.result.num_rows),
        }
        if page.num_rows:  # BigQuery leaves "rows" out of an empty page
            answer["rows"] = json_rows(page)
        if start + size < self.result.num_rows and size > 0:
            answer["pageToken"] = str(start + size)
        return answer


# -- SQL and values ------------------------------------------------------------------------


def duckdb_sql(sql: str) -> str:
    """BigQuery's backticked names as DuckDB's quoted parts, ``@name`` as ``$name``."""
    sql = re.sub(r"`([^`]*)`", lambda m: _quoted(*m.group(1).split(".")), sql)
    return re.sub(r"@([A-Za-z_]\w*)", r"$\1", sql)


def returns_rows(sql: str) -> bool:
    first = sql.lstrip(" \n\t(").split(None, 1)[0].upper() if sql.strip() else ""
    return first in ("SELECT", "WITH", "FROM", "VALUES", "TABLE")


PARAMETER_TYPES: dict[str, Callable[[str], Any]] = {
    "INT64": int,
    "FLOAT64": float,
    "NUMERIC": decimal.Decimal,
    "BIGNUMERIC": decimal.Decimal,
    "BOOL": lambda v: v == "true",
    "STRING": str,
    "BYTES": base64.b64decode,
    "DATE": dt.date.fromisoformat,
    "TIME": dt.time.fromisoformat,
    "DATETIME": dt.datetime.fromisoformat,
    "TIMESTAMP": lambda v: dt.datetime.fromisoformat(v.replace(" ", "T")),
}


def parameter_value(parameter: dict[str, Any]) -> Any:
    kind = parameter["parameterType"]
    value = parameter["parameterValue"]
    if kind["type"] == "ARRAY":
        element = kind["arrayType"]["type"]
        return [_typed(element, item.get("value")) for item in value.get("arrayValues", [])]
    return _typed(kind["type"], value.get("value"))


def _typed(kind: str, value: str | None) -> Any:
    return None if value is None else PARAMETER_TYPES[kind](value)


def bigquery_fields(schema: pa.Schema) -> list[dict[str, str]]:
    return [{"name": f.name, "type": bigquery_type(f.type), "mode": "NULLABLE"} for f in schema]


def bigquery_type(kind: pa.DataType) -> str:
    checks = [
        (pa.types.is_boolean, "BOOLEAN"),
        (pa.types.is_integer, "INTEGER"),
        (pa.types.is_floating, "FLOAT"),
        (pa.types.is_decimal, "NUMERIC"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "STRING"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "BYTES"),
        (pa.types.is_date, "DATE"),
        (pa.types.is_time, "TIME"),
        (lambda t: pa.types.is_timestamp(t) and t.tz is not None, "TIMESTAMP"),
        (pa.types.is_timestamp, "DATETIME"),
    ]
    for check, name in checks:
        if check(kind):
            return name
    raise ApiError(400, "invalid", f"the stand-in has no BigQuery type for {kind}")


def json_rows(table: pa.Table) -> list[dict[str, Any]]:
    """Rows as the REST API sends them: every value a string (``useInt64Timestamp``)."""
    columns = [
        (table.column(i).to_pylist(), table.schema.field(i).type) for i in range(table.num_columns)
    ]
    return [
        {"f": [{"v": json_value(values[row], kind)} for values, kind in columns]}
        for row in range(table.num_rows)
    ]


def json_value(value: Any, kind: pa.DataType) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime) and kind.tz is not None:
        return str(_micros(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return str(value)


def _micros(value: dt.datetime) -> int:
    delta = value.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _quoted(*parts: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def _arrow(cursor: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    return _relation_arrow(cursor.sql(sql))


def _relation_arrow(relation: Any) -> pa.Table:
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return fetch()


# -- HTTP ----------------------------------------------------------------------------------


def _request_body(content_type: str, body: bytes) -> Any:
    if content_type.startswith("multipart/related"):
        return _multipart(content_type, body)[0]
    if content_type.startswith("application/json") and body:
        return json.loads(body)
    return None


def _multipart(content_type: str, body: bytes) -> tuple[dict[str, Any], bytes]:
    """The job resource and the data of a ``multipart/related`` upload."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    metadata, data = list(message.iter_parts())
    return json.loads(metadata.get_payload(decode=True)), data.get_payload(decode=True)


def _handler_for(standin: BigQueryStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:  # headers and body go out at once, not 40 ms apart
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = standin.handle(self.command, self.path, self.headers, body)
            payload = b"" if answer.body is None else json.dumps(answer.body).encode()
            self.send_response(answer.status)
            for name, value in (answer.headers or {}).items():
                self.send_header(name, value)
            if payload:
                self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler
