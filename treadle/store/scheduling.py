"""The scheduler's side of the metadata database: triggers, fires, queued runs, backfills.

Three rules keep a slot from firing twice and a run from being started twice, also with
two schedulers on one PostgreSQL database:

* a slot fires by inserting ``(trigger_id, slot)`` into ``trigger_fires`` (its primary
  key), in the same transaction as its queued run: the second scheduler's insert does
  nothing, and so makes no run;
* a queued run is *leased* to one scheduler (``claimed_by``, ``lease_until``), taken with
  ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and inside SQLite's single writer; a lease that
  expires (its scheduler died) frees the run for another;
* a run is started by a guarded ``UPDATE … WHERE status = 'queued' AND claimed_by = me``,
  after counting the runs already running (under a per-pipeline advisory lock on
  PostgreSQL), so limits hold across schedulers.
"""

from __future__ import annotations

import hashlib
import json
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from treadle.store.db import Transaction
from treadle.store.sql import RunStore

_ACTIVE = "('queued', 'running')"


@dataclass(frozen=True)
class TriggerRecord:
    """A trigger as the store holds it (the file's spec, plus what the store adds)."""

    id: int
    pipeline: str
    name: str
    type: str
    spec: Mapping[str, Any]
    fingerprint: str
    enabled: bool
    created_at: float  # when first seen: anchors `every` and @once without a start
    has_token: bool = False
    last_slot: float | None = None  # the latest slot that fired


@dataclass(frozen=True)
class NewRun:
    """A run to queue: by a trigger's slot, an API call or a backfill."""

    run_id: str
    pipeline: str
    execution_date: float
    interval_start: float
    interval_end: float
    variables: Mapping[str, Any] = field(default_factory=dict)
    trigger: str = "schedule"  # schedule, api, event, backfill
    triggered_by: str | None = None
    trigger_id: int | None = None
    backfill_id: str | None = None
    reason: str = "queued: waiting for a scheduler to start it"


@dataclass(frozen=True)
class QueuedRun:
    """A queued run leased to this scheduler."""

    run_id: str
    pipeline: str
    execution_date: float | None
    interval_start: float | None
    interval_end: float | None
    variables: Mapping[str, Any]
    trigger: str | None
    triggered_by: str | None
    trigger_id: int | None
    backfill_id: str | None
    created_at: float


@dataclass(frozen=True)
class BackfillRecord:
    id: str
    pipeline: str
    status: str
    created_at: float
    start: float | None
    end: float | None
    every: str
    variables: Mapping[str, Any]
    concurrency: int | None
    total: int
    reason: str
    runs: Mapping[str, int] = field(default_factory=dict)  # status → how many

    def to_dict(self) -> dict[str, Any]:
        from treadle.store.rows import iso

        return {
            "id": self.id,
            "pipeline": self.pipeline,
            "status": self.status,
            "created_at": iso(self.created_at),
            "start": iso(self.start),
            "end": iso(self.end),
            "every": self.every,
            "variables": dict(self.variables),
            "concurrency": self.concurrency,
            "total": self.total,
            "reason": self.reason,
            "runs": dict(self.runs),
        }


@dataclass(frozen=True)
class Limits:
    """Most runs at once: of the project, of the run's pipeline, trigger and backfill."""

    project: int | None = None
    pipeline: int | None = None
    trigger: int | None = None
    backfill: int | None = None


@dataclass(frozen=True)
class StartOutcome:
    """What ``ScheduleStore.start_queued`` did with a run."""

    started: bool = False
    why: str = ""  # why it must wait, when a limit holds it
    held_by: str = ""  # which limit: "project", "pipeline", "trigger" or "backfill"

    @property
    def gone(self) -> bool:
        """Neither started nor held: cancelled, or taken by another scheduler."""
        return not self.started and not self.why


