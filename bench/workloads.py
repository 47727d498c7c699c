"""The benchmark workloads, as data, and how each one is laid out on disk.

A workload is a list of blocks (name, type, upstream, the function's parameters and body)
plus, optionally, input data prepared once before anything is timed. From it the harness
writes, into a temporary folder:

* a Treadle project (``treadle.yaml``, ``pipelines/bench/pipeline.yaml``, one block file
  per block) — what ``run_pipeline`` and ``treadle run`` execute;
* ``baseline.py`` — the same block functions imported from the same files and called as
  plain Python, outputs passed along by hand. Run as a script it calls them once and prints
  how long the calls took; ``probe.py`` imports it to time its ``pipeline()`` in-process.

Block bodies find their data through ``__file__`` (``<project>/data/``), so the same file
works under Treadle and under the baseline.

A workload also says which measurements (``measure.py``, by key) it takes: the pipeline
workloads time Treadle against plain Python; ``runs_list`` has no blocks and times reading
a run history of 100,000 runs.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import yaml
from pg import Postgres

PIPELINE = "bench"
FOLDERS = {
    "data_loader": "data_loaders",
    "transformer": "transformers",
    "data_exporter": "data_exporters",
}


@dataclass(frozen=True)
class Block:
    name: str
    type: str  # data_loader | transformer | data_exporter
    upstream: tuple[str, ...] = ()
    params: str = ""
    body: str = "return None"
    imports: str = ""

    @property
    def file(self) -> str:
        return f"{FOLDERS[self.type]}/{self.name}.py"

    def source(self) -> str:
        header = f"from treadle import {self.type}\n{self.imports}"
        return f"{header}\n\n@{self.type}\ndef {self.name}({self.params}):\n    {self.body}\n"


@dataclass(frozen=True)
class Target:
    """A goal for one number: ``metric`` of ``measurement`` must be ``op`` ``limit``."""

    label: str
    measurement: str  # a Measurement key (see measure.py)
    #: "median" (seconds) | "ratio" (vs plain Python) | "ms_per_block" (vs plain Python)
    #: | "history_ms_per_block" (the same run with history vs without)
    metric: str
    limit: float
    op: str = "<"  # "<" or "<="

    def passes(self, value: float) -> bool:
        return value < self.limit if self.op == "<" else value <= self.limit


#: What a pipeline workload measures (Measurement keys, in table order; see measure.py).
PIPELINE_MEASUREMENTS = ("python", "python_calls", "inline", "process", "cli", "cli_process")
#: The same plus ``treadle.run_pipeline`` (inline), which records the run history.
HISTORY_MEASUREMENTS = (
    "python",
    "python_calls",
    "inline",
    "inline_sqlite",
    "inline_postgres",
    "process",
    "cli",
    "cli_process",
)
RUNS_LIST_MEASUREMENTS = (
    "python_startup",
    "list_runs_sqlite",
    "list_runs_postgres",
    "runs_list_json_sqlite",
    "runs_list_table_sqlite",
    "runs_list_json_postgres",
    "runs_list_table_postgres",
)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    blocks: tuple[Block, ...]
    targets: tuple[Target, ...] = ()
    measurements: tuple[str, ...] = PIPELINE_MEASUREMENTS
    #: Published figures from other tools on other machines, by Measurement key.
    references: dict[str, str] = field(default_factory=dict)
    #: Writes input data (untimed, before anything is measured): (workspace, rows).
    prepare: Callable[[Workspace, int], None] | None = None
    #: Size of the prepared data: input rows (rows2m), runs in the history (runs_list).
    rows: int | None = None
    quick_rows: int | None = None

    @property
    def project_name(self) -> str:
        """The project's folder and ``name:``, which is also its name in the run history."""
        return f"bench_{self.name}"


# -- the blocks ----------------------------------------------------------------------------


def identity(name: str, type_: str, upstream: tuple[str, ...]) -> Block:
    return Block(name, type_, upstream, params="value", body="return value")


