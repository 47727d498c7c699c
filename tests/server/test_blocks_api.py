"""Blocks through the API: templates, add, read, write the file, edges, remove, run one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.server.conftest import next_event, read_events

ETL_YAML = "pipelines/etl/pipeline.yaml"
BLOCKS = "/api/v1/pipelines/etl/blocks"
EDGES = "/api/v1/pipelines/etl/edges"
COMMENTED_ETL = """\
# the example pipeline: keep this comment
variables: {n: 3}
blocks:
  - name: load  # rows 0..n-1
    type: data_loader
  - name: double
    type: transformer
    upstream: [load]  # doubles x
  - name: report
    type: custom
"""


@pytest.fixture
def commented(server):
    """``etl`` with comments in pipeline.yaml and a third, unconnected block ``report``."""
    server.project.block(
        "custom",
        "report",
        """
        from treadle import custom

        @custom
        def report(*args):
            return {"ok": True}
        """,
    )
    (server.project.root / ETL_YAML).write_text(COMMENTED_ETL)
    return server


def _audit(server, action: str) -> list[dict]:
    answer = server.client("admin").get("/api/v1/audit", params={"action": action})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _yaml(server) -> str:
    return (server.project.root / ETL_YAML).read_text()


# -- templates and new blocks --------------------------------------------------------------


def test_the_templates_are_listed(server) -> None:
    answer = server.client("viewer").get("/api/v1/block-templates")
    assert answer.status_code == 200
    by_name = {t["name"]: t for t in answer.json()}
    assert by_name["transformer"] == {
        "name": "transformer",
        "type": "transformer",
        "language": "python",
        "description": "pandas, with a test",
    }
    assert by_name["transformer_sql"]["language"] == "sql"


def test_an_editor_adds_a_block_from_a_template(commented) -> None:
    server = commented
    answer = server.client("editor").post(
        BLOCKS, json={"name": "clean", "template": "transformer", "upstream": ["double"]}
    )

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["name"], body["type"], body["file"]) == (
        "clean",
        "transformer",
        "transformers/clean.py",
    )
    assert body["upstream"] == ["double"] and "def clean(" in body["text"]
    assert (server.project.root / "transformers/clean.py").is_file()
    text = _yaml(server)
    assert "# the example pipeline: keep this comment" in text and "# doubles x" in text
    assert "name: clean" in text
    (event,) = _audit(server, "block.created")
    assert event["target"] == "etl.clean" and event["detail"]["template"] == "transformer"


def test_an_unknown_template_is_422_listing_the_templates(server) -> None:
    answer = server.client("editor").post(BLOCKS, json={"name": "x", "template": "transfromer"})
    assert answer.status_code == 422
    body = answer.json()
    assert "loader_csv_url" in body["message"] and "exporter_duckdb" in body["message"]
    assert body["hint"] == "did you mean 'transformer'?"
    assert not (server.project.root / "transformers/x.py").exists()


def test_a_block_with_an_unknown_upstream_is_refused_and_nothing_stays(server) -> None:
    before = (server.project.root / ETL_YAML).read_bytes()
    answer = server.client("editor").post(
        BLOCKS, json={"name": "clean", "template": "transformer", "upstream": ["nope"]}
    )
    assert answer.status_code == 422
    assert answer.json()["problems"][0]["file"] == ETL_YAML
    assert (server.project.root / ETL_YAML).read_bytes() == before
    assert not (server.project.root / "transformers/clean.py").exists()


def test_adding_a_block_needs_an_editor_and_a_known_pipeline(server) -> None:
    new = {"name": "clean", "template": "transformer"}
    assert server.anonymous().post(BLOCKS, json=new).status_code == 401
    assert server.client("viewer").post(BLOCKS, json=new).status_code == 403
    answer = server.client("editor").post("/api/v1/pipelines/elt/blocks", json=new)
    assert answer.status_code == 404 and answer.json()["hint"] == "did you mean 'etl'?"
    assert server.client("editor").post(BLOCKS, json={**new, "extra": 1}).status_code == 422
    assert server.client("editor").post(BLOCKS, json={**new, "upstream": "load"}).status_code == 422


# -- reading and writing the file ----------------------------------------------------------


def test_a_block_is_read_with_its_file(server) -> None:
    answer = server.client("viewer").get(f"{BLOCKS}/double")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["pipeline"], body["name"], body["upstream"]) == ("etl", "double", ["load"])
    assert body["text"] == (server.project.root / "transformers/double.py").read_text()
    missing = server.client("viewer").get(f"{BLOCKS}/doubel")
    assert missing.status_code == 404 and missing.json()["hint"] == "did you mean 'double'?"


def test_writing_the_block_file(server) -> None:
    text = "from treadle import transformer\n\n\n@transformer\ndef double(df):\n    return df * 2\n"

    answer = server.client("editor").put(f"{BLOCKS}/double/file", json={"text": text})

    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == text
    path = server.project.root / "transformers/double.py"
    assert path.read_text() == text
    assert not list(path.parent.glob(".*.tmp"))
    (event,) = _audit(server, "block.file_written")
    assert event["target"] == "etl.double" and event["detail"]["file"] == "transformers/double.py"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("from treadle import transformer\n\n@transformer\ndef double(df:\n", 4, "syntax error"),
        ("def double(df):\n    return df\n", 1, "no @transformer function"),
        ("from treadle import data_loader\n\n@data_loader\ndef double(): ...\n", 1, "@data_loader"),
    ],
)
def test_a_bad_block_file_is_422_with_the_line_and_the_file_unchanged(
    server, text, line, fragment
) -> None:
    path = server.project.root / "transformers/double.py"
    before = path.read_bytes()

    answer = server.client("editor").put(f"{BLOCKS}/double/file", json={"text": text})

    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["file"] == "transformers/double.py" and problem["line"] == line
    assert fragment in problem["message"] and problem["hint"]
    assert path.read_bytes() == before
    assert not list(path.parent.glob(".*.tmp"))
    assert _audit(server, "block.file_written") == []


def test_writing_a_block_file_needs_an_editor(server) -> None:
    url = f"{BLOCKS}/double/file"
    assert server.client("viewer").put(url, json={"text": "x"}).status_code == 403
    assert server.anonymous().put(url, json={"text": "x"}).status_code == 401
    assert server.client("editor").put(url, json={"text": 5}).status_code == 422
    assert server.client("editor").put(f"{BLOCKS}/nope/file", json={"text": "x"}).status_code == 404


# -- edges ---------------------------------------------------------------------------------


def test_connecting_blocks_keeps_the_comments(commented) -> None:
    server = commented
    answer = server.client("editor").post(EDGES, json={"from": "double", "to": "report"})

    assert answer.status_code == 201, answer.text
    assert {"from": "double", "to": "report"} in answer.json()["edges"]
    text = _yaml(server)
    assert text == COMMENTED_ETL.replace(
        "  - name: report\n    type: custom\n",
        "  - name: report\n    type: custom\n    upstream: [double]\n",
    )
    (event,) = _audit(server, "edge.added")
    assert event["target"] == "etl" and event["detail"] == {"from": "double", "to": "report"}


def test_a_second_upstream_joins_the_list(commented) -> None:
    server = commented
    answer = server.client("editor").post(EDGES, json={"from": "report", "to": "double"})
    assert answer.status_code == 201, answer.text
    assert "    upstream: [load, report] # doubles x\n" in _yaml(commented)  # comment kept


def test_a_cycle_is_422_naming_the_blocks_and_the_file_unchanged(commented) -> None:
    server = commented
    before = (server.project.root / ETL_YAML).read_bytes()

    answer = server.client("editor").post(EDGES, json={"from": "double", "to": "load"})

    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["message"] == "connecting double → load would make a cycle: double → load → double"
    assert "one direction" in body["hint"]
    assert (server.project.root / ETL_YAML).read_bytes() == before
    assert _audit(server, "edge.added") == []
    loop = server.client("editor").post(EDGES, json={"from": "report", "to": "report"})
    assert loop.status_code == 422
    assert (
        loop.json()["message"] == "connecting report → report would make a cycle: report → report"
    )


def test_edge_errors(commented) -> None:
    editor = commented.client("editor")
    twice = editor.post(EDGES, json={"from": "load", "to": "double"})
    assert twice.status_code == 409 and "already upstream" in twice.json()["message"]
    unknown = editor.post(EDGES, json={"from": "load", "to": "dubble"})
    assert unknown.status_code == 422 and unknown.json()["hint"] == "did you mean 'double'?"
    assert editor.post(EDGES, json={"from": "load"}).status_code == 422
    assert editor.post(EDGES, json={"source": "load", "to": "double", "x": 1}).status_code == 422
    assert commented.client("viewer").post(EDGES, json={"from": "a", "to": "b"}).status_code == 403
    assert _yaml(commented) == COMMENTED_ETL


def test_disconnecting_blocks(commented) -> None:
    server = commented
    editor = server.client("editor")

    answer = editor.request("DELETE", EDGES, json={"from": "load", "to": "double"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["edges"] == []
    text = _yaml(server)
    assert "upstream" not in text and "# the example pipeline: keep this comment" in text
    (event,) = _audit(server, "edge.removed")
    assert event["detail"] == {"from": "load", "to": "double"}
    again = editor.request("DELETE", EDGES, json={"from": "load", "to": "double"})
    assert again.status_code == 404 and "not upstream" in again.json()["message"]


# -- removing a block ----------------------------------------------------------------------


def test_removing_a_block_takes_it_out_of_the_others_upstream(commented) -> None:
    server = commented
    assert server.client("viewer").delete(f"{BLOCKS}/load").status_code == 403

    answer = server.client("editor").delete(f"{BLOCKS}/load")

    assert answer.status_code == 204, answer.text
    detail = server.client("viewer").get("/api/v1/pipelines/etl").json()
    assert [b["name"] for b in detail["blocks"]] == ["double", "report"]
    assert detail["edges"] == []
    assert (server.project.root / "data_loaders/load.py").is_file()
    assert "# the example pipeline: keep this comment" in _yaml(server)
    (event,) = _audit(server, "block.deleted")
    assert event["target"] == "etl.load"
    assert server.client("editor").delete(f"{BLOCKS}/load").status_code == 404


# -- running one block ---------------------------------------------------------------------


def test_running_a_loader_returns_a_preview(server) -> None:
    answer = server.client("editor").post(f"{BLOCKS}/load/run", json={"variables": {"n": 25}})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "succeeded" and body["error"] is None
    output = body["output"]
    assert output["kind"] == "table" and output["row_count"] == 25
    assert output["columns"] == [{"name": "x", "type": "int64"}]
    assert output["rows"][:3] == [{"x": 0}, {"x": 1}, {"x": 2}]
    assert 10 <= len(output["rows"]) <= 20
    run = server.scheduler.runs.get_run(body["run_id"])
    assert run.run.trigger == "block" and run.run.triggered_by == "editor"
    (event,) = _audit(server, "block.run")
    assert event["target"] == "etl.load" and event["detail"]["status"] == "succeeded"


def test_a_block_runs_on_the_latest_upstream_output(server) -> None:
    editor = server.client("editor")
    assert (
        editor.post(f"{BLOCKS}/load/run", json={"variables": {"n": 4}}).json()["status"]
        == "succeeded"
    )

    answer = editor.post(f"{BLOCKS}/double/run", json={"variables": {"n": 4}})

    assert answer.status_code == 200, answer.text
    output = answer.json()["output"]
    assert output["row_count"] == 4
    assert [c["name"] for c in output["columns"]] == ["x", "y"]
    assert output["rows"][3] == {"x": 3, "y": 6}


def test_a_block_without_stored_upstream_output_is_422(server) -> None:
    answer = server.client("editor").post(f"{BLOCKS}/double/run", json={})
    assert answer.status_code == 422
    assert "no stored output" in answer.json()["message"]


def test_a_failing_block_is_a_failed_answer_with_its_error_and_masked_log(server) -> None:
    server.project.write(".env", "API_TOKEN=supersecretvalue\n")
    server.project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            print("calling with supersecretvalue")
            raise ValueError("the source is down")
        """,
    )

    answer = server.client("editor").post(f"{BLOCKS}/load/run")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "failed" and body["output"] is None
    assert body["error"]["type"] == "ValueError"
    assert body["error"]["message"] == "the source is down"
    assert "raise ValueError" in body["error"]["traceback"]
    assert "calling with ***" in body["logs"]
    assert "supersecretvalue" not in answer.text


