"""Export to a data lake folder as Parquet, partitioned by date (Hive style).

`data/lake/<block>/lpep_pickup_date=2020-10-01/part-….parquet`; written in a temporary
folder and swapped in, so readers never see half a dataset. A bucket URL works the same
way once its connector is installed.
"""

from treadle import data_exporter
from treadle.io import Files

FOLDER = "data/lake/__block_name__"  # in the project (named after the block to begin with)


@data_exporter
def exporter_lake(df, *, logger):
    Files().export(df, FOLDER, partition_by=["lpep_pickup_date"])
    logger.info("exported %d rows to %s", len(df), FOLDER)