def chain(length: int) -> tuple[Block, ...]:
    """A loader returning 1, then ``length - 1`` transformers each returning its input."""
    names = ["load"] + [f"step_{i:02d}" for i in range(1, length)]
    loader = Block(names[0], "data_loader", body="return 1")
    steps = [identity(name, "transformer", (up,)) for up, name in pairwise(names)]
    return (loader, *steps)


def fanout(width: int) -> tuple[Block, ...]:
    """A loader, ``width`` independent transformers on it, one exporter taking them all."""
    branches = tuple(identity(f"branch_{i:02d}", "transformer", ("load",)) for i in range(width))
    loader = Block("load", "data_loader", body="return 1")
    sink = Block("sink", "data_exporter", tuple(b.name for b in branches), "*args", "return None")
    return (loader, *branches, sink)


DATA_IMPORTS = (
    "from pathlib import Path\n\n"
    "import pandas as pd\n\n"
    "DATA = Path(__file__).resolve().parents[1] / 'data'\n"
)
ORDERS_INPUT = "orders.parquet"
ORDERS_OUTPUT = "orders_even_ids.parquet"

ROWS_BLOCKS = (
    Block(
        "read_orders",
        "data_loader",
        body=f"return pd.read_parquet(DATA / {ORDERS_INPUT!r})",
        imports=DATA_IMPORTS,
    ),
    Block(
        "keep_even_ids",
        "transformer",
        ("read_orders",),
        params="orders",
        body="return orders[orders['id'] % 2 == 0]",
    ),
    Block(
        "write_orders",
        "data_exporter",
        ("keep_even_ids",),
        params="orders",
        body=f"orders.to_parquet(DATA / {ORDERS_OUTPUT!r})",
        imports=DATA_IMPORTS,
    ),
)


def make_orders_file(space: Workspace, rows: int) -> None:
    """``rows`` × 10 columns of order-like data: ints, floats, a timestamp, text, a bool."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(20261124)
    categories = np.array(["books", "games", "garden", "grocery", "music", "toys", "tools"])
    start = np.datetime64("2025-01-01T00:00:00", "us")
    table = pa.table(
        {
            "id": np.arange(rows, dtype=np.int64),
            "customer_id": rng.integers(1, 50_000, rows, dtype=np.int64),
            "amount": rng.gamma(2.0, 40.0, rows).round(2),
            "tax": rng.uniform(0, 20, rows).round(2),
            "discount": rng.uniform(0, 0.3, rows),
            "quantity": rng.integers(1, 10, rows, dtype=np.int32),
            "score": rng.random(rows, dtype=np.float32),
            "created_at": start + rng.integers(0, 365 * 86_400 * 10**6, rows).astype("m8[us]"),
            "category": pa.array(categories[rng.integers(0, len(categories), rows)]),
            "is_member": rng.random(rows) < 0.35,
        }
    )
    data_dir = space.project / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, data_dir / ORDERS_INPUT)


# -- a long run history --------------------------------------------------------------------

HISTORY_PIPELINES = ("etl", "report", "backfill_taxi", "export")
HISTORY_STATUSES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled")
HISTORY_TRIGGERS = ("schedule", "schedule", "cli", "api")
#: Like the store's own scale test (tests/store/test_store_scale.py): the run rows that
#: ``runs list`` reads, with JSON columns the size a 20-block project's runs have.
INSERT_RUN = """
INSERT INTO pipeline_runs (id, project, pipeline, status, execution_date, interval_start,
                           interval_end, variables, "trigger", executor, host, pid,
                           pipeline_hash, file_hashes, created_at, started_at, finished_at,
                           heartbeat_at, reason)
VALUES (:id, :project, :pipeline, :status, :created_at, :created_at, :created_at,
        :variables, :trigger, 'inline', 'bench-host', 4242, :pipeline_hash, :file_hashes,
        :created_at, :created_at, :finished_at, :finished_at, :reason)
