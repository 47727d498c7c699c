"""Connections (io_config.yaml profiles: listed with secrets hidden, tested) and the
secret store (admin only). A secret's value never leaves the server: not in a response,
not in the audit trail, not in a log line."""

from __future__ import annotations

import logging
import time

import pytest
from cryptography.fernet import Fernet

from treadle.server.api import connections
from treadle.store.access import Role

PASSWORD = "pw-9f3c1e7a-never-shown"  # set as a secret in the tests that use it
AWS_SECRET = "aws-51d0b2c4-never-shown"
IO_CONFIG = """\
version: 0.1.1
default:
  DUCKDB_DATABASE: .treadle/warehouse.duckdb
dev:
  POSTGRES_HOST: 127.0.0.1
  POSTGRES_PORT: 1
  POSTGRES_USER: postgres
  POSTGRES_DBNAME: x
  POSTGRES_CONNECT_TIMEOUT: 2
  POSTGRES_PASSWORD: "{{ secret('pg_password') }}"
literal:
  POSTGRES_HOST: db.example.com
  POSTGRES_PASSWORD: hunter2-literal
  API_KEY: "{{ env_var('NO_SUCH_VARIABLE_X', 'default-in-template') }}"
  OPTIONS: {sslmode: require, token: inline-token-value}
s3:
  AWS_ACCESS_KEY_ID: "{{ env_var('TEST_AWS_ID') }}"
  AWS_SECRET_ACCESS_KEY: "{{ env_var('TEST_AWS_SECRET') }}"
  AWS_REGION: eu-west-1
broken:
  DUCKDB_DATABASE: "{{ secret('db_folder') }}/warehouse.duckdb"
"""


@pytest.fixture(autouse=True)
def secret_key(monkeypatch, tmp_path):
    monkeypatch.setenv("TREADLE_SECRET_KEY", Fernet.generate_key().decode())
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # never the real one
    monkeypatch.setenv("TEST_AWS_SECRET", AWS_SECRET)
    monkeypatch.delenv("TEST_AWS_ID", raising=False)


@pytest.fixture
def io_config(server):
    return server.project.write("io_config.yaml", IO_CONFIG)


def _set_secret(server, name: str, value: str):
    return server.client(Role.ADMIN).put(f"/api/v1/secrets/{name}", json={"value": value})


def _audit(server, action: str) -> list[dict]:
    return server.client(Role.ADMIN).get("/api/v1/audit", params={"action": action}).json()


# -- listing -------------------------------------------------------------------------------


def test_without_io_config_there_is_the_default_duckdb_profile(server) -> None:
    answer = server.client(Role.VIEWER).get("/api/v1/connections")
    assert answer.status_code == 200
    assert answer.json() == [
        {"profile": "default", "kind": "DuckDB", "settings": {}, "unresolved": []}
    ]


def test_profiles_show_their_keys_and_kind_but_no_secret(server, io_config) -> None:
    assert _set_secret(server, "pg_password", PASSWORD).status_code == 204
    answer = server.client(Role.VIEWER).get("/api/v1/connections")
    assert answer.status_code == 200, answer.text
    profiles = {p["profile"]: p for p in answer.json()}
    assert list(profiles) == ["default", "dev", "literal", "s3", "broken"]
    assert {name: p["kind"] for name, p in profiles.items()} == {
        "default": "DuckDB",
        "dev": "Postgres",
        "literal": "Postgres",
        "s3": "S3",
        "broken": "DuckDB",
    }
    dev = profiles["dev"]["settings"]
    assert dev["POSTGRES_PASSWORD"] == "{{ secret('pg_password') }}"  # the template, not the value
    assert dev["POSTGRES_HOST"] == "127.0.0.1" and dev["POSTGRES_PORT"] == 1
    literal = profiles["literal"]["settings"]
    assert literal["POSTGRES_PASSWORD"] == "***"
    assert literal["API_KEY"] == "***"  # a template with a default in it may hold the secret
    assert literal["OPTIONS"] == {"sslmode": "require", "token": "***"}
    s3 = profiles["s3"]["settings"]
    assert s3["AWS_SECRET_ACCESS_KEY"] == "{{ env_var('TEST_AWS_SECRET') }}"
    assert s3["AWS_REGION"] == "eu-west-1"
    assert profiles["s3"]["unresolved"] == [
        "io_config.yaml:17: environment variable 'TEST_AWS_ID' is not set "
        "(set TEST_AWS_ID in the environment or in the project's .env)"
    ]
    assert profiles["dev"]["unresolved"] == []
    assert "secret 'db_folder' is not set" in profiles["broken"]["unresolved"][0]
    for value in (PASSWORD, AWS_SECRET, "hunter2-literal", "default-in-template", "inline-token"):
        assert value not in answer.text


