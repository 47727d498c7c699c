"""Drop trips without passengers or distance, add the pickup date, use snake_case names."""

import re

from treadle import test, transformer


def to_snake_case(name):
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


@transformer
def clean_green_taxi(df, *, logger):
    keep = df["passenger_count"].fillna(0).gt(0) & df["trip_distance"].gt(0)
    logger.info("dropping %d trips with zero passengers or zero distance", (~keep).sum())
    df = df[keep].copy()
    df["lpep_pickup_date"] = df["lpep_pickup_datetime"].dt.date
    df.columns = [to_snake_case(column) for column in df.columns]
    return df


@test
def columns_are_snake_case(output):
    assert "vendor_id" in output.columns, "VendorID was not renamed to vendor_id"
    assert all(column == to_snake_case(column) for column in output.columns)


@test
def no_empty_trips(output):
    assert output["passenger_count"].gt(0).all(), "trips with zero passengers remain"
    assert output["trip_distance"].gt(0).all(), "trips with zero distance remain"
