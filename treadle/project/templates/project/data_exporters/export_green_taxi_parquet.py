"""Write the clean trips to a Parquet data lake, one folder per pickup date."""

from treadle import data_exporter
from treadle.io import Files


@data_exporter
def export_green_taxi_parquet(df, *, logger):
    Files().export(df, "data/lake/green_taxi", partition_by=["lpep_pickup_date"])
    logger.info("exported %d rows to data/lake/green_taxi", len(df))