def test_a_block_past_the_wait_is_timed_out_and_asked_to_stop(server) -> None:
    server.project.block(
        "data_loaders",
        "load",
        """
        import time
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            time.sleep(1.5)
            return [1, 2]
        """,
    )

    answer = server.client("editor").post(f"{BLOCKS}/load/run", json={"timeout": 0.3})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "timed_out" and "0.3s" in body["error"]["message"]
    runs = server.scheduler.runs
    deadline = time.monotonic() + 30
    while (status := runs.get_run(body["run_id"]).run.status.value) == "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run = runs.get_run(body["run_id"]).run
    assert run.cancel_requested_at is not None and "0.3s" in run.cancel_reason
    # inline, the block is not interrupted: with nothing after it, the run may still succeed
    assert status in ("cancelled", "succeeded")


GATED_LOADER = """
import time
from pathlib import Path
from treadle import data_loader

@data_loader
def load(*, variables):
    print("first line", flush=True)
    while not Path({gate!r}).exists():  # the test lets it finish
        time.sleep(0.02)
    print("second line")
    return [{{"x": 1}}, {{"x": 2}}]
"""


def gated_loader(server) -> Path:
    """``load`` prints a line, then waits until the returned file exists."""
    gate = server.project.root.parent / "gate"
    server.project.block("data_loaders", "load", GATED_LOADER.format(gate=str(gate)))
    return gate


