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
