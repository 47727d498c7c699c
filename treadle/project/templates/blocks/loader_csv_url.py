"""Load a CSV file from a URL or from a path in the project, with explicit types and dates.

SOURCE is a URL (``https://…``) or a path relative to the project folder (the sample that
``treadle init`` writes: ``data/green_tripdata_{month}.csv.gz``). Explicit dtypes make the
load fast and the types right (a column of ids with gaps stays an integer, Int64, instead
of becoming a float); parse_dates turns text into datetimes.
"""

import pandas as pd

from treadle import data_loader, test
from treadle.io import Files

SOURCE = "https://github.com/DataTalksClub/nyc-tlc-data/releases/download/green/green_tripdata_{month}.csv.gz"
DTYPES = {
    "VendorID": "Int64",
    "passenger_count": "Int64",
    "trip_distance": "float64",
    "store_and_fwd_flag": "string",
}
DATES = ["lpep_pickup_datetime", "lpep_dropoff_datetime"]


@data_loader
def loader_csv_url(*, month="2020-10", logger):
    source = SOURCE.format(month=month)
    if "://" in source:
        df = pd.read_csv(source, dtype=DTYPES, parse_dates=DATES)
    else:  # a path in the project, wherever Treadle was started from
        df = Files().load(source, dtype=DTYPES, parse_dates=DATES)
    logger.info("loaded %d rows from %s", len(df), source)
    return df


@test
def has_rows(output):
    assert len(output) > 0, "the file has no rows"
