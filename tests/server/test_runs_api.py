"""/api/v1/runs: start, list (paged), show, cancel, resume, retry, block logs, live stream."""

from __future__ import annotations

import base64
import json
import threading
import time
from unittest.mock import ANY

import pytest

from tests.server.conftest import next_event, read_events
from treadle.store.access import Role

RUNS = "/api/v1/runs"


@pytest.fixture
def flaky(server):
    """More pipelines: ``flaky`` (``flaky_load`` → ``flaky_double``), whose first block
    fails while ``fail`` is true; ``chatty``, whose one block prints a line every 0.1 s;
    ``slow``, three blocks in a row that sleep ``pause`` seconds each; ``loud``, whose
    one block prints 5000 lines."""
    server.project.block(
        "data_loaders",
        "flaky_load",
        """
        from treadle import data_loader

        @data_loader
        def flaky_load(*, variables):
            print("loading; token is s3cr3t-value-123")
            if variables["fail"]:
                raise ValueError("asked to fail")
            return [1, 2, 3]
        """,
    )
    server.project.block(
        "transformers",
        "flaky_double",
        """
        from treadle import transformer

        @transformer
        def flaky_double(values):
            print("doubling", len(values))
            return [v * 2 for v in values]
        """,
    )
    server.project.pipeline(
        "flaky",
        """
        variables: {fail: true}
        blocks:
          - name: flaky_load
            type: data_loader
          - name: flaky_double
            type: transformer
            upstream: [flaky_load]
        """,
    )
    server.project.block(
        "data_loaders",
        "talk",
        """
        import time
        from treadle import data_loader

        @data_loader
        def talk(*, variables):
            for i in range(int(variables["lines"])):
                print(f"line {i}")
                time.sleep(0.1)
            return i
        """,
    )
    server.project.pipeline(
        "chatty",
        """
        variables: {lines: 5}
        blocks:
          - name: talk
            type: data_loader
        """,
    )
    for name in ("nap1", "nap2", "nap3"):
        server.project.block(
            "data_loaders",
            name,
            f"""
            import time
            from treadle import data_loader

            @data_loader
            def {name}(*args, variables):
                time.sleep(float(variables["pause"]))
                return 1
            """,
        )
    server.project.pipeline(
        "slow",
        """
        variables: {pause: 0.5}
        blocks:
          - {name: nap1, type: data_loader}
          - {name: nap2, type: data_loader, upstream: [nap1]}
          - {name: nap3, type: data_loader, upstream: [nap2]}
        """,
    )
    server.project.block(
        "data_loaders",
        "shout",
        """
        from treadle import data_loader

        @data_loader
        def shout():
            for i in range(5000):
                print(f"{i:05d} " + "x" * 100)
        """,
    )
    server.project.pipeline("loud", "blocks: [{name: shout, type: data_loader}]")
    return server


def add_secret(server) -> None:
    """The value printed by ``flaky_load`` becomes a secret after the run wrote it."""
    server.project.write(".env", "API_TOKEN=s3cr3t-value-123\n")


