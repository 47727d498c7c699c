"""Export to Amazon S3 or an S3-compatible store as one Parquet object (profile `dev`).

The object is uploaded whole, so readers see the old one or the new one, never half of
it. Pass `partition_by=["lpep_pickup_date"]` and a folder URL to write a Hive-partitioned
dataset instead; `if_exists="append"` adds rows, `"fail"` refuses to overwrite. The
bucket must exist. Needs `pip install 'treadle[aws]'`.
"""

from treadle import data_exporter
from treadle.io import S3

URL = "s3://my-bucket/green_taxi/green_taxi.parquet"


@data_exporter
def exporter_s3(df, *, logger):
    S3.from_profile("dev").export(df, URL, if_exists="replace")
    logger.info("exported %d rows to %s", len(df), URL)
