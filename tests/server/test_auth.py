"""Who may call the API: sessions with CSRF, API tokens, roles, users, the audit trail."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.server.conftest import PASSWORD
from treadle.server.app import create_app
from treadle.server.state import ServerState
from treadle.store.access import Role


def audit_actions(server) -> list[tuple[str, str, str]]:
    events = server.state.audit.events(limit=1000)
    return [(e.actor, e.action, e.target) for e in events]


def test_anonymous_callers_get_401_and_health_is_open(server) -> None:
    anonymous = server.anonymous()
    assert anonymous.get("/api/v1/health").json() == {"status": "ok"}
    answer = anonymous.get("/api/v1/users")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json()["error"] == "Unauthorized"
    assert anonymous.get("/metrics").status_code == 401


def test_a_wrong_token_is_refused(server) -> None:
    client = server.anonymous()
    for token in ("trd_nope", "nope", server.tokens[Role.ADMIN] + "x"):
        answer = client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401, token


def test_sign_in_sets_a_strict_http_only_cookie_and_gives_the_csrf_token(server) -> None:
    client = server.anonymous()
    answer = client.post("/api/v1/session", json={"name": "editor", "password": PASSWORD})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == "editor" and body["role"] == "editor" and body["via"] == "session"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    assert client.get("/api/v1/session").json()["csrf_token"] == body["csrf_token"]
    assert ("editor", "login.succeeded", "editor") in audit_actions(server)


def test_a_wrong_password_is_401_and_audited_without_the_password(server) -> None:
    client = server.anonymous()
    for name in ("editor", "nobody"):
        answer = client.post("/api/v1/session", json={"name": name, "password": "guess-guess-1"})
        assert answer.status_code == 401
        assert answer.json()["message"] == "wrong user name or password"  # same for both
    events = server.state.audit.events(action="login.failed")
    assert {e.target for e in events} == {"editor", "nobody"}
    assert all("guess-guess-1" not in str(e.to_dict()) for e in events)
    assert "set-cookie" not in answer.headers


def test_a_change_by_cookie_needs_the_csrf_token(server) -> None:
    browser = server.browser("admin")
    csrf = browser.headers.pop("X-CSRF-Token")
    new_user = {"name": "dana", "role": "viewer", "password": "a long enough secret"}
    refused = browser.post("/api/v1/users", json=new_user)
    assert refused.status_code == 403 and "X-CSRF-Token" in refused.json()["message"]
    wrong = browser.post("/api/v1/users", json=new_user, headers={"X-CSRF-Token": csrf + "x"})
    assert wrong.status_code == 403
    assert server.state.access.user("dana") is None
    assert browser.get("/api/v1/users").status_code == 200  # reading needs no token
    done = browser.post("/api/v1/users", json=new_user, headers={"X-CSRF-Token": csrf})
    assert done.status_code == 201


def test_sign_out_ends_the_session(server) -> None:
    browser = server.browser("viewer")
    assert browser.delete("/api/v1/session").status_code == 204
    assert browser.get("/api/v1/session").status_code == 401


def test_an_expired_session_is_refused(server) -> None:
    user = server.state.access.user("viewer")
    value, _ = server.state.access.create_session(user, now=1000.0, seconds=60)
    client = server.anonymous()
    client.cookies.set("treadle_session", value)
    assert client.get("/api/v1/session").status_code == 401


@pytest.mark.parametrize(
    ("role", "allowed"),
    [("viewer", False), ("editor", False), ("admin", True)],
)
def test_only_admins_manage_users_and_read_the_audit_trail(server, role, allowed) -> None:
    client = server.client(role)
    for method, url, body in [
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", {"name": "eve", "password": "x" * 12}),
        ("PATCH", "/api/v1/users/viewer", {"role": "editor"}),
        ("DELETE", "/api/v1/users/editor", None),
        ("GET", "/api/v1/audit", None),
    ]:
        answer = client.request(method, url, json=body)
        if allowed:
            assert answer.status_code < 300, (method, url, answer.text)
        else:
            assert answer.status_code == 403, (method, url, answer.text)
            assert f"needs the admin role; {role} is a {role}" in answer.json()["message"]


def test_users_api_adds_changes_and_deletes_with_audit(server) -> None:
    admin = server.client("admin")
    added = admin.post(
        "/api/v1/users", json={"name": "dana", "role": "editor", "password": PASSWORD}
    )
    assert added.status_code == 201 and added.json()["role"] == "editor"
    assert "password" not in added.text and PASSWORD not in added.text
    assert (
        admin.post("/api/v1/users", json={"name": "dana", "password": PASSWORD}).status_code == 422
    )
    changed = admin.patch(
        "/api/v1/users/dana", json={"role": "viewer", "password": "another long one"}
    )
    assert changed.status_code == 200 and changed.json()["role"] == "viewer"
    assert server.state.access.verify_password("dana", "another long one") is not None
    assert admin.delete("/api/v1/users/dana").status_code == 204
    assert admin.delete("/api/v1/users/dana").status_code == 404
    actions = [a for _, a, t in audit_actions(server) if t == "dana"]
    assert actions == [
        "user.deleted", "user.role_changed", "user.password_changed", "user.added",
    ]  # fmt: skip


def test_bad_user_input_is_422_naming_the_field(server) -> None:
    admin = server.client("admin")
    cases = [
        ({"name": "dana", "password": "short"}, "at least 12 characters"),
        ({"name": "da na", "password": PASSWORD}, "not a valid user name"),
        ({"name": "dana", "role": "owner", "password": PASSWORD}, "role"),
        ({"name": "dana", "password": PASSWORD, "extra": 1}, "extra"),
    ]
    for body, expected in cases:
        answer = admin.post("/api/v1/users", json=body)
        assert answer.status_code == 422, body
        assert expected in answer.json()["message"], answer.json()
    malformed = admin.post(
        "/api/v1/users", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert malformed.status_code == 422 and malformed.json()["error"] == "InvalidRequest"


def test_the_last_admin_cannot_be_removed_or_demoted(server) -> None:
    admin = server.client("admin")
    assert admin.patch("/api/v1/users/admin", json={"role": "viewer"}).status_code == 409
    assert admin.delete("/api/v1/users/admin").status_code == 409
    assert server.state.access.user("admin").role is Role.ADMIN


def test_tokens_are_shown_once_listed_by_owner_and_revoked(server) -> None:
    viewer = server.client("viewer")
    made = viewer.post("/api/v1/tokens", json={"name": "laptop"})
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("trd_")
    listed = viewer.get("/api/v1/tokens").json()
    assert {t["user"] for t in listed} == {"viewer"} and token not in str(listed)
    fresh = server.anonymous()
    fresh.headers["Authorization"] = f"Bearer {token}"
    assert fresh.get("/api/v1/session").json()["user"] == "viewer"
    assert viewer.post("/api/v1/tokens", json={"user": "admin"}).status_code == 403
    other = server.client("editor").get("/api/v1/tokens").json()
    assert made.json()["id"] not in [t["id"] for t in other]
    assert server.client("editor").delete(f"/api/v1/tokens/{made.json()['id']}").status_code == 404
    assert viewer.delete(f"/api/v1/tokens/{made.json()['id']}").status_code == 204
    assert fresh.get("/api/v1/session").status_code == 401
    all_tokens = server.client("admin").get("/api/v1/tokens").json()
    assert {t["user"] for t in all_tokens} == {"admin", "editor", "viewer"}


def test_tokens_are_kept_hashed(server) -> None:
    rows = server.state.runs.db.transaction(write=False)
    with rows as tx:
        hashes = [row[0] for row in tx.all("SELECT token_hash FROM api_tokens")]
    assert hashes and not any(h.startswith("trd_") for h in hashes)
    assert not any(token in hashes for token in server.tokens.values())


def test_audit_trail_pages_and_filters(server) -> None:
    admin = server.client("admin")
    for n in range(5):
        admin.post("/api/v1/tokens", json={"name": f"t{n}"})
    page = admin.get("/api/v1/audit", params={"limit": 3, "action": "token.*"}).json()
    assert [e["action"] for e in page] == ["token.created"] * 3
    assert page[0]["actor"] == "admin" and page[0]["origin"] == "testclient"
    older = admin.get(
        "/api/v1/audit", params={"limit": 3, "before": page[-1]["id"], "action": "token.*"}
    )
    assert [e["detail"]["name"] for e in older.json()] == ["t1", "t0"]
    assert admin.get("/api/v1/audit", params={"limit": 0}).status_code == 422


def test_oversized_bodies_are_refused_with_413(server) -> None:
    admin = server.client("admin")
    big = b'{"name": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    answer = admin.post("/api/v1/users", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and answer.json()["error"] == "BodyTooLarge"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(12):
            yield b"x" * (1024 * 1024)

    chunked = admin.post(
        "/api/v1/users", content=chunks(), headers={"content-type": "application/json"}
    )
    assert chunked.status_code == 413


def test_responses_carry_security_headers(server) -> None:
    answer = server.anonymous().get("/api/v1/health")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    docs = server.anonymous().get("/api/v1/docs")  # FastAPI's docs page has an inline script
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers
    assert "cdn" not in docs.text.lower()  # Swagger UI comes from the package: works offline
    for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', docs.text):
        assert server.anonymous().get(asset).status_code == 200, asset


def test_metrics_count_requests_and_runs(server) -> None:
    viewer = server.client("viewer")
    viewer.get("/api/v1/session")
    viewer.get("/api/v1/runs/nope")
    text = viewer.get("/metrics").text
    assert 'treadle_http_requests_total{method="GET",route="/api/v1/session",status="200"}' in text
    assert 'route="/api/v1/runs/{run_id}",status="404"}' in text  # the template, not the id
    assert "treadle_runs" in text


def test_with_auth_off_every_caller_is_an_admin(project) -> None:
    from tests.server.conftest import write_etl
    from treadle.scheduler.service import Scheduler

    write_etl(project)
    with Scheduler(project.root) as scheduler:
        state = ServerState.for_scheduler(scheduler, auth=False)
        with TestClient(create_app(state)) as client:
            me = client.get("/api/v1/session").json()
            assert (me["user"], me["role"], me["via"]) == ("local", "admin", "open")
            assert client.get("/api/v1/users").status_code == 200
