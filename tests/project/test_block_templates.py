"""`treadle new block`: every template becomes a block that loads, and the runnable ones run."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources

import pytest

from treadle.errors import UserInputError
from treadle.project import load_project
from treadle.project.block_templates import TEMPLATES, add_block

TREADLE = [sys.executable, "-m", "treadle.cli"]


@pytest.fixture
def demo(tmp_path):
    root = tmp_path / "demo"
    done = subprocess.run([*TREADLE, "init", str(root)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return root


def upstream_of(template: str) -> list[str]:
    """Loaders and sensors start a pipeline; the others follow the example's cleaner."""
    starts = TEMPLATES[template].type.value in ("data_loader", "sensor")
    return [] if starts else ["clean_green_taxi"]


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_makes_a_block_the_project_accepts(demo, template) -> None:
    file = add_block(demo, "example_pipeline", f"my_{template}", template, upstream_of(template))
    assert file.is_file() and file.stem == f"my_{template}"
    pipeline = load_project(demo).pipeline("example_pipeline")
    assert pipeline.block(f"my_{template}").type is TEMPLATES[template].type
    if file.suffix == ".py":
        assert f"def my_{template}(" in file.read_text()


def test_every_template_file_is_registered() -> None:
    folder = resources.files("treadle.project").joinpath("templates/blocks")
    files = {entry.name for entry in folder.iterdir() if entry.name.endswith((".py", ".sql"))}
    assert files == {template.file for template in TEMPLATES.values()}


def test_all_templates_together_validate(demo) -> None:
    before = len(load_project(demo).pipeline("example_pipeline").blocks)
    for template in TEMPLATES:
        add_block(demo, "example_pipeline", f"my_{template}", template, upstream_of(template))
    done = subprocess.run([*TREADLE, "validate", str(demo)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{before + len(TEMPLATES)} blocks" in done.stdout


def test_templates_run_end_to_end(demo) -> None:
    add_block(demo, "example_pipeline", "daily", "transformer_sql", ["clean_green_taxi"])
    add_block(demo, "example_pipeline", "warehouse", "exporter_duckdb", ["daily"])
    add_block(demo, "example_pipeline", "tidy", "transformer", ["load_green_taxi"])
    done = subprocess.run(
        [*TREADLE, "run", str(demo), "example_pipeline", "--execution-date", "2020-10-31"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_new_exporter_writes_where_its_name_says_not_over_the_example(demo) -> None:
    import duckdb

    add_block(demo, "example_pipeline", "my_copy", "exporter_duckdb", ["clean_green_taxi"])
    add_block(demo, "example_pipeline", "my_lake", "exporter_lake", ["clean_green_taxi"])
    assert 'TABLE = "my_copy"' in (demo / "data_exporters/my_copy.py").read_text()
    done = subprocess.run(
        [*TREADLE, "run", str(demo), "example_pipeline"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with duckdb.connect(str(demo / ".treadle/warehouse.duckdb"), read_only=True) as db:
        tables = {row[0] for row in db.execute("SHOW TABLES").fetchall()}
    assert {"green_taxi", "my_copy"} <= tables
    assert (demo / "data/lake/my_lake").is_dir() and (demo / "data/lake/green_taxi").is_dir()


def test_the_csv_loader_reads_a_project_path_from_any_working_folder(demo, tmp_path) -> None:
    file = add_block(demo, "example_pipeline", "from_sample", "loader_csv_url", [])
    text = file.read_text()
    file.write_text(text.replace(
        'SOURCE = "https://', 'SOURCE = "data/green_tripdata_{month}.csv.gz"  # "https://'
    ))  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run(
        [*TREADLE, "run", str(demo), "example_pipeline", "--block", "from_sample"],
        capture_output=True, text=True, timeout=300, cwd=elsewhere,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_block_changes_nothing(demo) -> None:
    pipeline_file = demo / "pipelines/example_pipeline/pipeline.yaml"
    before = pipeline_file.read_text()
    with pytest.raises(UserInputError):
        add_block(demo, "example_pipeline", "orphan", "transformer", ["nope"])
    assert pipeline_file.read_text() == before
    assert not (demo / "transformers/orphan.py").exists()
    with pytest.raises(UserInputError, match="already has a block 'clean_green_taxi'"):
        add_block(demo, "example_pipeline", "clean_green_taxi", "transformer", [])
    (demo / "transformers/unlisted.py").write_text("# someone's file\n")
    with pytest.raises(UserInputError, match="transformers/unlisted.py already exists"):
        add_block(demo, "example_pipeline", "unlisted", "transformer", [])
    assert (demo / "transformers/unlisted.py").read_text() == "# someone's file\n"
    with pytest.raises(UserInputError, match="unknown block template"):
        add_block(demo, "example_pipeline", "x", "transformr", [])
    assert pipeline_file.read_text() == before


def test_a_malformed_pipeline_yaml_is_named_with_its_line_and_nothing_is_written(demo) -> None:
    pipeline_file = demo / "pipelines/example_pipeline/pipeline.yaml"
    pipeline_file.write_text("blocks: [ {name: x\n")
    with pytest.raises(UserInputError, match="pipeline.yaml") as raised:
        add_block(demo, "example_pipeline", "fresh", "transformer", [])
    assert raised.value.line is not None
    assert not (demo / "transformers/fresh.py").exists()
    assert pipeline_file.read_text() == "blocks: [ {name: x\n"


def test_comments_in_pipeline_yaml_are_kept(demo) -> None:
    pipeline_file = demo / "pipelines/example_pipeline/pipeline.yaml"
    pipeline_file.write_text("# my pipeline\n" + pipeline_file.read_text())
    add_block(demo, "example_pipeline", "tidy", "transformer", ["load_green_taxi"])
    assert pipeline_file.read_text().startswith("# my pipeline\n")
