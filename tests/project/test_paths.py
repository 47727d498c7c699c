"""project_path: what the API may touch inside a project, and nothing else."""

from __future__ import annotations

import os

import pytest

from treadle.errors import PathRefused
from treadle.project.paths import project_path, relative_name


@pytest.mark.parametrize(
    "text",
    [
        "../etc/passwd",
        "/etc/passwd",
        "pipelines/../../x",
        "data\\..\\..\\x",
        "C:\\Windows\\win.ini",
        "C:/Windows/win.ini",
        "a\x00b",
        ".treadle/treadle.db",
        ".env",
        "pipelines/.git/config",
        "..",
    ],
)
def test_paths_leaving_or_hiding_in_the_project_are_refused(tmp_path, text) -> None:
    with pytest.raises(PathRefused) as caught:
        project_path(tmp_path, text)
    assert "is not allowed" in caught.value.message and caught.value.hint


def test_a_symlink_pointing_outside_is_refused(tmp_path) -> None:
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("x")
    os.symlink(outside, root / "link")
    with pytest.raises(PathRefused, match="outside the project"):
        project_path(root, "link/secret.txt")


def test_paths_inside_resolve(tmp_path) -> None:
    assert project_path(tmp_path, "") == tmp_path.resolve()
    assert project_path(tmp_path, "pipelines/etl/pipeline.yaml") == (
        tmp_path.resolve() / "pipelines/etl/pipeline.yaml"
    )
    assert project_path(tmp_path, "./data/x.csv").name == "x.csv"
    assert project_path(tmp_path, ".gitignore").name == ".gitignore"
    assert relative_name(tmp_path, tmp_path / "a" / "b.py") == "a/b.py"
    assert relative_name(tmp_path, tmp_path) == ""


def test_a_symlink_to_a_hidden_file_and_a_leftover_percent_are_refused(tmp_path) -> None:
    (tmp_path / ".env").write_text("PASSWORD=x")
    os.symlink(tmp_path / ".env", tmp_path / "settings.txt")
    with pytest.raises(PathRefused, match="not allowed"):
        project_path(tmp_path, "settings.txt")
    with pytest.raises(PathRefused, match="not allowed"):
        project_path(tmp_path, "%2e%2e/x")
