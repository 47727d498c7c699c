"""The web UI: server-rendered pages (Jinja2 templates in ``server/templates/``) made
live with htmx and a little JavaScript (``server/static/``). Pages show what the JSON API
returns by calling the same functions, and change things only through the API (the
browser calls it with the session's CSRF token), so the rules live in one place."""

from treadle.server.pages import pipelines, runs, schedules, session, settings

ROUTERS = (session.router, pipelines.router, runs.router, schedules.router, settings.router)
