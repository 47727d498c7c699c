"""The GCS and S3 block templates, run for real: each is added with `add_block` to a
project made by `treadle init`, its bucket filled in, and run by the engine against the
emulators of tests/io/conftest.py. A template calling a wrong API fails here."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.io.conftest import emulator_profile
from treadle.engine.api import run_pipeline
from treadle.project.block_templates import add_block
from treadle.project.scaffold import init_project

#: Per scheme: the loader template, and each exporter template with the key it writes.
TEMPLATES = {
    "gs": (
        "loader_gcs",
        {
            "exporter_gcs": "green_taxi/green_taxi.parquet",
            "exporter_gcs_partitioned": "lake/green_taxi",
        },
    ),
    "s3": ("loader_s3", {"exporter_s3": "green_taxi/green_taxi.parquet"}),
}
TEMPLATE_BUCKET = "my-bucket"  # what the templates say, replaced by the test's bucket

CLOUD_PIPELINE = """\
name: cloud
variables:
  month: "2020-10"
blocks:
  - name: load_green_taxi
    type: data_loader
  - name: clean_green_taxi
    type: transformer
    upstream: [load_green_taxi]
"""


@pytest.fixture
def demo(tmp_path, bucket):
    """A new project with a `cloud` pipeline (the example's loader and cleaner) and a
    `dev` profile reaching ``bucket``'s emulator."""
    root = init_project(tmp_path / "demo", sample_rows=200)
    (root / "pipelines/cloud").mkdir()
    (root / "pipelines/cloud/pipeline.yaml").write_text(CLOUD_PIPELINE, encoding="utf-8")
    dev = "".join(f"  {key}: {value!r}\n" for key, value in emulator_profile(bucket).items())
    with (root / "io_config.yaml").open("a", encoding="utf-8") as file:
        file.write(f"dev:\n{dev}")
    return root


def add_template_block(root, name: str, template: str, upstream: list[str], bucket) -> None:
    """``add_block``, then the template's bucket replaced by ``bucket``'s."""
    file = add_block(root, "cloud", name, template, upstream)
    source = file.read_text(encoding="utf-8")
    assert TEMPLATE_BUCKET in source, f"{template} names no bucket to fill in"
    file.write_text(source.replace(TEMPLATE_BUCKET, bucket.name), encoding="utf-8")


def run(root, block: str | None = None):
    result = run_pipeline(
        root, "cloud", block=block, executor="inline", execution_date=dt.datetime(2020, 10, 31)
    )
    failures = {name: r.error for name, r in result.blocks.items() if r.error}
    assert result.ok, failures or result.problem
    return result


def same_rows(df: pd.DataFrame, expected: pd.DataFrame) -> None:
    order = ["lpep_pickup_datetime", "vendor_id"]
    pd.testing.assert_frame_equal(
        df.sort_values(order).reset_index(drop=True)[list(expected.columns)],
        expected.sort_values(order).reset_index(drop=True),
        check_dtype=False,
    )


def test_exporters_write_what_the_loader_reads_back(demo, bucket) -> None:
    loader, exporters = TEMPLATES[bucket.store.scheme]
    for template in exporters:
        add_template_block(demo, f"to_{template}", template, ["clean_green_taxi"], bucket)
    cleaned = run(demo).output("clean_green_taxi")

    objects = bucket.objects()
    for key in exporters.values():
        assert key in objects or f"{key}/_common_metadata" in objects
        same_rows(bucket.store.load(bucket.url(key)), cleaned)
    if "lake/green_taxi" in exporters.values():
        partitions = {o.split("/")[2] for o in objects if o.startswith("lake/green_taxi/lpep")}
        assert partitions == {f"lpep_pickup_date={day}" for day in cleaned["lpep_pickup_date"]}

    add_template_block(demo, "from_bucket", loader, [], bucket)
    same_rows(run(demo, block="from_bucket").output("from_bucket"), cleaned)
