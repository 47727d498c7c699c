"""The run-history store's contract: what it records, what it answers, what it raises.

``RunStore`` (``treadle/store/sql.py``) implements it for SQLite and PostgreSQL; the
contract tests (``tests/store/test_store_contract.py``) run against both.

Every method may raise ``StoreUnavailable`` (a ``UserInputError``) when the database
cannot be used: a file that is not a database, a database locked for longer than the busy
timeout, a server that cannot be reached, a full disk. ``emit`` alone never raises: a
failing write is logged (logger ``treadle.store``) and counted in ``emit_failures``, so a
broken history never breaks the run it records.

Times are unix seconds (floats) in and out of Python; run ids may be given as a unique
prefix wherever a user types them (``get_run``, ``request_cancel``, ``mark_cancelled``,
``block_states``).

``project`` arguments: ``None`` means the store's own project (the one ``open_store`` was
given), ``ALL_PROJECTS`` (``"*"``) every project in the database; any other value names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from treadle.errors import UserInputError

if TYPE_CHECKING:
    from treadle.events import Event
    from treadle.store.rows import BlockState, RunDetail, RunSummary

ALL_PROJECTS = "*"


class StoreUnavailable(UserInputError):
    """The metadata database cannot be used as it is: ``path`` names it, ``hint`` says what to do.

    Raised for a corrupt or non-database file, a database locked for too long, a database
    written by a newer Treadle, a server that cannot be reached, a migration that failed."""


class RunHistory(Protocol):
    """Durable run history: satisfies the engine's ``EventSink`` and answers the CLI/server."""

    project: str

    def emit(self, event: Event) -> None:
        """Record one engine event, in one transaction. Thread-safe (a heartbeat thread
        emits too). Never raises: a failed write is logged and counted in
        ``emit_failures``; unknown event kinds are ignored.

        What each event does:

        * ``RunStarted``: a new run (status running) with one ``run_blocks`` row per listed
          block (queued, why from ``waiting``). With ``resumed`` (same run id): the run is
          running again (``resumes`` + 1; finish time, reason and cancel request cleared;
          host, pid, executor and hashes updated), the listed blocks queued again, keeping
          their attempt counts.
        * ``BlockQueued``: the block's ``why`` (item events are ignored).
        * ``BlockStarted``: a new attempt row (running); the block is running.
        * ``BlockRetrying``: closes the failed attempt (``attempt - 1``) with its error; the
          block waits, queued, why ``retry 2 of 3 at <time>``.
        * ``BlockFinished``: the block's final state (or an item's attempt, with ``index``)
          and its attempt row closed; a cancelled block's running attempts are closed too.
        * ``OutputSaved``: rows and bytes on the latest attempt of the block/item; an
          ``error`` becomes the run's reason.
        * ``RunHeartbeat``: the run's and its running attempts' ``heartbeat_at``.
        * ``RunFinished``: the run's status, finish time and reason; attempts and blocks
          still running are closed (cancelled for a cancelled run, else failed), blocks
          still queued are cancelled, so nothing stays "running" forever.
        """

    def list_runs(
        self,
        *,
        pipeline: str | None = None,
        status: str | None = None,
        limit: int = 50,
        project: str | None = None,
    ) -> list[RunSummary]:
        """The newest ``limit`` runs (by creation time), optionally of one pipeline and/or
        in one status. Raises ``UserInputError`` for an unknown status or a limit < 1."""

    def get_run(self, run_id: str) -> RunDetail | None:
        """The run, its blocks in pipeline order and every attempt, or ``None`` when no run
        has that id (a unique prefix of an id of the store's project is accepted).
        Raises ``UserInputError`` for an empty id or a prefix that matches several runs
        (the message lists them)."""

    def request_cancel(self, run_id: str, reason: str) -> RunSummary:
        """Ask a queued or running run to stop; the process running it polls
        ``cancel_requested``. Returns the run as it now is. Raises ``UserInputError`` when
        the run does not exist or already finished (saying how)."""

    def cancel_requested(self, run_id: str) -> str | None:
        """The reason a cancel was requested for ``run_id`` (exact id), or ``None``. Cheap:
        one primary-key lookup, polled every second by a running run."""

    def mark_cancelled(self, run_id: str, reason: str, *, now: float | None = None) -> RunSummary:
        """Cancel a run whose process is gone: the run and every block or attempt not
        finished become cancelled with ``reason``. Raises ``UserInputError`` when the run
        does not exist or already finished."""

    def find_lost_runs(
        self,
        now: float,
        lost_after: float,
        is_alive: Callable[[str, int, float | None], bool | None],
    ) -> list[str]:
        """Ids of the project's running runs whose worker is gone, oldest first: the last
        heartbeat (or the start, before the first one) is more than ``lost_after`` seconds
        before ``now`` while ``is_alive(host, pid, pid_started)`` cannot tell (``None``: another
        host), or ``is_alive`` says ``False``. A process seen alive is never lost, however
        quiet its heartbeat. See ``treadle.processes.pid_alive``."""

    def mark_lost(
        self, run_id: str, reason: str = "worker lost", *, now: float | None = None
    ) -> bool:
        """Fail a lost run with ``reason``: its running attempts and blocks fail with it, its
        queued blocks stay queued, saying the run was lost before they started. Returns
        ``False`` (and changes nothing) when the run is not running any more, e.g. another
        reaper got there first."""

    def claim(
        self, run_id: str, *, resumes: int, host: str, pid: int, pid_started: float | None
    ) -> bool:
        """Mark a stopped run running for the process (host, pid, start) that will resume
        it, if it is still as the caller saw it (not running, resumed ``resumes`` times);
        False when another process took it first."""
        ...

    def block_states(self, run_id: str) -> dict[str, BlockState]:
        """Each block's status and attempt count, in pipeline order, for resuming the run.
        Raises ``UserInputError`` when the run does not exist."""

    def delete_runs(
        self, finished_before: float, *, project: str | None = None, dry_run: bool = False
    ) -> list[str]:
        """Delete runs that finished before ``finished_before`` (with their blocks and
        attempts; trigger fires keep their slot, without the run). Returns the ids,
        oldest first; ``dry_run`` only lists them. Running and queued runs are kept."""

    def close(self) -> None:
        """Close the connection. Idempotent."""
