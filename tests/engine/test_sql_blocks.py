"""SQL blocks: rendered with Jinja, run on DuckDB, upstream outputs as df_1 … df_N."""

from __future__ import annotations

import duckdb
import pandas as pd

from treadle.engine.api import run_pipeline
from treadle.events import BlockStatus


def write_loader(project):
    project.block(
        "data_loaders",
        "numbers",
        "import pandas as pd\nfrom treadle import data_loader\n\n"
        "@data_loader\ndef numbers():\n    return pd.DataFrame({'x': [1, 2, 3, 4]})\n",
    )


def test_sql_block_reads_upstream_and_variables(project):
    write_loader(project)
    project.write(
        "transformers/big_ones.sql",
        """
        -- {{ execution_date.year }} is available too
        select x, x * 10 as y, {{ execution_date.year }} as yr
        from {{ df_1 }}
        where x > {{ variables('min') }}
        order by x
        """,
    )
    project.pipeline(
        "p",
        """
        variables: {min: 2}
        blocks:
          - {name: numbers, type: data_loader}
          - {name: big_ones, type: transformer, upstream: [numbers]}
        """,
    )
    result = run_pipeline(project.root, "p", execution_date="2021-06-01")
    assert result.ok, result.blocks["big_ones"].error
    out = result.output("big_ones")
    assert isinstance(out, pd.DataFrame)
    assert out.to_dict("list") == {"x": [3, 4], "y": [30, 40], "yr": [2021, 2021]}
    assert result.blocks["big_ones"].rows == 2


def test_sql_exporter_writes_into_the_warehouse(project):
    write_loader(project)
    project.write(
        "data_exporters/keep.sql",
        "create or replace table kept as select * from {{ df_1 }};\nselect count(*) as n from kept",
    )
    project.pipeline(
        "p",
        "blocks:\n  - {name: numbers, type: data_loader}\n  - {name: keep, type: data_exporter, upstream: [numbers]}\n",
    )
    result = run_pipeline(project.root, "p")
    assert result.ok, result.blocks["keep"].error
    con = duckdb.connect(str(project.root / ".treadle" / "warehouse.duckdb"))
    assert con.execute("select sum(x) from kept").fetchone()[0] == 10


def test_sql_template_error_fails_the_block_with_the_file(project):
    write_loader(project)
    project.write("transformers/bad.sql", "select * from {{ df_2 }}")
    project.pipeline(
        "p",
        "blocks:\n  - {name: numbers, type: data_loader}\n  - {name: bad, type: transformer, upstream: [numbers]}\n",
    )
    result = run_pipeline(project.root, "p")
    assert result.blocks["bad"].status is BlockStatus.FAILED
    assert "df_2" in result.blocks["bad"].error.message
    assert "transformers/bad.sql" in str(result.blocks["bad"].error)


def test_a_failing_query_names_the_file_and_shows_the_sql(project):
    write_loader(project)
    project.write("transformers/broken.sql", "select x\nfrom {{ df_1 }}\ngroup by nope\n")
    project.pipeline(
        "p",
        "blocks:\n  - {name: numbers, type: data_loader}\n  - {name: broken, type: transformer, upstream: [numbers]}\n",
    )
    result = run_pipeline(project.root, "p")
    error = result.blocks["broken"].error
    assert error.type == "QueryFailed"
    assert error.message.startswith("transformers/broken.sql: ") and "nope" in error.message
    assert "   3 | group by nope" in error.message
    assert "duckdb" not in error.traceback.lower()


def test_a_sql_block_after_an_exporter_says_its_upstream_returned_nothing(project):
    write_loader(project)
    project.block(
        "data_exporters",
        "save",
        "from treadle import data_exporter\n\n@data_exporter\ndef save(df):\n    pass\n",
    )
    project.write("transformers/after.sql", "select * from {{ df_1 }}")
    project.pipeline(
        "p",
        "blocks:\n  - {name: numbers, type: data_loader}\n"
        "  - {name: save, type: data_exporter, upstream: [numbers]}\n"
        "  - {name: after, type: transformer, upstream: [save]}\n",
    )
    result = run_pipeline(project.root, "p")
    error = result.blocks["after"].error
    assert result.blocks["after"].status is BlockStatus.FAILED
    assert "upstream block 'save' returned nothing" in error.message
    assert "loader or a transformer" in str(error)


def test_sql_block_on_a_postgres_profile(project, pg_databases):
    url = pg_databases.create()
    dbname = url.rsplit("/", 1)[1]
    project.write(
        "io_config.yaml",
        f"dev:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: 5432\n"
        f"  POSTGRES_USER: postgres\n  POSTGRES_DBNAME: {dbname}\n",
    )
    write_loader(project)
    project.write(
        "transformers/doubled.sql",
        "select x, x * 2 as y from {{ df_1 }} where x > {{ variables('min') }} order by x\n",
    )
    project.write("transformers/broken.sql", "select nope from {{ df_1 }}\n")
    project.pipeline(
        "p",
        """
        variables: {min: 1}
        blocks:
          - {name: numbers, type: data_loader}
          - {name: doubled, type: transformer, upstream: [numbers], profile: dev}
          - {name: broken, type: transformer, upstream: [numbers], profile: dev}
        """,
    )
    result = run_pipeline(project.root, "p")
    out = result.output("doubled")
    assert list(out["x"]) == [2, 3, 4] and list(out["y"]) == [4, 6, 8]
    error = result.blocks["broken"].error
    assert result.blocks["broken"].status is BlockStatus.FAILED
    assert "nope" in error.message and "1 | select nope from df_1" in error.message


