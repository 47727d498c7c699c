"""The web UI in a real browser: Playwright driving Debian's chromium against
``treadle start`` on a new project (``treadle init``'s example), as a user of each role.

Without chromium or Playwright the tests skip, saying why, except under ``CI=true`` where
they fail. Screenshots of each page go to ``tests/e2e/artifacts/`` (not committed).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

CHROMIUM = os.environ.get("TREADLE_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).with_name("artifacts")
PASSWORD = "a long e2e password"
TREADLE = [sys.executable, "-m", "treadle.cli"]


def _unavailable(message: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(message + "; under CI=true the browser tests must run")
    pytest.skip(message)


@dataclass
class Served:
    url: str
    root: Path


@pytest.fixture(scope="session")
def served(tmp_path_factory) -> Iterator[Served]:
    """``treadle start`` on a new project with users admin, editor and viewer."""
    from treadle.project.scaffold import init_project

    root = init_project(tmp_path_factory.mktemp("e2e") / "demo", sample_rows=300)
    env = {**os.environ, "TREADLE_ADMIN_PASSWORD": PASSWORD, "TREADLE_PASSWORD": PASSWORD}
    for name, role in (("admin", "admin"), ("editor", "editor"), ("viewer", "viewer")):
        subprocess.run(
            [*TREADLE, "users", "add", name, "--role", role, "--project", str(root)],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [*TREADLE, "start", str(root), "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/api/v1/health")
            break
        except httpx.TransportError:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "treadle start did not answer"
            time.sleep(0.05)
    yield Served(url, root)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[dev]')")
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).is_file():
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


#: Run before a page's own scripts: what the content security policy blocked, in
#: ``window.cspViolations`` (see ``csp_violations``).
NOTE_CSP_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI}`);
});
"""


def csp_violations(page) -> list[str]:
    return page.evaluate("window.cspViolations || []")


def sign_in(browser, served: Served, user: str):
    """A new page of a new browser context, signed in as ``user`` through the login form."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(NOTE_CSP_VIOLATIONS)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(served.url + "/pipelines")
    page.wait_for_url("**/login**")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^http://[^/]+/pipelines$"))
    return page


def screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