"""


def fill_history(space: Workspace, runs: int) -> None:
    """``runs`` finished runs, one a minute up to now, in the project's SQLite history and,
    when PostgreSQL is reachable, in the harness's PostgreSQL database (same project)."""
    from treadle.store import open_store

    file_hashes = json.dumps({f"transformers/step_{i:02d}.py": f"{i:064x}" for i in range(20)})
    variables = json.dumps({"region": "eu-west", "full_refresh": False})
    now = time.time()
    urls = [None] if space.postgres.url is None else [None, space.postgres.url]
    for url in urls:
        with open_store(space.project, url, project=space.workload.project_name) as store:
            ts = store.db.ts
            rows = []
            for i in range(runs):
                at = now - (runs - i) * 60.0
                status = HISTORY_STATUSES[i % len(HISTORY_STATUSES)]
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(at))
                rows.append(
                    {
                        "id": f"{stamp}{i % 1000:03d}-{i:06x}",
                        "project": store.project,
                        "pipeline": HISTORY_PIPELINES[i % len(HISTORY_PIPELINES)],
                        "status": status,
                        "variables": variables,
                        "trigger": HISTORY_TRIGGERS[i % len(HISTORY_TRIGGERS)],
                        "pipeline_hash": f"{i % 7:064x}",
                        "file_hashes": file_hashes,
                        "created_at": ts(at),
                        "finished_at": ts(at + 30.0),
                        "reason": "block step_07 failed" if status == "failed" else "",
                    }
                )
            store.db.executemany(INSERT_RUN, rows)


# -- targets and published reference figures -----------------------------------------------

INLINE_MS_PER_BLOCK = Target("inline orchestration < 0.5 ms/block", "inline", "ms_per_block", 0.5)
HISTORY_MS_PER_BLOCK = Target(
    "recording the run history on SQLite < 1 ms/block",
    "inline_sqlite",
    "history_ms_per_block",
    1.0,
)
RUNS_LIST_TARGET = "`treadle runs list` answers < 50 ms with 100,000 runs"
PER_TASK_REFERENCE = "Luigi 1.0, Prefect 5.4, Dagster 5.6, Airflow 95 ms/task"

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        name="chain20",
        description="a chain of 20 no-op blocks: a loader returning 1, 19 transformers returning their input",
        blocks=chain(20),
        measurements=HISTORY_MEASUREMENTS,
        targets=(
            INLINE_MS_PER_BLOCK,
            HISTORY_MS_PER_BLOCK,
            Target("`treadle run` (history on) whole process < 0.3 s", "cli", "median", 0.3),
        ),
        references={
            "inline": PER_TASK_REFERENCE,
            "cli": "Luigi 0.23, Dagster 2.0, Mage 3.7, Prefect 10.5, Airflow 12.2 s",
        },
    ),
    Workload(
        name="fanout50",
        description="1 loader -> 50 independent no-op transformers -> 1 exporter taking all 50 (*args)",
        blocks=fanout(50),
        measurements=HISTORY_MEASUREMENTS,
        targets=(INLINE_MS_PER_BLOCK, HISTORY_MS_PER_BLOCK),
        references={"inline": PER_TASK_REFERENCE},
    ),
    Workload(
        name="rows2m",
        description="read a 10-column Parquet file into pandas, keep the rows with even ids, write Parquet",
        blocks=ROWS_BLOCKS,
        targets=(
            Target(
                "inline run in-process within 1.25x of plain Python", "inline", "ratio", 1.25, "<="
            ),
            Target(
                "`treadle run` whole process within 1.25x of plain Python",
                "cli",
                "ratio",
                1.25,
                "<=",
            ),
        ),
        references={"inline": "Dagster 1.9x, Luigi 2.1x, Prefect 6.4x, Airflow 8.6x"},
        prepare=make_orders_file,
        rows=2_000_000,
        quick_rows=200_000,
    ),
    Workload(
        name="runs_list",
        description="list the 20 newest runs of a project whose run history holds 100,000 runs",
        blocks=(),
        measurements=RUNS_LIST_MEASUREMENTS,
        targets=(
            Target(
                RUNS_LIST_TARGET + " (SQLite, query in-process)", "list_runs_sqlite", "median", 0.05
            ),
            Target(
                RUNS_LIST_TARGET + " (PostgreSQL, query in-process)",
                "list_runs_postgres",
                "median",
                0.05,
            ),
        ),
        prepare=fill_history,
        rows=100_000,
        quick_rows=100_000,
    ),
)