@dataclass
class Held:
    """What limits hold this round: the runs they hold are not claimed again."""

    pipelines: set[str] = field(default_factory=set)
    trigger_ids: set[int] = field(default_factory=set)
    backfill_ids: set[str] = field(default_factory=set)

    def add(self, run: QueuedRun, held_by: str) -> None:
        if held_by == "pipeline":
            self.pipelines.add(run.pipeline)
        elif held_by == "trigger" and run.trigger_id is not None:
            self.trigger_ids.add(run.trigger_id)
        elif held_by == "backfill" and run.backfill_id is not None:
            self.backfill_ids.add(run.backfill_id)

    def sql_excluding(self, params: dict[str, Any]) -> str:
        sql = ""
        for column, values in (
            ("pipeline", self.pipelines),
            ("trigger_id", self.trigger_ids),
            ("backfill_id", self.backfill_ids),
        ):
            if not values:
                continue
            names = [f"held_{column}_{i}" for i in range(len(values))]
            params.update(zip(names, sorted(values), strict=True))
            placeholders = ", ".join(":" + n for n in names)
            sql += f" AND ({column} IS NULL OR {column} NOT IN ({placeholders}))"
        return sql


def hash_token(token: str) -> str:
    """API tokens are long random strings: a plain sha256 is the right hash (not argon2)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ScheduleStore:
    """Triggers, fires, queued runs and backfills of one project, in the run store's
    database (``store.db``), so a fire and its run are written in one transaction."""

    def __init__(self, store: RunStore) -> None:
        self.runs = store
        self.db = store.db
        self.project = store.project
        self._ts = store.db.ts
        self._read_ts = store.db.read_ts
        self._read_json = store.db.read_json

    # -- triggers --------------------------------------------------------------------------

    def sync_triggers(
        self, pipeline: str, specs: Sequence[Mapping[str, Any]], now: float
    ) -> tuple[list[str], list[str], list[str]]:
        """Make the store's triggers of ``pipeline`` exactly ``specs`` (each a dict with
        ``name``, ``type``, ``spec``, ``fingerprint``, ``enabled``). Returns the names
        added, changed and removed. A changed trigger keeps its id, fires and token; a
        removed one is kept, marked removed, so that added back it keeps its fires."""
        wanted = {s["name"]: s for s in specs}
        added, changed, removed = [], [], []
        with self.db.transaction() as tx:
            have = {
                row[1]: row
                for row in tx.all(
                    "SELECT id, name, fingerprint, enabled, removed_at FROM triggers "
                    "WHERE project = :project AND pipeline = :pipeline",
                    {"project": self.project, "pipeline": pipeline},
                )
            }
            for name, row in have.items():
                if name not in wanted and row[4] is None:
                    tx.execute(_REMOVE_TRIGGER, {"id": row[0], "now": self._ts(now)})
                    removed.append(name)
            for name, spec in wanted.items():
                params = {
                    "project": self.project,
                    "pipeline": pipeline,
                    "name": name,
                    "type": spec["type"],
                    "spec": json.dumps(spec["spec"], default=str),
                    "fingerprint": spec["fingerprint"],
                    "enabled": bool(spec["enabled"]),
                    "now": self._ts(now),
                }
                row = have.get(name)
                if row is None or row[4] is not None:
                    tx.execute(_UPSERT_TRIGGER, params)  # another scheduler may add it too
                    added.append(name)
                elif row[2] != spec["fingerprint"] or bool(row[3]) != bool(spec["enabled"]):
                    tx.execute(_UPDATE_TRIGGER, {**params, "id": row[0]})
                    changed.append(name)
        return added, changed, removed

    def remove_triggers_except(self, pipelines: Iterable[str]) -> list[str]:
        """Remove the triggers of pipelines that no longer exist; return ``pipeline.name``s."""
        keep = set(pipelines)
        with self.db.transaction() as tx:
            rows = tx.all(
                "SELECT id, pipeline, name FROM triggers "
                "WHERE project = :project AND removed_at IS NULL",
                {"project": self.project},
            )
            gone = [row for row in rows if row[1] not in keep]
            for row in gone:
                tx.execute(_REMOVE_TRIGGER, {"id": row[0], "now": self._ts(time.time())})
        return [f"{row[1]}.{row[2]}" for row in gone]

    def triggers(
        self, pipeline: str | None = None, *, now: float | None = None
    ) -> list[TriggerRecord]:
        """The triggers in use; ``last_slot`` is the latest slot fired up to ``now`` (a
        slot fired in the future by a clock that was wrong does not hide the ones before)."""
        where = "t.project = :project AND t.removed_at IS NULL"
        params: dict[str, Any] = {"project": self.project}
        up_to_now = ""
        if now is not None:
            up_to_now = " AND f.slot <= :now"
            params["now"] = self._ts(now)
        if pipeline is not None:
            where += " AND t.pipeline = :pipeline"
            params["pipeline"] = pipeline
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT t.id, t.pipeline, t.name, t.type, t.spec, t.fingerprint, t.enabled, "
                "t.created_at, t.token_hash, (SELECT MAX(f.slot) FROM trigger_fires f "
                f"WHERE f.trigger_id = t.id{up_to_now}) FROM triggers t "
                f"WHERE {where} ORDER BY t.pipeline, t.name",
                params,
            )
        return [self._trigger(row) for row in rows]

    def trigger(self, pipeline: str, name: str) -> TriggerRecord | None:
        return next((t for t in self.triggers(pipeline) if t.name == name), None)

    def _trigger(self, row: Any) -> TriggerRecord:
        return TriggerRecord(
            id=row[0],
            pipeline=row[1],
            name=row[2],
            type=row[3],
            spec=self._read_json(row[4]) or {},
            fingerprint=row[5],
            enabled=bool(row[6]),
            created_at=self._read_ts(row[7]) or 0.0,
            has_token=row[8] is not None,
            last_slot=self._read_ts(row[9]),
        )

    def set_token(self, trigger_id: int, token_hash: str, now: float) -> None:
        self.db.execute(
            "UPDATE triggers SET token_hash = :hash, token_created_at = :now WHERE id = :id",
            {"hash": token_hash, "now": self._ts(now), "id": trigger_id},
        )

    def token_matches(self, trigger_id: int, token: str) -> bool:
        import hmac

        with self.db.transaction(write=False) as tx:
            row = tx.one("SELECT token_hash FROM triggers WHERE id = :id", {"id": trigger_id})
        return bool(row and row[0]) and hmac.compare_digest(row[0], hash_token(token))

    # -- firing ----------------------------------------------------------------------------

    def fire(self, trigger_id: int, slot: float, run: NewRun | None, now: float) -> bool:
        """Record that ``slot`` of the trigger fired, with its queued ``run`` (None: the
        slot is skipped). False, and nothing written, when the slot had already fired."""
        with self.db.transaction() as tx:
            self._durable(tx)
            fired = tx.count(
                "INSERT INTO trigger_fires (trigger_id, slot, run_id, fired_at) "
                "VALUES (:trigger_id, :slot, NULL, :now) ON CONFLICT DO NOTHING",
                {"trigger_id": trigger_id, "slot": self._ts(slot), "now": self._ts(now)},
            )
            if fired != 1:
                return False
            if run is not None:
                self._insert_queued(tx, run, now)
                tx.execute(
                    "UPDATE trigger_fires SET run_id = :run_id "
                    "WHERE trigger_id = :trigger_id AND slot = :slot",
                    {"run_id": run.run_id, "trigger_id": trigger_id, "slot": self._ts(slot)},
                )
        return True

    def _durable(self, tx: Transaction) -> None:
        """This transaction waits for the server's disk (the session does not, see db.py).

        Only fires need it: a fire lost in a crash of the database server would fire
        again. Starting a run is recorded like the run's other events (a few ms less per
        run on this machine)."""
        if self.db.dialect == "postgres":
            tx.execute("SET LOCAL synchronous_commit = on")

    def queue_run(self, run: NewRun, now: float) -> bool:
        """Queue ``run`` (an API call's, a backfill's); False if its id exists already."""
        with self.db.transaction() as tx:
            return self._insert_queued(tx, run, now)

    def _insert_queued(self, tx: Transaction, run: NewRun, now: float) -> bool:
        ts = self._ts
        return (
            tx.count(
                _INSERT_QUEUED_RUN,
                {
                    "id": run.run_id,
                    "project": self.project,
                    "pipeline": run.pipeline,
                    "execution_date": ts(run.execution_date),
                    "interval_start": ts(run.interval_start),
                    "interval_end": ts(run.interval_end),
                    "variables": json.dumps(dict(run.variables), default=str),
                    "trigger": run.trigger,
                    "triggered_by": run.triggered_by,
                    "trigger_id": run.trigger_id,
                    "backfill_id": run.backfill_id,
                    "reason": run.reason,
                    "now": ts(now),
                },
            )
            == 1
        )

    def succeeded_runs_after(self, pipeline: str, since: float) -> list[tuple[str, float, Any]]:
        """``(run_id, finished_at, (execution_date, interval_start, interval_end))`` of
        ``pipeline``'s runs that succeeded after ``since``, oldest first (event triggers)."""
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT id, finished_at, execution_date, interval_start, interval_end "
                "FROM pipeline_runs WHERE project = :project AND pipeline = :pipeline "
                "AND status = 'succeeded' AND finished_at > :since ORDER BY finished_at",
                {"project": self.project, "pipeline": pipeline, "since": self._ts(since)},
            )
        read = self._read_ts
        return [
            (row[0], read(row[1]) or 0.0, (read(row[2]), read(row[3]), read(row[4])))
            for row in rows
        ]

    # -- queued runs -----------------------------------------------------------------------

    def claim_queued(
        self,
        owner: str,
        lease_for: float,
        *,
        limit: int = 100,
        backfill_id: str | None = None,
        skip: Held | None = None,
    ) -> list[QueuedRun]:
        """Lease to ``owner`` the queued runs that are free (never leased, or their lease
        expired, or already ``owner``'s), oldest first; renews ``owner``'s leases.
        ``skip`` leaves out the runs held by a limit (so they do not hide the others).

        Leases are in real time (``time.time()``), whatever clock the scheduler uses:
        they are between processes, like heartbeats."""
        now = time.time()
        params: dict[str, Any] = {
            "project": self.project,
            "owner": owner,
            "now": self._ts(now),
            "until": self._ts(now + lease_for),
            "limit": limit,
        }
        where = (
            "project = :project AND status = 'queued' AND "
            "(lease_until IS NULL OR lease_until < :now OR claimed_by = :owner)"
        )
        if backfill_id is not None:
            where += " AND backfill_id = :backfill_id"
            params["backfill_id"] = backfill_id
        if skip is not None:
            where += skip.sql_excluding(params)
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgres" else ""
        with self.db.transaction() as tx:
            ids = [
                row[0]
                for row in tx.all(
                    f"SELECT id FROM pipeline_runs WHERE {where} "
                    f"ORDER BY created_at, execution_date, id LIMIT :limit{lock}",
                    params,
                )
            ]
            for run_id in ids:
                tx.execute(
                    "UPDATE pipeline_runs SET claimed_by = :owner, lease_until = :until "
                    "WHERE id = :id",
                    {**params, "id": run_id},
                )
            rows = [tx.one(_QUEUED_RUN, {"id": run_id}) for run_id in ids]
        return [self._queued(row) for row in rows if row is not None]

    def _queued(self, row: Any) -> QueuedRun:
        read = self._read_ts
        return QueuedRun(
            run_id=row[0],
            pipeline=row[1],
            execution_date=read(row[2]),
            interval_start=read(row[3]),
            interval_end=read(row[4]),
            variables=self._read_json(row[5]) or {},
            trigger=row[6],
            triggered_by=row[7],
            trigger_id=row[8],
            backfill_id=row[9],
            created_at=read(row[10]) or 0.0,
        )

    def start_queued(
        self,
        run_id: str,
        owner: str,
        limits: Limits,
        *,
        host: str,
        pid: int,
        pid_started: float | None,
    ) -> StartOutcome:
        """Mark ``owner``'s leased run running unless a limit holds it. A run whose cancel
        was asked for while it waited is marked cancelled instead (and is "gone")."""
        with self.db.transaction() as tx:
            row = tx.one(
                "SELECT pipeline, trigger_id, backfill_id, status, claimed_by, "
                "cancel_requested_at, cancel_reason FROM pipeline_runs WHERE id = :id",
                {"id": run_id},
            )
            if row is None or row[3] != "queued" or row[4] != owner:
                return StartOutcome()
            pipeline, trigger_id, backfill_id = row[0], row[1], row[2]
            now = self._ts(time.time())
            if row[5] is not None:
                reason = row[6] or "cancelled while queued"
                tx.execute(_MARK_CANCELLED_QUEUED, {"id": run_id, "at": now, "reason": reason})
                return StartOutcome()
            self._serialise_starts(tx, pipeline, limits)
            why, held_by = self._limit_reached(tx, pipeline, trigger_id, backfill_id, limits)
            if why:
                return StartOutcome(why=why, held_by=held_by)
            started = tx.count(
                "UPDATE pipeline_runs SET status = 'running', started_at = :now, "
                "heartbeat_at = :now, host = :host, pid = :pid, pid_started = :pid_started, "
                "reason = '', lease_until = NULL WHERE id = :id AND status = 'queued' "
                "AND claimed_by = :owner AND cancel_requested_at IS NULL",
                {
                    "now": now, "host": host, "pid": pid, "pid_started": pid_started,
                    "id": run_id, "owner": owner,
                },
            )  # fmt: skip
        return StartOutcome(started=started == 1)

    def _serialise_starts(self, tx: Transaction, pipeline: str, limits: Limits) -> None:
        """On PostgreSQL, one start at a time per pipeline (per project when the project
        has a limit), across schedulers: counting then starting must not interleave."""
        if self.db.dialect != "postgres":
            return  # SQLite: the write transaction already excludes every other writer
        scope = self.project if limits.project is not None else f"{self.project}/{pipeline}"
        key = zlib.crc32(scope.encode()) & 0x7FFFFFFF
        tx.execute("SELECT pg_advisory_xact_lock(:key)", {"key": key})

    def _limit_reached(
        self,
        tx: Transaction,
        pipeline: str,
        trigger_id: int | None,
        backfill_id: str | None,
        limits: Limits,
    ) -> tuple[str, str]:
        checks = [
            ("trigger", limits.trigger, "trigger_id", trigger_id, "of its trigger"),
            ("backfill", limits.backfill, "backfill_id", backfill_id, "of its backfill"),
            ("pipeline", limits.pipeline, "pipeline", pipeline, f"of pipeline {pipeline}"),
            ("project", limits.project, "project", self.project, "in the project"),
        ]
        for scope, limit, column, value, words in checks:
            if limit is None or value is None:
                continue
            running = tx.one(
                "SELECT COUNT(*) FROM pipeline_runs WHERE project = :project "
                f"AND status = 'running' AND {column} = :value",
                {"project": self.project, "value": value},
            )[0]
            if running >= limit:
                runs = "run" if running == 1 else "runs"
                setting = "concurrency" if scope == "backfill" else "max_active_runs"
                return f"waiting: {running} {runs} {words} running ({setting}: {limit})", scope
        return "", ""

    def hold(self, run: QueuedRun, owner: str, why: str, held_by: str = "") -> None:
        """Leave the run queued, saying why, and give back ``owner``'s lease on it. With
        ``held_by`` (the limit), every queued run that limit holds says so too."""
        params = {"why": why, "id": run.run_id, "owner": owner, "project": self.project}
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE pipeline_runs SET reason = :why, claimed_by = NULL, lease_until = NULL "
                "WHERE id = :id AND claimed_by = :owner AND status = 'queued'",
                params,
            )
            column, value = {
                "pipeline": ("pipeline", run.pipeline),
                "trigger": ("trigger_id", run.trigger_id),
                "backfill": ("backfill_id", run.backfill_id),
                "project": ("project", self.project),
            }.get(held_by, (None, None))
            if column is not None and value is not None:
                tx.execute(
                    "UPDATE pipeline_runs SET reason = :why WHERE project = :project "
                    f"AND status = 'queued' AND {column} = :value AND reason <> :why",
                    {**params, "value": value},
                )

    def has_active_run(self, trigger_id: int) -> bool:
        """Whether a run of this trigger is queued or running (``skip_if_running``)."""
        with self.db.transaction(write=False) as tx:
            row = tx.one(
                "SELECT COUNT(*) FROM pipeline_runs WHERE project = :project "
                f"AND trigger_id = :trigger_id AND status IN {_ACTIVE}",
                {"project": self.project, "trigger_id": trigger_id},
            )
        return bool(row[0])

    def release(self, owner: str) -> None:
        """Give up ``owner``'s leases (a scheduler stopping): another may start them now."""
        self.db.execute(
            "UPDATE pipeline_runs SET claimed_by = NULL, lease_until = NULL "
            "WHERE project = :project AND status = 'queued' AND claimed_by = :owner",
            {"project": self.project, "owner": owner},
        )

    # -- backfills -------------------------------------------------------------------------

    def create_backfill(
        self, backfill: BackfillRecord, runs: Sequence[NewRun], now: float
    ) -> tuple[bool, int]:
        """Record the backfill and queue its runs, each once. Returns (whether the backfill
        is new, how many runs were queued now): issuing it again queues nothing."""
        with self.db.transaction() as tx:
            new = (
                tx.count(
                    _INSERT_BACKFILL,
                    {
                        "id": backfill.id,
                        "project": self.project,
                        "pipeline": backfill.pipeline,
                        "now": self._ts(now),
                        "start": self._ts(backfill.start),
                        "end": self._ts(backfill.end),
                        "every": backfill.every,
                        "variables": json.dumps(dict(backfill.variables), default=str),
                        "concurrency": backfill.concurrency,
                        "total": backfill.total,
                    },
                )
                == 1
            )
            queued = sum(self._insert_queued(tx, run, now) for run in runs)
        return new, queued

    def backfills(self, backfill_id: str | None = None) -> list[BackfillRecord]:
        where = "b.project = :project"
        params: dict[str, Any] = {"project": self.project}
        if backfill_id is not None:
            where += " AND b.id LIKE :id ESCAPE '!'"
            escaped = backfill_id.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params["id"] = escaped + "%"
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                'SELECT b.id, b.pipeline, b.status, b.created_at, b.start, b."end", b.every, '
                "b.variables, b.concurrency, b.total, b.reason FROM backfills b "
                f"WHERE {where} ORDER BY b.created_at DESC, b.id",
                params,
            )
            counts = tx.all(  # only the backfills asked for (by the backfill_id index)
                "SELECT r.backfill_id, r.status, COUNT(*) FROM pipeline_runs r "
                f"JOIN backfills b ON b.id = r.backfill_id WHERE {where} "
                "GROUP BY r.backfill_id, r.status",
                params,
            )
        by_backfill: dict[str, dict[str, int]] = {}
        for bid, status, count in counts:
            by_backfill.setdefault(bid, {})[status] = count
        read = self._read_ts
        return [
            BackfillRecord(
                id=row[0],
                pipeline=row[1],
                status=row[2],
                created_at=read(row[3]) or 0.0,
                start=read(row[4]),
                end=read(row[5]),
                every=row[6] or "",
                variables=self._read_json(row[7]) or {},
                concurrency=row[8],
                total=row[9] or 0,
                reason=row[10] or "",
                runs=by_backfill.get(row[0], {}),
            )
            for row in rows
        ]

    def backfill_runs(self, backfill_id: str) -> list[tuple[str, str, float | None]]:
        """``(run_id, status, execution_date)`` of the backfill's runs, in date order."""
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT id, status, execution_date FROM pipeline_runs "
                "WHERE project = :project AND backfill_id = :id ORDER BY execution_date, id",
                {"id": backfill_id, "project": self.project},
            )
        return [(row[0], row[1], self._read_ts(row[2])) for row in rows]

    def set_backfill_status(self, backfill_id: str, status: str, reason: str = "") -> None:
        self.db.execute(
            "UPDATE backfills SET status = :status, "
            "reason = CASE WHEN :reason = '' THEN reason ELSE :reason END "
            "WHERE project = :project AND id = :id",
            {"status": status, "reason": reason, "id": backfill_id, "project": self.project},
        )

    def cancel_queued(self, backfill_id: str, reason: str) -> int:
        """Cancel every still-queued run of the backfill, at once; return how many."""
        return self.db.execute(
            "UPDATE pipeline_runs SET status = 'cancelled', finished_at = :at, reason = :reason, "
            "cancel_requested_at = :at, cancel_reason = :reason, lease_until = NULL "
            "WHERE project = :project AND backfill_id = :id AND status = 'queued'",
            {"at": self._ts(time.time()), "reason": reason, "id": backfill_id,
             "project": self.project},
        )  # fmt: skip

    # -- alerts ----------------------------------------------------------------------------

    def first_alert(self, run_id: str, event: str) -> bool:
        """Record that ``event`` of ``run_id`` is being alerted; False if it already was."""
        return (
            self.db.execute(
                "INSERT INTO alerts_sent (run_id, event, sent_at) VALUES (:run_id, :event, :now) "
                "ON CONFLICT DO NOTHING",
                {"run_id": run_id, "event": event, "now": self._ts(time.time())},
            )
            == 1
        )


