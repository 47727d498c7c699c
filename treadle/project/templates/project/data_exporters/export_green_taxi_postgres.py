"""Write the clean trips to PostgreSQL when io_config.yaml has a `dev` profile.

Uncomment the `dev` profile in io_config.yaml and set its values (in .env) to use it, and
install the driver: pip install 'treadle[postgres]'. Until then this block says it
skipped. Loading the same month again replaces the table at once: readers never see it
missing or half-loaded.
"""

from treadle import data_exporter
from treadle.errors import UnknownName
from treadle.io.base import read_profile


@data_exporter
def export_green_taxi_postgres(df, *, logger):
    try:
        read_profile("dev")
    except UnknownName:
        logger.info("skipped: io_config.yaml has no `dev` profile (PostgreSQL) yet")
        return None
    from treadle.io import Postgres  # needs psycopg: only when the profile is there

    with Postgres.from_profile("dev") as database:
        database.export(df, "green_taxi", if_exists="replace")
        logger.info("exported %d rows to PostgreSQL table green_taxi (%s)", len(df), database.where)
    return None