def test_a_file_that_only_parses_once_rendered_shows_every_value_masked(server) -> None:
    server.project.write(
        "io_config.yaml",
        "default:\n  DUCKDB_DATABASE: {{ env_var('DB', 'x.duckdb') }}\n  OTHER: plain\n",
    )
    answer = server.client(Role.VIEWER).get("/api/v1/connections")
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["settings"] == {"DUCKDB_DATABASE": "***", "OTHER": "***"}


def test_a_broken_io_config_is_422_naming_the_line(server) -> None:
    server.project.write("io_config.yaml", "default:\n  X: \"{{ env_var('A' }}\"\n")
    answer = server.client(Role.VIEWER).get("/api/v1/connections")
    assert answer.status_code == 422
    assert answer.json()["where"] == "io_config.yaml:2"


def test_anonymous_callers_get_401(server, io_config) -> None:
    anonymous = server.anonymous()
    assert anonymous.get("/api/v1/connections").status_code == 401
    assert anonymous.post("/api/v1/connections/default/test").status_code == 401


# -- testing -------------------------------------------------------------------------------


def test_a_working_profile(server, io_config) -> None:
    answer = server.client(Role.EDITOR).post("/api/v1/connections/default/test")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["kind"] == "DuckDB"
    assert body["where"].startswith("DuckDB ") and body["where"].endswith("warehouse.duckdb")
    assert body["error"] is None and isinstance(body["millis"], int)
    [event] = _audit(server, "connection.tested")
    assert (event["actor"], event["target"], event["detail"]) == ("editor", "default", {"ok": True})


def test_a_failure_is_200_with_the_reason_and_no_secret(server, io_config) -> None:
    _set_secret(server, "pg_password", PASSWORD)
    answer = server.client(Role.EDITOR).post("/api/v1/connections/dev/test")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is False and body["kind"] == "Postgres" and body["where"] is None
    assert "127.0.0.1" in body["error"] and "1" in body["error"]
    assert PASSWORD not in answer.text
    [event] = _audit(server, "connection.tested")
    assert event["detail"] == {"ok": False}


def test_a_secret_in_the_backend_error_is_masked(server, io_config) -> None:
    server.project.write("db-7c41aa-never-shown", "a file where a folder should be\n")
    _set_secret(server, "db_folder", "db-7c41aa-never-shown")
    answer = server.client(Role.EDITOR).post("/api/v1/connections/broken/test")
    body = answer.json()
    assert body["ok"] is False and body["kind"] == "DuckDB"
    assert body["error"].startswith("FileExistsError") and "***" in body["error"], body
    assert "db-7c41aa" not in answer.text


def test_a_missing_value_is_a_failure_naming_it(server, io_config) -> None:
    body = server.client(Role.EDITOR).post("/api/v1/connections/s3/test").json()
    assert body["ok"] is False
    assert "environment variable 'TEST_AWS_ID' is not set" in body["error"]
    assert AWS_SECRET not in str(body)


def test_a_test_that_hangs_times_out(server, io_config, monkeypatch) -> None:
    from treadle.io.duckdb import DuckDB

    monkeypatch.setattr(connections, "TEST_TIMEOUT", 0.2)
    monkeypatch.setattr(DuckDB, "check", lambda self: time.sleep(2) or "never")
    answer = server.client(Role.EDITOR).post("/api/v1/connections/default/test")
    body = answer.json()
    assert body["ok"] is False and body["error"] == "no answer within 0.2 seconds"
    assert body["millis"] < 1500


def test_an_unknown_profile_is_404(server, io_config) -> None:
    answer = server.client(Role.EDITOR).post("/api/v1/connections/prod/test")
    assert answer.status_code == 404
    assert "prod" in answer.json()["message"]
    assert _audit(server, "connection.tested") == []


def test_only_default_exists_without_io_config(server) -> None:
    editor = server.client(Role.EDITOR)
    assert editor.post("/api/v1/connections/default/test").json()["ok"] is True
    assert editor.post("/api/v1/connections/dev/test").status_code == 404


def test_viewers_may_not_test(server, io_config) -> None:
    assert server.client(Role.VIEWER).post("/api/v1/connections/default/test").status_code == 403


# -- secrets -------------------------------------------------------------------------------


