"""The web UI's pages: ``python bench/pages.py``.

Time to the whole HTML of each main page (server side: request in, page out, over
loopback to ``treadle server``) with 10,000 runs in the store (SQLite), as a signed-in
admin; median and max of 20 requests each after 3 untimed. The editor is measured on the
example pipeline and on a generated 200-block pipeline; a run's page on the newest run. Target (issue 7): under 300 ms
to first render. Writes ``bench/results/pages.json``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parent))
import server as bench_server  # noqa: E402  (the same project and store filling)

PAGES = (
    "/pipelines",
    "/pipelines/example_pipeline",
    "/pipelines/wide",
    "/runs",
    "/triggers",
    "/backfills",
    "/connections",
    "/files",
    "/settings",
)
BLOCKS = 200


def add_wide_pipeline(root: Path) -> None:
    """A pipeline of 200 transformers in 20 layers of 10, each after one of the layer before."""
    lines = ["blocks:"]
    for n in range(BLOCKS):
        name = f"step_{n:03d}"
        (root / "transformers" / f"{name}.py").write_text(
            f"from treadle import transformer\n\n\n@transformer\ndef {name}(*inputs):\n"
            "    return len(inputs)\n"
        )
        upstream = f", upstream: [step_{n - 10:03d}]" if n >= 10 else ""
        lines.append(f"  - {{name: {name}, type: transformer{upstream}}}")
    (root / "pipelines/wide").mkdir()
    (root / "pipelines/wide/pipeline.yaml").write_text("\n".join(lines) + "\n")


def first_paint(page: Any) -> float:
    """When the page first painted content (the entry may come just after the load event)."""
    for _ in range(100):
        paint = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)"
        )
        if paint:
            return paint[0]
        time.sleep(0.02)
    raise RuntimeError(f"no first-contentful-paint entry for {page.url}")


def browser_times(port: int, password: str, run_page: str) -> dict[str, dict[str, float]]:
    """In chromium (Playwright), median of 5: from navigation to the first contentful paint
    (``first_paint_ms``) and to the load event, scripts and the first CodeMirror editors
    included (``load_ms``); skipped when Playwright or chromium is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    times: dict[str, dict[str, float]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/login")
        page.evaluate(
            "([name, password]) => fetch('/api/v1/session', {method: 'POST', headers:"
            " {'Content-Type': 'application/json'}, body: JSON.stringify({name, password})})",
            ["admin", password],
        )
        paths = ("/pipelines", "/runs", run_page, "/pipelines/example_pipeline", "/pipelines/wide")
        for path in paths:
            paints, loads = [], []
            for _ in range(5):
                page.goto(f"http://127.0.0.1:{port}{path}", wait_until="load")
                loads.append(
                    page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                )
                paints.append(first_paint(page))
            times[path] = {
                "first_paint_ms": round(statistics.median(paints), 1),
                "load_ms": round(statistics.median(loads), 1),
            }
        browser.close()
    return times


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="treadle_bench_pages_"))
    root = bench_server.make_project(folder)
    add_wide_pipeline(root)
    bench_server.RUNS = 10_000
    bench_server.fill_runs(root)
    port = bench_server.free_port()
    env_password = "bench-admin-password"
    process = subprocess.Popen(
        [*bench_server.TREADLE, "server", str(root), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**__import__("os").environ, "TREADLE_ADMIN_PASSWORD": env_password},
    )  # fmt: skip
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        while True:
            try:
                client.get("/api/v1/health")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        client.post("/api/v1/session", json={"name": "admin", "password": env_password})
        newest = client.get("/api/v1/runs", params={"limit": 1}).json()["runs"][0]["run_id"]
        run_page = f"/runs/{newest}"
        results = {}
        for path in (*PAGES, run_page):
            for _ in range(3):
                assert client.get(path).status_code == 200, path
            times = []
            for _ in range(20):
                started = time.perf_counter()
                answer = client.get(path)
                times.append((time.perf_counter() - started) * 1000)
                assert answer.status_code == 200
            results[path] = {
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "bytes": len(answer.content),
            }
            print(f"{path:32} {results[path]}", file=sys.stderr)
        out = {
            "runs_in_store": 10_000,
            "wide_blocks": BLOCKS,
            "pages": results,
            "browser": browser_times(port, env_password, run_page),
        }
        (Path(__file__).with_name("results") / "pages.json").write_text(
            json.dumps(out, indent=2) + "\n"
        )
        print(json.dumps(out, indent=2))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
