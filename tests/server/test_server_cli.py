"""``treadle start`` / ``server``: first admin, graceful stop; ``treadle users`` and ``audit``."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx

from tests.server.conftest import write_etl

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str, env: dict[str, str] | None = None, timeout: float = 60):
    return subprocess.run(
        [*TREADLE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(project, command: str = "start", env: dict[str, str] | None = None):
    """Start the server; return the process, its port and the output so far once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [*TREADLE, command, str(project.root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/health")
            return proc, port
        except httpx.ConnectError:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline
            time.sleep(0.05)


def stop(proc) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_first_start_creates_an_admin_with_a_random_password_shown_once(project) -> None:
    write_etl(project)
    proc, port = start(project)
    out = stop(proc)
    match = re.search(r"created the first user: admin, password (\S+)", out)
    assert match, out
    password = match.group(1)
    assert len(password) >= 16
    proc, port = start(project)
    answer = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/session", json={"name": "admin", "password": password}
    )
    again = stop(proc)
    assert answer.status_code == 200 and answer.json()["role"] == "admin"
    assert "created the first user" not in again and password not in again


def test_the_first_admin_password_can_come_from_the_environment(project) -> None:
    write_etl(project)
    env = {"TREADLE_ADMIN_PASSWORD": "from the environment"}
    proc, port = start(project, "server", env=env)
    answer = httpx.post(
        f"http://127.0.0.1:{port}/api/v1/session",
        json={"name": "admin", "password": "from the environment"},
    )
    out = stop(proc)
    assert answer.status_code == 200
    assert "from the environment" not in out.replace("TREADLE_ADMIN_PASSWORD", "")


def test_users_commands_and_the_audit_trail(project) -> None:
    write_etl(project)
    where = ["--project", str(project.root)]
    env = {"TREADLE_PASSWORD": "a long password here"}
    added = treadle("users", "add", "dana", "--role", "editor", *where, env=env)
    assert added.returncode == 0, added.stderr
    assert "a long password here" not in added.stdout
    listed = json.loads(treadle("users", "list", *where, "--json").stdout)
    assert [(u["name"], u["role"]) for u in listed] == [("dana", "editor")]
    assert treadle("users", "add", "dana", *where, env=env).returncode == 2
    wrong = treadle("users", "add", "eve", "--role", "owner", *where, env=env)
    assert wrong.returncode == 2 and "unknown role 'owner'" in wrong.stderr
    short = treadle("users", "add", "eve", *where, env={"TREADLE_PASSWORD": "short"})
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    assert treadle("users", "role", "dana", "viewer", *where).returncode == 0
    token = treadle("users", "token", "dana", "--name", "ci", *where)
    assert token.returncode == 0 and token.stdout.strip().splitlines()[-1].startswith("trd_")
    missing = treadle("users", "passwd", "dnaa", *where, env=env)
    assert missing.returncode == 2 and "dana" in missing.stderr  # did you mean
    assert treadle("users", "delete", "dana", *where).returncode == 0
    trail = json.loads(treadle("audit", *where, "--json").stdout)
    actions = [e["action"] for e in trail]
    assert actions == ["user.deleted", "token.created", "user.role_changed", "user.added"]
    assert all(e["origin"] == "cli" and e["actor"].startswith("cli") for e in trail)


def test_stopping_start_records_a_run_in_progress_as_cancelled_never_running(project) -> None:
    project.block(
        "data_loaders",
        "slow",
        """
        import time
        from treadle import data_loader

        @data_loader
        def slow():
            print("started", flush=True)
            time.sleep(60)
        """,
    )
    project.pipeline("slow", "blocks:\n  - {name: slow, type: data_loader}\n")
    where = ["--project", str(project.root)]
    env = {"TREADLE_PASSWORD": "a long password here"}
    assert treadle("users", "add", "ops", "--role", "editor", *where, env=env).returncode == 0
    token = treadle("users", "token", "ops", *where).stdout.strip().splitlines()[-1]
    proc, port = start(project)
    api = httpx.Client(
        base_url=f"http://127.0.0.1:{port}/api/v1", headers={"Authorization": f"Bearer {token}"}
    )
    run_id = api.post("/runs", json={"pipeline": "slow"}).json()["run_id"]
    deadline = time.monotonic() + 30
    while api.get(f"/runs/{run_id}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    stopped_at = time.monotonic()
    stop(proc)
    assert time.monotonic() - stopped_at < 20  # it did not wait for the 60 s block
    shown = json.loads(treadle("runs", "show", run_id, *where, "--json").stdout)
    assert shown["status"] == "cancelled"
    assert shown["blocks"][0]["status"] == "cancelled"