def test_an_admin_sets_lists_and_deletes_secrets(server) -> None:
    admin = server.client(Role.ADMIN)
    answer = _set_secret(server, "pg_password", PASSWORD)
    assert answer.status_code == 204 and answer.content == b""
    assert _set_secret(server, "pg_password", PASSWORD + "2").status_code == 204
    listed = admin.get("/api/v1/secrets")
    assert listed.status_code == 200
    [row] = listed.json()
    assert row["name"] == "pg_password" and row["updated_at"].endswith("Z")
    assert set(row) == {"name", "updated_at"}
    assert admin.delete("/api/v1/secrets/pg_password").status_code == 204
    assert admin.get("/api/v1/secrets").json() == []
    assert admin.delete("/api/v1/secrets/pg_password").status_code == 404
    events = _audit(server, "secret.*")
    assert [(e["action"], e["target"], e["detail"]) for e in events] == [
        ("secret.deleted", "pg_password", {}),
        ("secret.set", "pg_password", {"created": False}),
        ("secret.set", "pg_password", {"created": True}),
    ]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.EDITOR])
def test_secrets_are_for_admins_only(server, role) -> None:
    _set_secret(server, "kept", PASSWORD)
    client = server.client(role)
    for answer in (
        client.get("/api/v1/secrets"),
        client.put("/api/v1/secrets/other", json={"value": "x"}),
        client.delete("/api/v1/secrets/kept"),
    ):
        assert answer.status_code == 403
        assert "admin" in answer.json()["message"]
    assert [r["name"] for r in server.client(Role.ADMIN).get("/api/v1/secrets").json()] == ["kept"]
    assert server.anonymous().get("/api/v1/secrets").status_code == 401


@pytest.mark.parametrize(
    ("name", "body", "words"),
    [
        ("bad name", {"value": PASSWORD}, "not a valid secret name"),
        ("ok", {"value": ""}, "value"),
        ("ok", {"value": PASSWORD, "note": PASSWORD}, "note"),
        ("ok", {"secret": PASSWORD}, "value"),
        ("ok", {"value": [PASSWORD]}, "value"),
        ("ok", {"value": PASSWORD * 3000}, "value"),
    ],
)
def test_bad_input_is_422_and_never_echoes_the_value(server, name, body, words) -> None:
    answer = server.client(Role.ADMIN).put(f"/api/v1/secrets/{name}", json=body)
    assert answer.status_code == 422
    assert words in answer.json()["message"]
    assert PASSWORD not in answer.text
    assert server.client(Role.ADMIN).get("/api/v1/secrets").json() == []


def test_a_value_that_is_not_unicode_is_422(server) -> None:
    answer = server.client(Role.ADMIN).put(
        "/api/v1/secrets/odd",
        content=b'{"value": "pw-\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["message"].startswith("value: ") and "pw-" not in answer.text
    assert server.client(Role.ADMIN).get("/api/v1/secrets").json() == []


def test_a_secret_value_appears_nowhere(server, io_config, caplog) -> None:
    """Set a secret, use it every way the API allows, then grep every response, the
    audit trail and the log for its value."""
    caplog.set_level(logging.DEBUG)
    admin, editor, viewer = (server.client(r) for r in (Role.ADMIN, Role.EDITOR, Role.VIEWER))
    answers = [
        _set_secret(server, "pg_password", PASSWORD),
        admin.get("/api/v1/secrets"),
        viewer.get("/api/v1/connections"),
        admin.get("/api/v1/connections"),
        editor.post("/api/v1/connections/dev/test"),
        admin.post("/api/v1/connections/dev/test"),
        viewer.get("/api/v1/files/content", params={"path": "io_config.yaml"}),
        admin.put("/api/v1/secrets/bad name", json={"value": PASSWORD}),
        admin.put("/api/v1/secrets/pg_password", json={"value": PASSWORD, "x": 1}),
        editor.put("/api/v1/secrets/pg_password", json={"value": PASSWORD}),
        admin.get("/api/v1/audit", params={"limit": 1000}),
        admin.delete("/api/v1/secrets/pg_password"),
    ]
    assert [a.status_code for a in answers] == [204, 200, 200, 200, 200, 200, 200, 422, 422, 403, 200, 204]  # fmt: skip
    for answer in answers:
        assert PASSWORD not in answer.text
        assert PASSWORD not in str(answer.headers)
    trail = server.state.audit.events(limit=1000)
    assert trail and PASSWORD not in str([e.to_dict() for e in trail])
    assert PASSWORD not in caplog.text
    stored = (server.project.root / ".treadle/secrets.json").read_text()
    assert PASSWORD not in stored  # encrypted at rest
