"""Load the rows of one day from PostgreSQL (io_config profile `dev`)."""

from treadle import data_loader
from treadle.io import Postgres


@data_loader
def loader_postgres(*, execution_date, logger):
    with Postgres.from_profile("dev") as db:
        df = db.load(
            "select * from green_taxi where lpep_pickup_datetime::date = %s",
            [execution_date.date()],
        )
    logger.info("loaded %d rows", len(df))
    return df
