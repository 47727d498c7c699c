"""Start-up stays fast: the command and the run path import nothing heavy until needed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("pandas", "pyarrow", "polars", "sqlalchemy", "alembic", "duckdb", "psycopg", "jinja2")


@pytest.mark.parametrize("module", ["treadle", "treadle.cli", "treadle.scheduler.launch"])
def test_importing_loads_no_heavy_library(module):
    code = (
        f"import json, sys, {module}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
