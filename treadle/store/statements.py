"""The store's SQL, written once for SQLite and PostgreSQL.

Placeholders are ``:name`` (``Database.sql`` makes them ``%(name)s`` for psycopg); times
and JSON are passed as ``Database.ts``/JSON text make them. Only syntax both databases
share is used: ``INSERT … ON CONFLICT … DO UPDATE`` with ``excluded``, ``CASE`` for
"greatest", ``COALESCE``, subqueries in ``SET``. The one thing that differs, subtracting
two times, is a ``{seconds}`` slot filled from ``Database.seconds_between``.

The statements follow ``schema.py``; the contract tests run each of them on both
databases after migrating with Alembic, which keeps the two in line.
"""

from __future__ import annotations

_FINISHED_IN = "('succeeded', 'failed', 'cancelled')"

# -- runs ---------------------------------------------------------------------------------

RUN_COLUMN_NAMES = (
    "id", "project", "pipeline", "status", "execution_date", "interval_start", "interval_end",
    "trigger", "triggered_by", "executor", "host", "pid", "pid_started", "created_at",
    "started_at", "finished_at", "heartbeat_at", "reason", "resumes", "cancel_requested_at",
    "cancel_reason",
)  # fmt: skip
RUN_COLUMNS = ", ".join(f'"{name}"' if name == "trigger" else name for name in RUN_COLUMN_NAMES)
DETAIL_COLUMNS = "variables, pipeline_hash, file_hashes, trigger_id, backfill_id"

#: a run starts (or a queued run, made by the scheduler, is started)
INSERT_RUN = """
INSERT INTO pipeline_runs (
    id, project, pipeline, status, execution_date, interval_start, interval_end, variables,
    "trigger", triggered_by, executor, host, pid, pid_started, pipeline_hash, file_hashes,
    created_at, started_at, finished_at, heartbeat_at, reason, resumes)
VALUES (
    :id, :project, :pipeline, :status, :execution_date, :interval_start, :interval_end,
    :variables, :trigger, :triggered_by, :executor, :host, :pid, :pid_started,
    :pipeline_hash, :file_hashes, :created_at, :started_at, :finished_at, :heartbeat_at,
    :reason, :resumes)
ON CONFLICT (id) DO UPDATE SET
    status = excluded.status,
    execution_date = excluded.execution_date,
    interval_start = excluded.interval_start,
    interval_end = excluded.interval_end,
    variables = excluded.variables,
    "trigger" = COALESCE(excluded."trigger", pipeline_runs."trigger"),
    triggered_by = COALESCE(excluded.triggered_by, pipeline_runs.triggered_by),
    executor = excluded.executor,
    host = excluded.host,
    pid = excluded.pid,
    pid_started = excluded.pid_started,
    pipeline_hash = excluded.pipeline_hash,
    file_hashes = excluded.file_hashes,
    started_at = excluded.started_at,
    finished_at = NULL,
    heartbeat_at = excluded.heartbeat_at,
    reason = ''
"""

RESUME_RUN = """
UPDATE pipeline_runs SET
    status = 'running', resumes = resumes + 1, finished_at = NULL, reason = '',
    cancel_requested_at = NULL, cancel_reason = NULL, heartbeat_at = :at,
    host = :host, pid = :pid, pid_started = :pid_started, executor = :executor,
    pipeline_hash = :pipeline_hash, file_hashes = :file_hashes
WHERE id = :run_id
"""

#: one process, and only one, takes a stopped run to resume it: the run must still be
#: as that process saw it (not running, not resumed meanwhile by another)
CLAIM_RUN = """
UPDATE pipeline_runs SET status = 'running', heartbeat_at = :at,
    host = :host, pid = :pid, pid_started = :pid_started
WHERE id = :run_id AND status <> 'running' AND resumes = :resumes
"""

UPSERT_RUN_BLOCK = """
INSERT INTO run_blocks (run_id, block, ordinal, status, why, attempts)
VALUES (:run_id, :block, :ordinal, 'queued', :why, 0)
ON CONFLICT (run_id, block) DO UPDATE SET
    status = 'queued', why = excluded.why, finished_at = NULL,
    error_type = NULL, error_message = NULL, traceback = NULL
"""

SET_WHY = "UPDATE run_blocks SET why = :why WHERE run_id = :run_id AND block = :block"

_ATTEMPTS_AT_LEAST = "CASE WHEN attempts > :attempt THEN attempts ELSE :attempt END"

