"""Export to the embedded DuckDB warehouse (io_config profile `default`); atomic replace."""

from treadle import data_exporter
from treadle.io import DuckDB

TABLE = "__block_name__"  # the table to write (named after the block to begin with)


@data_exporter
def exporter_duckdb(df, *, logger):
    with DuckDB.from_profile("default") as warehouse:
        warehouse.export(df, TABLE, if_exists="replace")
    logger.info("exported %d rows to DuckDB table %s", len(df), TABLE)
