"""Managing triggers over the API: list, create, change, enable/disable, delete, rotate a
token, preview fire times. Every change goes to triggers.yaml and the store follows."""

from __future__ import annotations

from datetime import datetime

import pytest

from treadle.store.access import Role

TRIGGERS = "/api/v1/pipelines/etl/triggers"
COMMENTED = """\
# the team's triggers
triggers:
  - name: nightly  # keep this one
    schedule: "0 5 * * *"
    timezone: Europe/Amsterdam
  - name: hook
    type: api
"""


@pytest.fixture
def triggers_file(server):
    return server.project.write("pipelines/etl/triggers.yaml", COMMENTED)


def _audit(server, action: str) -> list[dict]:
    answer = server.client(Role.ADMIN).get("/api/v1/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return answer.json()


# -- reading -----------------------------------------------------------------------------


def test_viewers_list_the_triggers_with_their_next_fire(server, triggers_file) -> None:
    viewer = server.client(Role.VIEWER)
    for url in ("/api/v1/triggers", TRIGGERS):
        answer = viewer.get(url)
        assert answer.status_code == 200, answer.text
        rows = {row["name"]: row for row in answer.json()}
        assert set(rows) == {"nightly", "hook"}
        nightly = rows["nightly"]
        assert nightly["spec"] == {
            "name": "nightly",
            "schedule": "0 5 * * *",
            "timezone": "Europe/Amsterdam",
        }
        assert nightly["enabled"] and not nightly["has_token"]
        assert nightly["last_fire"] is None
        assert datetime.fromisoformat(nightly["next_fire"]).hour == 5
        assert rows["hook"]["type"] == "api" and rows["hook"]["next_fire"] is None


def test_an_unknown_pipeline_is_404(server) -> None:
    answer = server.client(Role.VIEWER).get("/api/v1/pipelines/nope/triggers")
    assert answer.status_code == 404
    assert "nope" in answer.json()["message"]


def test_anonymous_callers_get_401(server, triggers_file) -> None:
    anonymous = server.anonymous()
    assert anonymous.get("/api/v1/triggers").status_code == 401
    assert anonymous.get(f"{TRIGGERS}/nightly/preview").status_code == 401
    assert anonymous.post(TRIGGERS, json={"name": "x", "type": "api"}).status_code == 401


def test_secret_looking_variables_are_masked(server) -> None:
    server.project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: hook
            type: api
            variables: {n: 5, api_token: abcdef123}
        """,
    )
    answer = server.client(Role.VIEWER).get(TRIGGERS)
    assert answer.json()[0]["spec"]["variables"] == {"n": 5, "api_token": "***"}
    assert "abcdef123" not in answer.text


# -- creating ----------------------------------------------------------------------------


def test_an_editor_creates_a_trigger_in_the_file(server) -> None:
    answer = server.client(Role.EDITOR).post(
        TRIGGERS, json={"name": "hourly", "every": "1h", "variables": {"n": 4}}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["spec"] == {"name": "hourly", "every": "1h", "variables": {"n": 4}}
    assert body["next_fire"] is not None
    text = (server.project.root / "pipelines/etl/triggers.yaml").read_text()
    assert "name: hourly" in text and "every: 1h" in text
    assert server.state.schedules.trigger("etl", "hourly") is not None  # the store followed
    [event] = _audit(server, "trigger.created")
    assert (event["actor"], event["target"]) == ("editor", "etl.hourly")


def test_creating_keeps_the_other_triggers_and_comments(server, triggers_file) -> None:
    answer = server.client(Role.EDITOR).post(TRIGGERS, json={"name": "web", "type": "api"})
    assert answer.status_code == 201, answer.text
    text = triggers_file.read_text()
    assert text.startswith(COMMENTED.rstrip("\n"))
    assert "# keep this one" in text and "name: web" in text


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"name": "x", "schedule": "0 5 * *"}, "a cron has 5"),
        ({"name": "x", "schedul": "@daily"}, "did you mean 'schedule'"),
        ({"name": "x", "schedule": "@daily", "every": "1h"}, "not both"),
        ({"name": "x", "every": "soon"}, "every"),
        ({"name": "x", "schedule": "@daily", "timezone": "Mars/Olympus"}, "time zone"),
        ({"name": "bad name", "type": "api"}, "invalid"),
        ({"type": "api"}, "without a name"),
        ({"name": "x", "after": "nope"}, "unknown pipeline 'nope'"),
        ({"name": "x", "after": "etl"}, "itself"),
        ({"name": "x", "type": "api", "variables": {"1x": 1}}, "not a Python name"),
        ({"name": "x", "type": "api", "max_active_runs": 0}, "max_active_runs"),
        ({"name": "x", "type": "api", "catchup": [1]}, "catchup"),
    ],
)
def test_an_invalid_trigger_is_422_with_the_problems_and_the_file_unchanged(
    server, triggers_file, body, words
) -> None:
    before = triggers_file.read_bytes()
    answer = server.client(Role.EDITOR).post(TRIGGERS, json=body)
    assert answer.status_code == 422, answer.text
    assert words in answer.text
    assert triggers_file.read_bytes() == before
    assert _audit(server, "trigger.created") == []


def test_several_problems_are_all_listed(server) -> None:
    answer = server.client(Role.EDITOR).post(
        TRIGGERS, json={"name": "x", "schedule": "nope", "timezone": "Nowhere/Land"}
    )
    assert answer.status_code == 422
    message = answer.json()["message"]
    assert "2 problems" in message and "'nope'" in message and "Nowhere/Land" in message
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()


def test_a_variable_typo_is_refused_as_the_scheduler_would(server) -> None:
    server.project.pipeline(
        "report",
        """
        variables: {month: "2024-01"}
        blocks:
          - name: load
            type: data_loader
        """,
    )
    server.project.write("pipelines/report/triggers.yaml", "triggers: []\n")
    answer = server.client(Role.EDITOR).post(
        "/api/v1/pipelines/report/triggers",
        json={"name": "monthly", "schedule": "@monthly", "variables": {"mnth": "x"}},
    )
    assert answer.status_code == 422
    assert "did you mean 'month'" in answer.text
    assert (server.project.root / "pipelines/report/triggers.yaml").read_text() == "triggers: []\n"


def test_an_event_trigger_after_another_pipeline(server) -> None:
    server.project.pipeline("report", "blocks:\n  - name: load\n    type: data_loader\n")
    answer = server.client(Role.EDITOR).post(
        "/api/v1/pipelines/report/triggers", json={"name": "after_etl", "after": "etl"}
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["type"] == "event" and answer.json()["schedule"] == "after etl"


def test_a_taken_name_is_409(server, triggers_file) -> None:
    before = triggers_file.read_bytes()
    answer = server.client(Role.EDITOR).post(TRIGGERS, json={"name": "nightly", "type": "api"})
    assert answer.status_code == 409
    assert triggers_file.read_bytes() == before


def test_creating_in_an_unknown_pipeline_is_404(server) -> None:
    answer = server.client(Role.EDITOR).post(
        "/api/v1/pipelines/nope/triggers", json={"name": "x", "type": "api"}
    )
    assert answer.status_code == 404
    assert not (server.project.root / "pipelines/nope").exists()


def test_a_body_that_is_not_an_object_is_422(server) -> None:
    client = server.client(Role.EDITOR)
    assert client.post(TRIGGERS, json=["name", "x"]).status_code == 422
    assert client.post(TRIGGERS, content=b"{nope", headers={"Content-Type": "application/json"}).status_code == 422  # fmt: skip


def test_text_that_is_not_unicode_is_422(server) -> None:
    answer = server.client(Role.EDITOR).post(
        TRIGGERS,
        content=b'{"name": "x", "type": "api", "variables": {"n": "\\ud800"}}',
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert "not valid Unicode" in answer.json()["message"]
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()


def test_an_invalid_file_on_disk_is_reported_not_overwritten(server) -> None:
    path = server.project.write("pipelines/etl/triggers.yaml", "triggers:\n  - name: [broken\n")
    answer = server.client(Role.EDITOR).post(TRIGGERS, json={"name": "x", "type": "api"})
    assert answer.status_code == 422
    assert "triggers.yaml" in answer.text
    assert path.read_text() == "triggers:\n  - name: [broken\n"


# -- changing ----------------------------------------------------------------------------


def test_an_editor_updates_a_trigger(server, triggers_file) -> None:
    answer = server.client(Role.EDITOR).put(
        f"{TRIGGERS}/nightly", json={"schedule": "30 6 * * *", "timezone": "Europe/Amsterdam"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["spec"]["schedule"] == "30 6 * * *"
    text = triggers_file.read_text()
    assert 'schedule: "30 6 * * *"' in text or "schedule: 30 6 * * *" in text
    assert "# keep this one" in text and "name: hook" in text
    stored = server.state.schedules.trigger("etl", "nightly")
    assert stored.spec["schedule"] == "30 6 * * *"
    [event] = _audit(server, "trigger.updated")
    assert event["target"] == "etl.nightly"
    assert event["detail"]["spec"]["schedule"] == "30 6 * * *"


def test_updating_an_unknown_trigger_is_404(server, triggers_file) -> None:
    answer = server.client(Role.EDITOR).put(f"{TRIGGERS}/nope", json={"type": "api"})
    assert answer.status_code == 404
    assert "nightly" in answer.json()["hint"] or "hook" in answer.json()["hint"]


def test_an_update_naming_another_trigger_is_422(server, triggers_file) -> None:
    answer = server.client(Role.EDITOR).put(
        f"{TRIGGERS}/nightly", json={"name": "other", "schedule": "@daily"}
    )
    assert answer.status_code == 422
    assert "rename" in answer.json()["hint"]


def test_an_invalid_update_leaves_the_file(server, triggers_file) -> None:
    before = triggers_file.read_bytes()
    answer = server.client(Role.EDITOR).put(f"{TRIGGERS}/nightly", json={"schedule": "@often"})
    assert answer.status_code == 422
    assert triggers_file.read_bytes() == before


def test_disable_and_enable(server, triggers_file) -> None:
    editor = server.client(Role.EDITOR)
    answer = editor.post(f"{TRIGGERS}/nightly/disable")
    assert answer.status_code == 200, answer.text
    assert answer.json()["enabled"] is False and answer.json()["next_fire"] is None
    assert "enabled: false" in triggers_file.read_text()
    assert server.state.schedules.trigger("etl", "nightly").enabled is False
    answer = editor.post(f"{TRIGGERS}/nightly/enable")
    assert answer.json()["enabled"] is True
    assert "enabled: false" not in triggers_file.read_text()
    assert [e["action"] for e in _audit(server, "trigger.*")] == [
        "trigger.enabled",
        "trigger.disabled",
    ]
    assert editor.post(f"{TRIGGERS}/nope/disable").status_code == 404


def test_delete(server, triggers_file) -> None:
    editor = server.client(Role.EDITOR)
    assert editor.delete(f"{TRIGGERS}/nightly").status_code == 204
    text = triggers_file.read_text()
    assert "nightly" not in text and "name: hook" in text
    assert server.state.schedules.trigger("etl", "nightly") is None
    assert editor.delete(f"{TRIGGERS}/nightly").status_code == 404
    [event] = _audit(server, "trigger.deleted")
    assert event["target"] == "etl.nightly"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("post", TRIGGERS, {"name": "x", "type": "api"}),
        ("put", f"{TRIGGERS}/nightly", {"schedule": "@daily"}),
        ("post", f"{TRIGGERS}/nightly/enable", None),
        ("post", f"{TRIGGERS}/nightly/disable", None),
        ("delete", f"{TRIGGERS}/nightly", None),
        ("post", f"{TRIGGERS}/hook/token", None),
    ],
)
def test_viewers_may_not_change_triggers(server, triggers_file, method, url, body) -> None:
    before = triggers_file.read_bytes()
    kwargs = {"json": body} if body is not None else {}
    answer = getattr(server.client(Role.VIEWER), method)(url, **kwargs)
    assert answer.status_code == 403
    assert "editor" in answer.json()["message"]
    assert triggers_file.read_bytes() == before


def test_a_browser_session_needs_its_csrf_token(server, triggers_file) -> None:
    browser = server.browser(Role.EDITOR)
    token = browser.headers.pop("X-CSRF-Token")
    assert browser.post(f"{TRIGGERS}/nightly/disable").status_code == 403
    answer = browser.post(f"{TRIGGERS}/nightly/disable", headers={"X-CSRF-Token": token})
    assert answer.status_code == 200


# -- tokens --------------------------------------------------------------------------------


def test_rotating_a_token_replaces_the_old_one(server, triggers_file) -> None:
    editor = server.client(Role.EDITOR)
    runs_url = "/api/v1/triggers/etl/hook/runs"
    answer = editor.post(f"{TRIGGERS}/hook/token")
    assert answer.status_code == 201, answer.text
    first = answer.json()
    assert first["url"].endswith(runs_url)
    started = server.anonymous().post(
        runs_url, json={}, headers={"Authorization": f"Bearer {first['token']}"}
    )
    assert started.status_code == 201, started.text
    second = editor.post(f"{TRIGGERS}/hook/token").json()
    assert second["token"] != first["token"]
    old = server.anonymous().post(
        runs_url, json={}, headers={"Authorization": f"Bearer {first['token']}"}
    )
    assert old.status_code == 401
    new = server.anonymous().post(
        runs_url, json={}, headers={"Authorization": f"Bearer {second['token']}"}
    )
    assert new.status_code == 201
    listed = {row["name"]: row for row in editor.get(TRIGGERS).json()}
    assert listed["hook"]["has_token"] is True
    assert "token" not in listed["hook"]["spec"]
    events = _audit(server, "trigger.token_rotated")
    assert len(events) == 2
    assert first["token"] not in str(events) and second["token"] not in str(events)


def test_only_api_triggers_have_tokens(server, triggers_file) -> None:
    editor = server.client(Role.EDITOR)
    answer = editor.post(f"{TRIGGERS}/nightly/token")
    assert answer.status_code == 422
    assert "only API triggers do" in answer.json()["message"]
    assert editor.post(f"{TRIGGERS}/nope/token").status_code == 404


# -- preview -------------------------------------------------------------------------------


def test_preview_shows_the_next_fire_times_in_the_trigger_zone(server, triggers_file) -> None:
    answer = server.client(Role.VIEWER).get(f"{TRIGGERS}/nightly/preview", params={"count": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["timezone"] == "Europe/Amsterdam" and body["enabled"] is True
    times = [datetime.fromisoformat(t) for t in body["fire_times"]]
    assert len(times) == 3
    assert all((t.hour, t.minute) == (5, 0) for t in times)
    assert times == sorted(times) and times[0] > datetime.now(times[0].tzinfo)


def test_preview_of_every_and_once(server) -> None:
    server.project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: quarter
            every: 15m
          - name: once
            schedule: "@once"
            start: 2999-01-01
        """,
    )
    viewer = server.client(Role.VIEWER)
    times = viewer.get(f"{TRIGGERS}/quarter/preview", params={"count": 4}).json()["fire_times"]
    moments = [datetime.fromisoformat(t) for t in times]
    assert [(b - a).total_seconds() for a, b in zip(moments[:-1], moments[1:], strict=True)] == [
        900.0
    ] * 3
    assert all(m.minute % 15 == 0 for m in moments)
    once = viewer.get(f"{TRIGGERS}/once/preview", params={"count": 5}).json()
    assert once["fire_times"] == ["2999-01-01T00:00:00+00:00"]


