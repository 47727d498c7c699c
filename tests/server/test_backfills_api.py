"""Backfills over the API: preview (nothing made), create (runs queued, the scheduler runs
them), list, show with run counts, cancel."""

from __future__ import annotations

import time

import pytest

from treadle.store.access import Role

URL = "/api/v1/backfills"
WEEK = {"pipeline": "etl", "start": "2024-01-01", "end": "2024-01-08"}


def _runs(server) -> list:
    return server.scheduler.runs.list_runs(limit=1000)


def _audit(server, action: str) -> list[dict]:
    return server.client(Role.ADMIN).get("/api/v1/audit", params={"action": action}).json()


@pytest.fixture
def nightly(server):
    server.project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: nightly
            schedule: "0 5 * * *"
            timezone: Europe/Amsterdam
            variables: {n: 2}
          - name: hook
            type: api
        """,
    )


# -- preview -------------------------------------------------------------------------------


def test_a_preview_counts_the_runs_and_makes_nothing(server) -> None:
    answer = server.client(Role.VIEWER).post(f"{URL}/preview", json=WEEK)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["total"] == 8 and body["every"] == "1d"
    assert body["first"] == "2024-01-01T00:00:00.000Z"
    assert body["last"] == "2024-01-08T00:00:00.000Z"
    assert body["variables"] == {"n": 3}
    assert server.state.schedules.backfills() == [] and _runs(server) == []


def test_a_preview_with_an_interval(server) -> None:
    body = {**WEEK, "end": "2024-01-02", "every": "6h", "variables": {"n": 7}}
    answer = server.client(Role.VIEWER).post(f"{URL}/preview", json=body)
    assert answer.json()["total"] == 5
    assert answer.json()["last"] == "2024-01-02T00:00:00.000Z"
    assert answer.json()["variables"] == {"n": 7}


def test_a_preview_on_a_trigger_uses_its_slots_and_variables(server, nightly) -> None:
    body = {
        "pipeline": "etl",
        "start": "2024-01-01",
        "end": "2024-01-03T12:00",
        "trigger": "nightly",
    }
    answer = server.client(Role.VIEWER).post(f"{URL}/preview", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["total"] == 3 and result["every"] == "0 5 * * *"
    assert result["first"] == "2024-01-01T04:00:00.000Z"  # 05:00 in Amsterdam, winter
    assert result["last"] == "2024-01-03T04:00:00.000Z"
    assert result["variables"] == {"n": 2}


def test_secret_looking_variables_are_masked(server) -> None:
    body = {**WEEK, "variables": {"api_token": "tok-abcdef"}}
    answer = server.client(Role.VIEWER).post(f"{URL}/preview", json=body)
    assert answer.json()["variables"]["api_token"] == "***"
    assert "tok-abcdef" not in answer.text


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"end": "2023-12-01"}, 422, "before it starts"),
        ({"start": "yesterday"}, 422, "not an ISO date"),
        ({"every": "soon"}, 422, "not a duration"),
        ({"every": "1s", "end": "2025-01-01"}, 422, "at most"),
        ({"pipeline": "nope"}, 404, "unknown pipeline"),
        ({"concurrency": 0}, 422, "concurrency"),
        ({"variables": {"1x": 1}}, 422, "not a Python name"),
        ({"extra": 1}, 422, "extra"),
        ({"every": "1d", "trigger": "nightly"}, 422, "not both"),
        ({"trigger": "nope"}, 404, "unknown trigger"),
        ({"trigger": "hook"}, 422, "no slots"),
        ({"trigger": "nightly", "start": "2024-01-01T06:00", "end": "2024-01-01T07:00"}, 422, "no slot"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_naming_the_problem(server, nightly, change, status, words) -> None:
    for url, role in ((f"{URL}/preview", Role.VIEWER), (URL, Role.EDITOR)):
        answer = server.client(role).post(url, json={**WEEK, **change})
        assert answer.status_code == status, answer.text
        assert words in answer.text
    assert server.state.schedules.backfills() == [] and _runs(server) == []


def test_a_missing_field_is_422(server) -> None:
    answer = server.client(Role.VIEWER).post(f"{URL}/preview", json={"pipeline": "etl"})
    assert answer.status_code == 422
    assert "start" in answer.json()["message"] and "end" in answer.json()["message"]


# -- creating ------------------------------------------------------------------------------


def test_an_editor_creates_a_backfill_and_the_scheduler_runs_it(server) -> None:
    body = {**WEEK, "end": "2024-01-03", "variables": {"n": 2}, "concurrency": 2}
    answer = server.client(Role.EDITOR).post(URL, json=body)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["status"] == "running" and created["total"] == 3
    assert created["runs"] == {"queued": 3} and created["concurrency"] == 2
    assert created["variables"] == {"n": 2}
    server.run_queued()
    shown = server.client(Role.VIEWER).get(f"{URL}/{created['id']}")
    assert shown.status_code == 200
    detail = shown.json()
    assert detail["status"] == "succeeded" and detail["runs"] == {"succeeded": 3}
    assert [r["execution_date"] for r in detail["run_list"]] == [
        "2024-01-01T00:00:00.000Z",
        "2024-01-02T00:00:00.000Z",
        "2024-01-03T00:00:00.000Z",
    ]
    assert {r["status"] for r in detail["run_list"]} == {"succeeded"}
    run = server.scheduler.runs.get_run(detail["run_list"][0]["run_id"])
    assert run.variables == {"n": 2} and run.run.trigger == "backfill"
    [event] = _audit(server, "backfill.created")
    assert (event["actor"], event["target"]) == ("editor", created["id"])
    assert event["detail"]["runs"] == 3


def test_the_same_backfill_again_is_found_not_made_twice(server) -> None:
    editor = server.client(Role.EDITOR)
    first = editor.post(URL, json=WEEK)
    again = editor.post(URL, json=WEEK)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert len(_runs(server)) == 8
    assert len(_audit(server, "backfill.created")) == 1


def test_a_backfill_on_a_trigger(server, nightly) -> None:
    body = {
        "pipeline": "etl",
        "start": "2024-01-01",
        "end": "2024-01-02T12:00",
        "trigger": "nightly",
    }
    answer = server.client(Role.EDITOR).post(URL, json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["every"] == "0 5 * * *" and answer.json()["total"] == 2
    runs = sorted(_runs(server), key=lambda r: r.execution_date)
    assert [r.execution_date for r in runs] == [1704081600.0, 1704168000.0]  # 04:00Z


def test_list_newest_first(server) -> None:
    editor = server.client(Role.EDITOR)
    older = editor.post(URL, json={**WEEK, "end": "2024-01-02"}).json()["id"]
    newer = editor.post(URL, json={**WEEK, "start": "2024-02-01", "end": "2024-02-02"}).json()["id"]
    answer = server.client(Role.VIEWER).get(URL)
    assert answer.status_code == 200
    assert [b["id"] for b in answer.json()] == [newer, older]
    assert answer.json()[0]["runs"] == {"queued": 2}


def test_an_unknown_backfill_is_404_and_a_prefix_is_not_enough(server) -> None:
    backfill = server.client(Role.EDITOR).post(URL, json=WEEK).json()["id"]
    viewer = server.client(Role.VIEWER)
    assert viewer.get(f"{URL}/bf-nope").status_code == 404
    assert viewer.get(f"{URL}/{backfill[:5]}").status_code == 404
    assert viewer.get(f"{URL}/%25").status_code == 404


# -- cancelling ----------------------------------------------------------------------------


def test_cancel_a_backfill(server) -> None:
    editor = server.client(Role.EDITOR)
    backfill = editor.post(URL, json=WEEK).json()["id"]
    answer = editor.post(f"{URL}/{backfill}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert answer.json()["runs"] == {"cancelled": 8}
    assert "editor" in answer.json()["reason"]
    assert editor.post(f"{URL}/{backfill}/cancel").status_code == 409
    assert editor.post(f"{URL}/bf-nope/cancel").status_code == 404
    server.run_queued()
    assert {r.status.value for r in _runs(server)} == {"cancelled"}
    [event] = _audit(server, "backfill.cancelled")
    assert event["target"] == backfill


def test_a_finished_backfill_cannot_be_cancelled(server) -> None:
    editor = server.client(Role.EDITOR)
    backfill = editor.post(URL, json={**WEEK, "end": "2024-01-01"}).json()["id"]
    server.run_queued()
    answer = editor.post(f"{URL}/{backfill}/cancel")
    assert answer.status_code == 409 and "succeeded" in answer.json()["message"]


# -- roles ---------------------------------------------------------------------------------


def test_viewers_preview_and_read_but_do_not_create_or_cancel(server) -> None:
    backfill = server.client(Role.EDITOR).post(URL, json=WEEK).json()["id"]
    viewer = server.client(Role.VIEWER)
    assert viewer.post(URL, json={**WEEK, "start": "2023-01-01"}).status_code == 403
    assert viewer.post(f"{URL}/{backfill}/cancel").status_code == 403
    assert viewer.get(URL).status_code == 200
    assert len(server.state.schedules.backfills()) == 1
    assert server.state.schedules.backfills()[0].status == "running"


def test_anonymous_callers_get_401(server) -> None:
    anonymous = server.anonymous()
    assert anonymous.get(URL).status_code == 401
    assert anonymous.post(f"{URL}/preview", json=WEEK).status_code == 401
    assert anonymous.post(URL, json=WEEK).status_code == 401
    assert server.state.schedules.backfills() == []


def test_the_failed_runs_of_a_finished_backfill_run_again(server) -> None:
    marker = server.project.root / "fixed.txt"
    server.project.block(
        "data_loaders",
        "load",
        f"""
        import os
        import pandas as pd
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            if not os.path.exists({str(marker)!r}):
                raise RuntimeError("the source is down")
            return pd.DataFrame({{"x": [1]}})
        """,
    )
    editor = server.client(Role.EDITOR)
    made = editor.post(URL, json={**WEEK, "end": "2024-01-02"}).json()
    server.run_queued()
    shown = editor.get(f"{URL}/{made['id']}").json()
    assert shown["status"] == "failed" and shown["runs"] == {"failed": 2}
    marker.write_text("ok")  # the source is back
    answer = editor.post(f"{URL}/{made['id']}/retry")
    assert answer.status_code == 202 and answer.json()["status"] == "running"
    deadline = time.monotonic() + 30
    while editor.get(f"{URL}/{made['id']}").json()["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    again = editor.get(f"{URL}/{made['id']}").json()
    assert again["runs"] == {"succeeded": 2} and again["status"] == "succeeded"
    assert _audit(server, "backfill.retried")[0]["target"] == made["id"]
    assert editor.post(f"{URL}/{made['id']}/retry").status_code == 422  # nothing failed now
    assert server.client(Role.VIEWER).post(f"{URL}/{made['id']}/retry").status_code == 403
