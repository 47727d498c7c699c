"""The UI end to end: sign in, build a pipeline from templates, run a block and see its
output, connect blocks, run the pipeline and watch it in Runs; a viewer cannot edit."""

from __future__ import annotations

import re

from tests.e2e.conftest import screenshot, sign_in

LOADER = """import pandas as pd
from treadle import data_loader


@data_loader
def numbers():
    return pd.DataFrame({"n": [1, 2, 3], "word": ["one", "two", "three"]})
"""
TRANSFORMER = """from treadle import transformer


@transformer
def doubled(df):
    df["twice"] = df["n"] * 2
    return df
"""


def set_code(page, block: str, code: str) -> None:
    """Replace a block's code in its CodeMirror editor, then save with Ctrl-S."""
    page.locator(f"#block-{block} .CodeMirror").wait_for()  # made when near the screen
    page.evaluate(
        "([block, code]) => document.querySelector(`#block-${block} .CodeMirror`)"
        ".CodeMirror.setValue(code)",
        [block, code],
    )
    page.locator(f"#block-{block} .CodeMirror textarea").focus()
    page.keyboard.press("Control+s")
    page.locator(f"#block-{block} .state").filter(has_text=re.compile("^saved$")).wait_for()


def new_pipeline(page, name: str) -> None:
    """Create a blank pipeline from the Pipelines page and open its editor."""
    page.get_by_label("New pipeline").fill(name)
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(f"**/pipelines/{name}")


def add_block(page, name: str, template: str, code: str) -> None:
    """Add a block from a template in the editor, then write its code and save it."""
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Template").select_option(template)
    page.get_by_role("button", name="Add block").click()
    set_code(page, name, code)


def drag_to_connect(page, upstream: str, downstream: str) -> None:
    """Drag from ``upstream``'s port in the graph and drop on ``downstream``'s box."""
    port = page.locator(f"#dag circle.port[data-block={upstream}]").bounding_box()
    target = page.locator(f"#dag g.node[data-block={downstream}] rect").bounding_box()
    page.mouse.move(port["x"] + port["width"] / 2, port["y"] + port["height"] / 2)
    page.mouse.down()
    page.mouse.move(target["x"] + 20, target["y"] + 10, steps=8)
    assert page.locator(f"#dag g.node.target[data-block={downstream}]").count() == 1
    page.mouse.up()


def test_a_wrong_password_is_refused_on_the_login_page(browser, served) -> None:
    page = browser.new_page()
    page.goto(served.url + "/login")
    page.get_by_label("User name").fill("editor")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").filter(has_text="wrong user name or password").wait_for()
    page.close()


def test_pipelines_page_lists_the_example(browser, served) -> None:
    page = sign_in(browser, served, "viewer")
    row = page.locator("#pipelines tr[data-name=example_pipeline]")
    assert row.count() == 1
    screenshot(page, "pipelines")
    page.context.close()


