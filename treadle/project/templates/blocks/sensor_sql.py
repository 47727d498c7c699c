"""Wait until the warehouse has rows for this run's day.

Copy this file into your project's ``sensors/`` folder and list it in a pipeline, upstream
of the blocks that need those rows:

    blocks:
      - name: sensor_sql
        type: sensor
        interval: 5m          # how often to query (default 10s)
        timeout: 12h          # fail the run if the rows have not arrived by then (default 1h)
      - name: build_report
        type: transformer
        upstream: [sensor_sql]

A block downstream receives the sensor's return value (True) as its first input.
"""

from treadle import sensor
from treadle.scheduler.sensors import query_returns_rows

PROFILE = "default"  # a profile of io_config.yaml (a DuckDB database)
TABLE = "green_taxi"

TABLE_EXISTS = "select 1 from information_schema.tables where table_name = ?"
# Keep the query cheap: Treadle fetches at most one row, so `select 1` is all it needs.
ROWS_FOR_DAY = f"select 1 from {TABLE} where cast(lpep_pickup_datetime as date) = ?"


@sensor
def sensor_sql(*, execution_date):
    # Querying a table that does not exist is an error that fails the sensor at once, so
    # first wait for the table itself.
    if not query_returns_rows(PROFILE, TABLE_EXISTS, params=[TABLE]):
        return False
    return query_returns_rows(PROFILE, ROWS_FOR_DAY, params=[execution_date.date()])
