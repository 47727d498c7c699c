"""The BigQuery connector, run by the official client against a local stand-in.

The stand-in (``bigquery_standin.py``) answers the REST calls the client makes and records
them, so these tests check two things: what the client sends (load jobs, never streaming
inserts; the dataset and its location; the ``MERGE`` of an upsert) and, through DuckDB
behind the stand-in, that data comes back as it went in. BigQuery's own SQL dialect,
authentication and ``MERGE`` semantics are not checked here (docs/connections.md).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator

import duckdb
import pandas as pd
import pyarrow as pa
import pytest
from bigquery_standin import BigQueryStandIn

from treadle.errors import UserInputError
from treadle.io.bigquery import BigQuery, merge_statement, parse_table_name

PROJECT = "test-project"
needs_merge = pytest.mark.skipif(
    tuple(int(part) for part in duckdb.__version__.split(".")[:2]) < (1, 4),
    reason="the stand-in runs MERGE in DuckDB, which has it from 1.4 on",
)
FAKE_PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----\nTOPSECRET-not-a-key\n-----END PRIVATE KEY-----\n"
UPLOADS = r"^/upload/bigquery/v2/projects/[^/]+/jobs$"
JOBS = r"^/bigquery/v2/projects/[^/]+/jobs$"


@pytest.fixture
def standin() -> Iterator[BigQueryStandIn]:
    server = BigQueryStandIn().start()
    yield server
    server.stop()


@pytest.fixture
def bq(standin: BigQueryStandIn) -> Iterator[BigQuery]:
    with BigQuery(
        project_id=PROJECT, location="EU", endpoint=standin.endpoint, profile="dev"
    ) as connector:
        yield connector


@pytest.fixture
def trips() -> pd.DataFrame:
    """One column of each type the connector maps, each with a missing value."""
    return pd.DataFrame(
        {
            "trip_id": pd.array([1, 2, 3], dtype="Int64"),
            "passenger_count": pd.array([1, None, 3], dtype="Int64"),
            "trip_distance": [1.5, None, 7.25],
            "zone": ["Astoria", None, "Harlem 'East' `x`"],
            "paid": pd.array([True, None, False], dtype="boolean"),
            "pickup_at": pd.to_datetime(
                ["2020-10-01 08:00:00.123456", None, "2020-10-02 23:59:59.000000"], utc=True
            ),
            "pickup_date": [dt.date(2020, 10, 1), None, dt.date(2020, 10, 2)],
        }
    )


def load_jobs(standin: BigQueryStandIn) -> list[dict]:
    return [r.body["configuration"]["load"] for r in standin.requests_to("POST", UPLOADS)]


def query_jobs(standin: BigQueryStandIn) -> list[str]:
    return [r.body["configuration"]["query"]["query"] for r in standin.requests_to("POST", JOBS)]


def stored(standin: BigQueryStandIn, table: str, dataset: str = "ds") -> pd.DataFrame:
    data = standin.table(PROJECT, dataset, table)
    assert data is not None, f"{dataset}.{table} does not exist"
    return data.to_pandas().sort_values(data.schema.names[0]).reset_index(drop=True)


# -- export ------------------------------------------------------------------------------


def test_export_is_one_parquet_load_job_into_a_dataset_created_in_the_location(bq, standin, trips):
    bq.export(trips, "ds.trips")

    created = standin.requests_to("POST", r"/datasets$")
    assert [r.body["location"] for r in created] == ["EU"]
    assert created[0].body["datasetReference"] == {"projectId": PROJECT, "datasetId": "ds"}
    [load] = load_jobs(standin)
    assert load["sourceFormat"] == "PARQUET"
    assert load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["destinationTable"] == {"projectId": PROJECT, "datasetId": "ds", "tableId": "trips"}
    assert standin.requests_to("POST", UPLOADS)[0].query["uploadType"] == "multipart"
    assert not [r for r in standin.requests if "insertAll" in r.path]  # no streaming inserts
    assert standin.dataset(PROJECT, "ds")["location"] == "EU"


def test_replace_swaps_the_rows_and_leaves_an_existing_dataset_alone(bq, standin, trips):
    bq.export(trips, "ds.trips")
    standin.reset_requests()
    bq.export(trips.iloc[:1], "ds.trips", if_exists="replace")

    assert standin.requests_to("POST", r"/datasets$") == []
    assert [job["writeDisposition"] for job in load_jobs(standin)] == ["WRITE_TRUNCATE"]
    assert stored(standin, "trips")["trip_id"].tolist() == [1]


def test_append_adds_rows(bq, standin, trips):
    bq.export(trips, "ds.trips", if_exists="append")  # a missing table is created
    bq.export(trips.iloc[:1], "ds.trips", if_exists="append")

    assert [job["writeDisposition"] for job in load_jobs(standin)] == ["WRITE_APPEND"] * 2
    assert stored(standin, "trips")["trip_id"].tolist() == [1, 1, 2, 3]


def test_fail_refuses_an_existing_table_before_uploading(bq, standin, trips):
    bq.export(trips, "ds.trips", if_exists="fail")
    assert [job["writeDisposition"] for job in load_jobs(standin)] == ["WRITE_EMPTY"]
    standin.reset_requests()

    with pytest.raises(UserInputError, match=r"table test-project\.ds\.trips already exists"):
        bq.export(trips, "ds.trips", if_exists="fail")
    assert load_jobs(standin) == []
    assert len(stored(standin, "trips")) == 3


def test_a_large_export_uses_a_resumable_upload(bq, standin):
    import numpy as np

    rows = 800_000  # random floats do not compress: over the client's 5 MiB multipart limit
    data = pa.table({"x": np.random.default_rng(1).random(rows)})
    bq.export(data, "ds.big")

    assert standin.requests_to("POST", UPLOADS)[0].query["uploadType"] == "resumable"
    assert standin.table(PROJECT, "ds", "big").num_rows == rows


@pytest.mark.parametrize("kind", ["pandas", "polars", "pyarrow"])
def test_pandas_polars_and_pyarrow_inputs(bq, standin, trips, kind):
    if kind == "polars":
        pl = pytest.importorskip("polars")
        data = pl.from_pandas(trips)
    else:
        data = pa.Table.from_pandas(trips) if kind == "pyarrow" else trips
    bq.export(data, "ds.trips")
    pd.testing.assert_frame_equal(
        bq.load("select * from `ds.trips` order by trip_id"), trips, check_dtype=False
    )


def test_types_round_trip(bq, trips):
    bq.export(trips, "ds.trips")

    types = {field.name: field.field_type for field in bq.client.get_table("ds.trips").schema}
    assert types == {
        "trip_id": "INTEGER",
        "passenger_count": "INTEGER",
        "trip_distance": "FLOAT",
        "zone": "STRING",
        "paid": "BOOLEAN",
        "pickup_at": "TIMESTAMP",
        "pickup_date": "DATE",
    }
    back = bq.load("select * from `test-project.ds.trips` order by trip_id")
    assert back["passenger_count"].dtype == "Int64" and back["paid"].dtype == "boolean"
    assert str(back["pickup_at"].dtype) == "datetime64[us, UTC]"
    pd.testing.assert_frame_equal(back, trips, check_dtype=False)
    assert back["pickup_date"].tolist()[0] == dt.date(2020, 10, 1)


def test_nanoseconds_are_truncated_to_microseconds(bq):
    moment = pd.Timestamp("2020-10-01 08:00:00.123456789", tz="UTC")
    bq.export(pd.DataFrame({"moment": [moment]}), "ds.moments")
    assert bq.load("select moment from `ds.moments`")["moment"][0] == moment.floor("us")


def test_an_odd_but_valid_table_name(bq, standin, trips):
    bq.export(trips, "ds.Trips 2020-Köln")
    assert standin.tables(PROJECT, "ds") == ["Trips 2020-Köln"]
    assert len(bq.load("select * from `ds.Trips 2020-Köln`")) == 3


@pytest.mark.parametrize(
    "name",
    [
        "trips",
        "ds.",
        ".trips",
        "my-dataset.trips",
        "ds.trips; DROP TABLE ds.other",
        "ds.trips` WHERE true; --",
        "ds.tri\nps",
        "ds.a/b",
        "Test-Project.ds.trips",
        "p.ds.trips",
        "test-project.ds.trips.extra",
    ],
)
def test_invalid_table_names_are_refused_before_any_request(bq, standin, trips, name):
    with pytest.raises(UserInputError, match="invalid BigQuery table name") as info:
        bq.export(trips, name)
    assert repr(name) in str(info.value)
    assert standin.requests == []


def test_table_names_in_another_project_and_domain_scoped_projects():
    assert str(parse_table_name("other-project.ds.t", PROJECT)) == "other-project.ds.t"
    name = parse_table_name("example.com:my-project.ds.t", PROJECT)
    assert (name.project, name.dataset, name.table) == ("example.com:my-project", "ds", "t")


def test_bad_export_arguments_are_refused_before_any_request(bq, standin, trips):
    with pytest.raises(UserInputError, match="if_exists must be one of"):
        bq.export(trips, "ds.trips", if_exists="merge")
    with pytest.raises(UserInputError, match="cannot export a list"):
        bq.export([1, 2], "ds.trips")
    with pytest.raises(UserInputError, match="unique_key is used only with if_exists='upsert'"):
        bq.export(trips, "ds.trips", unique_key="trip_id")
    assert standin.requests == []


# -- upsert ------------------------------------------------------------------------------


@needs_merge
def test_upsert_merges_on_the_key_through_a_staging_table(bq, standin, trips):
    bq.export(trips, "ds.trips")
    standin.reset_requests()
    changed = trips.iloc[1:].assign(zone=["Bronx", "Queens"])
    new = trips.iloc[:1].assign(trip_id=pd.array([4], dtype="Int64"), zone="Inwood")
    bq.export(pd.concat([changed, new]), "ds.trips", if_exists="upsert", unique_key="trip_id")

    [staged] = load_jobs(standin)
    staging = staged["destinationTable"]["tableId"]
    assert staging.startswith("trips__treadle_stage_")
    [merge] = query_jobs(standin)
    assert merge.startswith(
        f"MERGE INTO `test-project.ds.trips` AS target\nUSING `{PROJECT}.ds.{staging}`"
    )
    assert "ON target.`trip_id` = source.`trip_id`" in merge
    [patch] = standin.requests_to("PATCH", staging)
    assert "expirationTime" in patch.body  # left behind by a killed process, it expires
    assert standin.requests_to("DELETE", staging)
    assert standin.tables(PROJECT, "ds") == ["trips"]
    rows = stored(standin, "trips")
    assert rows["trip_id"].tolist() == [1, 2, 3, 4]
    assert rows["zone"].tolist() == ["Astoria", "Bronx", "Queens", "Inwood"]


@needs_merge
def test_upsert_is_idempotent(bq, standin, trips):
    bq.export(trips.iloc[:1], "ds.trips")
    bq.export(trips, "ds.trips", if_exists="upsert", unique_key=["trip_id"])
    once = stored(standin, "trips")
    bq.export(trips, "ds.trips", if_exists="upsert", unique_key=["trip_id"])
    pd.testing.assert_frame_equal(stored(standin, "trips"), once)
    assert len(once) == 3


def test_upsert_into_a_missing_table_loads_it(bq, standin, trips):
    bq.export(trips, "ds.trips", if_exists="upsert", unique_key="trip_id")
    assert [job["writeDisposition"] for job in load_jobs(standin)] == ["WRITE_EMPTY"]
    assert query_jobs(standin) == []
    assert len(stored(standin, "trips")) == 3


@needs_merge
def test_the_staging_table_is_deleted_when_the_merge_fails(bq, standin, trips):
    bq.export(trips[["trip_id", "pickup_date"]], "ds.trips")
    wrong_type = trips[["trip_id"]].assign(pickup_date=["soon", "later", "never"])
    with pytest.raises(UserInputError, match="BigQuery rejected upsert into"):
        bq.export(wrong_type, "ds.trips", if_exists="upsert", unique_key="trip_id")
    assert standin.tables(PROJECT, "ds") == ["trips"]


@pytest.mark.parametrize(
    ("data", "unique_key", "message"),
    [
        ({"id": [1, 2]}, None, "needs unique_key"),
        ({"id": [1, 2]}, "ID", "unique_key column 'ID' is not in the data"),
        ({"id": [1, None]}, "id", "unique_key column 'id' has 1 missing value"),
        ({"id": [1, 1], "x": [1, 2]}, "id", "1 unique_key value.* more than once"),
        ({"id": [1], "a`b": [2]}, "id", "column name 'a`b' cannot be used"),
    ],
)
def test_upsert_arguments_are_checked_before_any_request(bq, standin, data, unique_key, message):
    with pytest.raises(UserInputError, match=message):
        bq.export(pd.DataFrame(data), "ds.t", if_exists="upsert", unique_key=unique_key)
    assert standin.requests == []


def test_upsert_of_a_column_the_table_lacks_names_it(bq, standin, trips):
    bq.export(trips[["trip_id", "zone"]], "ds.trips")
    with pytest.raises(UserInputError, match="column 'paid' is not in table test-project.ds.trips"):
        bq.export(trips[["trip_id", "paid"]], "ds.trips", if_exists="upsert", unique_key="trip_id")
    assert len(load_jobs(standin)) == 1


def test_merge_of_only_key_columns_only_inserts():
    target = parse_table_name("ds.t", PROJECT)
    statement = merge_statement(target, target.staging(), ["a", "b"], ["a", "b"])
    assert "WHEN MATCHED" not in statement
    assert "WHEN NOT MATCHED THEN INSERT (`a`, `b`) VALUES (source.`a`, source.`b`)" in statement


# -- load --------------------------------------------------------------------------------


def test_load_sends_named_parameters_never_pasted_into_the_sql(bq, standin, trips):
    bq.export(trips, "ds.trips")
    standin.reset_requests()
    query = (
        "select trip_id from `ds.trips` where zone = @zone and pickup_date >= @since"
        " and pickup_at < @before and trip_id in (select * from unnest(@ids)) order by 1"
    )
    params = {
        "zone": "Astoria",
        "since": dt.date(2020, 10, 1),
        "before": dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        "ids": [1, 2],
    }
    assert bq.load(query, params=params)["trip_id"].tolist() == [1]

    [sent] = [r.body["configuration"]["query"] for r in standin.requests_to("POST", JOBS)]
    assert sent["query"] == query and "Astoria" not in sent["query"]
    types = {p["name"]: p["parameterType"] for p in sent["queryParameters"]}
    assert types == {
        "zone": {"type": "STRING"},
        "since": {"type": "DATE"},
        "before": {"type": "TIMESTAMP"},
        "ids": {"type": "ARRAY", "arrayType": {"type": "INT64"}},
    }


def test_ready_query_parameters_and_statements(bq, standin):
    from google.cloud import bigquery

    standin.add_dataset(PROJECT, "ds")
    bq.execute("create table `ds.made` as select 1 as id")
    null = bigquery.ScalarQueryParameter(None, "INT64", None)  # a typed NULL
    back = bq.load("select id, @missing is null as none from `ds.made`", params={"missing": null})
    assert back.to_dict("records") == [{"id": 1, "none": True}]
    [sent] = [r.body["configuration"]["query"] for r in standin.requests_to("POST", JOBS)][-1:]
    assert sent["queryParameters"][0]["name"] == "missing"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"bad-name": 1}, "query parameter name 'bad-name' is not valid"),
        ({"x": None}, "None has no type"),
        ({"x": {"a": 1}}, "query parameter 'x' is a dict"),
        ({"x": [1, "a"]}, "a list needs values of one type"),
        ([1, 2], "params must be a dict"),
    ],
)
def test_bad_parameters_are_refused_before_any_request(bq, standin, params, message):
    with pytest.raises(UserInputError, match=message):
        bq.load("select @x", params=params)
    assert standin.requests == []


def test_a_query_bigquery_rejects_shows_its_message_and_the_query(bq, standin):
    standin.add_table(PROJECT, "ds", "trips", pa.table({"id": [1]}))
    with pytest.raises(UserInputError, match="BigQuery rejected the query") as info:
        bq.load("select no_such_column from `ds.trips`")
    assert "no_such_column" in info.value.message.rsplit("\nquery:\n")[0]  # BigQuery's words
    assert info.value.message.endswith("query:\nselect no_such_column from `ds.trips`")


def test_a_bad_request_answered_at_once_is_a_user_error(bq, standin):
    standin.fail_with(400, "invalidQuery", "Syntax error: Unexpected keyword FORM at [1:10]")
    with pytest.raises(UserInputError, match="Syntax error: Unexpected keyword FORM") as info:
        bq.load("select 1 form x")
    assert "select 1 form x" in str(info.value)


def test_a_missing_table_is_named(bq, standin):
    standin.add_dataset(PROJECT, "ds")
    with pytest.raises(UserInputError, match="Not found: .*nope"):
        bq.load("select * from `ds.nope`")


# -- credentials and errors --------------------------------------------------------------


def test_refused_access_names_the_profile(bq, standin, trips):
    standin.fail_with(
        403, "accessDenied", "Access Denied: Project test-project: User does not have"
    )
    for attempt in (lambda: bq.export(trips, "ds.trips"), lambda: bq.load("select 1"), bq.check):
        with pytest.raises(
            UserInputError, match="BigQuery refused .* of profile 'dev': 403"
        ) as info:
            attempt()
        assert "Access Denied: Project test-project" in str(info.value)
        assert "GOOGLE_SERVICE_ACC_KEY" in info.value.hint and "'dev'" in info.value.hint


def test_a_401_without_credentials_names_the_profile(bq, standin):
    standin.fail_with(401, "unauthorized", "Request is missing required authentication credential")
    with pytest.raises(UserInputError, match="BigQuery refused the query of profile 'dev'") as info:
        bq.load("select 1")
    assert "GOOGLE_SERVICE_ACC_KEY" in info.value.hint


def write_io_config(project, dev: str) -> None:
    project.write("io_config.yaml", "version: 0.1.1\ndefault: {}\ndev:\n" + dev)


def test_from_profile_reads_the_settings(project, standin, monkeypatch, trips):
    monkeypatch.setenv("TEST_BIGQUERY_ENDPOINT", standin.endpoint)
    write_io_config(
        project,
        """
          GOOGLE_PROJECT_ID: test-project
          GOOGLE_LOCATION: EU
          BIGQUERY_ENDPOINT: "{{ env_var('TEST_BIGQUERY_ENDPOINT') }}"
        """,
    )
    with BigQuery.from_profile("dev", project=project.root) as bq:
        assert (bq.project_id, bq.location, bq.endpoint) == (PROJECT, "EU", standin.endpoint)
        bq.export(trips, "ds.trips")
        assert len(bq.load("select * from `ds.trips`")) == 3
    assert bq._client is None  # closed at the end of the block; reopens on next use


def rsa_private_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def private_key() -> str:
    return rsa_private_key()


def service_account_key(private_key: str, token_uri: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "key-project",
        "client_email": "treadle@key-project.iam.gserviceaccount.com",
        "private_key": private_key,
        "token_uri": token_uri,
    }


def test_a_key_file_signs_requests_with_its_token(project, standin, private_key):
    key = service_account_key(private_key, f"{standin.endpoint}/token")
    project.write("keys/sa.json", json.dumps(key))
    write_io_config(
        project,
        f"  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/sa.json\n  BIGQUERY_ENDPOINT: {standin.endpoint}\n",
    )
    bq = BigQuery.from_profile("dev", project=project.root)
    assert bq.project_id == "key-project"  # the key's, without GOOGLE_PROJECT_ID
    assert "PRIVATE" not in repr(bq)
    bq.export(pd.DataFrame({"id": [1]}), "ds.t")

    assert standin.requests_to("POST", "^/token$")
    api_calls = [r for r in standin.requests if r.path != "/token"]
    assert {r.authorization for r in api_calls} == {"Bearer standin-token"}
    assert standin.table("key-project", "ds", "t").num_rows == 1


def test_an_inline_key_as_a_yaml_mapping(project, standin, private_key):
    key = service_account_key(private_key, f"{standin.endpoint}/token")
    mapping = "".join(f"    {name}: {json.dumps(value)}\n" for name, value in key.items())
    write_io_config(
        project,
        f"  GOOGLE_PROJECT_ID: test-project\n  BIGQUERY_ENDPOINT: {standin.endpoint}\n"
        f"  GOOGLE_SERVICE_ACC_KEY:\n{mapping}",
    )
    bq = BigQuery.from_profile("dev", project=project.root)
    assert bq.project_id == PROJECT  # GOOGLE_PROJECT_ID wins over the key's
    assert bq.check().startswith("BigQuery project test-project")


def test_a_key_the_token_service_refuses(project, standin, private_key):
    key = service_account_key(private_key, f"{standin.endpoint}/token")
    write_io_config(
        project,
        f"  GOOGLE_SERVICE_ACC_KEY: '{json.dumps(key)}'\n  BIGQUERY_ENDPOINT: {standin.endpoint}\n",
    )
    bq = BigQuery.from_profile("dev", project=project.root)
    standin.refuse_tokens = True
    with pytest.raises(UserInputError, match="token service refused .* of profile 'dev'") as info:
        bq.load("select 1")
    assert "PRIVATE KEY" not in str(info.value) + info.value.hint

    standin.refuse_tokens = False  # a token, but BigQuery says 401 (after one renewal)
    standin.fail_with(401, "unauthorized", "Request had invalid authentication credentials")
    with pytest.raises(UserInputError, match="BigQuery refused .* of profile 'dev': 401") as info:
        bq.load("select 1")
    assert "invalid authentication credentials" in str(info.value)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/missing.json\n", "keys/missing.json"),
        ('  GOOGLE_SERVICE_ACC_KEY: \'{"private_key": "TOPSECRET"\'\n', "not a service account"),
        (
            '  GOOGLE_SERVICE_ACC_KEY: \'{"type": "x", "private_key": "TOPSECRET"}\'\n',
            "it has no client_email",
        ),
    ],
)
def test_bad_keys_are_named_never_quoted(project, setting, message):
    write_io_config(project, setting + "  BIGQUERY_ENDPOINT: http://127.0.0.1:9\n")
    with pytest.raises(UserInputError, match=message) as info:
        BigQuery.from_profile("dev", project=project.root)
    assert "TOPSECRET" not in str(info.value) and "'dev'" in str(info.value)


def test_a_key_that_is_not_a_key(project):
    key = service_account_key(FAKE_PRIVATE_KEY, "http://127.0.0.1:9/token")
    project.write("keys/sa.json", json.dumps(key))
    write_io_config(project, "  GOOGLE_SERVICE_ACC_KEY_FILEPATH: keys/sa.json\n")
    bq = BigQuery.from_profile("dev", project=project.root)
    with pytest.raises(UserInputError, match="not a valid service account key") as info:
        bq.client  # noqa: B018  (created on first use)
    assert "TOPSECRET" not in str(info.value) and "TOPSECRET" not in repr(bq)


def test_without_a_key_or_default_credentials(project, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(project.root / "missing.json"))
    write_io_config(project, "  GOOGLE_PROJECT_ID: test-project\n")
    bq = BigQuery.from_profile("dev", project=project.root)
    with pytest.raises(UserInputError, match="no usable BigQuery credentials of profile 'dev'"):
        bq.load("select 1")


def test_check_runs_the_cheapest_query(bq, standin):
    assert (
        bq.check()
        == f"BigQuery project test-project (location EU) at {standin.endpoint}, profile 'dev'"
    )
    assert query_jobs(standin) == ["SELECT 1"]


def test_profile_kinds():
    import treadle.io

    assert (
        treadle.io.connector_name_for({"BIGQUERY_ENDPOINT": "x", "GOOGLE_PROJECT_ID": "p"})
        == "BigQuery"
    )
    assert treadle.io.connector_name_for({"GOOGLE_PROJECT_ID": "p"}) == "GCS"
    assert treadle.io.BigQuery is BigQuery


# -- the command line and the extra ------------------------------------------------------


def treadle(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "treadle.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_treadle_io_test_with_a_bigquery_profile(project, standin):
    write_io_config(
        project,
        f"  GOOGLE_PROJECT_ID: test-project\n  GOOGLE_LOCATION: EU\n"
        f"  BIGQUERY_ENDPOINT: {standin.endpoint}\n",
    )
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert (
        "ok: profile 'dev' connects to BigQuery project test-project (location EU)" in done.stdout
    )

    chosen = treadle("io", "test", "dev", "--connector", "BigQuery", "--project", str(project.root))
    assert chosen.returncode == 0, chosen.stderr
    typo = treadle("io", "test", "dev", "--connector", "Bigquery", "--project", str(project.root))
    assert typo.returncode == 2 and "BigQuery" in typo.stderr

    standin.fail_with(403, "accessDenied", "Access Denied: Project test-project")
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    assert "BigQuery refused a test query of profile 'dev'" in done.stderr


def test_missing_extra_names_the_pip_install():
    code = (
        "import sys\n"
        "sys.modules['google.cloud.bigquery'] = None  # as if not installed\n"
        "try:\n"
        "    import treadle.io.bigquery\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.hint)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "MissingExtra pip install 'treadle[gcp]'"