def test_build_run_and_watch_a_pipeline_in_the_browser(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    new_pipeline(page, "numbers_etl")
    page.locator(".empty").filter(has_text="No blocks yet").wait_for()

    add_block(page, "numbers", "loader_csv_url", LOADER)

    page.locator("#block-numbers button.run").click()
    output = page.locator("#block-numbers .output")
    output.locator(".status.succeeded").wait_for()
    assert "3 rows" in output.inner_text()
    assert output.locator("table th").first.inner_text().startswith("n")
    assert output.locator("tbody tr").count() == 3
    assert output.locator("svg.chart rect").count() == 3  # the numeric column, charted

    page.get_by_label("Name", exact=True).fill("doubled")
    page.get_by_label("Template").select_option("transformer")
    page.get_by_label("After").select_option("")
    page.get_by_role("button", name="Add block").click()
    page.locator("#block-doubled").wait_for()
    set_code(page, "doubled", TRANSFORMER)
    drag_to_connect(page, "numbers", "doubled")
    page.locator("#block-doubled .chip").filter(has_text="numbers").wait_for()
    assert page.locator("#dag path.edge").count() == 1

    page.once("dialog", lambda dialog: dialog.accept())  # "Disconnect numbers → doubled?"
    page.locator("#dag path.edge-hit").click(force=True)  # a flat line: no "visible" box
    page.locator("#dag path.edge").wait_for(state="detached")
    assert page.locator("#block-doubled .chip").count() == 0

    page.get_by_label("From").select_option("numbers")  # the same with the form
    page.get_by_label("to", exact=True).select_option("doubled")
    page.get_by_role("button", name="Connect").click()
    page.locator("#block-doubled .chip").filter(has_text="numbers").wait_for()
    assert page.locator("#dag path.edge").count() == 1
    screenshot(page, "pipeline_editor")

    page.once("dialog", lambda dialog: dialog.accept("twice"))
    page.locator("#block-doubled button.rename").click()
    page.locator("#block-twice .chip").filter(has_text="numbers").wait_for()
    assert page.locator("#block-doubled").count() == 0

    page.get_by_role("button", name="Run pipeline").click()
    page.wait_for_url(re.compile(r".*/runs/[0-9T]+-\w+$"))
    page.locator("#run-status.succeeded").wait_for(timeout=30_000)
    assert page.locator("svg.gantt rect.bar").count() == 2
    assert page.locator("#blocks tbody tr").count() == 2
    screenshot(page, "run")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
    page.locator("#runs tbody tr").filter(has_text="numbers_etl").first.wait_for()
    screenshot(page, "runs")
    page.context.close()


SLOW_LOADER = """import time
from treadle import data_loader


@data_loader
def slow():
    print("first step done", flush=True)
    time.sleep(2.5)
    print("second step done", flush=True)
    return [{"n": 1}, {"n": 2}]
"""


def test_logs_and_statuses_stream_live_in_the_editor_and_on_the_run_page(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    new_pipeline(page, "slow_one")
    add_block(page, "slow", "loader_csv_url", SLOW_LOADER)

    page.locator("#block-slow button.run").click()
    log = page.locator("#block-slow .output pre.log")
    log.filter(has_text="first step done").wait_for(timeout=10_000)
    assert "second step done" not in log.inner_text()  # a line seen while the block runs
    assert page.locator("#block-slow .state").inner_text() == "running…"
    page.locator("#block-slow .output .status.succeeded").wait_for(timeout=15_000)
    assert "2 rows" in page.locator("#block-slow .output").inner_text()

    page.get_by_role("button", name="Run pipeline").click()
    page.wait_for_url(re.compile(r".*/runs/[0-9T]+-\w+$"))
    page.evaluate("window.notReloaded = true")
    run_log = page.locator("#run-logs details[data-block=slow] pre.log")
    run_log.filter(has_text="first step done").wait_for(timeout=10_000)
    assert "second step done" not in run_log.inner_text()
    page.locator("#run-status.succeeded").wait_for(timeout=15_000)
    run_log.filter(has_text="second step done").wait_for()
    assert run_log.inner_text().count("first step done") == 1
    assert page.locator("#blocks .status.succeeded").count() == 1
    assert page.evaluate("window.notReloaded") is True  # updated in place, not reloaded
    page.locator("#flash").filter(has_text="The run succeeded.").wait_for()
    page.context.close()


def test_a_block_that_raises_shows_its_error_at_its_line(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    new_pipeline(page, "wrong_column")
    add_block(
        page,
        "picky",
        "loader_csv_url",
        "import pandas as pd\nfrom treadle import data_loader\n\n\n@data_loader\n"
        "def picky():\n    df = pd.DataFrame({'passenger_count': [1]})\n"
        "    return df['passengers']\n",
    )
    page.locator("#block-picky button.run").click()
    error = page.locator("#block-picky .output pre.error")
    error.wait_for(timeout=15_000)
    assert "KeyError: 'passengers'" in error.inner_text()
    assert "line 8 of data_loaders/picky.py" in error.inner_text()
    assert page.locator("#block-picky .cm-problem-line").count() == 1
    page.context.close()


def test_a_pipeline_made_as_a_copy_of_the_example(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.get_by_label("New pipeline").fill("my_taxi_etl")
    page.get_by_label("Start from").select_option("example_pipeline")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url("**/pipelines/my_taxi_etl")
    assert page.locator("article.block").count() == 5
    assert page.locator("#dag path.edge").count() == 4
    assert (
        "data_loaders/my_taxi_etl/load_green_taxi.py"
        in page.locator("#block-load_green_taxi header").inner_text()
    )
    assert (served.root / "data_loaders/my_taxi_etl/load_green_taxi.py").is_file()
    page.context.close()


def test_a_viewer_sees_code_but_cannot_edit_or_run(browser, served) -> None:
    page = sign_in(browser, served, "viewer")
    page.goto(served.url + "/pipelines/example_pipeline")
    page.locator("article.block .CodeMirror").first.wait_for()
    assert page.locator("button.save").count() == 0
    assert page.locator("button.run").count() == 0
    assert page.locator("#add-block").count() == 0
    assert page.get_by_label("New pipeline").count() == 0
    read_only = page.evaluate(
        "document.querySelector('article.block .CodeMirror').CodeMirror.getOption('readOnly')"
    )
    assert read_only is True
    answer = page.request.post(served.url + "/api/v1/runs", data={"pipeline": "example_pipeline"})
    assert answer.status == 403  # refused by the server too, not only hidden
    page.context.close()


def test_add_a_daily_trigger_and_see_its_next_fire_times(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Triggers").click()
    page.get_by_label("Pipeline").select_option("example_pipeline")
    page.get_by_label("Name").fill("nightly")
    page.get_by_label("Schedule").fill("0 5 * * *")
    page.get_by_label("Time zone").fill("Europe/Amsterdam")
    preview = page.locator("#t-preview li")
    preview.filter(has_text="T05:00:00").first.wait_for()
    assert preview.count() == 5
    page.get_by_label("Schedule").fill("0 25 * * *")
    page.locator("#t-preview li.error").wait_for()  # a bad cron says why, as you type
    page.get_by_label("Schedule").fill("every day at 6")
    page.locator("#t-preview li.error").filter(has_text="a cron has 5 fields").wait_for()
    page.get_by_label("Schedule").fill("0 5 * * *")
    page.get_by_role("button", name="Add trigger").click()
    row = page.locator("#triggers tr[data-trigger=nightly]")
    row.wait_for()
    page.locator("#flash").filter(has_text="Trigger nightly of example_pipeline added.").wait_for()
    assert "05:00:00" in row.inner_text()
    assert "nightly" in (served.root / "pipelines/example_pipeline/triggers.yaml").read_text()
    row.get_by_role("button", name="Edit").click()
    page.get_by_role("button", name="Cancel", exact=True).click()  # leaves it as it was
    page.locator("#trigger-form-title").filter(has_text="Add a trigger").wait_for()
    row.get_by_role("button", name="Edit").click()
    page.get_by_label("Schedule").fill("30 6 * * *")
    page.locator("#t-preview li").filter(has_text="T06:30:00").first.wait_for()
    page.get_by_role("button", name="Save trigger").click()
    page.locator("#triggers tr[data-trigger=nightly]").filter(has_text="06:30:00").wait_for()
    assert "30 6 * * *" in (served.root / "pipelines/example_pipeline/triggers.yaml").read_text()
    screenshot(page, "triggers")
    page.once("dialog", lambda dialog: dialog.accept())  # "Delete trigger nightly …?"
    page.locator("#triggers tr[data-trigger=nightly]").get_by_role("button", name="Delete").click()
    page.locator("#triggers tr[data-trigger=nightly]").wait_for(state="detached")
    assert "nightly" not in (served.root / "pipelines/example_pipeline/triggers.yaml").read_text()
    page.context.close()


def test_a_backfill_of_three_days_makes_three_runs(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Backfills").click()
    page.get_by_label("Pipeline").select_option("example_pipeline")
    page.get_by_label("From").fill("2024-01-01")
    page.get_by_label("To").fill("2024-01-03")
    page.get_by_label("Variables (JSON)").fill('{"month": "2020-10"}')
    page.get_by_role("button", name="Preview").click()
    summary = page.locator("#b-summary").filter(has_text="3 runs")
    summary.wait_for()
    assert "from 2024-01-01 to 2024-01-03: 2024-01-01, 2024-01-02, 2024-01-03." in (
        summary.inner_text()
    )
    page.get_by_role("button", name="Create the backfill").click()
    row = page.locator("#backfills tbody tr").first
    row.wait_for()
    assert "example_pipeline" in row.inner_text() and "\t3 (" in row.inner_text()
    screenshot(page, "backfills")
    page.evaluate("window.notReloaded = true")
    row.locator(".status.succeeded").wait_for(timeout=60_000)  # the list follows, unreloaded
    assert page.evaluate("window.notReloaded") is True
    page.goto(served.url + "/runs?trigger=backfill")
    page.locator("#runs tbody tr").nth(2).wait_for(timeout=30_000)
    assert page.locator("#runs tbody tr").count() == 3
    page.locator("#runs tbody tr a").first.click()
    page.locator("#run-live").filter(has_text='"month": "2020-10"').wait_for()  # its variables
    page.context.close()


def test_a_running_backfill_is_cancelled_from_the_list_it_keeps_refreshing(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.goto(served.url + "/backfills")
    page.get_by_label("Pipeline").select_option("example_pipeline")
    page.get_by_label("From").fill("2023-01-01")
    page.get_by_label("To").fill("2023-03-31")
    page.get_by_role("button", name="Preview").click()
    page.locator("#b-summary").filter(has_text="90 runs").wait_for()
    page.get_by_role("button", name="Create the backfill").click()
    row = page.locator("#backfills tbody tr").filter(has_text="2023-01-01")
    row.locator(".status.running").wait_for()
    page.locator("#backfills").evaluate("table => { table.dataset.old = 'yes'; }")
    page.locator("#backfills:not([data-old])").wait_for()  # the list was swapped in anew
    row.get_by_role("button", name="Cancel").click()
    row.locator(".status.cancelled").wait_for(timeout=30_000)
    page.context.close()


def test_an_admin_sets_a_secret_that_is_never_shown_and_sees_the_audit_trail(
    browser, served
) -> None:
    page = sign_in(browser, served, "admin")
    page.goto(served.url + "/connections")
    page.get_by_label("Name").fill("pg_password")
    page.get_by_label("Value").fill("very-secret-value-42")
    page.get_by_role("button", name="Set secret").click()
    page.locator("#secrets tr[data-secret=pg_password]").wait_for()
    assert "very-secret-value-42" not in page.content()
    screenshot(page, "connections")
    page.goto(
        served.url
        + "/files?path=pipelines/example_pipeline&file=pipelines/example_pipeline/pipeline.yaml"
    )
    page.locator(".CodeMirror").wait_for()
    screenshot(page, "files")
    page.goto(served.url + "/settings")
    page.locator("#audit td").filter(has_text="secret.set").first.wait_for()
    assert "very-secret-value-42" not in page.content()
    screenshot(page, "settings")
    page.context.close()


def test_a_block_saved_with_a_syntax_error_says_where_and_keeps_the_file(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.goto(served.url + "/pipelines/example_pipeline")
    block = "clean_green_taxi"
    file = served.root / "transformers/clean_green_taxi.py"
    before = file.read_text()
    page.locator(f"#block-{block} .CodeMirror").wait_for()
    page.evaluate(
        "(block) => document.querySelector(`#block-${block} .CodeMirror`).CodeMirror"
        ".setValue('from treadle import transformer\\n\\n@transformer\\ndef x(df:\\n')",
        block,
    )
    page.locator(f"#block-{block} button.save").click()
    error = page.locator(f"#block-{block} .output pre.error")
    error.wait_for()
    assert "clean_green_taxi.py" in error.inner_text() and ":4" in error.inner_text()
    assert error.inner_text().count("clean_green_taxi.py") == 1  # said once
    assert page.locator(f"#block-{block} .state").inner_text() == "not saved"
    assert page.locator(f"#block-{block} .cm-problem-line").count() == 1  # its line marked
    assert file.read_text() == before

    page.evaluate(
        "([block, text]) => document.querySelector(`#block-${block} .CodeMirror`)"
        ".CodeMirror.setValue(text)",
        [block, before],
    )
    page.locator(f"#block-{block} button.save").click()
    page.locator(f"#block-{block} .state").filter(has_text=re.compile("^saved$")).wait_for()
    assert page.locator(f"#block-{block} .output pre.error").count() == 0  # the old error goes
    assert page.locator(f"#block-{block} .cm-problem-line").count() == 0
    page.context.close()


def test_a_refused_connection_is_explained_next_to_the_form(browser, served) -> None:
    page = sign_in(browser, served, "editor")
    page.goto(served.url + "/pipelines/example_pipeline")
    before = (served.root / "pipelines/example_pipeline/pipeline.yaml").read_text()
    page.get_by_label("From", exact=True).select_option("export_green_taxi_duckdb")
    page.get_by_label("to", exact=True).select_option("load_green_taxi")
    page.get_by_role("button", name="Connect", exact=True).click()
    notice = page.locator("#connect + .notice.error")
    notice.wait_for()
    assert "would make a cycle" in notice.inner_text() and "one direction" in notice.inner_text()
    assert notice.is_visible()  # where the user is looking, not at the top of the page
    assert (served.root / "pipelines/example_pipeline/pipeline.yaml").read_text() == before
    page.context.close()


def test_sign_in_and_reach_the_pages_with_the_keyboard_only(browser, served) -> None:
    from tests.e2e.conftest import PASSWORD

    page = browser.new_page()
    page.goto(served.url + "/login")
    page.keyboard.type("editor")  # the name field has the focus
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"^http://[^/]+/pipelines$"))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    reached = set()
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.textContent.trim()"))
    assert {"Pipelines", "Runs", "Triggers", "Backfills", "Settings"} <= reached

    page.goto(served.url + "/pipelines/example_pipeline")
    page.locator("#dag a").nth(1).focus()  # a block in the graph: Enter goes to its code
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "block-clean_green_taxi"
    code = page.locator("article.block .CodeMirror textarea").first
    code.focus()
    page.keyboard.press("Escape")  # Tab indents inside the editor: Esc lets the focus go on
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()").startswith("Save")
    page.close()
