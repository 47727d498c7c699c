"""Defects found by a security review of the server, each pinned by a test: odd input
that gave a 500 (or stored what broke every listing), secrets a viewer could read through
the raw files, an unaudited change, and the session cookie behind HTTPS."""

from __future__ import annotations

import pytest

from treadle.store.access import Role

SECRET = "s3cr3t-VALUE-7c1d9e"
S = '"\\ud800"'  # a lone surrogate, as JSON may escape it


def _raw(client, method: str, url: str, body: str):
    return client.request(
        method, url, content=body.encode(), headers={"content-type": "application/json"}
    )


# -- bad input is a 4xx, never a 500 ----------------------------------------------------


def test_a_csrf_header_that_is_not_ascii_is_refused_not_a_crash(server) -> None:
    browser = server.browser(Role.EDITOR)
    answer = browser.post(
        "/api/v1/runs", json={"pipeline": "etl"}, headers={"X-CSRF-Token": b"\xff\xfe"}
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/api/v1/audit?before=99999999999999999999999"),
        ("GET", "/api/v1/audit?before=-99999999999999999999"),
        ("DELETE", "/api/v1/tokens/99999999999999999999999"),
        ("DELETE", "/api/v1/tokens/-99999999999999999999"),
    ],
)
def test_integers_past_a_database_integer_are_422(server, method, url) -> None:
    assert server.client(Role.ADMIN).request(method, url).status_code == 422


LONE_SURROGATES = [  # LONE stands for the surrogate
    ("POST", "/api/v1/runs", '{"pipeline": "etl", "variables": {"z": LONE}}'),
    ("POST", "/api/v1/runs/RUN/resume", '{"variables": {"z": LONE}}'),
    ("POST", "/api/v1/pipelines/etl/blocks/load/run", '{"variables": {"z": LONE}}'),
    (
        "POST",
        "/api/v1/backfills",
        '{"pipeline": "etl", "start": "2024-01-01", "end": "2024-01-01", "variables": {"z": LONE}}',
    ),
    (
        "POST",
        "/api/v1/backfills/preview",
        '{"pipeline": "etl", "start": "2024-01-01", '
        '"end": "2024-01-01", "variables": {"z": [LONE]}}',
    ),
    ("PATCH", "/api/v1/pipelines/etl", '{"variables": {"k": {LONE: 1}}}'),
    ("PUT", "/api/v1/pipelines/etl", '{"yaml": LONE}'),
    ("POST", "/api/v1/tokens", '{"user": LONE}'),
]


@pytest.mark.parametrize(("method", "url", "body"), LONE_SURROGATES)
def test_a_lone_surrogate_is_422_and_nothing_is_stored(server, method, url, body) -> None:
    admin = server.client(Role.ADMIN)
    run_id = admin.post("/api/v1/runs", json={"pipeline": "etl"}).json()["run_id"]
    server.run_queued()
    answer = _raw(admin, method, url.replace("RUN", run_id), body.replace("LONE", S))
    assert answer.status_code == 422, answer.text
    server.run_queued()
    for listing in ("/api/v1/runs", "/api/v1/backfills", "/api/v1/pipelines/etl"):
        assert admin.get(listing).status_code == 200
    assert len(admin.get("/api/v1/runs").json()["runs"]) == 1


@pytest.mark.parametrize(
    "trigger",
    [
        {"name": "far", "schedule": "@daily", "start": "9999-12-31"},
        {"name": "huge", "every": "99999999999999999999d"},
        {"name": "inf", "every": 1e308},
    ],
    ids=["start-9999", "every-huge", "every-inf"],
)
def test_a_schedule_that_cannot_be_computed_is_422_and_not_written(server, trigger) -> None:
    admin = server.client(Role.ADMIN)
    answer = admin.post("/api/v1/pipelines/etl/triggers", json=trigger)
    assert answer.status_code == 422, answer.text
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()
    for listing in ("/api/v1/triggers", "/api/v1/pipelines", "/api/v1/pipelines/etl"):
        assert admin.get(listing).status_code == 200


def test_a_start_too_far_ahead_is_refused_before_anything_is_written(server) -> None:
    admin = server.client(Role.ADMIN)
    trigger = {"name": "late", "schedule": "@daily", "start": "9999-12-29"}
    answer = admin.post("/api/v1/pipelines/etl/triggers", json=trigger)
    assert answer.status_code == 422 and "out of range" in answer.text
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()
    assert admin.get("/api/v1/triggers").status_code == 200


# -- what viewers may read ----------------------------------------------------------------