def write_postgres_profile(project, pg_databases) -> str:
    """A ``dev`` profile on a new database; return its URL."""
    url = pg_databases.create()
    project.write(
        "io_config.yaml",
        "dev:\n  POSTGRES_HOST: 127.0.0.1\n  POSTGRES_PORT: 5432\n"
        f"  POSTGRES_USER: postgres\n  POSTGRES_DBNAME: {url.rsplit('/', 1)[1]}\n",
    )
    return url


def sql_pipeline(project, settings: str, sql: str = "select x, x * 2 as y from {{ df_1 }}"):
    write_loader(project)
    project.write("transformers/doubled.sql", sql)
    project.pipeline(
        "p",
        "blocks:\n  - {name: numbers, type: data_loader}\n"
        f"  - {{name: doubled, type: transformer, upstream: [numbers]{settings}}}\n",
    )


def warehouse(project):
    return duckdb.connect(str(project.root / ".treadle" / "warehouse.duckdb"))


def test_sql_block_materialises_its_result_to_a_table(project):
    sql_pipeline(project, ", table: doubled_numbers, schema: marts")
    for _ in range(2):  # replace (the default): the second run leaves the same rows
        result = run_pipeline(project.root, "p")
        assert result.ok, result.blocks["doubled"].error
    assert result.output("doubled")["y"].tolist() == [2, 4, 6, 8]
    rows = warehouse(project).execute("select x, y from marts.doubled_numbers order by x")
    assert rows.fetchall() == [(1, 2), (2, 4), (3, 6), (4, 8)]


def test_sql_block_appends_and_fails_as_if_exists_says(project):
    sql_pipeline(project, ", table: kept, if_exists: append")
    for _ in range(2):
        assert run_pipeline(project.root, "p").ok
    assert warehouse(project).execute("select count(*) from kept").fetchone()[0] == 8
    sql_pipeline(project, ", table: kept, if_exists: fail")
    result = run_pipeline(project.root, "p")
    assert result.blocks["doubled"].status is BlockStatus.FAILED
    assert "kept already exists" in result.blocks["doubled"].error.message
    assert warehouse(project).execute("select count(*) from kept").fetchone()[0] == 8


def test_a_failing_query_leaves_the_table_as_it_was(project):
    sql_pipeline(project, ", table: kept")
    assert run_pipeline(project.root, "p").ok
    sql_pipeline(project, ", table: kept", sql="select x, nope from {{ df_1 }}")
    result = run_pipeline(project.root, "p")
    assert result.blocks["doubled"].error.type == "QueryFailed"
    assert warehouse(project).execute("select sum(y) from kept").fetchone()[0] == 20


def test_sql_block_limit_caps_the_rows_it_outputs_and_writes(project):
    sql_pipeline(
        project, ", limit: 3, table: first", sql="select * from {{ df_1 }} order by x desc"
    )
    result = run_pipeline(project.root, "p")
    assert result.output("doubled")["x"].tolist() == [4, 3, 2]
    assert result.blocks["doubled"].rows == 3
    assert warehouse(project).execute("select count(*) from first").fetchone()[0] == 3


def test_raw_sql_block_runs_plain_statements_and_outputs_nothing(project):
    sql_pipeline(
        project,
        ", raw: true",
        sql="create table audit_log (x integer);\ninsert into audit_log select x from {{ df_1 }};\n"
        "delete from audit_log where x = 1;\n",
    )
    result = run_pipeline(project.root, "p")
    assert result.ok, result.blocks["doubled"].error
    assert result.output("doubled") is None
    assert warehouse(project).execute("select sum(x) from audit_log").fetchone()[0] == 9


def test_sql_block_materialises_on_postgres_atomically(project, pg_databases):
    import psycopg

    url = write_postgres_profile(project, pg_databases)
    sql_pipeline(
        project,
        ", profile: dev, table: doubled, schema: marts, limit: 2",
        sql="select x, x * 2 as y from {{ df_1 }} order by x",
    )
    result = run_pipeline(project.root, "p")
    assert result.ok, result.blocks["doubled"].error
    with psycopg.connect(url) as con:
        assert con.execute("select x, y from marts.doubled order by x").fetchall() == [
            (1, 2),
            (2, 4),
        ]
    sql_pipeline(
        project,
        ", profile: dev, table: doubled, schema: marts",
        sql="select x, 1 / (x - 3) as y from {{ df_1 }}",
    )  # division by zero
    result = run_pipeline(project.root, "p")
    assert result.blocks["doubled"].error.type == "QueryFailed"
    with psycopg.connect(url) as con:
        assert con.execute("select count(*) from marts.doubled").fetchone()[0] == 2


def test_raw_sql_block_on_postgres(project, pg_databases):
    import psycopg

    url = write_postgres_profile(project, pg_databases)
    sql_pipeline(
        project,
        ", profile: dev, raw: true",
        sql="create table seen as select x from {{ df_1 }};\nupdate seen set x = x * 10;\n",
    )
    assert run_pipeline(project.root, "p").ok
    with psycopg.connect(url) as con:
        assert con.execute("select sum(x) from seen").fetchone()[0] == 100


def test_sql_block_on_a_profile_of_another_kind_is_refused(project):
    project.write("io_config.yaml", "lake:\n  AWS_REGION: eu-west-1\n")
    sql_pipeline(project, ", profile: lake")
    result = run_pipeline(project.root, "p")
    error = result.blocks["doubled"].error
    assert "'lake' is for S3" in error.message and "DuckDB and PostgreSQL" in error.message
