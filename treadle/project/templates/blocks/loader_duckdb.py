"""Load from the embedded DuckDB warehouse (io_config profile `default`)."""

from treadle import data_loader
from treadle.io import DuckDB


@data_loader
def loader_duckdb(*, logger):
    with DuckDB.from_profile("default") as warehouse:
        df = warehouse.load("select * from green_taxi")
    logger.info("loaded %d rows", len(df))
    return df
