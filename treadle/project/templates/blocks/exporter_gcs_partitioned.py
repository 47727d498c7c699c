"""Export to Google Cloud Storage as Parquet partitioned by date (Hive style).

`gs://my-bucket/lake/green_taxi/lpep_pickup_date=2020-10-01/part-….parquet` (io_config
profile `dev`). The files are uploaded under a hidden prefix first and copied into place
when all are there, so a failed export leaves the old dataset as it was; `replace` then
deletes the old files. Load it back with `GCS.from_profile("dev").load(URL)`.
Needs `pip install 'treadle[gcp]'`.
"""

from treadle import data_exporter
from treadle.io import GCS

URL = "gs://my-bucket/lake/green_taxi"


@data_exporter
def exporter_gcs_partitioned(df, *, logger):
    GCS.from_profile("dev").export(df, URL, partition_by=["lpep_pickup_date"])
    logger.info("exported %d rows to %s", len(df), URL)
