"""Shared fixtures: a throw-away project folder you write files into; PostgreSQL databases.

PostgreSQL is the real server at 127.0.0.1:5432 (DESIGN.md "Tests"). A test session makes
its own databases (``treadle_test_<random>_<n>``) and drops them at the end. When the
server cannot be reached those tests skip, saying why, except under ``CI=true``, where
they fail.
"""

from __future__ import annotations

import os
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest


class ProjectFolder:
    """A project under ``tmp_path``; ``write`` puts dedented text at a relative path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.write("treadle.yaml", "name: test_project\n")

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    def pipeline(self, name: str, yaml_text: str) -> Path:
        return self.write(f"pipelines/{name}/pipeline.yaml", yaml_text)

    def block(self, folder: str, name: str, source: str) -> Path:
        return self.write(f"{folder}/{name}.py", source)

    def outputs(self) -> list[Path]:
        root = self.root / ".treadle" / "outputs"
        return sorted(root.iterdir()) if root.exists() else []


@pytest.fixture
def project(tmp_path: Path) -> ProjectFolder:
    return ProjectFolder(tmp_path / "project")


PG_SERVER = os.environ.get("TREADLE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _admin():  # a connection to the server's maintenance database
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=3)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL at {PG_SERVER} is not reachable ({reason})"
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; under CI=true the PostgreSQL tests must run")
    pytest.skip(message)


class PgDatabases:
    """Creates throw-away databases on the server and drops them all at the end."""

    def __init__(self) -> None:
        self.prefix = f"treadle_test_{uuid.uuid4().hex[:10]}"
        self.created: list[str] = []

    def create(self) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        with _admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{PG_SERVER}/{name}"

    def drop_all(self) -> None:
        with _admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    try:
        import psycopg

        with _admin():
            pass
    except ImportError:
        _unreachable("psycopg is not installed")
    except psycopg.OperationalError as exc:
        _unreachable(str(exc).strip().splitlines()[0])
    databases = PgDatabases()
    yield databases
    databases.drop_all()
