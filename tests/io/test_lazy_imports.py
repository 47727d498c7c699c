from __future__ import annotations

import json
import subprocess
import sys

import pytest

import treadle.io


def test_importing_treadle_io_loads_no_data_library():
    code = (
        "import json, sys, treadle.io; "
        "print(json.dumps([m for m in ('duckdb', 'pyarrow', 'pandas', 'polars') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_names_resolve_to_their_connectors():
    from treadle.io import DuckDB, Files
    from treadle.io.base import Connector

    assert issubclass(DuckDB, Connector) and issubclass(Files, Connector)
    assert DuckDB.__module__ == "treadle.io.duckdb"
    assert set(treadle.io.__all__) == set(treadle.io.CONNECTORS) <= set(dir(treadle.io))


def test_unknown_name_lists_the_connectors():
    with pytest.raises(AttributeError, match="DuckDB, Files, GCS, Postgres, S3"):
        treadle.io.Nonesuch  # noqa: B018
