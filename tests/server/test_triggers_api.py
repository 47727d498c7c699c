"""API triggers: POST /api/v1/triggers/{pipeline}/{trigger}/runs with a bearer token."""

from __future__ import annotations

import secrets
import time

import pytest
from fastapi.testclient import TestClient

from treadle.scheduler.service import Scheduler
from treadle.server.app import create_app
from treadle.server.state import ServerState
from treadle.store.scheduling import hash_token

URL = "/api/v1/triggers/etl/webhook/runs"


@pytest.fixture
def api(project):
    project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, variables, execution_date):
            return {"month": variables["month"], "day": execution_date.isoformat()}
        """,
    )
    project.pipeline(
        "etl",
        """
        variables: {month: "2024-01"}
        blocks:
          - name: load
            type: data_loader
        """,
    )
    project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: webhook
            type: api
          - name: nightly
            schedule: "@daily"
        """,
    )
    with Scheduler(project.root) as scheduler:
        record = scheduler.api_trigger("etl", "webhook")
        token = secrets.token_urlsafe(32)
        scheduler.schedules.set_token(record.id, hash_token(token), time.time())
        with TestClient(create_app(ServerState.for_scheduler(scheduler))) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            yield client, scheduler, token


def _wait_finished(scheduler: Scheduler, run_id: str) -> str:
    deadline = time.monotonic() + 30
    while True:
        scheduler.start_queued()
        status = scheduler.runs.get_run(run_id).run.status.value
        if status not in ("queued", "running"):
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.02)


def test_a_good_token_starts_a_run_with_the_variables(api) -> None:
    client, scheduler, _ = api
    answer = client.post(
        URL, json={"variables": {"month": "2024-03"}, "execution_date": "2024-03-01T00:00:00Z"}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "queued" and body["pipeline"] == "etl"
    assert _wait_finished(scheduler, body["run_id"]) == "succeeded"
    detail = scheduler.runs.get_run(body["run_id"])
    assert detail.variables == {"month": "2024-03"}
    assert (detail.run.trigger, detail.run.triggered_by) == ("api", "webhook")
    assert detail.run.execution_date == 1709251200.0


def test_no_body_is_fine(api) -> None:
    client, scheduler, _ = api
    answer = client.post(URL)
    assert answer.status_code == 201
    assert _wait_finished(scheduler, answer.json()["run_id"]) == "succeeded"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_a_missing_or_wrong_token_is_401_and_starts_nothing(api, headers) -> None:
    client, scheduler, _ = api
    del client.headers["Authorization"]
    answer = client.post(URL, json={}, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert scheduler.runs.list_runs() == []


def test_a_token_is_for_its_trigger_only(api) -> None:
    client, scheduler, _ = api
    for url in (
        "/api/v1/triggers/etl/nightly/runs",  # not an API trigger
        "/api/v1/triggers/etl/nope/runs",
        "/api/v1/triggers/other/webhook/runs",
    ):
        assert client.post(url, json={}).status_code == 401
    assert scheduler.runs.list_runs() == []


def test_a_rotated_token_replaces_the_old_one(api) -> None:
    client, scheduler, old = api
    record = scheduler.api_trigger("etl", "webhook")
    scheduler.schedules.set_token(record.id, hash_token("the-new-token"), time.time())
    assert client.post(URL, json={}).status_code == 401
    answer = client.post(URL, json={}, headers={"Authorization": "Bearer the-new-token"})
    assert answer.status_code == 201
    assert old != "the-new-token"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"variables": {}, "extra": 1}, "extra"),
        ({"variables": "month=2024-03"}, "variables"),
        ({"execution_date": "yesterday"}, "execution_date"),
    ],
)
def test_a_bad_body_is_422_naming_the_field(api, body, field) -> None:
    client, scheduler, _ = api
    answer = client.post(URL, json=body)
    assert answer.status_code == 422
    assert field in str(answer.json()["detail"])
    assert scheduler.runs.list_runs() == []


def test_a_body_that_is_not_json_is_422(api) -> None:
    client, scheduler, _ = api
    answer = client.post(URL, content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert scheduler.runs.list_runs() == []


def test_a_variable_typo_is_422_with_a_suggestion(api) -> None:
    client, scheduler, _ = api
    answer = client.post(URL, json={"variables": {"mnth": "2024-03"}})
    assert answer.status_code == 422
    assert "month" in answer.text
    assert scheduler.runs.list_runs() == []


def test_openapi_describes_the_route(api) -> None:
    client, _, _ = api
    spec = client.get("/api/v1/openapi.json").json()
    assert "/api/v1/triggers/{pipeline}/{trigger}/runs" in spec["paths"]


def test_a_disabled_trigger_answers_401_without_the_token_and_422_with_it(api, project) -> None:
    client, scheduler, _ = api
    path = project.root / "pipelines/etl/triggers.yaml"
    path.write_text(path.read_text().replace("type: api", "type: api\n    enabled: false"))
    wrong = client.post(URL, json={}, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401 and "disabled" not in wrong.text
    right = client.post(URL, json={})
    assert right.status_code == 422 and "disabled" in right.json()["message"]
    assert scheduler.runs.list_runs() == []


def test_without_the_token_a_bad_body_is_still_401(api) -> None:
    client, scheduler, _ = api
    del client.headers["Authorization"]
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = client.post(URL, json={"variablez": {}}, headers=headers)
        assert answer.status_code == 401, answer.text
        nope = client.post("/api/v1/triggers/nope/x/runs", json={"x": 1}, headers=headers)
        assert nope.status_code == 401
    assert scheduler.runs.list_runs() == []
