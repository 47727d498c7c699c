"""Export to PostgreSQL (io_config profile `dev`) through COPY.

`replace` swaps the new table in at once; `upsert` (with `unique_key`) makes reloading the
same data idempotent; `append` adds rows; `fail` refuses when the table exists.
"""

from treadle import data_exporter
from treadle.io import Postgres

TABLE = "__block_name__"  # the table to write (named after the block to begin with)


@data_exporter
def exporter_postgres(df, *, logger):
    with Postgres.from_profile("dev") as db:
        db.export(df, TABLE, schema="public", if_exists="replace")
    logger.info("exported %d rows to public.%s", len(df), TABLE)
