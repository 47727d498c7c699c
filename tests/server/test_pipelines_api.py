"""/api/v1/pipelines and /api/v1/validate: list, read, create, replace, change, delete, check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.server.conftest import write_etl
from treadle.scheduler.launch import run_pipeline
from treadle.server.api.pipelines import last_runs
from treadle.store.api import open_store

ETL_YAML = "pipelines/etl/pipeline.yaml"


def _audit(server, action: str) -> list[dict]:
    answer = server.client("admin").get("/api/v1/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _run(server, pipeline: str = "etl") -> str:
    return run_pipeline(server.scheduler.project, pipeline, trigger="cli").run_id


# -- GET /pipelines ------------------------------------------------------------------------


def test_the_list_has_each_pipeline_with_its_last_and_next_run(server) -> None:
    server.project.pipeline("quiet", "description: never runs\nblocks: []\n")
    server.project.write(
        "pipelines/etl/triggers.yaml",
        """
        triggers:
          - name: nightly
            schedule: "0 5 * * *"
            timezone: Europe/Amsterdam
        """,
    )
    _run(server)
    newest = _run(server)

    answer = server.client("viewer").get("/api/v1/pipelines")

    assert answer.status_code == 200, answer.text
    etl, quiet = answer.json()
    assert (etl["name"], etl["blocks"], etl["description"]) == ("etl", 2, "")
    assert etl["triggers"] == 1
    assert etl["last_run"]["run_id"] == newest
    assert etl["last_run"]["status"] == "succeeded"
    assert etl["last_run"]["finished_at"].endswith("Z")
    next_run = datetime.fromisoformat(etl["next_run"])
    assert next_run > datetime.now(UTC)
    assert (next_run.hour, next_run.minute) == (5, 0)  # in the trigger's zone
    assert next_run.utcoffset() in (timedelta(hours=1), timedelta(hours=2))  # Amsterdam
    assert quiet == {
        "name": "quiet",
        "description": "never runs",
        "blocks": 0,
        "triggers": 0,
        "last_run": None,
        "next_run": None,
    }


def test_the_next_run_follows_trigger_changes(server) -> None:
    triggers = "triggers:\n  - name: nightly\n    schedule: '0 5 * * *'\n"
    server.project.write("pipelines/etl/triggers.yaml", triggers)
    viewer = server.client("viewer")
    assert viewer.get("/api/v1/pipelines").json()[0]["next_run"] is not None

    server.project.write("pipelines/etl/triggers.yaml", triggers + "    enabled: false\n")
    server.scheduler.reload(server.scheduler.clock.now(), force=True)

    assert viewer.get("/api/v1/pipelines").json()[0]["next_run"] is None


def test_last_runs_are_read_in_one_query_using_the_index(server) -> None:
    _run(server)
    runs = server.scheduler.runs
    statements: list[str] = []
    connection = runs.db.connection()
    connection.set_trace_callback(statements.append)
    try:
        found = last_runs(runs, ["etl", "other"])
    finally:
        connection.set_trace_callback(None)
    assert list(found) == ["etl"]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    plan = connection.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM pipeline_runs WHERE project = 'p' AND pipeline = 'x' "
        "ORDER BY created_at DESC, id DESC LIMIT 1"
    ).fetchall()
    assert "USING INDEX" in str(plan) or "USING COVERING INDEX" in str(plan)


def test_last_runs_on_postgresql(project, pg_databases) -> None:
    url = pg_databases.create()
    project.write("treadle.yaml", f"name: test_project\ndatabase_url: {url}\n")
    write_etl(project)
    run_pipeline(project.root, "etl")
    newest = run_pipeline(project.root, "etl").run_id
    with open_store(project.root, url, project="test_project") as store:
        found = last_runs(store, ["etl", "other"])
    assert list(found) == ["etl"]
    assert (found["etl"].run_id, found["etl"].status) == (newest, "succeeded")
    assert found["etl"].finished_at.endswith("Z")


def test_the_list_needs_a_signed_in_caller(server) -> None:
    answer = server.anonymous().get("/api/v1/pipelines")
    assert answer.status_code == 401
    assert answer.json()["error"] == "Unauthorized"


# -- GET /pipelines/{name} -----------------------------------------------------------------


def test_a_pipeline_shows_blocks_edges_variables_settings_and_triggers(server) -> None:
    server.project.write("transformers/totals.sql", "select sum(y) as total from {{ df_1 }}\n")
    server.project.pipeline(
        "etl",
        """
        description: the example
        variables: {n: 3}
        retries: {count: 2, delay: 10s}
        max_active_runs: 1
        sla: 1h
        alerts:
          - urls: ["slack://TokenA/TokenB/TokenC", "mailto://me:hunter2@example.com"]
            on: [failure]
        blocks:
          - name: load
            type: data_loader
            timeout: 5m
          - name: double
            type: transformer
            upstream: [load]
          - name: totals
            type: transformer
            upstream: [double]
            table: totals
            schema: main
        """,
    )
    server.project.write(
        "pipelines/etl/triggers.yaml", "triggers:\n  - name: hourly\n    schedule: '@hourly'\n"
    )

    answer = server.client("viewer").get("/api/v1/pipelines/etl")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["description"] == "the example"
    assert body["variables"] == {"n": 3}
    load, double, totals = body["blocks"]
    assert load == {
        "name": "load",
        "type": "data_loader",
        "file": "data_loaders/load.py",
        "language": "python",
        "upstream": [],
        "settings": {
            "timeout": 300.0,
            "retries": None,
            "dynamic": False,
            "reduce": False,
            "profile": "default",
            "sensor_interval": None,
            "sql": None,
        },
        "line": 10,
    }
    assert double["upstream"] == ["load"]
    assert totals["language"] == "sql"
    assert totals["settings"]["sql"] == {
        "table": "totals",
        "schema": "main",
        "if_exists": "replace",
        "raw": False,
        "limit": None,
    }
    assert body["edges"] == [{"from": "load", "to": "double"}, {"from": "double", "to": "totals"}]
    settings = body["settings"]
    assert settings["retries"] == {"count": 2, "delay": 10.0, "backoff": 2.0, "max_delay": 3600.0}
    assert (settings["max_active_runs"], settings["sla"]) == (1, 3600.0)
    assert settings["alerts"] == [
        {"urls": ["slack://***", "mailto://***"], "on": ["failure"], "title": None, "body": None}
    ]
    assert "TokenB" not in answer.text and "hunter2" not in answer.text
    (trigger,) = body["triggers"]
    assert (trigger["name"], trigger["schedule"], trigger["enabled"]) == ("hourly", "@hourly", True)
    assert trigger["next_slot"] is not None


def test_an_unknown_pipeline_is_404_with_a_suggestion(server) -> None:
    answer = server.client("viewer").get("/api/v1/pipelines/elt")
    assert answer.status_code == 404
    body = answer.json()
    assert body["error"] == "UnknownName"
    assert "elt" in body["message"] and body["hint"] == "did you mean 'etl'?"


def test_the_yaml_text_is_for_editors(server) -> None:
    text = (server.project.root / ETL_YAML).read_text()
    answer = server.client("editor").get("/api/v1/pipelines/etl/yaml")
    assert answer.status_code == 200 and answer.json() == {"yaml": text}
    assert server.client("viewer").get("/api/v1/pipelines/etl/yaml").status_code == 403


# -- POST /pipelines -----------------------------------------------------------------------


def test_an_editor_creates_a_pipeline(server) -> None:
    answer = server.client("editor").post(
        "/api/v1/pipelines", json={"name": "daily", "description": "every day: 'quoted'"}
    )

    assert answer.status_code == 201, answer.text
    assert answer.json()["name"] == "daily" and answer.json()["blocks"] == 0
    written = server.project.root / "pipelines/daily/pipeline.yaml"
    assert "blocks: []" in written.read_text()
    listed = server.client("viewer").get("/api/v1/pipelines").json()
    assert {"daily": "every day: 'quoted'"}.items() <= {
        p["name"]: p["description"] for p in listed
    }.items()
    (event,) = _audit(server, "pipeline.created")
    assert (event["actor"], event["target"]) == ("editor", "daily")
    assert not list(written.parent.glob(".*.tmp"))


def test_creating_an_existing_pipeline_is_a_conflict(server) -> None:
    before = (server.project.root / ETL_YAML).read_bytes()
    answer = server.client("editor").post("/api/v1/pipelines", json={"name": "etl"})
    assert answer.status_code == 409
    assert "already exists" in answer.json()["message"]
    assert (server.project.root / ETL_YAML).read_bytes() == before


def test_a_block_run_from_the_editor_is_not_the_pipelines_last_run(server) -> None:
    pipeline_run = _run(server)
    block_run = server.client("editor").post("/api/v1/pipelines/etl/blocks/load/run").json()
    assert block_run["status"] == "succeeded"
    (etl,) = server.client("viewer").get("/api/v1/pipelines").json()
    assert etl["last_run"]["run_id"] == pipeline_run
    runs = server.client("viewer").get("/api/v1/runs", params={"trigger": "block"}).json()
    assert [r["run_id"] for r in runs["runs"]] == [block_run["run_id"]]  # still in the history


def test_a_pipeline_copied_from_another_gets_its_own_block_files(server) -> None:
    root = server.project.root
    editor = server.client("editor")
    answer = editor.post("/api/v1/pipelines", json={"name": "etl_copy", "copy_of": "etl"})

    assert answer.status_code == 201, answer.text
    assert answer.json()["blocks"] == 2
    for original in ("data_loaders/load.py", "transformers/double.py"):
        folder, name = original.split("/")
        copy = root / folder / "etl_copy" / name
        assert copy.read_bytes() == (root / original).read_bytes()
    detail = editor.get("/api/v1/pipelines/etl_copy").json()
    blocks = {b["name"]: b for b in detail["blocks"]}
    assert blocks["load"]["file"] == "data_loaders/etl_copy/load.py"
    assert blocks["double"]["upstream"] == ["load"]
    assert detail["variables"] == editor.get("/api/v1/pipelines/etl").json()["variables"]

    original = (root / "data_loaders/load.py").read_bytes()
    changed = editor.put(
        "/api/v1/pipelines/etl_copy/blocks/load/file",
        json={"text": original.decode().replace("range(", "range(1 + ")},
    )
    assert changed.status_code == 200, changed.text
    assert (root / "data_loaders/load.py").read_bytes() == original  # the source is untouched
    run = editor.post("/api/v1/runs", json={"pipeline": "etl_copy"}).json()
    server.run_queued()
    assert editor.get(f"/api/v1/runs/{run['run_id']}").json()["status"] == "succeeded"
    (event,) = [e for e in _audit(server, "pipeline.created") if e["target"] == "etl_copy"]
    assert event["detail"] == {"copy_of": "etl"}


def test_a_copy_that_cannot_be_made_leaves_nothing_behind(server) -> None:
    root = server.project.root
    editor = server.client("editor")
    unknown = editor.post("/api/v1/pipelines", json={"name": "c", "copy_of": "elt"})
    assert unknown.status_code == 404 and "did you mean 'etl'" in unknown.json()["hint"]
    (root / "transformers/etl_copy").mkdir()
    (root / "transformers/etl_copy/double.py").write_text("# someone's file\n")

    taken = editor.post("/api/v1/pipelines", json={"name": "etl_copy", "copy_of": "etl"})

    assert taken.status_code == 409
    assert "transformers/etl_copy/double.py" in taken.json()["message"]
    assert not (root / "pipelines/etl_copy").exists()
    assert not (root / "data_loaders/etl_copy").exists()
    assert (root / "transformers/etl_copy/double.py").read_text() == "# someone's file\n"


def test_a_copy_refused_after_its_files_were_written_takes_them_back(server) -> None:
    root = server.project.root
    server.project.pipeline(  # invalid: an upstream that is not there
        "broken",
        "blocks:\n  - {name: load, type: data_loader}\n"
        "  - {name: double, type: transformer, upstream: [missing]}\n",
    )
    (root / "data_loaders/broken_copy").mkdir()  # there before: must stay
    answer = server.client("editor").post(
        "/api/v1/pipelines", json={"name": "broken_copy", "copy_of": "broken"}
    )
    assert answer.status_code == 422, answer.text
    assert "missing" in answer.json()["message"]
    assert not (root / "pipelines/broken_copy").exists()
    assert not (root / "transformers/broken_copy").exists()
    assert (root / "data_loaders/broken_copy").is_dir()
    assert list((root / "data_loaders/broken_copy").iterdir()) == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "two words"}, "not a valid pipeline name"),
        ({"name": "../escape"}, "not a valid pipeline name"),
        ({"name": 5}, "name"),
        ({"name": "ok", "colour": "red"}, "colour"),
        ({}, "name"),
    ],
)
def test_a_bad_new_pipeline_is_422_with_a_message(server, body, fragment) -> None:
    answer = server.client("editor").post("/api/v1/pipelines", json=body)
    assert answer.status_code == 422, answer.text
    assert fragment in answer.json()["message"]
    assert sorted(p.name for p in (server.project.root / "pipelines").iterdir()) == ["etl"]


def test_malformed_json_is_422_not_500(server) -> None:
    answer = server.client("editor").post(
        "/api/v1/pipelines", content=b"{name: ", headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 422
    assert answer.json()["error"] == "InvalidRequest"


def test_a_viewer_may_not_create_and_a_browser_needs_its_csrf_token(server) -> None:
    assert server.client("viewer").post("/api/v1/pipelines", json={"name": "x"}).status_code == 403
    browser = server.browser("editor")
    assert browser.post("/api/v1/pipelines", json={"name": "from_ui"}).status_code == 201
    del browser.headers["X-CSRF-Token"]
    assert browser.post("/api/v1/pipelines", json={"name": "forged"}).status_code == 403
    assert not (server.project.root / "pipelines/forged").exists()


# -- PUT / PATCH /pipelines/{name} ---------------------------------------------------------


def test_replacing_the_yaml_with_valid_text(server) -> None:
    text = (
        "# edited in the UI\ndescription: only loads\nvariables: {n: 4}\n"
        "blocks:\n  - name: load\n    type: data_loader\n"
    )

    answer = server.client("editor").put("/api/v1/pipelines/etl", json={"yaml": text})

    assert answer.status_code == 200, answer.text
    assert answer.json()["description"] == "only loads"
    assert [b["name"] for b in answer.json()["blocks"]] == ["load"]
    assert (server.project.root / ETL_YAML).read_text() == text
    (event,) = _audit(server, "pipeline.updated")
    assert event["target"] == "etl"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "blocks:\n  - name: load\n    type: data_loader\n    upstream: x\n",
            4,
            "unknown upstream",
        ),
        ("blocks:\n  - name: load\n   type: data_loader\n", 3, "malformed YAML"),
        ("blocks:\n  - name: load\n    type: loader\n", 3, "unknown block type"),
        ("- just\n- a list\n", 1, "must be a mapping"),
        ("name: other\nblocks: []\n", 1, "does not match"),
        (
            "blocks:\n  - name: a\n    type: data_loader\n    file: data_loaders/load.py\n"
            "    upstream: [b]\n  - name: b\n    type: data_loader\n    file: data_loaders/load.py\n"
            "    upstream: [a]\n",
            5,
            "cycle between blocks: a → b → a",
        ),
    ],
)
def test_invalid_yaml_is_422_with_the_problems_and_the_file_unchanged(
    server, text, line, fragment
) -> None:
    path = server.project.root / ETL_YAML
    before = path.read_bytes()

    answer = server.client("editor").put("/api/v1/pipelines/etl", json={"yaml": text})

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["error"] == "ProjectInvalid"
    assert fragment in body["message"]
    problem = next(p for p in body["problems"] if fragment in p["message"])
    assert (problem["file"], problem["line"]) == (ETL_YAML, line)
    assert set(problem) == {"file", "line", "message", "hint"}
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*.tmp"))
    assert _audit(server, "pipeline.updated") == []


def test_another_broken_pipeline_does_not_block_an_edit(server) -> None:
    server.project.pipeline("broken", "blocks:\n  - name: x\n    type: nope\n")
    text = (server.project.root / ETL_YAML).read_text().replace("n: 3", "n: 7")

    answer = server.client("editor").put("/api/v1/pipelines/etl", json={"yaml": text})

    assert answer.status_code == 200, answer.text
    assert "n: 7" in (server.project.root / ETL_YAML).read_text()


def test_put_on_an_unknown_pipeline_is_404(server) -> None:
    answer = server.client("editor").put("/api/v1/pipelines/nope", json={"yaml": "blocks: []\n"})
    assert answer.status_code == 404
    assert not (server.project.root / "pipelines/nope").exists()


def test_patch_sets_the_description_and_variables_keeping_comments(server) -> None:
    server.project.pipeline(
        "etl",
        """
        # the example pipeline
        variables: {n: 3}  # rows to load
        blocks:
          - name: load  # first
            type: data_loader
        """,
    )
    answer = server.client("editor").patch(
        "/api/v1/pipelines/etl", json={"description": "loads n rows", "variables": {"n": 5}}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["variables"] == {"n": 5}
    text = (server.project.root / ETL_YAML).read_text()
    assert "# the example pipeline" in text and "# first" in text and "# rows to load" in text
    assert text.index("description: loads n rows") < text.index("blocks:")
    assert server.client("editor").patch("/api/v1/pipelines/etl", json={}).status_code == 422
    assert (
        server.client("editor").patch("/api/v1/pipelines/etl", json={"variables": [1]}).status_code
        == 422
    )


# -- DELETE /pipelines/{name} --------------------------------------------------------------


def test_deleting_a_pipeline_keeps_its_block_files_and_runs(server) -> None:
    run_id = _run(server)
    server.project.write("pipelines/etl/triggers.yaml", "triggers: []\n")
    assert server.client("viewer").delete("/api/v1/pipelines/etl").status_code == 403

    answer = server.client("editor").delete("/api/v1/pipelines/etl")

    assert answer.status_code == 204, answer.text
    root = server.project.root
    assert not (root / "pipelines/etl").exists()
    assert (root / "data_loaders/load.py").is_file() and (root / "transformers/double.py").is_file()
    assert server.scheduler.runs.get_run(run_id) is not None
    assert server.client("viewer").get("/api/v1/pipelines").json() == []
    (event,) = _audit(server, "pipeline.deleted")
    assert event["detail"]["removed"] == [ETL_YAML, "pipelines/etl/triggers.yaml"]
    assert server.client("editor").delete("/api/v1/pipelines/etl").status_code == 404


def test_deleting_keeps_other_files_in_the_folder(server) -> None:
    server.project.write("pipelines/etl/notes.md", "keep me\n")
    assert server.client("editor").delete("/api/v1/pipelines/etl").status_code == 204
    assert (server.project.root / "pipelines/etl/notes.md").read_text() == "keep me\n"
    assert not (server.project.root / ETL_YAML).exists()


# -- validation ----------------------------------------------------------------------------


def test_validate_reports_ok_for_a_valid_project(server) -> None:
    for url in ("/api/v1/validate", "/api/v1/pipelines/etl/validate"):
        answer = server.client("viewer").post(url)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"ok": True, "problems": []}


def test_validate_lists_every_problem_with_file_line_and_hint(server) -> None:
    server.project.block(
        "transformers", "double", "from treadle import transformer\n\ndef double(df:\n"
    )
    server.project.pipeline("other", "blocks:\n  - name: x\n    type: loader\n")
    server.project.write(
        "pipelines/etl/triggers.yaml", "triggers:\n  - name: t\n    every: often\n"
    )

    whole = server.client("viewer").post("/api/v1/validate").json()
    etl = server.client("viewer").post("/api/v1/pipelines/etl/validate").json()

    assert whole["ok"] is False
    files = sorted(p["file"] for p in whole["problems"])
    assert files == ["pipelines/other/pipeline.yaml", "transformers/double.py"]
    syntax = next(p for p in whole["problems"] if p["file"] == "transformers/double.py")
    assert syntax["line"] == 3 and "syntax error" in syntax["message"] and syntax["hint"]
    assert etl == {"ok": False, "problems": [syntax]}


def test_validate_checks_triggers_once_the_project_loads(server) -> None:
    server.project.write(
        "pipelines/etl/triggers.yaml", "triggers:\n  - name: t\n    every: often\n"
    )
    body = server.client("viewer").post("/api/v1/pipelines/etl/validate").json()
    assert body["ok"] is False
    (problem,) = body["problems"]
    assert problem["file"] == "pipelines/etl/triggers.yaml" and problem["line"] == 3


def test_the_openapi_document_describes_the_endpoints(server) -> None:
    paths = server.anonymous().get("/api/v1/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/pipelines"])
    assert {"get", "put", "patch", "delete"} <= set(paths["/api/v1/pipelines/{name}"])
    assert "post" in paths["/api/v1/validate"]


def test_validating_an_unknown_pipeline_is_404(server) -> None:
    assert server.client("viewer").post("/api/v1/pipelines/nope/validate").status_code == 404
    assert server.anonymous().post("/api/v1/validate").status_code == 401
