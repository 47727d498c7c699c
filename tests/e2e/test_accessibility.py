"""Accessibility: axe-core (the engine behind Lighthouse's audit, bundled by
axe-playwright-python) checks every main page in chromium against WCAG 2.1 A and AA —
names and labels, contrast, landmarks, ARIA use, keyboard focusability. Each page is also
checked to work under the server's content security policy (nothing blocked)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import NOTE_CSP_VIOLATIONS, csp_violations, screenshot, sign_in

WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}
PAGES = (
    "/pipelines",
    "/pipelines/example_pipeline",
    "/runs",
    "/triggers",
    "/backfills",
    "/connections",
    "/files",
    "/files?path=pipelines/example_pipeline&file=pipelines/example_pipeline/pipeline.yaml",
    "/settings",
)


def violations(page) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options=WCAG).response
    found = [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(node["target"][0] for node in v["nodes"][:5])
        for v in results["violations"]
    ]
    return found + [f"content security policy: {v}" for v in csp_violations(page)]


@pytest.fixture(scope="module")
def admin_page(browser, served):
    page = sign_in(browser, served, "admin")
    yield page
    page.context.close()


@pytest.mark.parametrize("path", PAGES)
def test_the_page_has_no_wcag_violations(admin_page, served, path) -> None:
    admin_page.goto(served.url + path)
    admin_page.wait_for_load_state("networkidle")
    found = violations(admin_page)
    assert found == [], "\n".join(found)


def test_a_run_page_has_no_wcag_violations(admin_page, served) -> None:
    started = admin_page.request.post(
        served.url + "/api/v1/runs",
        data={"pipeline": "example_pipeline"},
        headers={"X-CSRF-Token": admin_page.evaluate("document.body.dataset.csrf")},
    )
    assert started.ok, started.text()
    admin_page.goto(f"{served.url}/runs/{started.json()['run_id']}")
    admin_page.locator("#run-status.succeeded, #run-status.failed").wait_for(timeout=60_000)
    found = violations(admin_page)
    assert found == [], "\n".join(found)


def test_the_login_page_has_no_wcag_violations(browser, served) -> None:
    context = browser.new_context()
    context.add_init_script(NOTE_CSP_VIOLATIONS)
    try:
        page = context.new_page()
        page.goto(served.url + "/login")
        assert violations(page) == []
    finally:
        context.close()


def test_a_block_result_in_the_editor_has_no_wcag_violations(admin_page, served) -> None:
    admin_page.goto(served.url + "/pipelines/example_pipeline")
    block = admin_page.locator("article.block").first
    block.locator("button.run").click()
    block.locator(".output .status.succeeded").wait_for(timeout=60_000)
    assert block.locator(".output table.preview").count() == 1
    found = violations(admin_page)
    assert found == [], "\n".join(found)


def test_an_injected_inline_script_does_not_run(admin_page, served) -> None:
    admin_page.goto(served.url + "/pipelines")
    ran = admin_page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true'; document.body.append(s);"
        " return window.injected === true; }"
    )
    assert ran is False  # script-src 'self': inline script is refused
    assert any("script-src" in v for v in csp_violations(admin_page))


@pytest.mark.parametrize("path", ["/pipelines", "/runs", "/triggers", "/backfills", "/settings"])
def test_a_narrow_window_has_no_wcag_violations(browser, served, path) -> None:
    page = sign_in(browser, served, "admin")
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(served.url + path)
    page.wait_for_load_state("networkidle")
    nav = page.get_by_role("navigation", name="Main").bounding_box()
    assert nav["y"] + nav["height"] < 140  # the header leaves the screen to the page
    found = violations(page)
    screenshot(page, "narrow" + path.replace("/", "_"))
    page.context.close()
    assert found == [], "\n".join(found)
