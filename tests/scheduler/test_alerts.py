"""Alerts reach a real HTTP receiver through apprise, once per event, and never raise."""

from __future__ import annotations

import dataclasses
import logging
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from treadle.project import load_project
from treadle.project.model import ALERT_TEMPLATE_NAMES, AlertEvent, AlertSpec, Pipeline
from treadle.scheduler.alerts import (
    AlertContext,
    masked_channel,
    render_alert,
    run_link,
    send_alerts,
)

TRACEBACK = "ValueError: negative fare in row 17\nTraceback (most recent call last):\n  ...\n"


class Ledger:
    """The store's once-per-(run, event) record, in memory."""

    def __init__(self, answer: bool | None = None) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def __call__(self, run_id: str, event: str) -> bool:
        first = (run_id, event) not in self.calls
        self.calls.append((run_id, event))
        return first if self.answer is None else self.answer


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pipeline_with(*alerts: AlertSpec) -> Pipeline:
    return Pipeline(name="taxi", directory=Path("pipelines/taxi"), blocks=(), alerts=alerts)


def context(event: AlertEvent = AlertEvent.FAILURE, **changes: object) -> AlertContext:
    values: dict = {
        "project": "demo",
        "pipeline": "taxi",
        "run_id": "run-7f3a",
        "event": event,
        "status": "failed",
        "execution_date": "2024-03-01T00:00:00+00:00",
        "duration": 83.0,
        "failing_block": "clean_trips",
        "error": TRACEBACK,
        "link": run_link("http://treadle.example.com/", "run-7f3a"),
    }
    return AlertContext(**(values | changes))


def alert(*urls: str, on: tuple[AlertEvent, ...] = (AlertEvent.FAILURE,), **templates) -> AlertSpec:
    return AlertSpec(urls=urls, on=frozenset(on), line=12, **templates)


def test_a_failure_names_the_pipeline_run_block_error_and_link(receiver):
    problems = send_alerts(pipeline_with(alert(receiver.url())), context(), first_time=Ledger())
    assert problems == []
    [payload] = receiver.at("/hook")
    assert payload["type"] == "failure"
    assert "taxi" in payload["title"] and "failed" in payload["title"]
    body = payload["message"]
    for expected in (
        "taxi",
        "run-7f3a",
        "clean_trips",
        "ValueError: negative fare in row 17",
        "http://treadle.example.com/runs/run-7f3a",
        "2024-03-01T00:00:00+00:00",
        "1m 23s",
    ):
        assert expected in body
    assert "Traceback" not in body  # the first line of the error only


def test_a_long_error_is_cut(receiver):
    ctx = context(error="RuntimeError: " + "x" * 5000)
    send_alerts(pipeline_with(alert(receiver.url())), ctx, first_time=Ledger())
    [payload] = receiver.at("/hook")
    assert "RuntimeError: xxx" in payload["message"] and len(payload["message"]) < 1000


def test_an_event_not_subscribed_sends_nothing(receiver):
    ledger = Ledger()
    spec = alert(receiver.url(), on=(AlertEvent.FAILURE, AlertEvent.STUCK))
    ctx = context(AlertEvent.SUCCESS, status="succeeded", failing_block=None, error=None)
    assert send_alerts(pipeline_with(spec), ctx, first_time=ledger) == []
    assert receiver.received == [] and ledger.calls == []


def test_the_ledger_refusing_sends_nothing(receiver):
    ledger = Ledger(answer=False)
    assert send_alerts(pipeline_with(alert(receiver.url())), context(), first_time=ledger) == []
    assert ledger.calls == [("run-7f3a", "failure")]
    assert receiver.received == []


def test_each_event_of_a_run_is_sent_once(receiver):
    ledger = Ledger()
    pipeline = pipeline_with(
        alert(receiver.url("/a"), on=tuple(AlertEvent)), alert(receiver.url("/b"))
    )
    for _ in range(2):
        send_alerts(pipeline, context(), first_time=ledger)
    late = context(AlertEvent.SLA_MISSED, status="running", reason="not finished after 2h")
    send_alerts(pipeline, late, first_time=ledger)
    assert ledger.calls == [("run-7f3a", "failure")] * 2 + [("run-7f3a", "sla_missed")]
    assert [p["type"] for p in receiver.at("/a")] == ["failure", "warning"]
    assert "not finished after 2h" in receiver.at("/a")[1]["message"]
    assert len(receiver.at("/b")) == 1


def test_a_failing_channel_is_a_problem_and_the_others_still_receive(receiver, caplog):
    dead = f"json://127.0.0.1:{closed_port()}/secret-token-123"
    spec = alert(dead, receiver.url("/broken/also-secret"), "bogus://nothing", receiver.url())
    with caplog.at_level(logging.WARNING, logger="treadle.alerts"):
        problems = send_alerts(pipeline_with(spec), context(), first_time=Ledger())
    assert len(receiver.at("/hook")) == 1
    assert len(problems) == 3
    assert any(f"json://127.0.0.1:{dead.split(':')[2].split('/')[0]}/…" in p for p in problems)
    assert any(f"json://127.0.0.1:{receiver.port}/…" in p for p in problems)
    assert any("bogus://" in p and "apprise does not know" in p for p in problems)
    assert all("line 12" in p and "run-7f3a" in p for p in problems)
    logged = [r.getMessage() for r in caplog.records if r.name == "treadle.alerts"]
    assert sorted(logged) == sorted(problems)
    assert not any("secret" in text for text in logged)