@pytest.mark.timeout(60)
def test_a_run_not_waited_for_answers_running_then_streams_and_has_its_result(server) -> None:
    gate = gated_loader(server)
    editor = server.client("editor")

    answer = editor.post(f"{BLOCKS}/load/run", json={"wait": False})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == "running" and body["output"] is None and body["run_id"]
    result_url = f"{BLOCKS}/load/runs/{body['run_id']}"
    assert editor.get(result_url).json()["status"] == "running"
    with editor.stream("GET", f"/api/v1/runs/{body['run_id']}/logs/stream") as response:
        lines = response.iter_lines()
        while (event := next_event(lines))[0] != "log":
            pass
        assert event[1]["line"].endswith("first line")  # streamed while the block waits
        gate.touch()
        events = [event, *read_events(lines)]
    logged = [d["line"].split("] ", 1)[1] for kind, d in events if kind == "log"]
    assert logged == ["first line", "second line"]

    assert server.client("viewer").get(result_url).status_code == 403  # rows of data
    result = editor.get(result_url)

    assert result.status_code == 200, result.text
    done = result.json()
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["output"]["row_count"] == 2 and done["output"]["rows"] == [{"x": 1}, {"x": 2}]
    assert "second line" in done["logs"]
    (event,) = _audit(server, "block.run")
    assert event["detail"] == {"run_id": body["run_id"], "status": "running"}