_UPSERT_TRIGGER = """
INSERT INTO triggers (project, pipeline, name, created_at, type, spec, fingerprint, enabled,
    updated_at)
VALUES (:project, :pipeline, :name, :now, :type, :spec, :fingerprint, :enabled, :now)
ON CONFLICT (project, pipeline, name) DO UPDATE SET
    type = excluded.type, spec = excluded.spec, fingerprint = excluded.fingerprint,
    enabled = excluded.enabled, updated_at = excluded.updated_at, removed_at = NULL
"""

_UPDATE_TRIGGER = """
UPDATE triggers SET type = :type, spec = :spec, fingerprint = :fingerprint,
    enabled = :enabled, updated_at = :now
WHERE id = :id
"""

_REMOVE_TRIGGER = "UPDATE triggers SET removed_at = :now, updated_at = :now WHERE id = :id"

_MARK_CANCELLED_QUEUED = """
UPDATE pipeline_runs SET status = 'cancelled', finished_at = :at, reason = :reason,
    lease_until = NULL
WHERE id = :id AND status = 'queued'
"""

_INSERT_QUEUED_RUN = """
INSERT INTO pipeline_runs (
    id, project, pipeline, status, execution_date, interval_start, interval_end, variables,
    "trigger", triggered_by, trigger_id, backfill_id, file_hashes, created_at, reason)
VALUES (
    :id, :project, :pipeline, 'queued', :execution_date, :interval_start, :interval_end,
    :variables, :trigger, :triggered_by, :trigger_id, :backfill_id, '{}', :now, :reason)
ON CONFLICT (id) DO NOTHING
"""

_QUEUED_RUN = """
SELECT id, pipeline, execution_date, interval_start, interval_end, variables, "trigger",
    triggered_by, trigger_id, backfill_id, created_at
FROM pipeline_runs WHERE id = :id
"""

_INSERT_BACKFILL = """
INSERT INTO backfills (id, project, pipeline, created_at, status, start, "end", every,
    variables, concurrency, total, reason)
VALUES (:id, :project, :pipeline, :now, 'running', :start, :end, :every, :variables,
    :concurrency, :total, '')
ON CONFLICT (id) DO NOTHING
"""
