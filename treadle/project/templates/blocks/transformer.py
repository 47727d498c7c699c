"""Transform the upstream output: keep the real trips, add a date, lower-case the column names."""

from treadle import test, transformer


@transformer
def transform(df, *, logger):
    df = df[df["passenger_count"].fillna(0).gt(0) & df["trip_distance"].gt(0)].copy()
    df["lpep_pickup_date"] = df["lpep_pickup_datetime"].dt.date
    df.columns = [c.lower() for c in df.columns]
    logger.info("kept %d rows", len(df))
    return df


@test
def no_empty_trips(output):
    assert output["passenger_count"].gt(0).all()
