"""Shared fixtures: a throw-away project folder you write files into."""

from __future__ import annotations

import textwrap
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