def start(server, pipeline: str = "etl", role: Role = Role.EDITOR, **body) -> str:
    answer = server.client(role).post(RUNS, json={"pipeline": pipeline, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()["run_id"]


def finished(server, pipeline: str = "etl", **body) -> dict:
    run_id = start(server, pipeline, **body)
    server.run_queued()
    return server.client(Role.VIEWER).get(f"{RUNS}/{run_id}").json()


def error(answer, status: int) -> str:
    assert answer.status_code == status, answer.text
    return answer.json()["message"] + " " + answer.json().get("hint", "")


# -- starting and showing ---------------------------------------------------------------------


def test_a_run_started_from_the_browser_is_labelled_ui_and_by_a_token_api(server):
    browser, program = server.browser("editor"), server.client(Role.EDITOR)
    from_browser = browser.post(RUNS, json={"pipeline": "etl"}).json()["run_id"]
    from_program = program.post(RUNS, json={"pipeline": "etl"}).json()["run_id"]
    viewer = server.client(Role.VIEWER)
    assert viewer.get(f"{RUNS}/{from_browser}").json()["trigger"] == "ui"
    assert viewer.get(f"{RUNS}/{from_program}").json()["trigger"] == "api"


def test_a_started_run_is_queued_then_run_by_the_scheduler(server):
    answer = server.client(Role.EDITOR).post(
        RUNS, json={"pipeline": "etl", "variables": {"n": "4"}, "execution_date": "2024-05-01"}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "queued"
    assert body["execution_date"] == "2024-05-01T00:00:00.000Z"
    queued = server.client(Role.VIEWER).get(f"{RUNS}/{body['run_id']}").json()
    assert (queued["status"], queued["trigger"], queued["triggered_by"]) == (
        "queued",
        "api",
        "editor",
    )

    server.run_queued()
    run = server.client(Role.VIEWER).get(f"{RUNS}/{body['run_id']}").json()
    assert run["status"] == "succeeded"
    assert [(b["block"], b["status"]) for b in run["blocks"]] == [
        ("load", "succeeded"),
        ("double", "succeeded"),
    ]
    assert run["blocks"][0]["rows"] == 4
    assert run["variables"]["n"] == 4
    assert {a["block"] for a in run["attempts"]} == {"load", "double"}


def test_a_run_id_prefix_finds_the_run(server):
    run_id = start(server)
    assert server.client(Role.VIEWER).get(f"{RUNS}/{run_id[:-2]}").json()["run_id"] == run_id


def test_starting_an_unknown_pipeline_is_404_with_a_suggestion(server):
    message = error(server.client(Role.EDITOR).post(RUNS, json={"pipeline": "elt"}), 404)
    assert "unknown pipeline 'elt'" in message and "did you mean 'etl'?" in message
    assert server.scheduler.runs.list_runs() == []


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"pipeline": "etl", "variables": {"a b": 1}}, "variable name 'a b' is not a Python name"),
        ({"pipeline": "etl", "variables": {"n": "many"}}, "must be a int"),
        ({"pipeline": "etl", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"pipeline": "etl", "execution_date": "soon"}, "execution_date"),
        ({"variables": {}}, "pipeline: Field required"),
    ],
)
def test_bad_start_requests_are_422(server, body, expected):
    assert expected in error(server.client(Role.EDITOR).post(RUNS, json=body), 422)
    assert server.scheduler.runs.list_runs() == []


def test_a_typo_of_a_variable_is_422(flaky):
    body = {"pipeline": "flaky", "variables": {"fails": False}}
    message = error(flaky.client(Role.EDITOR).post(RUNS, json=body), 422)
    assert "unknown variable 'fails'" in message and "did you mean 'fail'?" in message


def test_an_unknown_run_is_404(server):
    viewer, editor = server.client(Role.VIEWER), server.client(Role.EDITOR)
    assert "no run 'nope'" in error(viewer.get(f"{RUNS}/nope"), 404)
    assert "no run" in error(viewer.get(f"{RUNS}/nope/blocks/load/logs"), 404)
    assert "no run" in error(viewer.get(f"{RUNS}/nope/logs/stream"), 404)
    assert "no run" in error(editor.post(f"{RUNS}/nope/cancel"), 404)
    assert "no run" in error(editor.post(f"{RUNS}/nope/resume"), 404)
    assert "no run" in error(editor.post(f"{RUNS}/nope/retry", json={"from_block": "x"}), 404)


# -- roles -------------------------------------------------------------------------------------


def test_a_viewer_may_read_but_not_start_cancel_resume_or_retry(server):
    run_id = start(server)
    viewer = server.client(Role.VIEWER)
    assert viewer.get(RUNS).status_code == 200
    assert viewer.get(f"{RUNS}/{run_id}").status_code == 200
    assert viewer.get(f"{RUNS}/{run_id}/blocks/load/logs").status_code == 200
    for path, body in [
        (RUNS, {"pipeline": "etl"}),
        (f"{RUNS}/{run_id}/cancel", None),
        (f"{RUNS}/{run_id}/resume", None),
        (f"{RUNS}/{run_id}/retry", {"from_block": "load"}),
    ]:
        assert "needs the editor role" in error(viewer.post(path, json=body), 403)
    assert len(server.scheduler.runs.list_runs()) == 1


def test_anonymous_callers_get_401(server):
    anonymous = server.anonymous()
    assert anonymous.get(RUNS).status_code == 401
    assert anonymous.post(RUNS, json={"pipeline": "etl"}).status_code == 401
    assert anonymous.get(f"{RUNS}/x/logs/stream").status_code == 401


