"""The contract every connector implements, and helpers they share.

A connector reads and writes data in one place (a DuckDB file, project folders, later
PostgreSQL, GCS, BigQuery, S3). It is built from an ``io_config.yaml`` profile, opens its
connection lazily, and closes it on ``close()`` or at the end of a ``with`` block::

    with DuckDB.from_profile("default") as db:
        db.export(df, "trips")
        top = db.load("select * from trips limit 10")

Errors: bad arguments or settings raise ``UserInputError`` (profile, path, ``if_exists``,
data that cannot become a table). Failures of the backend itself (a SQL error, a network
error) propagate as the backend's own exception, so they read as the user knows them.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from treadle.errors import UserInputError, did_you_mean
from treadle.project.active import active_context
from treadle.project.io_config import load_io_config

if TYPE_CHECKING:
    import pyarrow as pa

IfExists = Literal["replace", "append", "fail"]
IF_EXISTS: tuple[str, ...] = ("replace", "append", "fail")
#: What the databases with keys (PostgreSQL, BigQuery) also accept.
IF_EXISTS_WITH_UPSERT: tuple[str, ...] = (*IF_EXISTS, "upsert")


class Connector(ABC):
    """Loads data from and exports data to one storage system."""

    @classmethod
    @abstractmethod
    def from_profile(cls, profile: str = "default", *, project: Any = None) -> Self:
        """A connector configured by ``profile`` of the project's ``io_config.yaml``.

        ``project`` is the project root (a path or a ``Project``); by default the active
        project (inside a run) or the one containing the working directory. Raises
        ``UserInputError`` when there is no project, the profile does not exist, or its
        settings are missing or invalid; nothing is connected yet.
        """

    @abstractmethod
    def load(self, *args: Any, **kwargs: Any) -> Any:
        """Read data (a query result, a file) as a pandas DataFrame.

        Raises ``UserInputError`` for a bad argument; the backend's own error otherwise.
        """

    @abstractmethod
    def export(self, obj: Any, *args: Any, if_exists: IfExists = "replace", **kwargs: Any) -> None:
        """Write ``obj`` (pandas or polars DataFrame, pyarrow Table or RecordBatch).

        ``if_exists``: ``replace`` swaps the old data for the new at once, ``append`` adds
        to it, ``fail`` raises ``UserInputError`` when the target exists. A failed export
        leaves the previous data as it was. Raises ``UserInputError`` for an object that is
        not a table or a bad argument; the backend's own error otherwise.
        """

    def check(self) -> str:
        """Connect (and run the cheapest query) to prove the settings work; return where
        it connected, without secrets (``treadle io test``). Raises what connecting raises."""
        raise NotImplementedError(f"{type(self).__name__} cannot be tested yet")

    def close(self) -> None:
        """Release connections; safe to call twice. The connector reopens on next use."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def project_root_and_variables(project: Any = None) -> tuple[Path, Mapping[str, Any]]:
    """The root of ``project`` (default: the active one) and the active run's variables."""
    if project is None:
        context = active_context()
        return context.root, context.variables
    if not isinstance(project, str | os.PathLike):  # a Project (not Path.root, the "/")
        project = project.root
    root = Path(project).expanduser().resolve()
    try:
        context = active_context()
    except UserInputError:
        return root, {}
    return root, context.variables if context.root.resolve() == root else {}


def read_profile(profile: str, project: Any = None) -> tuple[Path, dict[str, Any]]:
    """The project root and the settings of ``profile`` (see ``Connector.from_profile``)."""
    root, variables = project_root_and_variables(project)
    return root, load_io_config(root, variables).profile(profile)


def check_profile(profile: str, root: Path, connector: str | None = None) -> tuple[str, str]:
    """Connect with ``profile`` as ``connector`` (by default, the one its keys are for) and
    run its cheapest check: ``(connector name, where it connected)``. Bad settings or an
    unknown connector raise ``UserInputError``; the backend's own errors propagate."""
    import treadle.io
    from treadle.errors import unknown_name_error

    _, settings = read_profile(profile, root)
    name = connector or treadle.io.connector_name_for(settings)
    if name not in treadle.io.CONNECTORS:
        raise unknown_name_error("connector", name, sorted(treadle.io.CONNECTORS))
    with getattr(treadle.io, name).from_profile(profile, project=root) as opened:
        return name, opened.check()


def check_if_exists(if_exists: str, allowed: tuple[str, ...] = IF_EXISTS) -> None:
    if if_exists not in allowed:
        raise UserInputError(
            f"if_exists must be one of {', '.join(allowed)}, not {if_exists!r}",
            hint=did_you_mean(str(if_exists), allowed),
        )


# -- upsert keys (checked before anything is written) ---------------------------------------


def check_unique_key(
    unique_key: str | Sequence[str] | None, if_exists: str, columns: Sequence[str]
) -> list[str]:
    """The ``unique_key`` columns as a list, each once (empty unless upserting); each must
    be one of ``columns``."""
    if if_exists != "upsert":
        if unique_key:
            raise UserInputError(
                f"unique_key is used only with if_exists='upsert', not {if_exists!r}",
                hint="pass if_exists='upsert', or leave unique_key out",
            )
        return []
    keys = [unique_key] if isinstance(unique_key, str) else list(unique_key or ())
    if not keys:
        raise UserInputError(
            "if_exists='upsert' needs unique_key: the column(s) that identify a row",
            hint="e.g. unique_key=['VendorID', 'lpep_pickup_datetime']",
        )
    for key in keys:
        if key not in columns:
            raise UserInputError(
                f"unique_key column {key!r} is not in the data",
                hint=did_you_mean(str(key), list(columns)),
            )
    return list(dict.fromkeys(keys))


def check_no_null_keys(data: pa.Table | pa.RecordBatch, keys: Sequence[str]) -> None:
    """Refuse key columns with missing values: such a row cannot be matched."""
    for key in keys:
        nulls = data.column(key).null_count
        if nulls:
            raise UserInputError(
                f"unique_key column {key!r} has {nulls} missing value(s)",
                hint="a row without a key cannot be matched: fill or drop those rows first",
            )