def test_a_run_not_waited_for_that_cannot_start_is_the_same_422(server) -> None:
    answer = server.client("editor").post(f"{BLOCKS}/double/run", json={"wait": False})
    assert answer.status_code == 422
    assert "no stored output" in answer.json()["message"]


@pytest.mark.timeout(60)
def test_a_run_not_waited_for_is_still_stopped_at_its_timeout(server) -> None:
    gate = gated_loader(server)
    answer = server.client("editor").post(
        f"{BLOCKS}/load/run", json={"wait": False, "timeout": 0.5}
    )
    run_id = answer.json()["run_id"]
    runs = server.scheduler.runs
    deadline = time.monotonic() + 30
    try:
        while runs.get_run(run_id).run.cancel_requested_at is None:
            assert time.monotonic() < deadline, "the run was never asked to stop"
            time.sleep(0.05)
    finally:
        gate.touch()  # inline, the block itself cannot be interrupted: let it end
    assert "0.5s" in runs.get_run(run_id).run.cancel_reason


def test_a_run_that_never_gets_a_worker_is_dropped_at_its_timeout(server) -> None:
    from treadle.server.api import blocks

    for _ in range(blocks.RUN_WORKERS):
        blocks._slots.acquire()  # every worker busy
    try:
        answer = server.client("editor").post(
            f"{BLOCKS}/load/run", json={"wait": False, "timeout": 0.3}
        )
    finally:
        for _ in range(blocks.RUN_WORKERS):
            blocks._slots.release()
    body = answer.json()
    assert body["status"] == "timed_out" and body["run_id"] is None
    time.sleep(0.2)  # a dropped run does not start once a worker is free
    assert server.scheduler.runs.list_runs() == []


