"""The server's benchmark: ``python bench/server.py [--quick] [--keep]``.

It measures, in one run of this script, on a project generated in a temporary folder:

1. **Start to first 200**: from spawning ``treadle server PROJECT --port P`` to the first
   ``200`` of ``GET /api/v1/health`` (polled every 10 ms), median of 5 starts (``--quick``
   3). Baseline, in the same run: a bare FastAPI app (one route) served by uvicorn the
   same way (``python -c …``), the physical floor of "a Python web server answers".
2. **Idle RSS**: VmRSS of each server process after it answered and sat idle for 2 s.
3. **Latency under load**: with 100,000 runs in the project's store (SQLite, the default;
   inserted untimed, as ``tests/store/test_store_scale.py`` does) and 8 pipelines, a
   second process sends ``GET /api/v1/runs?limit=50`` and ``GET /api/v1/pipelines``
   (alternating, with a viewer's API token) at 200 requests/s, open loop (each request is
   sent at its time, whether or not the previous one has answered), for 15 s (``--quick``
   5 s) after 2 s of warm-up. Latency = response received − request sent; p50, p90, p99,
   max per endpoint, and the rate achieved. Baseline: the bare app's one route under the
   same load.

Targets (issue 6): start ≤ 1.5 s (Mage's ``mage start``: 10.8 s on this machine), idle RSS
≤ 150 MB (Mage: 824 MB), p99 < 50 ms. Writes ``bench/results/server.json``
(``server.quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("results")
TREADLE = [sys.executable, "-m", "treadle.cli"]
RUNS = 100_000
PIPELINES = 8
RATE = 200.0
BARE_APP = """
import sys, uvicorn
from fastapi import FastAPI
app = FastAPI()

@app.get("/api/v1/health")
def health():
    return {"status": "ok"}

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_project(folder: Path) -> Path:
    from treadle.project.scaffold import init_project

    root = init_project(folder / "bench_server", sample_rows=100)
    example = (root / "pipelines/example_pipeline/pipeline.yaml").read_text()
    for n in range(1, PIPELINES):
        (root / f"pipelines/copy_{n}").mkdir()
        copy = example.replace("name: example_pipeline", f"name: copy_{n}")
        (root / f"pipelines/copy_{n}/pipeline.yaml").write_text(copy)
    return root


def fill_runs(root: Path) -> None:
    """100,000 finished runs over the pipelines, straight into the store (untimed)."""
    from treadle.store import open_store

    pipelines = ["example_pipeline", *(f"copy_{n}" for n in range(1, PIPELINES))]
    with open_store(root, project="bench_server") as store:
        ts = store.db.ts
        rows = []
        t0 = time.time() - RUNS * 60
        for i in range(RUNS):
            at = t0 + i * 60
            rows.append(
                {
                    "id": f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(at))}000-{i:06x}",
                    "project": "bench_server",
                    "pipeline": pipelines[i % len(pipelines)],
                    "status": ("succeeded", "succeeded", "failed")[i % 3],
                    "created_at": ts(at),
                    "finished_at": ts(at + 30),
                }
            )
        store.db.executemany(
            'INSERT INTO pipeline_runs (id, project, pipeline, status, variables, "trigger",'
            " file_hashes, created_at, started_at, finished_at) VALUES (:id, :project,"
            " :pipeline, :status, '{}', 'schedule', '{}', :created_at, :created_at,"
            " :finished_at)",
            rows,
        )


def viewer_token(root: Path) -> str:
    from treadle.store import open_store
    from treadle.store.access import AccessStore, Role

    with open_store(root, project="bench_server") as store:
        access = AccessStore(store)
        if access.user("bench") is None:
            access.add_user("bench", Role.VIEWER, "bench-password-long")
        return access.create_token("bench", "bench")[1]


