"""Load the trips of one day from BigQuery (io_config profile `dev`).

Values go in as query parameters (`@day`), never pasted into the SQL. The profile holds
the service account key (GOOGLE_SERVICE_ACC_KEY_FILEPATH, or the application default
credentials) and GOOGLE_PROJECT_ID. Needs `pip install 'treadle[gcp]'`.
"""

from treadle import data_loader
from treadle.io import BigQuery

QUERY = """
select *
from `my-project.my_dataset.green_taxi`
where date(lpep_pickup_datetime) = @day
"""


@data_loader
def loader_bigquery(*, execution_date, logger):
    with BigQuery.from_profile("dev") as bq:
        df = bq.load(QUERY, params={"day": execution_date.date()})
    logger.info("loaded %d rows", len(df))
    return df
