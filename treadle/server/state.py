"""What every request handler reaches through ``request.app.state.treadle``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from treadle.project.model import Project
from treadle.scheduler.service import Scheduler
from treadle.store.access import AccessStore
from treadle.store.audit import AuditStore
from treadle.store.scheduling import ScheduleStore
from treadle.store.sql import RunStore

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass
class ServerState:
    """The project served, its stores, and the scheduler that queues (and, under
    ``treadle start``, also runs) what the API asks for."""

    scheduler: Scheduler
    access: AccessStore
    audit: AuditStore
    auth: bool  # False: every caller acts as an admin (127.0.0.1 only)
    runs_here: bool  # whether this process's scheduler loop starts queued runs

    @classmethod
    def for_scheduler(
        cls, scheduler: Scheduler, *, auth: bool | None = None, runs_here: bool = True
    ) -> ServerState:
        settings = scheduler.project.settings
        return cls(
            scheduler=scheduler,
            access=AccessStore(scheduler.runs),
            audit=AuditStore(scheduler.runs),
            auth=settings.auth if auth is None else auth,
            runs_here=runs_here,
        )

    @property
    def root(self) -> Path:
        return self.scheduler.project.root

    @property
    def runs(self) -> RunStore:
        return self.scheduler.runs

    @property
    def schedules(self) -> ScheduleStore:
        return self.scheduler.schedules

    def project(self) -> Project:
        """The project as its files say now (reloaded when they changed)."""
        self.scheduler.reload(self.scheduler.clock.now())
        return self.scheduler.project


def server_state(request: Request) -> ServerState:
    return request.app.state.treadle
