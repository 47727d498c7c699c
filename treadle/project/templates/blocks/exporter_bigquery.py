"""Export to a BigQuery table (io_config profile `dev`).

The profile holds the service account key (GOOGLE_SERVICE_ACC_KEY_FILEPATH, or the
application default credentials) and GOOGLE_PROJECT_ID; `treadle io test dev --connector BigQuery` checks it.
`replace` swaps the table's rows for the new ones, `append` adds to them, `fail` refuses
when the table exists. Needs `pip install 'treadle[gcp]'`.
"""

from treadle import data_exporter
from treadle.io import BigQuery

TABLE = "my-project.my_dataset.green_taxi"


@data_exporter
def exporter_bigquery(df, *, logger):
    with BigQuery.from_profile("dev") as bq:
        bq.export(df, TABLE, if_exists="replace")
    logger.info("exported %d rows to %s", len(df), TABLE)
