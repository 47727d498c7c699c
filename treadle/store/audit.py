"""The audit trail: who did what, to what, when, and from where.

Every change and action the server or the CLI performs is recorded here (``record``),
in the metadata database beside the runs; ``events`` pages through it, newest first.
Details never hold secret values: callers pass names, not values.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from treadle.store.sql import RunStore


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: float
    actor: str  # a user's name, "cli:<os user>", "scheduler", or "anonymous"
    action: str  # e.g. file.written, run.started, login.failed
    target: str = ""
    origin: str = ""  # the client's address, or "cli"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from treadle.store.rows import iso

        return {
            "id": self.id,
            "at": iso(self.at),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "origin": self.origin,
            "detail": dict(self.detail),
        }


class AuditStore:
    """The audit events of one project, in the run store's database."""

    def __init__(self, store: RunStore) -> None:
        self.db = store.db
        self.project = store.project

    def record(
        self,
        actor: str,
        action: str,
        target: str = "",
        *,
        origin: str = "",
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        self.db.execute(
            "INSERT INTO audit_events (at, actor, action, target, detail, project, origin) "
            "VALUES (:at, :actor, :action, :target, :detail, :project, :origin)",
            {
                "at": self.db.ts(time.time() if now is None else now),
                "actor": actor[:200],
                "action": action[:100],
                "target": target[:500],
                "detail": json.dumps(detail or {}, default=str),
                "project": self.project,
                "origin": origin[:200],
            },
        )

    def events(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        action: str | None = None,
    ) -> list[AuditEvent]:
        """Newest first; ``before`` an event id to page back; ``action`` may end in ``*``."""
        where = ["project = :project"]
        params: dict[str, Any] = {"project": self.project, "limit": limit}
        if before is not None:
            where.append("id < :before")
            params["before"] = before
        if actor is not None:
            where.append("actor = :actor")
            params["actor"] = actor
        if action is not None:
            if action.endswith("*"):
                where.append("action LIKE :action ESCAPE '\\'")
                params["action"] = action[:-1].replace("%", "").replace("_", "\\_") + "%"
            else:
                where.append("action = :action")
                params["action"] = action
        with self.db.transaction(write=False) as tx:
            rows = tx.all(
                "SELECT id, at, actor, action, target, origin, detail FROM audit_events "
                f"WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT :limit",
                params,
            )
        return [
            AuditEvent(
                id=row[0],
                at=self.db.read_ts(row[1]) or 0.0,
                actor=row[2],
                action=row[3],
                target=row[4],
                origin=row[5],
                detail=self.db.read_json(row[6]) or {},
            )
            for row in rows
        ]
