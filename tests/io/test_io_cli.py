"""`treadle io test PROFILE`: connects and says so, or says exactly why not."""

from __future__ import annotations

import subprocess
import sys

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=120)


def _io_config(project, url_parts: dict[str, str]) -> None:
    dev = "\n".join(f"  {key}: {value!r}" for key, value in url_parts.items())
    project.write(
        "io_config.yaml",
        "version: 0.1.1\ndefault:\n  DUCKDB_DATABASE: .treadle/warehouse.duckdb\n"
        f"dev:\n{dev}\n  POSTGRES_PASSWORD: \"{{{{ env_var('PG_PASSWORD') }}}}\"\n",
    )


def test_the_default_duckdb_profile(project) -> None:
    _io_config(project, {"POSTGRES_HOST": "127.0.0.1"})
    done = treadle("io", "test", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert "ok: profile 'default' connects to DuckDB" in done.stdout


def test_a_postgres_profile(project, pg_databases, monkeypatch) -> None:
    url = pg_databases.create()
    dbname = url.rsplit("/", 1)[1]
    _io_config(
        project,
        {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "5432", "POSTGRES_USER": "postgres",
         "POSTGRES_DBNAME": dbname},
    )  # fmt: skip
    monkeypatch.setenv("PG_PASSWORD", "not-needed-with-trust")
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    assert f"PostgreSQL postgres@127.0.0.1:5432/{dbname}" in done.stdout


def test_an_unreachable_server_is_named_without_the_password(project, monkeypatch) -> None:
    _io_config(
        project,
        {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1", "POSTGRES_USER": "postgres",
         "POSTGRES_DBNAME": "x", "POSTGRES_CONNECT_TIMEOUT": "2"},
    )  # fmt: skip
    monkeypatch.setenv("PG_PASSWORD", "s3cret-pw")
    done = treadle("io", "test", "dev", "--project", str(project.root))
    assert done.returncode == 2
    assert "127.0.0.1:1" in done.stderr and "s3cret-pw" not in done.stderr + done.stdout


def test_an_unknown_profile_lists_the_others(project) -> None:
    _io_config(project, {"POSTGRES_HOST": "127.0.0.1"})
    done = treadle("io", "test", "prod", "--project", str(project.root))
    assert done.returncode == 2 and "default, dev" in done.stderr
