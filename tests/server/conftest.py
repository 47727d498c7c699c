"""A served project with auth on, one user of each role, and a client for each.

``server.client(role)`` is a ``TestClient`` sending that user's API token;
``server.browser(role)`` one signed in through ``POST /api/v1/session`` (cookie + CSRF
token in ``X-CSRF-Token``, as the web UI sends them); ``server.anonymous()`` sends nothing.
The project has one pipeline, ``etl`` (``load`` → ``double``), with a variable ``n``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from treadle.scheduler.service import Scheduler
from treadle.server.app import create_app
from treadle.server.state import ServerState
from treadle.store.access import Role

PASSWORD = "correct horse battery staple"


def write_etl(project) -> None:
    project.block(
        "data_loaders",
        "load",
        """
        import pandas as pd
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            return pd.DataFrame({"x": list(range(int(variables["n"])))})
        """,
    )
    project.block(
        "transformers",
        "double",
        """
        from treadle import transformer

        @transformer
        def double(df):
            df["y"] = df["x"] * 2
            return df
        """,
    )
    project.pipeline(
        "etl",
        """
        variables: {n: 3}
        blocks:
          - name: load
            type: data_loader
          - name: double
            type: transformer
            upstream: [load]
        """,
    )


@dataclass
class Server:
    project: object
    scheduler: Scheduler
    state: ServerState
    app: object
    tokens: dict[Role, str] = field(default_factory=dict)
    _clients: list[TestClient] = field(default_factory=list)

    def anonymous(self) -> TestClient:
        client = TestClient(self.app)
        self._clients.append(client)
        return client

    def client(self, role: Role | str = Role.ADMIN) -> TestClient:
        client = self.anonymous()
        client.headers["Authorization"] = f"Bearer {self.tokens[Role(role)]}"
        return client

    def browser(self, role: Role | str = Role.ADMIN) -> TestClient:
        client = self.anonymous()
        answer = client.post(
            "/api/v1/session", json={"name": Role(role).value, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        client.headers["X-CSRF-Token"] = answer.json()["csrf_token"]
        return client

    def run_queued(self, timeout: float = 30.0) -> None:
        """Start what the API queued and wait until nothing is queued or running."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            self.scheduler.start_queued()
            active = [
                r for r in self.scheduler.runs.list_runs(limit=1000)
                if r.status.value in ("queued", "running")
            ]  # fmt: skip
            if not active:
                return
            assert time.monotonic() < deadline, active
            time.sleep(0.02)


@pytest.fixture
def server(project) -> Iterator[Server]:
    write_etl(project)
    with Scheduler(project.root) as scheduler:
        state = ServerState.for_scheduler(scheduler, auth=True, runs_here=False)
        served = Server(project, scheduler, state, create_app(state))
        for role in Role:
            state.access.add_user(role.value, role, PASSWORD)
            served.tokens[role] = state.access.create_token(role.value, "tests")[1]
        try:
            yield served
        finally:
            for client in served._clients:
                client.close()


# -- Server-Sent Events --------------------------------------------------------------------


def next_event(lines) -> tuple[str, dict]:
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            return kind, json.loads(line[len("data: ") :])
    raise AssertionError("the stream ended without an end event")


def read_events(lines) -> list[tuple[str, dict]]:
    """Events up to and with ``end``."""
    events = [next_event(lines)]
    while events[-1][0] != "end":
        events.append(next_event(lines))
    return events
