"""``treadle init``: write a new project with a working, offline example pipeline."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from treadle.errors import UserInputError

TEMPLATE = Path(__file__).parent / "templates" / "project"
RENAMED = {"env.example": ".env.example", "gitignore": ".gitignore"}
SAMPLE_MONTH = "2020-10"
SAMPLE_ROWS = 20_000


def init_project(path: str | Path, *, sample_rows: int = SAMPLE_ROWS) -> Path:
    """Create the project at ``path`` (a new or empty folder) and return its root.

    The project is assembled in a temporary folder beside ``path`` and moved into place,
    so a failure leaves nothing half-written.
    """
    target = Path(path).expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserInputError(
            f"{path} already exists and is not empty",
            path=str(path),
            hint="choose a new folder name; treadle init never overwrites files",
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    except OSError as exc:
        raise UserInputError(
            f"cannot create a project at {path}: {exc.strerror}",
            path=str(path),
            hint="choose a folder path whose parents are folders you may write to",
        ) from None
    try:
        _write_files(staging, target.name, sample_rows)
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _write_files(root: Path, name: str, sample_rows: int) -> None:
    for source in sorted(TEMPLATE.rglob("*")):
        relative = source.relative_to(TEMPLATE)
        if "__pycache__" in relative.parts:
            continue
        destination = root / RENAMED.get(relative.as_posix(), relative.as_posix())
        if source.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
            continue
        text = source.read_text(encoding="utf-8")
        if relative.as_posix() == "treadle.yaml":
            text = text.replace("{{ name }}", name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(text, encoding="utf-8")
    from treadle.samples import write_csv

    write_csv(
        "green",
        root / "data" / f"green_tripdata_{SAMPLE_MONTH}.csv.gz",
        month=SAMPLE_MONTH,
        rows=sample_rows,
        seed=0,
    )