def test_a_block_run_result_masks_secrets_known_only_after_the_run(server) -> None:
    server.project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            print("token is latersecret99")
            return [1]
        """,
    )
    editor = server.client("editor")
    run_id = editor.post(f"{BLOCKS}/load/run").json()["run_id"]
    server.project.write(".env", "API_TOKEN=latersecret99\n")
    answer = editor.get(f"{BLOCKS}/load/runs/{run_id}")
    assert "token is ***" in answer.json()["logs"] and "latersecret99" not in answer.text


def test_a_block_run_result_names_what_is_unknown(server) -> None:
    editor = server.client("editor")
    run_id = editor.post(f"{BLOCKS}/load/run").json()["run_id"]
    assert editor.get(f"{BLOCKS}/load/runs/nope").status_code == 404
    missing = editor.get(f"{BLOCKS}/double/runs/{run_id}")
    assert missing.status_code == 404 and "double" in missing.json()["message"]
    other = editor.get(f"/api/v1/pipelines/other/blocks/load/runs/{run_id}")
    assert other.status_code == 404
    assert editor.get(f"{BLOCKS}/load/runs/{run_id}").json()["status"] == "succeeded"


def test_running_needs_an_editor_and_valid_input(server) -> None:
    url = f"{BLOCKS}/load/run"
    assert server.client("viewer").post(url).status_code == 403
    assert server.client("editor").post(url, json={"variables": []}).status_code == 422
    assert server.client("editor").post(url, json={"timeout": 0}).status_code == 422
    assert server.client("editor").post(f"{BLOCKS}/nope/run").status_code == 404
    bad = server.client("editor").post(url, json={"variables": {"1x": 1}})
    assert bad.status_code == 422 and "not a Python name" in bad.json()["message"]
    assert _audit(server, "block.run") == []


def test_a_block_is_renamed_with_its_downstream_upstream_and_its_file_kept(server) -> None:
    editor = server.client("editor")
    before = (server.project.root / "transformers/double.py").read_text()
    answer = editor.post("/api/v1/pipelines/etl/blocks/load/rename", json={"name": "numbers"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["file"] == "data_loaders/load.py"
    detail = editor.get("/api/v1/pipelines/etl").json()
    blocks = {b["name"]: b for b in detail["blocks"]}
    assert set(blocks) == {"numbers", "double"} and blocks["double"]["upstream"] == ["numbers"]
    assert (server.project.root / "data_loaders/load.py").is_file()
    assert (server.project.root / "transformers/double.py").read_text() == before
    taken = editor.post("/api/v1/pipelines/etl/blocks/numbers/rename", json={"name": "double"})
    assert taken.status_code == 409
    bad = editor.post("/api/v1/pipelines/etl/blocks/numbers/rename", json={"name": "no good"})
    assert bad.status_code == 422
    assert (
        server.client("viewer")
        .post("/api/v1/pipelines/etl/blocks/numbers/rename", json={"name": "x"})
        .status_code
        == 403
    )
    server.client("editor").post("/api/v1/runs", json={"pipeline": "etl"})
    server.run_queued()
    assert server.state.runs.list_runs(limit=1)[0].status.value == "succeeded"
