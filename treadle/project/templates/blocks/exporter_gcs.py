"""Export to Google Cloud Storage as one Parquet object (io_config profile `dev`).

The object is uploaded whole, so readers see the old one or the new one, never half of
it. `if_exists="append"` adds the rows to the object instead, `"fail"` refuses to
overwrite it; a `.csv` or `.json` URL writes that format. The bucket must exist.
Needs `pip install 'treadle[gcp]'`.
"""

from treadle import data_exporter
from treadle.io import GCS

URL = "gs://my-bucket/green_taxi/green_taxi.parquet"


@data_exporter
def exporter_gcs(df, *, logger):
    GCS.from_profile("dev").export(df, URL, if_exists="replace")
    logger.info("exported %d rows to %s", len(df), URL)
