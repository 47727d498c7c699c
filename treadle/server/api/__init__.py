"""One router per resource; ``ROUTERS`` is the whole list, mounted under ``/api/v1``."""

from treadle.server.api import audit, blocks, health, pipelines, runs, session, triggers, users

ROUTERS = (
    health.router,
    session.router,
    users.router,
    audit.router,
    pipelines.router,
    blocks.router,
    runs.router,
    triggers.router,  # POST …/runs with a trigger's own token (no user)
)
