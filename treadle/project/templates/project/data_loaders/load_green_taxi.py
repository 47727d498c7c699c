"""Load one month of NYC green-taxi trips with explicit types and parsed dates."""

from treadle import data_loader, test
from treadle.io import Files
from treadle.samples import DATE_COLUMNS, PANDAS_DTYPES


@data_loader
def load_green_taxi(*, month, logger):
    path = f"data/green_tripdata_{month}.csv.gz"
    df = Files().load(path, dtype=PANDAS_DTYPES["green"], parse_dates=DATE_COLUMNS["green"])
    logger.info("loaded %d trips from %s", len(df), path)
    return df


@test
def has_trips(output):
    assert len(output) > 0, "the file has no trips"