def test_a_browser_session_needs_its_csrf_token_to_start_a_run(server):
    browser = server.browser(Role.EDITOR)
    token = browser.headers.pop("X-CSRF-Token")
    assert "X-CSRF-Token" in error(browser.post(RUNS, json={"pipeline": "etl"}), 403)
    assert browser.get(RUNS).status_code == 200  # reading needs no token
    assert server.scheduler.runs.list_runs() == []
    browser.headers["X-CSRF-Token"] = token
    assert browser.post(RUNS, json={"pipeline": "etl"}).status_code == 201


def test_an_admin_may_do_what_an_editor_may(server):
    run_id = start(server, role=Role.ADMIN)
    assert server.client(Role.ADMIN).post(f"{RUNS}/{run_id}/cancel").status_code == 200


# -- listing and paging ------------------------------------------------------------------------


def insert_runs(server, count: int) -> list[str]:
    """``count`` finished runs, straight into the store; ids newest first. Pairs of runs
    share a creation time, so pages must be cut on (created_at, id)."""
    store = server.scheduler.runs
    rows = []
    for i in range(count):
        at = 1_700_000_000.0 + (i // 2) * 60.0
        rows.append(
            {
                "id": f"run-{i:04d}",
                "project": store.project,
                "pipeline": ("etl", "report")[i % 2],
                "status": ("succeeded", "failed", "cancelled")[i % 3],
                "trigger": ("api", "schedule")[i % 2],
                "created_at": store.db.ts(at),
            }
        )
    store.db.executemany(
        'INSERT INTO pipeline_runs (id, project, pipeline, status, variables, "trigger", '
        "file_hashes, created_at) VALUES (:id, :project, :pipeline, :status, '{}', :trigger, "
        "'{}', :created_at)",
        rows,
    )
    return [row["id"] for row in reversed(rows)]


def walk(client, **params) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"before": cursor} if cursor else {})}
        answer = client.get(RUNS, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        seen += [r["run_id"] for r in body["runs"]]
        pages += 1
        cursor = body["next"]
        if cursor is None:
            return seen, pages
        assert pages < 100


def test_pages_walked_with_next_hold_every_run_once_newest_first(server):
    ids = insert_runs(server, 120)
    viewer = server.client(Role.VIEWER)
    assert walk(viewer, limit=25) == (ids, 5)
    assert walk(viewer) == (ids, 3)
    assert walk(viewer, limit=120) == (ids, 1)  # exactly one full page: no empty one after
    assert walk(viewer, limit=500) == (ids, 1)
    etl = [i for i in ids if int(i[-4:]) % 2 == 0]
    assert walk(viewer, pipeline="etl", limit=7) == (etl, 9)
    failed_by_schedule = [i for i in ids if int(i[-4:]) % 2 == 1 and int(i[-4:]) % 3 == 1]
    seen, _ = walk(viewer, status="failed", trigger="schedule", limit=3)
    assert seen == failed_by_schedule


def test_a_page_may_start_after_a_run_id(server):
    ids = insert_runs(server, 10)
    body = server.client(Role.VIEWER).get(RUNS, params={"before": ids[3], "limit": 4}).json()
    assert [r["run_id"] for r in body["runs"]] == ids[4:8]
    assert body["next"] is not None
    assert set(body["runs"][0]) >= {"run_id", "pipeline", "status", "created_at", "duration"}


def cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status": "done"}, "'queued', 'running', 'succeeded', 'failed' or 'cancelled'"),
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 501}, "limit: Input should be less than or equal to 500"),
        ({"limit": "many"}, "limit: Input should be a valid integer"),
        ({"before": "garbage"}, "neither a page cursor nor a run id"),
        ({"before": cursor(123)}, "neither a page cursor nor a run id"),
        ({"before": cursor([1e300, "x"])}, "neither a page cursor nor a run id"),
        ({"before": cursor(["a", "b"])}, "neither a page cursor nor a run id"),
        ({"before": "é"}, "neither a page cursor nor a run id"),
    ],
)
def test_bad_list_filters_are_422(server, params, expected):
    assert expected in error(server.client(Role.VIEWER).get(RUNS, params=params), 422)


# -- cancelling --------------------------------------------------------------------------------


def test_a_queued_run_is_cancelled_at_once_and_never_starts(server):
    run_id = start(server)
    answer = server.client(Role.EDITOR).post(f"{RUNS}/{run_id}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "run_id": run_id,
        "status": "cancelled",
        "cancelled": True,
        "message": "cancelled",
    }
    server.run_queued()
    run = server.client(Role.VIEWER).get(f"{RUNS}/{run_id}").json()
    assert run["status"] == "cancelled"
    assert run["cancel_reason"] == "cancelled by editor through the API"


