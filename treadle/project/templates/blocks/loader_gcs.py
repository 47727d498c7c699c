"""Load a Parquet object from Google Cloud Storage (io_config profile `dev`).

The profile holds the credentials (GOOGLE_SERVICE_ACC_KEY_FILEPATH, or the application
default ones) and GOOGLE_PROJECT_ID; `treadle io test dev` checks it. A `.csv` or `.json`
object loads the same way, and so does a dataset written with partition_by (its URL is
the folder's; pass filters=[("lpep_pickup_date", "=", day)] to read one day only).
Needs `pip install 'treadle[gcp]'`.
"""

from treadle import data_loader
from treadle.io import GCS

URL = "gs://my-bucket/green_taxi/green_taxi.parquet"


@data_loader
def loader_gcs(*, logger):
    df = GCS.from_profile("dev").load(URL)
    logger.info("loaded %d rows from %s", len(df), URL)
    return df