def test_a_silent_endpoint_cannot_hang_the_run():
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"json://127.0.0.1:{silent.getsockname()[1]}/hook"
        started = time.monotonic()
        problems = send_alerts(
            pipeline_with(alert(url)), context(), first_time=Ledger(), timeout=0.5
        )
    assert time.monotonic() - started < 5
    assert len(problems) == 1


def test_a_templated_title_and_body(receiver):
    spec = alert(
        receiver.url(),
        title="Treadle: {{ pipeline }} {{ event }}",
        body="{{ failing_block }} in {{ run_id }}{% if reason %} ({{ reason }}){% endif %}: {{ error }}",
    )
    send_alerts(pipeline_with(spec), context(), first_time=Ledger())
    [payload] = receiver.at("/hook")
    assert payload["title"] == "Treadle: taxi failure"
    assert payload["message"] == "clean_trips in run-7f3a: ValueError: negative fare in row 17"


def test_render_alert_uses_the_defaults_where_the_spec_has_no_template():
    title, body = render_alert(alert("json://x/y", title="{{ project }}/{{ pipeline }}"), context())
    assert title == "demo/taxi"
    assert "Failing block: clean_trips" in body and "Link: http://treadle.example.com" in body


def test_urls_render_env_var_at_send_time(receiver):
    spec = alert("json://127.0.0.1:{{ env_var('HOOK_PORT') }}/{{ env_var('HOOK_PATH', 'hook') }}")
    env = {"HOOK_PORT": str(receiver.port)}
    assert send_alerts(pipeline_with(spec), context(), first_time=Ledger(), env=env) == []
    assert len(receiver.at("/hook")) == 1


def test_a_missing_env_var_is_a_problem_not_a_crash(receiver):
    spec = alert("{{ env_var('SLACK_URL') }}", receiver.url())
    problems = send_alerts(pipeline_with(spec), context(), first_time=Ledger(), env={})
    assert len(problems) == 1 and "'SLACK_URL' is not set" in problems[0]
    assert len(receiver.at("/hook")) == 1


def test_a_template_that_fails_at_send_time_falls_back_to_the_default_text(receiver):
    spec = alert(receiver.url(), title="{{ env_var('TEAM') }}: {{ pipeline }}")
    problems = send_alerts(pipeline_with(spec), context(), first_time=Ledger(), env={})
    assert len(problems) == 1 and "alert title" in problems[0] and "'TEAM'" in problems[0]
    [payload] = receiver.at("/hook")
    assert payload["title"] == "Treadle: taxi failed"


def test_a_failing_ledger_is_a_problem_not_a_crash(receiver):
    def broken_ledger(run_id: str, event: str) -> bool:
        raise RuntimeError("database is locked")

    problems = send_alerts(
        pipeline_with(alert(receiver.url())), context(), first_time=broken_ledger
    )
    assert len(problems) == 1 and "database is locked" in problems[0]
    assert receiver.received == []


def test_alerts_loaded_from_pipeline_yaml_are_sent(project, receiver):
    project.pipeline(
        "taxi",
        f"""
        sla: 2h
        max_active_runs: 1
        alerts:
          - urls: ["{receiver.url("/all")}"]
            on: [failure, success]
            title: "{{{{ pipeline }}}}: {{{{ status }}}}"
          - url: "{receiver.url("/default")}"
        blocks: []
        """,
    )
    pipeline = load_project(project.root).pipeline("taxi")
    ok = context(AlertEvent.SUCCESS, status="succeeded", failing_block=None, error=None)
    send_alerts(pipeline, ok, first_time=Ledger())
    send_alerts(pipeline, context(AlertEvent.STUCK, reason="worker died"), first_time=Ledger())
    assert [p["title"] for p in receiver.at("/all")] == ["taxi: succeeded"]
    [stuck] = receiver.at("/default")
    assert stuck["title"] == "Treadle: taxi is stuck" and "worker died" in stuck["message"]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "json://user:pa55word@hooks.example.com:8080/a/b?token=x",
            "json://hooks.example.com:8080/…",
        ),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "slack://…"),
        ("tgram://123456789:abcdefg_hijklmnop/12315544", "tgram://…"),
        ("mailto://user:secret@gmail.com", "mailto://gmail.com"),
        ("not a url", "(not a URL)"),
    ],
)
def test_masked_channel_keeps_scheme_and_host_only(url, shown):
    assert masked_channel(url) == shown


def test_importing_alerts_loads_neither_apprise_nor_jinja():
    code = (
        "import sys, treadle.scheduler.alerts\n"
        "print(sorted(m for m in ('apprise', 'jinja2') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_loader_allows_exactly_the_names_an_alert_fills_in():
    fields = {field.name for field in dataclasses.fields(AlertContext)}
    assert set(ALERT_TEMPLATE_NAMES) == fields | {"env_var"}
