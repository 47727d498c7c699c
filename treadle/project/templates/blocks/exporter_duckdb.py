"""Export to the embedded DuckDB warehouse (io_config profile `default`); atomic replace."""

from treadle import data_exporter
from treadle.io import DuckDB


@data_exporter
def exporter_duckdb(df, *, logger):
    with DuckDB.from_profile("default") as warehouse:
        warehouse.export(df, "green_taxi", if_exists="replace")
    logger.info("exported %d rows", len(df))
