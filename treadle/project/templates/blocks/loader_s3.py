"""Load a Parquet object from Amazon S3 or an S3-compatible store (io_config profile `dev`).

The profile holds AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION (or nothing, to
use boto's usual credentials), and AWS_ENDPOINT for MinIO and the like; `treadle io test
dev` checks it. A `.csv` or `.json` object loads the same way, and so does a dataset
written with partition_by (its URL is the folder's). Needs `pip install 'treadle[aws]'`.
"""

from treadle import data_loader
from treadle.io import S3

URL = "s3://my-bucket/green_taxi/green_taxi.parquet"


@data_loader
def loader_s3(*, logger):
    df = S3.from_profile("dev").load(URL)
    logger.info("loaded %d rows from %s", len(df), URL)
    return df