INSERT_ATTEMPT = """
INSERT INTO block_runs (run_id, block, item, attempt, status, started_at, heartbeat_at)
VALUES (:run_id, :block, :item, :attempt, 'running', :at, :at)
ON CONFLICT (run_id, block, item, attempt) DO UPDATE SET
    status = 'running', started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
    finished_at = NULL, duration = NULL, cpu_time = NULL, peak_memory = NULL, rows = NULL,
    bytes = NULL, error_type = NULL, error_message = NULL, traceback = NULL
"""

BLOCK_RUNNING = f"""
UPDATE run_blocks SET
    status = 'running', why = '', attempts = {_ATTEMPTS_AT_LEAST},
    started_at = COALESCE(started_at, :at)
WHERE run_id = :run_id AND block = :block
"""

ITEM_RUNNING = f"""
UPDATE run_blocks SET
    status = 'running', why = '', attempts = {_ATTEMPTS_AT_LEAST},
    started_at = COALESCE(started_at, :at),
    items = CASE WHEN items IS NULL OR items <= :item THEN :item + 1 ELSE items END
WHERE run_id = :run_id AND block = :block
"""

CLOSE_ATTEMPT = """
UPDATE block_runs SET
    status = :status, finished_at = :at, duration = :duration, cpu_time = :cpu_time,
    peak_memory = :peak_memory, rows = COALESCE(:rows, rows), bytes = COALESCE(:bytes, bytes),
    error_type = :error_type, error_message = :error_message, traceback = :traceback
WHERE run_id = :run_id AND block = :block AND item = :item AND attempt = :attempt
"""

BLOCK_WAITING = """
UPDATE run_blocks SET status = 'queued', why = :why WHERE run_id = :run_id AND block = :block
"""

BLOCK_FINISHED = f"""
UPDATE run_blocks SET
    status = :status, why = :why, attempts = {_ATTEMPTS_AT_LEAST},
    rows = COALESCE(:rows, rows), bytes = COALESCE(:bytes, bytes), duration = :duration,
    finished_at = :at, error_type = :error_type, error_message = :error_message,
    traceback = :traceback
WHERE run_id = :run_id AND block = :block
"""

#: {seconds} is the dialect's "seconds from started_at to :at"
CANCEL_RUNNING_ATTEMPTS = """
UPDATE block_runs SET status = 'cancelled', finished_at = :at, duration = {seconds}
WHERE run_id = :run_id AND block = :block AND status = 'running'
"""

LATEST_ATTEMPT_OUTPUT = """
UPDATE block_runs SET rows = :rows, bytes = :bytes
WHERE id = (SELECT id FROM block_runs
            WHERE run_id = :run_id AND block = :block AND item = :item
            ORDER BY attempt DESC LIMIT 1)
"""

BLOCK_OUTPUT = """
UPDATE run_blocks SET rows = COALESCE(:rows, rows), bytes = :bytes
WHERE run_id = :run_id AND block = :block
"""

#: an item's output stored after its fanned block settled: the block's sums again
FAN_OUTPUT = """
UPDATE run_blocks SET
    bytes = (SELECT SUM(b.bytes) FROM block_runs b
             WHERE b.run_id = run_blocks.run_id AND b.block = run_blocks.block
               AND b.item >= 0 AND b.status = 'succeeded'
               AND b.attempt = (SELECT MAX(c.attempt) FROM block_runs c
                                WHERE c.run_id = b.run_id AND c.block = b.block
                                  AND c.item = b.item))
WHERE run_id = :run_id AND block = :block AND status NOT IN ('queued', 'running')
"""

RUN_REASON = "UPDATE pipeline_runs SET reason = :reason WHERE id = :run_id"

RUN_HEARTBEAT = "UPDATE pipeline_runs SET heartbeat_at = :at WHERE id = :run_id"
ATTEMPTS_HEARTBEAT = """
UPDATE block_runs SET heartbeat_at = :at WHERE run_id = :run_id AND status = 'running'
"""

RUN_FINISHED = """
UPDATE pipeline_runs SET
    status = :status, finished_at = :at, heartbeat_at = :at,
    reason = CASE WHEN :reason = '' THEN reason ELSE :reason END
WHERE id = :run_id
"""

#: {seconds} as above
CLOSE_RUNNING_ATTEMPTS = """
UPDATE block_runs SET
    status = :status, finished_at = :at, duration = {seconds},
    error_message = COALESCE(error_message, :message)
WHERE run_id = :run_id AND status = 'running'
"""

CLOSE_RUNNING_BLOCKS = """
UPDATE run_blocks SET status = :status, why = :why, finished_at = :at
WHERE run_id = :run_id AND status = 'running'
"""