@pytest.fixture
def settings_with_secrets(server):
    server.project.write(
        "treadle.yaml",
        "name: test_project\ndatabase_url: postgresql://treadle:DB-PASS-4410@db.internal/t\n",
    )
    server.project.pipeline(
        "etl",
        """
        variables: {n: 3, api_token: tok-DEFAULT-8842}
        alerts:
          - urls: ["slack://TTTTT/BBBBB/ALERT-TOKEN-5521"]
            on: [failure]
        blocks:
          - name: load
            type: data_loader
          - name: double
            type: transformer
            upstream: [load]
        """,
    )
    server.project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: daily
            schedule: "@daily"
            variables: {api_token: tok-TRIGGER-9931}
        """,
    )
    return ("DB-PASS-4410", "tok-DEFAULT-8842", "ALERT-TOKEN-5521", "tok-TRIGGER-9931")


@pytest.mark.parametrize(
    "path", ["treadle.yaml", "pipelines/etl/pipeline.yaml", "pipelines/etl/triggers.yaml"]
)
def test_viewers_read_settings_files_with_their_secrets_masked(
    server, settings_with_secrets, path
) -> None:
    viewer = server.client(Role.VIEWER).get("/api/v1/files/content", params={"path": path})
    assert viewer.status_code == 200, viewer.text
    assert viewer.json()["masked"] is True and "***" in viewer.json()["text"]
    assert not [s for s in settings_with_secrets if s in viewer.text]
    editor = server.client(Role.EDITOR).get("/api/v1/files/content", params={"path": path})
    assert [s for s in settings_with_secrets if s in editor.text]  # editors see them


def test_a_yaml_file_that_does_not_parse_is_not_shown_to_viewers(server) -> None:
    server.project.write("notes.yaml", "token: [abc-SECRET-1234\n")
    viewer = server.client(Role.VIEWER).get("/api/v1/files/content", params={"path": "notes.yaml"})
    assert viewer.status_code == 403 and "SECRET" not in viewer.text
    editor = server.client(Role.EDITOR).get("/api/v1/files/content", params={"path": "notes.yaml"})
    assert editor.status_code == 200


def test_viewers_see_secret_looking_pipeline_variables_masked(
    server, settings_with_secrets
) -> None:
    viewer = server.client(Role.VIEWER).get("/api/v1/pipelines/etl").json()
    assert viewer["variables"] == {"n": 3, "api_token": "***"}
    editor = server.client(Role.EDITOR).get("/api/v1/pipelines/etl").json()
    assert editor["variables"]["api_token"] == "tok-DEFAULT-8842"


def test_viewers_see_known_secrets_in_block_code_masked(server) -> None:
    server.project.write(".env", f"DB_PASSWORD={SECRET}\n")
    server.project.block(
        "data_loaders",
        "load",
        f"""
        from treadle import data_loader

        PASSWORD = "{SECRET}"

        @data_loader
        def load(*, variables):
            return [1]
        """,
    )
    url = "/api/v1/pipelines/etl/blocks/load"
    assert SECRET not in server.client(Role.VIEWER).get(url).json()["text"]
    assert SECRET in server.client(Role.EDITOR).get(url).json()["text"]


def test_a_stored_secret_never_comes_back_through_any_get(server) -> None:
    """Set a secret, use it from io_config.yaml in a block that prints it and fails with
    it; no GET answer, for any role, holds the value."""
    admin = server.client(Role.ADMIN)
    assert admin.put("/api/v1/secrets/db_pass", json={"value": SECRET}).status_code == 204
    server.project.write(
        "io_config.yaml",
        """
        default:
          type: duckdb
          path: data.duckdb
        warehouse:
          type: postgres
          host: localhost
          password: "{{ secret('db_pass') }}"
        """,
    )
    server.project.block(
        "data_loaders",
        "leak",
        """
        import sys
        from pathlib import Path
        from treadle import data_loader
        from treadle.project.io_config import load_io_config

        @data_loader
        def leak(**kwargs):
            root = Path(__file__).resolve().parents[1]
            password = load_io_config(root).profile("warehouse")["password"]
            print("the password is", password)
            print("again", password, file=sys.stderr)
            raise ValueError(f"cannot connect with {password}")
        """,
    )
    server.project.pipeline("leaky", "blocks:\n  - name: leak\n    type: data_loader\n")
    run_id = admin.post("/api/v1/runs", json={"pipeline": "leaky"}).json()["run_id"]
    server.run_queued()
    block_run = admin.post("/api/v1/pipelines/leaky/blocks/leak/run", json={})
    assert block_run.status_code == 200 and SECRET not in block_run.text
    one_block = block_run.json()["run_id"]
    gets = [
        "/api/v1/runs",
        f"/api/v1/runs/{run_id}",
        f"/api/v1/runs/{one_block}",
        f"/api/v1/runs/{run_id}/blocks/leak/logs",
        f"/api/v1/runs/{one_block}/blocks/leak/logs",
        f"/api/v1/runs/{run_id}/logs/stream",
        "/api/v1/connections",
        "/api/v1/pipelines/leaky",
        "/api/v1/pipelines/leaky/yaml",
        "/api/v1/pipelines/leaky/blocks/leak",
        "/api/v1/audit?limit=1000",
        "/api/v1/secrets",
        "/api/v1/files/content?path=io_config.yaml",
        "/api/v1/files/content?path=data_loaders/leak.py",
    ]
    for role in Role:
        client = server.client(role)
        for url in gets:
            answer = client.get(url)
            assert answer.status_code in (200, 403), (role, url, answer.text)
            assert SECRET not in answer.text, (role, url)
    logs = admin.get(f"/api/v1/runs/{run_id}/blocks/leak/logs").json()["text"]
    assert "the password is ***" in logs


# -- audit and cookies ----------------------------------------------------------------------


def test_a_run_started_with_a_trigger_token_is_audited(server) -> None:
    server.project.write(
        "pipelines/etl/triggers.yaml", "triggers:\n  - name: hook\n    type: api\n"
    )
    admin = server.client(Role.ADMIN)
    token = admin.post("/api/v1/pipelines/etl/triggers/hook/token").json()["token"]
    caller = server.anonymous()
    answer = caller.post(
        "/api/v1/triggers/etl/hook/runs", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text
    events = admin.get("/api/v1/audit", params={"action": "run.started"}).json()
    assert events[0]["actor"] == "trigger:etl.hook"
    assert events[0]["target"] == answer.json()["run_id"]
    assert events[0]["origin"]


def test_the_session_cookie_is_secure_when_the_server_is_served_over_https(server) -> None:
    server.project.write("treadle.yaml", "name: test_project\nbase_url: https://treadle.example\n")
    server.scheduler.reload(server.scheduler.clock.now(), force=True)
    answer = server.anonymous().post(
        "/api/v1/session", json={"name": "viewer", "password": "correct horse battery staple"}
    )
    cookie = answer.headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