# -- writing a workload to disk ------------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    """Where one workload's generated project and baseline script live."""

    root: Path
    workload: Workload
    #: The harness's PostgreSQL database (or why there is none).
    postgres: Postgres = Postgres(None, "not set up")

    @property
    def project(self) -> Path:
        return self.root / self.workload.project_name

    @property
    def baseline(self) -> Path:
        return self.root / "baseline.py"

    @property
    def pycache(self) -> Path:
        """Python's bytecode cache for the measured commands (``PYTHONPYCACHEPREFIX``)."""
        return self.root / "pycache"

    def clear_outputs(self) -> None:
        clear_outputs(self.project)


def clear_outputs(project: Path) -> None:
    """Forget earlier runs' stored outputs so every timed run starts from the same state."""
    shutil.rmtree(project / ".treadle" / "outputs", ignore_errors=True)


def create_workspace(
    root: Path, workload: Workload, rows: int | None, postgres: Postgres
) -> Workspace:
    """Write the project, the baseline script and the input data for ``workload``."""
    space = Workspace(root, workload, postgres)
    write_project(space.project, workload)
    space.baseline.write_text(baseline_script(space.project, workload), encoding="utf-8")
    if workload.prepare is not None and rows is not None:
        workload.prepare(space, rows)
    return space


def write_project(project: Path, workload: Workload) -> None:
    project.mkdir(parents=True)
    (project / "treadle.yaml").write_text(f"name: {workload.project_name}\n", encoding="utf-8")
    if not workload.blocks:
        return
    (project / "pipelines" / PIPELINE).mkdir(parents=True)
    entries = "".join(f"  - {block_entry(b)}\n" for b in workload.blocks)
    text = f"name: {PIPELINE}\nblocks:\n{entries}"
    (project / "pipelines" / PIPELINE / "pipeline.yaml").write_text(text, encoding="utf-8")
    for block in workload.blocks:
        path = project / block.file
        path.parent.mkdir(exist_ok=True)
        path.write_text(block.source(), encoding="utf-8")


def block_entry(block: Block) -> str:
    """One flow-style YAML line: ``{name: b, type: transformer, upstream: [a]}``."""
    entry: dict[str, object] = {"name": block.name, "type": block.type}
    if block.upstream:
        entry["upstream"] = list(block.upstream)
    return yaml.safe_dump(entry, sort_keys=False, default_flow_style=True, width=10**6).strip()


BASELINE_TEMPLATE = '''\
"""Plain-Python baseline for {name}: the block functions, called directly and in order."""

import importlib.util
import json
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # keep the project folder as Treadle sees it
PROJECT = Path({project!r})


def _function(relative_path, name):
    spec = importlib.util.spec_from_file_location(f"baseline_{{name}}", PROJECT / relative_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


{functions}


def pipeline():
{calls}
    return locals()  # every output outlives the timed call, as in a Treadle RunResult


if __name__ == "__main__":
    start = time.perf_counter()
    pipeline()
    print(json.dumps({{"calls": time.perf_counter() - start}}))
'''


def baseline_script(project: Path, workload: Workload) -> str:
    functions = "\n".join(f"{b.name} = _function({b.file!r}, {b.name!r})" for b in workload.blocks)
    calls = "\n".join(
        f"    out_{b.name} = {b.name}({', '.join(f'out_{u}' for u in b.upstream)})"
        for b in workload.blocks
    )
    return BASELINE_TEMPLATE.format(
        name=workload.name, project=str(project), functions=functions, calls=calls
    )