@pytest.mark.parametrize("count", [0, 101, "many"])
def test_preview_count_is_1_to_100(server, triggers_file, count) -> None:
    answer = server.client(Role.VIEWER).get(f"{TRIGGERS}/nightly/preview", params={"count": count})
    assert answer.status_code == 422
    assert "count" in answer.json()["message"]


def test_preview_of_an_api_trigger_or_an_unknown_one(server, triggers_file) -> None:
    viewer = server.client(Role.VIEWER)
    answer = viewer.get(f"{TRIGGERS}/hook/preview")
    assert answer.status_code == 422 and "no schedule" in answer.json()["message"]
    assert viewer.get(f"{TRIGGERS}/nope/preview").status_code == 404


def test_the_routes_are_in_the_openapi_document(server) -> None:
    paths = server.client(Role.VIEWER).get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/pipelines/{pipeline}/triggers/{name}/token" in paths
    assert "/api/v1/triggers" in paths


def test_an_unsaved_trigger_is_previewed_without_writing_anything(server) -> None:
    viewer = server.client("viewer")
    body = {"name": "nightly", "schedule": "0 5 * * *", "timezone": "Europe/Amsterdam"}
    answer = viewer.post("/api/v1/pipelines/etl/triggers/preview", json=body)
    assert answer.status_code == 200, answer.text
    times = answer.json()["fire_times"]
    assert len(times) == 5 and all("T05:00:00+0" in t for t in times)
    assert not (server.project.root / "pipelines/etl/triggers.yaml").exists()
    bad = viewer.post(
        "/api/v1/pipelines/etl/triggers/preview", json={**body, "schedule": "0 25 * * *"}
    )
    assert bad.status_code == 422
