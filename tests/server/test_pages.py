"""The web UI's pages over HTTP (the browser tests in tests/e2e drive them for real)."""

from __future__ import annotations

from treadle.server.pages.graph import layered_layout


def test_a_page_without_a_session_goes_to_the_login_page(server) -> None:
    answer = server.anonymous().get("/runs?status=failed", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/runs%3Fstatus%3Dfailed"


def test_the_login_page_never_sends_the_user_to_another_site(server) -> None:
    for target in ("https://evil.example", "//evil.example", "javascript:alert(1)"):
        text = server.anonymous().get("/login", params={"next": target}).text
        assert 'data-next="/pipelines"' in text, target


def test_pages_render_for_a_signed_in_user_with_the_csrf_token(server) -> None:
    browser = server.browser("viewer")
    csrf = browser.headers["X-CSRF-Token"]
    for path in ("/pipelines", "/pipelines/etl", "/runs", "/triggers", "/backfills"):
        answer = browser.get(path)
        assert answer.status_code == 200, (path, answer.text[:300])
        assert f'data-csrf="{csrf}"' in answer.text
    assert "Run pipeline" not in browser.get("/pipelines/etl").text  # a viewer's page
    assert "Run pipeline" in server.browser("editor").get("/pipelines/etl").text


def test_a_run_page_shows_its_blocks_and_follows_the_run_only_while_active(server) -> None:
    editor = server.client("editor")
    run_id = editor.post("/api/v1/runs", json={"pipeline": "etl"}).json()["run_id"]
    browser = server.browser("viewer")
    assert 'data-follow="1"' in browser.get(f"/runs/{run_id}").text
    server.run_queued()
    page = browser.get(f"/runs/{run_id}").text
    assert 'data-follow="0"' in page and "svg" in page and "double" in page
    assert "Log of load" in page
    live = browser.get(f"/runs/{run_id}/live")
    assert live.status_code == 200 and "succeeded" in live.text and "Log of" not in live.text


def test_vendored_assets_are_served_offline(server) -> None:
    client = server.anonymous()
    assert client.get("/static/vendor/htmx.org/dist/htmx.min.js").status_code == 200
    assert client.get("/static/vendor/codemirror/lib/codemirror.js").status_code == 200
    assert client.get("/static/../app.py").status_code == 404


def test_the_graph_is_laid_out_in_layers_left_to_right() -> None:
    layout = layered_layout(
        {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}, {"a": "data_loader"}
    )
    x = {node.name: node.x for node in layout.nodes}
    assert x["a"] < x["b"] == x["c"] < x["d"]
    assert len(layout.edges) == 4 and layout.width > x["d"]


def test_connections_files_and_settings_pages_follow_the_role(server) -> None:
    viewer, admin = server.browser("viewer"), server.browser("admin")
    assert viewer.get("/connections").status_code == 200
    assert "Secrets" not in viewer.get("/connections").text
    assert "Set secret" in admin.get("/connections").text
    files = viewer.get("/files", params={"file": "pipelines/etl/pipeline.yaml"})
    assert files.status_code == 200 and "double" in files.text and "readonly" in files.text
    assert "Audit trail" not in viewer.get("/settings").text
    assert "Audit trail" in admin.get("/settings").text


def test_a_refused_path_on_a_page_is_an_html_error_page(server) -> None:
    answer = server.browser("admin").get("/files", params={"file": "../../etc/passwd"})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "is not allowed" in answer.text and "root:" not in answer.text


def test_the_vendored_assets_are_the_ones_the_script_fetched() -> None:
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "vendor_assets.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_problem_in_a_block_file_is_shown_at_that_block_and_line(server) -> None:
    (server.project.root / "transformers/double.py").write_text(
        "from treadle import transformer\n\n@transformer\ndef double(df:\n"
    )
    page = server.browser("editor").get("/pipelines/etl").text
    block = page[page.index('id="block-double"') :]
    assert 'data-problem-lines="[4]"' in block.split(">", 1)[0]
    assert 'class="error block-problem">line 4:' in block


def test_the_triggers_page_shows_one_pipelines_triggers_when_asked(server) -> None:
    server.project.pipeline("quiet", "blocks: []\n")
    for pipeline in ("etl", "quiet"):
        server.project.write(
            f"pipelines/{pipeline}/triggers.yaml",
            f'triggers:\n  - name: {pipeline}_daily\n    schedule: "@daily"\n',
        )
    browser = server.browser("viewer")
    assert "etl_daily" in browser.get("/triggers").text
    assert "quiet_daily" in browser.get("/triggers").text
    only = browser.get("/triggers", params={"pipeline": "etl"}).text
    assert "etl_daily" in only and "quiet_daily" not in only
    assert "The triggers of" in only


def test_a_file_that_is_not_text_is_explained_on_the_files_page(server) -> None:
    (server.project.root / "data").mkdir(exist_ok=True)
    (server.project.root / "data/trips.csv.gz").write_bytes(b"\x1f\x8b\x08\x00binary")
    answer = server.browser("viewer").get(
        "/files", params={"path": "data", "file": "data/trips.csv.gz"}
    )
    assert answer.status_code == 200
    assert "cannot be shown here" in answer.text and "not UTF-8 text" in answer.text
    assert 'Files().load("data/trips.csv.gz")' in answer.text.replace("&#34;", '"')
    refused = server.browser("viewer").get("/files", params={"file": ".env"})
    assert refused.status_code == 403  # a refused path is still refused


def test_long_names_are_cut_in_the_middle_so_their_ends_stay_apart() -> None:
    from treadle.server.pages.rendering import middle_cut

    assert middle_cut("short", 10) == "short"
    duckdb, parquet = (middle_cut(f"export_green_taxi_to_the_{e}", 16) for e in ("duckdb", "lake"))
    assert len(duckdb) == 16 and duckdb.startswith("export_g") and duckdb.endswith("_duckdb")
    assert parquet.endswith("he_lake") and duckdb != parquet


def test_backquoted_words_of_a_description_are_code_and_the_rest_is_escaped() -> None:
    from treadle.server.pages.rendering import inline_code

    assert inline_code("to PostgreSQL when `dev` is set") == (
        "to PostgreSQL when <code>dev</code> is set"
    )
    assert inline_code("<b>`<i>`</b>") == "&lt;b&gt;<code>&lt;i&gt;</code>&lt;/b&gt;"
