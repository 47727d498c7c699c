"""Block templates (``treadle new block``, and the web UI later): a starting file for each
common block, added to a pipeline in one step.

``TEMPLATES`` is the whole list. ``add_block`` copies a template into the block type's
folder under the block's name (renaming its function), and appends the block to
``pipeline.yaml`` keeping the file's comments; if the project would not load afterwards,
both files are put back as they were.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from treadle.errors import ProjectInvalid, UserInputError, unknown_name_error
from treadle.project.model import BlockType


@dataclass(frozen=True)
class BlockTemplate:
    file: str  # in treadle/project/templates/blocks/
    type: BlockType
    description: str

    @property
    def suffix(self) -> str:
        return Path(self.file).suffix


TEMPLATES: dict[str, BlockTemplate] = {
    "loader_csv_url": BlockTemplate(
        "loader_csv_url.py", BlockType.DATA_LOADER, "CSV from a URL or a project file, typed"
    ),
    "loader_postgres": BlockTemplate(
        "loader_postgres.py", BlockType.DATA_LOADER, "a query on PostgreSQL"
    ),
    "loader_duckdb": BlockTemplate("loader_duckdb.py", BlockType.DATA_LOADER, "a DuckDB query"),
    "loader_gcs": BlockTemplate(
        "loader_gcs.py", BlockType.DATA_LOADER, "a Parquet, CSV or JSON object from GCS"
    ),
    "loader_s3": BlockTemplate(
        "loader_s3.py", BlockType.DATA_LOADER, "a Parquet, CSV or JSON object from S3"
    ),
    "loader_bigquery": BlockTemplate(
        "loader_bigquery.py", BlockType.DATA_LOADER, "a BigQuery query with parameters"
    ),
    "transformer": BlockTemplate("transformer.py", BlockType.TRANSFORMER, "pandas, with a test"),
    "transformer_sql": BlockTemplate(
        "transformer_sql.sql", BlockType.TRANSFORMER, "SQL on the upstream output (DuckDB)"
    ),
    "exporter_postgres": BlockTemplate(
        "exporter_postgres.py", BlockType.DATA_EXPORTER, "to PostgreSQL through COPY"
    ),
    "exporter_duckdb": BlockTemplate(
        "exporter_duckdb.py", BlockType.DATA_EXPORTER, "to the DuckDB warehouse"
    ),
    "exporter_lake": BlockTemplate(
        "exporter_lake.py", BlockType.DATA_EXPORTER, "Parquet partitioned by date"
    ),
    "exporter_gcs": BlockTemplate(
        "exporter_gcs.py", BlockType.DATA_EXPORTER, "one Parquet object to GCS"
    ),
    "exporter_gcs_partitioned": BlockTemplate(
        "exporter_gcs_partitioned.py", BlockType.DATA_EXPORTER, "Parquet on GCS partitioned by date"
    ),
    "exporter_s3": BlockTemplate(
        "exporter_s3.py", BlockType.DATA_EXPORTER, "one Parquet object to S3"
    ),
    "exporter_bigquery": BlockTemplate(
        "exporter_bigquery.py", BlockType.DATA_EXPORTER, "to a BigQuery table (load job)"
    ),
    "sensor_file": BlockTemplate("sensor_file.py", BlockType.SENSOR, "wait for a file"),
    "sensor_sql": BlockTemplate("sensor_sql.py", BlockType.SENSOR, "wait for a query's rows"),
    "sensor_pipeline": BlockTemplate(
        "sensor_pipeline.py", BlockType.SENSOR, "wait for another pipeline's run"
    ),
}

_DECORATED_DEF = re.compile(r"(@\w+(?:\([^)]*\))?\s*\ndef )(\w+)(\()")


#: Written in a template where the new block's name goes (an exporter's table, a folder),
#: so a new block never writes over what another block wrote.
BLOCK_NAME = "__block_name__"


def template_source(template: BlockTemplate, name: str) -> str:
    """The template's text, its (first decorated) function renamed to ``name`` and
    ``BLOCK_NAME`` replaced by ``name``."""
    text = resources.files("treadle.project").joinpath("templates/blocks", template.file)
    source = text.read_text(encoding="utf-8").replace(BLOCK_NAME, name)
    if template.suffix == ".sql":
        return source
    return _DECORATED_DEF.sub(lambda m: f"{m[1]}{name}{m[3]}", source, count=1)


def add_block(
    root: Path, pipeline: str, name: str, template_name: str, upstream: list[str]
) -> Path:
    """Write the block file and list the block in ``pipeline.yaml``; return the file."""
    from treadle.project.loader import NAME_PATTERN, PIPELINE_FILE, load_project
    from treadle.project.yaml_source import parse_yaml

    template = TEMPLATES.get(template_name)
    if template is None:
        raise unknown_name_error("block template", template_name, list(TEMPLATES))
    if not NAME_PATTERN.match(name):
        raise UserInputError(f"{name!r} is not a valid block name", hint="use letters, digits, _")
    pipeline_file = root / "pipelines" / pipeline / PIPELINE_FILE
    if not pipeline_file.is_file():
        project = load_project(root)
        project.pipeline(pipeline)  # names it, with "did you mean"
    before = pipeline_file.read_text(encoding="utf-8")
    parse_yaml(before, f"pipelines/{pipeline}/{PIPELINE_FILE}")  # malformed: said with its line
    after = _with_block(before, pipeline, name, template.type, upstream)  # refuses a taken name
    block_file = root / template.type.folder / f"{name}{template.suffix}"
    if block_file.exists():
        raise UserInputError(
            f"{block_file.relative_to(root)} already exists",
            hint="choose another name, or list that block in pipeline.yaml yourself",
        )
    block_file.parent.mkdir(parents=True, exist_ok=True)
    block_file.write_text(template_source(template, name), encoding="utf-8")
    try:
        pipeline_file.write_text(after, "utf-8")
        load_project(root)
    except (ProjectInvalid, UserInputError):
        pipeline_file.write_text(before, encoding="utf-8")
        block_file.unlink(missing_ok=True)
        raise
    return block_file


def _with_block(
    text: str, pipeline: str, name: str, block_type: BlockType, upstream: list[str]
) -> str:
    """``pipeline.yaml`` with the block appended to ``blocks:`` (comments kept); refused
    when the pipeline already has a block of that name."""
    import io

    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    editor = YAML()
    editor.preserve_quotes = True
    editor.width = 4096
    editor.indent(mapping=2, sequence=4, offset=2)
    data = editor.load(text) or CommentedMap()
    blocks = data.get("blocks")
    if blocks is None:
        blocks = data["blocks"] = CommentedSeq()
    if any(isinstance(b, dict) and b.get("name") == name for b in blocks):
        raise UserInputError(
            f"pipeline {pipeline!r} already has a block {name!r}", hint="choose another name"
        )
    entry = CommentedMap(name=name, type=block_type.value)
    if upstream:
        entry["upstream"] = upstream
    blocks.append(entry)
    out = io.StringIO()
    editor.dump(data, out)
    return out.getvalue()