def test_a_running_run_is_asked_to_stop(flaky):
    run_id = start(flaky, "slow", variables={"pause": 1.0})
    flaky.scheduler.start_queued()
    viewer = flaky.client(Role.VIEWER)
    deadline = time.monotonic() + 20
    while viewer.get(f"{RUNS}/{run_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answer = flaky.client(Role.EDITOR).post(f"{RUNS}/{run_id}/cancel")
    assert answer.status_code == 200, answer.text
    assert answer.json()["cancelled"] is False
    assert "the block that is running finishes first" in answer.json()["message"]  # inline
    flaky.run_queued()
    run = viewer.get(f"{RUNS}/{run_id}").json()
    assert run["status"] == "cancelled"
    assert run["blocks"][-1]["status"] == "cancelled"


def test_cancelling_a_finished_run_is_409(server):
    run = finished(server)
    message = error(server.client(Role.EDITOR).post(f"{RUNS}/{run['run_id']}/cancel"), 409)
    assert message.startswith(f"cannot cancel run {run['run_id']}: it already finished (succeeded)")


# -- resuming and retrying ---------------------------------------------------------------------


def wait_finished(server, run_id: str, timeout: float = 30.0) -> dict:
    viewer = server.client(Role.VIEWER)
    deadline = time.monotonic() + timeout
    while True:
        run = viewer.get(f"{RUNS}/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.02)


def test_a_failed_run_resumes_from_its_failed_block_under_its_own_id(flaky):
    run = finished(flaky, "flaky")
    assert run["status"] == "failed"
    assert [b["status"] for b in run["blocks"]] == ["failed", "upstream_failed"]

    answer = flaky.client(Role.EDITOR).post(
        f"{RUNS}/{run['run_id']}/resume", json={"variables": {"fail": False}}
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["run_id"] == run["run_id"]
    assert answer.json()["status"] in ("running", "succeeded")

    resumed = wait_finished(flaky, run["run_id"])
    assert resumed["status"] == "succeeded"
    assert resumed["resumes"] == 1
    assert [(b["block"], b["attempts"]) for b in resumed["blocks"]] == [
        ("flaky_load", 2),
        ("flaky_double", 1),
    ]


def test_a_retry_reruns_a_block_and_what_is_downstream(flaky):
    run = finished(flaky, "flaky", variables={"fail": False})
    answer = flaky.client(Role.EDITOR).post(
        f"{RUNS}/{run['run_id']}/retry", json={"from_block": "flaky_double"}
    )
    assert answer.status_code == 202, answer.text
    retried = wait_finished(flaky, run["run_id"])
    assert retried["status"] == "succeeded"
    assert [(b["block"], b["attempts"]) for b in retried["blocks"]] == [
        ("flaky_load", 1),
        ("flaky_double", 2),
    ]


def test_resume_and_retry_refusals_are_4xx_and_start_nothing(flaky):
    editor = flaky.client(Role.EDITOR)
    done = finished(flaky, "flaky", variables={"fail": False})["run_id"]
    assert "nothing left to run" in error(editor.post(f"{RUNS}/{done}/resume"), 422)
    message = error(editor.post(f"{RUNS}/{done}/retry", json={"from_block": "flaky_dubble"}), 404)
    assert "did you mean 'flaky_double'?" in message
    assert "needs from_block" in error(editor.post(f"{RUNS}/{done}/retry", json={}), 422)
    message = error(editor.post(f"{RUNS}/{done}/resume", json={"variables": {"fails": 1}}), 422)
    assert "did you mean 'fail'?" in message
    assert "Extra inputs" in error(editor.post(f"{RUNS}/{done}/resume", json={"x": 1}), 422)
    assert flaky.client(Role.VIEWER).get(f"{RUNS}/{done}").json()["resumes"] == 0

    queued = start(flaky, "flaky")
    assert "is queued: only a stopped run" in error(editor.post(f"{RUNS}/{queued}/resume"), 409)


def test_a_run_started_by_treadle_run_is_resumed_by_the_cli(flaky):
    from treadle.scheduler.launch import run_pipeline

    result = run_pipeline(flaky.project.root, "flaky", trigger="cli")
    message = error(flaky.client(Role.EDITOR).post(f"{RUNS}/{result.run_id}/resume"), 409)
    assert f"treadle resume {result.run_id}" in message


def test_the_server_stopping_cancels_the_resumes_it_runs(flaky):
    run = finished(flaky, "slow", variables={"pause": 0.01})
    client = flaky.client(Role.EDITOR)
    with client:  # runs the app's lifespan: leaving it stops the server
        answer = client.post(
            f"{RUNS}/{run['run_id']}/retry", json={"from_block": "nap1", "variables": {"pause": 1}}
        )
        assert answer.status_code == 202, answer.text
        assert list(flaky.app.state.background_runs.active.values()) == [run["run_id"]]
    assert flaky.app.state.background_runs.active == {}
    stopped = wait_finished(flaky, run["run_id"], timeout=1)
    assert stopped["status"] == "cancelled"
    assert stopped["cancel_reason"] == "the server stopped"


# -- logs ----------------------------------------------------------------------------------------


def test_a_block_log_is_read_whole_and_tailed_from_an_offset(flaky):
    run = finished(flaky, "chatty")
    viewer = flaky.client(Role.VIEWER)
    url = f"{RUNS}/{run['run_id']}/blocks/talk/logs"
    body = viewer.get(url).json()
    lines = body["text"].splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == [f"line {i}" for i in range(5)]
    assert body["size"] == body["next_offset"] == len(body["text"].encode())
    assert (body["run_id"], body["block"], body["item"], body["offset"]) == (
        run["run_id"],
        "talk",
        None,
        0,
    )
    first = len(lines[0]) + 1
    tail = viewer.get(url, params={"offset": first}).json()
    assert tail["text"] == body["text"][first:]
    part = viewer.get(url, params={"max_bytes": first + 3}).json()  # whole lines only
    assert (part["text"], part["next_offset"]) == (lines[0] + "\n", first)
    assert viewer.get(url, params={"offset": body["size"]}).json()["text"] == ""


def test_secrets_are_masked_in_logs(flaky):
    run = finished(flaky, "flaky")
    add_secret(flaky)
    body = flaky.client(Role.VIEWER).get(f"{RUNS}/{run['run_id']}/blocks/flaky_load/logs").json()
    assert "token is ***" in body["text"]
    assert "s3cr3t" not in body["text"]


def test_a_block_that_logged_nothing_has_an_empty_log(server):
    run = finished(server)
    body = server.client(Role.VIEWER).get(f"{RUNS}/{run['run_id']}/blocks/double/logs").json()
    assert (body["text"], body["size"]) == ("", 0)


def test_bad_log_requests_are_4xx(server):
    run_id = finished(server)["run_id"]
    viewer = server.client(Role.VIEWER)
    message = error(viewer.get(f"{RUNS}/{run_id}/blocks/lode/logs"), 404)
    assert f"run {run_id} has no block 'lode'" in message and "did you mean 'load'?" in message
    assert "past the end" in error(viewer.get(f"{RUNS}/{run_id}/blocks/load/logs?offset=9"), 422)
    assert "offset" in error(viewer.get(f"{RUNS}/{run_id}/blocks/load/logs?offset=-1"), 422)
    assert "item" in error(viewer.get(f"{RUNS}/{run_id}/blocks/load/logs?item=x"), 422)


# -- the live stream ------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_the_stream_sends_log_lines_and_statuses_live_until_the_run_ends(flaky):
    run_id = start(flaky, "chatty")
    runner = threading.Thread(target=flaky.run_queued)
    with flaky.client(Role.VIEWER).stream("GET", f"{RUNS}/{run_id}/logs/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        first = next_event(lines)
        assert first == (
            "status",
            {"run_id": run_id, "block": None, "status": "queued", "why": ANY},
        )
        runner.start()
        events = [first, *read_events(lines)]
    runner.join()
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "end" and events[-1][1] == {"run_id": run_id, "status": "succeeded"}
    logs = [data for kind, data in events if kind == "log"]
    assert [d["line"].split("] ", 1)[1] for d in logs] == [f"line {i}" for i in range(5)]
    assert {d["block"] for d in logs} == {"talk"}
    run_statuses = [d["status"] for kind, d in events if kind == "status" and d["block"] is None]
    assert run_statuses == ["queued", "running", "succeeded"]
    talk = [d["status"] for kind, d in events if kind == "status" and d["block"] == "talk"]
    assert talk[-2:] == ["running", "succeeded"]
    run_ended = events.index(("status", {**events[0][1], "status": "succeeded", "why": ""}))
    assert kinds.index("log") < run_ended  # lines came while it ran, not all at the end


@pytest.mark.timeout(60)
def test_the_stream_of_a_finished_run_replays_it_masked_and_ends(flaky):
    run_id = finished(flaky, "flaky")["run_id"]
    add_secret(flaky)
    with flaky.client(Role.VIEWER).stream("GET", f"{RUNS}/{run_id}/logs/stream") as response:
        events = read_events(response.iter_lines())
    assert events[-1] == ("end", {"run_id": run_id, "status": "failed"})
    lines = [d["line"] for kind, d in events if kind == "log"]
    assert any("token is ***" in line for line in lines)
    assert not any("s3cr3t" in line for line in lines)


@pytest.mark.timeout(60)
def test_the_stream_replays_a_long_log_whole(flaky):
    run_id = finished(flaky, "loud")["run_id"]
    with flaky.client(Role.VIEWER).stream("GET", f"{RUNS}/{run_id}/logs/stream") as response:
        events = read_events(response.iter_lines())
    lines = [d["line"].split("] ", 1)[1] for kind, d in events if kind == "log"]
    assert lines == [f"{i:05d} " + "x" * 100 for i in range(5000)]  # over 500 KB


@pytest.mark.timeout(30)
def test_the_stream_stops_when_the_client_goes(server, monkeypatch):
    from treadle.server.api.runs import RunWatch

    looks: list[float] = []
    status_changes = RunWatch.status_changes

    def counted(watch, detail):
        looks.append(time.monotonic())
        return status_changes(watch, detail)

    monkeypatch.setattr(RunWatch, "status_changes", counted)
    run_id = start(server)  # stays queued: nothing starts it
    with server.client(Role.VIEWER).stream("GET", f"{RUNS}/{run_id}/logs/stream") as response:
        assert next_event(response.iter_lines())[1]["status"] == "queued"
        time.sleep(0.5)
    gone = time.monotonic()
    time.sleep(0.6)
    assert len(looks) >= 2  # it kept looking while the client listened
    assert not [at for at in looks if at > gone + 0.1]  # and stopped when it went


# -- the audit trail ------------------------------------------------------------------------------


def test_run_actions_are_audited(flaky):
    editor = flaky.client(Role.EDITOR)
    failed = finished(flaky, "flaky")["run_id"]
    assert editor.post(f"{RUNS}/{failed}/resume").status_code == 202
    wait_finished(flaky, failed)
    assert (
        editor.post(f"{RUNS}/{failed}/retry", json={"from_block": "flaky_load"}).status_code == 202
    )
    wait_finished(flaky, failed)
    queued = start(flaky)
    assert editor.post(f"{RUNS}/{queued}/cancel").status_code == 200

    events = flaky.client(Role.ADMIN).get("/api/v1/audit", params={"action": "run.*"}).json()
    seen = [(e["actor"], e["action"], e["target"]) for e in reversed(events)]
    assert seen == [
        ("editor", "run.started", failed),
        ("editor", "run.resumed", failed),
        ("editor", "run.retried", failed),
        ("editor", "run.started", queued),
        ("editor", "run.cancelled", queued),
    ]
    assert events[0]["detail"] == {"at_once": True}
    assert events[2]["detail"] == {"from_block": "flaky_load"}


def test_the_openapi_document_describes_the_runs_endpoints(server):
    spec = server.anonymous().get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/runs"])
    assert "post" in paths["/api/v1/runs/{run_id}/resume"]
    assert "text/event-stream" in json.dumps(paths["/api/v1/runs/{run_id}/logs/stream"])
    assert "StartRun" in spec["components"]["schemas"]


def test_runs_are_filtered_by_when_they_were_created(server) -> None:
    editor = server.client("editor")
    first = editor.post("/api/v1/runs", json={"pipeline": "etl"}).json()["run_id"]
    listed = editor.get("/api/v1/runs", params={"since": "2000-01-01T00:00:00Z"}).json()
    assert [r["run_id"] for r in listed["runs"]] == [first]
    assert editor.get("/api/v1/runs", params={"until": "2000-01-01"}).json()["runs"] == []
    assert editor.get("/api/v1/runs", params={"since": "2999-01-01"}).json()["runs"] == []
    assert editor.get("/api/v1/runs", params={"since": "yesterday"}).status_code == 422
    page = server.browser("viewer").get("/runs", params={"day_from": "2999-01-01"}).text
    assert first not in page and "match these filters" in page