CLOSE_QUEUED_BLOCKS = """
UPDATE run_blocks SET status = 'cancelled', why = :why
WHERE run_id = :run_id AND status = 'queued'
"""

REQUEST_CANCEL = """
UPDATE pipeline_runs SET cancel_requested_at = :at, cancel_reason = :reason
WHERE id = :run_id AND status IN ('queued', 'running')
"""

CANCEL_REQUESTED = "SELECT cancel_requested_at, cancel_reason FROM pipeline_runs WHERE id = :run_id"

MARK_CANCELLED = """
UPDATE pipeline_runs SET
    status = 'cancelled', finished_at = :at, reason = :reason,
    cancel_requested_at = COALESCE(cancel_requested_at, :at),
    cancel_reason = COALESCE(cancel_reason, :reason)
WHERE id = :run_id AND status IN ('queued', 'running')
"""

CANCEL_UNFINISHED_BLOCKS = """
UPDATE run_blocks SET status = 'cancelled', why = :reason, finished_at = :at
WHERE run_id = :run_id AND status IN ('queued', 'running')
"""

RUNNING_RUNS = """
SELECT id, host, pid, pid_started, heartbeat_at, started_at, created_at FROM pipeline_runs
WHERE project = :project AND status = 'running'
ORDER BY created_at
"""

MARK_LOST = """
UPDATE pipeline_runs SET status = 'failed', finished_at = :at, reason = :reason
WHERE id = :run_id AND status = 'running'
"""

#: {seconds} is the dialect's "seconds from started_at to heartbeat_at"
LOSE_ATTEMPTS = """
UPDATE block_runs SET
    status = 'failed', finished_at = :at, duration = {seconds},
    error_type = 'WorkerLost', error_message = :reason
WHERE run_id = :run_id AND status = 'running'
"""

LOSE_RUNNING_BLOCKS = """
UPDATE run_blocks SET
    status = 'failed', why = :reason, finished_at = :at,
    error_type = 'WorkerLost', error_message = :reason
WHERE run_id = :run_id AND status = 'running'
"""

#: blocks that never got to run end cancelled, as when a run finishes (resume runs them)
LOSE_QUEUED_BLOCKS = """
UPDATE run_blocks SET status = 'cancelled',
    why = CASE WHEN attempts > 0 THEN 'run lost while waiting to retry'
               ELSE 'run lost before it started' END
WHERE run_id = :run_id AND status = 'queued'
"""

GET_RUN = f"SELECT {RUN_COLUMNS}, {DETAIL_COLUMNS} FROM pipeline_runs WHERE id = :run_id"
RUN_EXISTS = "SELECT id FROM pipeline_runs WHERE id = :run_id"
#: SQLite compares text byte by byte, so a range finds a prefix with the primary key index
#: (the unary ``+`` keeps it from picking the project's index instead);
#: PostgreSQL's collation may not, so it compares the prefix itself
PREFIX_SQLITE = """
SELECT id FROM pipeline_runs
WHERE id >= :prefix AND id < :prefix_end AND +project = :project
ORDER BY id LIMIT :limit
"""
PREFIX_POSTGRES = """
SELECT id FROM pipeline_runs
WHERE substr(id, 1, :length) = :prefix AND project = :project
ORDER BY id LIMIT :limit
"""

RUN_BLOCKS = """
SELECT block, status, why, attempts, items, rows, bytes, duration, started_at, finished_at,
       error_type, error_message, traceback
FROM run_blocks WHERE run_id = :run_id ORDER BY ordinal, block
"""

RUN_ATTEMPTS = """
SELECT a.id, a.block, a.item, a.attempt, a.status, a.started_at, a.finished_at,
       a.heartbeat_at, a.duration, a.cpu_time, a.peak_memory, a.rows, a.bytes,
       a.error_type, a.error_message, a.traceback
FROM block_runs a LEFT JOIN run_blocks b ON b.run_id = a.run_id AND b.block = a.block
WHERE a.run_id = :run_id
ORDER BY b.ordinal, a.block, a.item, a.attempt
"""

BLOCK_STATES = """
SELECT block, status, attempts FROM run_blocks WHERE run_id = :run_id ORDER BY ordinal, block
"""

RETENTION_WHERE = f"finished_at < :before AND status IN {_FINISHED_IN}"

# A run decrypted a secret (the name only, never the value): one audit event per block.
AUDIT_SECRET_READ = """
INSERT INTO audit_events (at, actor, action, target, detail, project, origin)
VALUES (:at, :actor, 'secret.read', :name, :detail, :project, 'run')
"""
