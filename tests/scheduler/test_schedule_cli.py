"""The scheduling commands as a user meets them: validate, triggers, scheduler + curl."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import httpx

TREADLE = [sys.executable, "-m", "treadle.cli"]


def treadle(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TREADLE, *args], capture_output=True, text=True, timeout=timeout)


def _project(project, triggers: str) -> None:
    project.block(
        "data_loaders",
        "load",
        """
        from treadle import data_loader

        @data_loader
        def load(*, variables):
            return {"month": variables["month"]}
        """,
    )
    project.pipeline(
        "etl",
        """
        variables: {month: "2024-01"}
        blocks:
          - name: load
            type: data_loader
        """,
    )
    project.write("pipelines/etl/triggers.yaml", triggers)


def test_validate_reports_a_bad_trigger_with_file_and_line(project) -> None:
    _project(
        project,
        """
        triggers:
          - name: daily
            schedule: "0 5 * * *"
            timezone: Europe/Amsterdm
        """,
    )
    done = treadle("validate", str(project.root))
    assert done.returncode == 2
    assert "pipelines/etl/triggers.yaml:4" in done.stderr and "Europe/Amsterdam" in done.stderr


def test_triggers_list_shows_the_next_slot_in_the_trigger_time_zone(project) -> None:
    _project(
        project,
        """
        triggers:
          - name: daily
            schedule: "0 5 * * *"
            timezone: Europe/Amsterdam
          - name: hook
            type: api
        """,
    )
    done = treadle("triggers", "list", "--project", str(project.root), "--json")
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["daily"]["next_slot"].split("T")[1] in ("05:00:00+01:00", "05:00:00+02:00")
    assert rows["hook"]["type"] == "api" and rows["hook"]["has_token"] is False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_start_serves_api_triggers_and_runs_them_until_stopped(project) -> None:
    _project(project, "triggers:\n  - name: hook\n    type: api\n")
    made = treadle("triggers", "token", "etl", "hook", "--project", str(project.root))
    assert made.returncode == 0, made.stderr
    token = made.stdout.splitlines()[1].strip()
    assert f"Bearer {token}" in made.stdout.replace("\n", "")
    port = _free_port()
    proc = subprocess.Popen(
        [*TREADLE, "start", str(project.root), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/api/v1/triggers/etl/hook/runs"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.post(
                    url, json={"variables": {"month": "2024-02"}},
                    headers={"Authorization": f"Bearer {token}"},
                )  # fmt: skip
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["run_id"]
        assert httpx.post(url, json={}).status_code == 401
        while True:
            shown = treadle("runs", "show", run_id, "--project", str(project.root), "--json")
            if json.loads(shown.stdout)["status"] == "succeeded":
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "treadle stopped" in out
    assert (
        len(json.loads(treadle("runs", "list", "--project", str(project.root), "--json").stdout))
        == 1
    )


def test_the_api_refuses_to_listen_beyond_localhost_without_auth(project) -> None:
    _project(project, "triggers: []\n")
    project.write("treadle.yaml", "auth: false\n")
    for command in ("start", "server"):
        done = treadle(command, str(project.root), "--host", "0.0.0.0")
        assert done.returncode == 2
        assert "refusing to listen on 0.0.0.0 with `auth: false`" in done.stderr


def test_disable_writes_the_file_back_keeping_comments(project) -> None:
    _project(
        project,
        """
        triggers:
          # the nightly load
          - name: daily
            schedule: "0 5 * * *"   # 05:00 UTC
        """,
    )
    done = treadle("triggers", "disable", "etl", "daily", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    text = (project.root / "pipelines/etl/triggers.yaml").read_text()
    assert "# the nightly load" in text and "# 05:00 UTC" in text and "enabled: false" in text
    rows = json.loads(treadle("triggers", "list", "--project", str(project.root), "--json").stdout)
    assert rows[0]["enabled"] is False and rows[0]["next_slot"] is None
    assert (
        treadle("triggers", "enable", "etl", "daily", "--project", str(project.root)).returncode
        == 0
    )
    rows = json.loads(treadle("triggers", "list", "--project", str(project.root), "--json").stdout)
    assert rows[0]["enabled"] is True
    wrong = treadle("triggers", "disable", "etl", "dialy", "--project", str(project.root))
    assert wrong.returncode == 2 and "daily" in wrong.stderr


def test_cancel_of_a_queued_run_cancels_it_at_once(project) -> None:
    _project(project, "triggers: []\n")
    from treadle.project import load_project
    from treadle.scheduler.history import history
    from treadle.store.scheduling import NewRun, ScheduleStore

    with history(load_project(project.root)) as store:
        ScheduleStore(store).queue_run(NewRun("q1", "etl", 1.0, 1.0, 1.0, trigger="api"), 1.0)
    done = treadle("cancel", "q1", "--project", str(project.root))
    assert done.returncode == 0, done.stderr
    shown = json.loads(
        treadle("runs", "show", "q1", "--project", str(project.root), "--json").stdout
    )
    assert shown["status"] == "cancelled"


def test_brackets_in_a_bad_value_are_printed_not_taken_for_markup(project) -> None:
    _project(project, 'triggers:\n  - name: daily\n    schedule: "[/x] 5 * * *"\n')
    done = treadle("validate", str(project.root))
    assert done.returncode == 2, done.stderr
    assert "[/x] 5 * * *" in done.stderr and "internal error" not in done.stderr


def test_a_port_in_use_is_a_clear_error(project) -> None:
    _project(project, "triggers: []\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = treadle("start", str(project.root), "--port", str(port), timeout=60)
    assert done.returncode == 2
    assert "in use" in done.stderr


def test_a_trigger_variable_typo_is_reported_by_validate(project) -> None:
    _project(
        project,
        "triggers:\n  - name: daily\n    schedule: '@daily'\n    variables: {mnth: '2024-02'}\n",
    )
    done = treadle("validate", str(project.root))
    assert done.returncode == 2
    assert "pipelines/etl/triggers.yaml:2" in done.stderr and "month" in done.stderr
