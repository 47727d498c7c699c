"""Every route of the API, with the least role that may call it: a route added without a
rule here fails, and each rule is checked (one role less is refused, the role itself is
let through; a cookie session changing something without its CSRF token is refused)."""

from __future__ import annotations

import re

import pytest

from treadle.store.access import Role

PUBLIC = "public"  # no credentials needed
TRIGGER_TOKEN = "trigger-token"  # an API trigger's own token; user credentials do not open it

#: (method, path) -> the least role, or PUBLIC / TRIGGER_TOKEN.
MINIMUM_ROLE: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health"): PUBLIC,
    ("POST", "/api/v1/session"): PUBLIC,  # signing in
    ("GET", "/api/v1/session"): Role.VIEWER,
    ("DELETE", "/api/v1/session"): Role.VIEWER,
    ("GET", "/api/v1/users"): Role.ADMIN,
    ("POST", "/api/v1/users"): Role.ADMIN,
    ("PATCH", "/api/v1/users/{name}"): Role.ADMIN,
    ("DELETE", "/api/v1/users/{name}"): Role.ADMIN,
    ("GET", "/api/v1/tokens"): Role.VIEWER,  # one's own
    ("POST", "/api/v1/tokens"): Role.VIEWER,  # one's own
    ("DELETE", "/api/v1/tokens/{token_id}"): Role.VIEWER,  # one's own
    ("GET", "/api/v1/audit"): Role.ADMIN,
    ("GET", "/api/v1/pipelines"): Role.VIEWER,
    ("POST", "/api/v1/pipelines"): Role.EDITOR,
    ("GET", "/api/v1/pipelines/{name}"): Role.VIEWER,
    ("PUT", "/api/v1/pipelines/{name}"): Role.EDITOR,
    ("PATCH", "/api/v1/pipelines/{name}"): Role.EDITOR,
    ("DELETE", "/api/v1/pipelines/{name}"): Role.EDITOR,
    ("GET", "/api/v1/pipelines/{name}/yaml"): Role.EDITOR,  # alert URLs hold tokens
    ("POST", "/api/v1/validate"): Role.VIEWER,  # reads only
    ("POST", "/api/v1/pipelines/{name}/validate"): Role.VIEWER,  # reads only
    ("GET", "/api/v1/block-templates"): Role.VIEWER,
    ("POST", "/api/v1/pipelines/{pipeline}/blocks"): Role.EDITOR,
    ("GET", "/api/v1/pipelines/{pipeline}/blocks/{block}"): Role.VIEWER,
    ("DELETE", "/api/v1/pipelines/{pipeline}/blocks/{block}"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/blocks/{block}/rename"): Role.EDITOR,
    ("PUT", "/api/v1/pipelines/{pipeline}/blocks/{block}/file"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/edges"): Role.EDITOR,
    ("DELETE", "/api/v1/pipelines/{pipeline}/edges"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/blocks/{block}/run"): Role.EDITOR,
    ("GET", "/api/v1/pipelines/{pipeline}/blocks/{block}/runs/{run_id}"): Role.EDITOR,
    ("POST", "/api/v1/runs"): Role.EDITOR,
    ("GET", "/api/v1/runs"): Role.VIEWER,
    ("GET", "/api/v1/runs/{run_id}"): Role.VIEWER,
    ("POST", "/api/v1/runs/{run_id}/cancel"): Role.EDITOR,
    ("POST", "/api/v1/runs/{run_id}/resume"): Role.EDITOR,
    ("POST", "/api/v1/runs/{run_id}/retry"): Role.EDITOR,
    ("GET", "/api/v1/runs/{run_id}/blocks/{block}/logs"): Role.VIEWER,
    ("GET", "/api/v1/runs/{run_id}/logs/stream"): Role.VIEWER,
    ("POST", "/api/v1/triggers/{pipeline}/{trigger}/runs"): TRIGGER_TOKEN,
    ("GET", "/api/v1/triggers"): Role.VIEWER,
    ("GET", "/api/v1/pipelines/{pipeline}/triggers"): Role.VIEWER,
    ("POST", "/api/v1/pipelines/{pipeline}/triggers"): Role.EDITOR,
    ("GET", "/api/v1/pipelines/{pipeline}/triggers/{name}/preview"): Role.VIEWER,
    ("POST", "/api/v1/pipelines/{pipeline}/triggers/preview"): Role.VIEWER,  # saves nothing
    ("PUT", "/api/v1/pipelines/{pipeline}/triggers/{name}"): Role.EDITOR,
    ("DELETE", "/api/v1/pipelines/{pipeline}/triggers/{name}"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/triggers/{name}/enable"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/triggers/{name}/disable"): Role.EDITOR,
    ("POST", "/api/v1/pipelines/{pipeline}/triggers/{name}/token"): Role.EDITOR,
    ("POST", "/api/v1/backfills/preview"): Role.VIEWER,  # creates nothing
    ("GET", "/api/v1/backfills"): Role.VIEWER,
    ("POST", "/api/v1/backfills"): Role.EDITOR,
    ("GET", "/api/v1/backfills/{backfill_id}"): Role.VIEWER,
    ("POST", "/api/v1/backfills/{backfill_id}/cancel"): Role.EDITOR,
    ("POST", "/api/v1/backfills/{backfill_id}/retry"): Role.EDITOR,
    ("GET", "/api/v1/connections"): Role.VIEWER,  # secrets masked
    ("POST", "/api/v1/connections/{profile}/test"): Role.EDITOR,
    ("GET", "/api/v1/secrets"): Role.ADMIN,
    ("PUT", "/api/v1/secrets/{name}"): Role.ADMIN,
    ("DELETE", "/api/v1/secrets/{name}"): Role.ADMIN,
    ("GET", "/api/v1/files"): Role.VIEWER,
    ("DELETE", "/api/v1/files"): Role.EDITOR,
    ("GET", "/api/v1/files/content"): Role.VIEWER,
    ("PUT", "/api/v1/files/content"): Role.EDITOR,
    ("GET", "/metrics"): Role.VIEWER,
}
ROUTES = sorted(MINIMUM_ROLE)
#: Streams that answer only when their run ends: a missing run (404) ends them at once.
PARAMS = {"token_id": "999999"}


def _url(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: PARAMS.get(m[1], "nothing_here"), path)


def _documented(server) -> set[tuple[str, str]]:
    paths = server.app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_has_a_rule(server) -> None:
    documented = _documented(server)
    assert documented - set(MINIMUM_ROLE) == set(), "routes without a rule in MINIMUM_ROLE"
    assert set(MINIMUM_ROLE) - documented == set(), "rules for routes that do not exist"


def _call(client, method: str, path: str):
    return client.request(method, _url(path), json={} if method != "GET" else None)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_each_route_asks_for_its_role(server, method: str, path: str) -> None:
    least = MINIMUM_ROLE[(method, path)]
    anonymous = _call(server.anonymous(), method, path)
    if least == PUBLIC:
        assert anonymous.status_code not in (401, 403), anonymous.text
        return
    assert anonymous.status_code == 401, anonymous.text
    for role in Role:
        answer = _call(server.client(role), method, path)
        if least == TRIGGER_TOKEN:
            assert answer.status_code == 401, (role, answer.text)  # a user token opens nothing
        elif role.allows(least):
            assert answer.status_code not in (401, 403), (role, answer.text)
        else:
            assert answer.status_code == 403, (role, answer.text)
            assert answer.json()["error"] == "Forbidden"


CHANGES = [r for r in ROUTES if r[0] != "GET"]


@pytest.mark.parametrize(("method", "path"), CHANGES, ids=[f"{m} {p}" for m, p in CHANGES])
def test_a_cookie_session_needs_its_csrf_token_to_change_anything(server, method, path) -> None:
    least = MINIMUM_ROLE[(method, path)]
    browser = server.browser(Role.ADMIN)
    token = browser.headers.pop("X-CSRF-Token")
    answer = _call(browser, method, path)
    if least == PUBLIC:  # signing in: there is no session yet to take a token from
        assert answer.status_code != 500
    elif least == TRIGGER_TOKEN:
        assert answer.status_code == 401  # the cookie is not a credential here at all
    else:
        assert answer.status_code == 403, answer.text
        assert "X-CSRF-Token" in answer.json()["message"]
        wrong = browser.request(
            method, _url(path), json={}, headers={"X-CSRF-Token": token[:-1].encode() + b"\xff"}
        )
        assert wrong.status_code == 403, wrong.text
        right = browser.request(method, _url(path), json={}, headers={"X-CSRF-Token": token})
        assert right.status_code not in (401, 403), right.text