def spawn(kind: str, root: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TREADLE_ADMIN_PASSWORD": "bench-admin-password"}
    if kind == "treadle":
        command = [*TREADLE, "server", str(root), "--port", str(port)]
    else:
        command = [sys.executable, "-c", BARE_APP, str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def time_to_first_200(kind: str, root: Path) -> tuple[float, subprocess.Popen[bytes], int]:
    import httpx

    port = free_port()
    started = time.perf_counter()
    process = spawn(kind, root, port)
    url = f"http://127.0.0.1:{port}/api/v1/health"
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return time.perf_counter() - started, process, port
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit(f"{kind} server exited with {process.returncode}")
        time.sleep(0.01)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def load(port: int, paths: list[str], token: str, seconds: float) -> dict[str, list[float]]:
    """Open-loop load at ``RATE``; latencies (ms) per path."""
    import httpx

    latencies: dict[str, list[float]] = {path: [] for path in paths}
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
    ) as client:

        async def one(path: str, record: bool) -> None:
            sent = time.perf_counter()
            answer = await client.get(path)
            took = (time.perf_counter() - sent) * 1000
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:200]}")
            if record:
                latencies[path].append(took)

        tasks = []
        warmup = 2.0
        count = int((seconds + warmup) * RATE)
        t0 = time.perf_counter()
        for i in range(count):
            due = t0 + i / RATE
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(paths[i % len(paths)], i / RATE >= warmup)))
        await asyncio.gather(*tasks)
    return latencies


def summary(values: list[float]) -> dict[str, float]:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {
        "count": len(values),
        "p50_ms": round(q[49], 2),
        "p90_ms": round(q[89], 2),
        "p99_ms": round(q[98], 2),
        "max_ms": round(max(values), 2),
    }


def load_in_second_process(port: int, paths: list[str], token: str, seconds: float) -> dict:
    """Run ``load`` in a child Python process, so the client does not share the server's
    CPU scheduling with this one; returns its latencies."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
        "import server as b;"
        "print(json.dumps(asyncio.run(b.load(int(sys.argv[2]), json.loads(sys.argv[3]),"
        " sys.argv[4], float(sys.argv[5])))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(port), json.dumps(paths),
         token, str(seconds)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    starts = 3 if args.quick else 5
    seconds = 5.0 if args.quick else 15.0
    folder = Path(tempfile.mkdtemp(prefix="treadle_bench_server_"))
    try:
        root = make_project(folder)
        print("filling the store with 100,000 runs …", file=sys.stderr)
        fill_runs(root)
        token = viewer_token(root)
        result: dict = {"runs_in_store": RUNS, "pipelines": PIPELINES, "rate": RATE}
        for kind in ("bare", "treadle"):
            times = []
            for _ in range(starts):
                took, process, _ = time_to_first_200(kind, root)
                times.append(took)
                stop(process)
            took, process, port = time_to_first_200(kind, root)
            time.sleep(2)
            rss = rss_mb(process.pid)
            paths = (
                ["/api/v1/runs?limit=50", "/api/v1/pipelines"]
                if kind == "treadle"
                else ["/api/v1/health"]
            )
            print(f"{kind}: loading at {RATE:.0f} req/s for {seconds:.0f} s …", file=sys.stderr)
            latencies = load_in_second_process(port, paths, token, seconds)
            stop(process)
            result[kind] = {
                "start_s": {
                    "samples": [round(t, 3) for t in times],
                    "median": round(statistics.median(times), 3),
                },
                "idle_rss_mb": round(rss, 1),
                "latency": {path: summary(values) for path, values in latencies.items()},
            }
        bare, ours = result["bare"], result["treadle"]
        result["ratios"] = {
            "start_vs_bare": round(ours["start_s"]["median"] / bare["start_s"]["median"], 2),
            "rss_vs_bare": round(ours["idle_rss_mb"] / bare["idle_rss_mb"], 2),
        }
        print(json.dumps(result, indent=2))
        RESULTS.mkdir(exist_ok=True)
        name = "server.quick.json" if args.quick else "server.json"
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    finally:
        if args.keep:
            print(f"kept {folder}", file=sys.stderr)
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
