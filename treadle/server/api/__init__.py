"""One router per resource; ``ROUTERS`` is the whole list, mounted under ``/api/v1``."""

from treadle.server.api import (
    audit,
    backfills,
    blocks,
    connections,
    files,
    health,
    pipelines,
    runs,
    secrets,
    session,
    triggers,
    triggers_admin,
    users,
)

ROUTERS = (
    health.router,
    session.router,
    users.router,
    audit.router,
    pipelines.router,
    blocks.router,
    runs.router,
    triggers.router,  # POST …/runs with a trigger's own token (no user)
    triggers_admin.router,
    backfills.router,
    connections.router,
    secrets.router,
    files.router,
)
