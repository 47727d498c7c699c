"""Loading a project validates all of it and reports every problem with file and line."""

from __future__ import annotations

import pytest

from treadle.errors import ProjectInvalid, UserInputError
from treadle.project import BlockType, load_project
from treadle.project.model import AlertEvent

LOADER = """
from treadle import data_loader

@data_loader
def load():
    return 1
"""
TRANSFORMER = """
from treadle import transformer

@transformer
def step(x):
    return x
"""


def problems_of(root) -> list[UserInputError]:
    with pytest.raises(ProjectInvalid) as caught:
        load_project(root)
    return caught.value.problems


def one_problem(root) -> UserInputError:
    problems = problems_of(root)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_valid_project_loads_with_defaults(project):
    project.block("data_loaders", "load", LOADER)
    project.block("transformers", "step", TRANSFORMER)
    project.pipeline(
        "p",
        """
        variables: {month: "2020-10"}
        retries: {count: 2, delay: 1s, backoff: 3}
        blocks:
          - name: load
            type: data_loader
          - name: step
            type: transformer
            upstream: [load]
            timeout: 10m
        """,
    )
    loaded = load_project(project.root)
    pipeline = loaded.pipeline("p")
    assert pipeline.block_names == ("load", "step")
    assert pipeline.block("step").upstream == ("load",)
    assert pipeline.block("step").timeout == 600
    assert pipeline.block("load").file == "data_loaders/load.py"
    assert pipeline.block("load").type is BlockType.DATA_LOADER
    assert (
        pipeline.retries.count == 2
        and pipeline.retries.delay == 1
        and pipeline.retries.backoff == 3
    )
    assert pipeline.variables == {"month": "2020-10"}
    assert loaded.settings.name == "test_project"


def test_sql_file_is_found_when_there_is_no_py(project):
    project.write("transformers/agg.sql", "select 1 as x")
    project.pipeline("p", "blocks:\n  - {name: agg, type: transformer}\n")
    assert load_project(project.root).pipeline("p").block("agg").file == "transformers/agg.sql"


def test_not_a_project(tmp_path):
    with pytest.raises(UserInputError, match="not a Treadle project"):
        load_project(tmp_path)


def test_cycle_names_its_blocks(project):
    for name in ("a", "b", "c"):
        project.block("transformers", name, TRANSFORMER.replace("step", name))
    project.pipeline(
        "p",
        """
        blocks:
          - {name: a, type: transformer, upstream: [c]}
          - {name: b, type: transformer, upstream: [a]}
          - {name: c, type: transformer, upstream: [b]}
        """,
    )
    problem = one_problem(project.root)
    assert "cycle" in problem.message
    for name in ("a", "b", "c"):
        assert name in problem.message
    assert problem.path == "pipelines/p/pipeline.yaml" and problem.line == 2


def test_self_loop_is_a_cycle(project):
    project.block("transformers", "a", TRANSFORMER)
    project.pipeline("p", "blocks:\n  - {name: a, type: transformer, upstream: [a]}\n")
    assert "a → a" in one_problem(project.root).message


def test_unknown_upstream_with_did_you_mean(project):
    project.block("data_loaders", "load", LOADER)
    project.block("transformers", "step", TRANSFORMER)
    project.pipeline(
        "p",
        """
        blocks:
          - name: load
            type: data_loader
          - name: step
            type: transformer
            upstream:
              - lood
        """,
    )
    problem = one_problem(project.root)
    assert "unknown upstream 'lood'" in problem.message
    assert problem.line == 7
    assert "did you mean 'load'" in problem.hint


def test_duplicate_block(project):
    project.block("data_loaders", "load", LOADER)
    project.pipeline(
        "p",
        """
        blocks:
          - {name: load, type: data_loader}
          - {name: load, type: data_loader}
        """,
    )
    problem = one_problem(project.root)
    assert "duplicate block 'load'" in problem.message and "line 2" in problem.message
    assert problem.line == 3


def test_missing_block_file(project):
    project.pipeline("p", "blocks:\n  - {name: ghost, type: data_loader}\n")
    problem = one_problem(project.root)
    assert "data_loaders/ghost.py" in problem.message and problem.line == 2


def test_explicit_missing_file(project):
    project.pipeline("p", "blocks:\n  - name: x\n    type: custom\n    file: custom/nope.py\n")
    problem = one_problem(project.root)
    assert "custom/nope.py does not exist" in problem.message and problem.line == 4


@pytest.mark.parametrize(
    "path", ["../outside.py", "/etc/passwd.py", "custom/../../x.py", "..\\\\x.py"]
)
def test_block_file_outside_project_is_refused(project, path):
    project.write("../outside.py", LOADER)
    project.pipeline("p", f"blocks:\n  - name: x\n    type: data_loader\n    file: '{path}'\n")
    assert "outside the project" in one_problem(project.root).message


def test_syntax_error_points_at_the_block_file_line(project):
    project.block(
        "data_loaders",
        "load",
        "from treadle import data_loader\n\n@data_loader\ndef load(:\n    pass\n",
    )
    project.pipeline("p", "blocks:\n  - {name: load, type: data_loader}\n")
    problem = one_problem(project.root)
    assert problem.path == "data_loaders/load.py" and problem.line == 4
    assert "syntax error" in problem.message


def test_block_file_without_its_decorator(project):
    project.block("transformers", "step", LOADER)
    project.pipeline("p", "blocks:\n  - {name: step, type: transformer}\n")
    problem = one_problem(project.root)
    assert "no @transformer function" in problem.message and "@data_loader" in problem.message


def test_block_file_with_two_block_functions(project):
    project.block(
        "transformers", "step", TRANSFORMER + "\n@transformer\ndef again(x):\n    return x\n"
    )
    project.pipeline("p", "blocks:\n  - {name: step, type: transformer}\n")
    problem = one_problem(project.root)
    assert "2 @transformer functions" in problem.message and problem.line == 8  # the second def


def test_malformed_yaml_has_a_line(project):
    project.pipeline("p", "blocks:\n  - name: a\n    type: [custom\n  - name: b\n")
    problem = one_problem(project.root)
    assert "malformed YAML" in problem.message and problem.line is not None and problem.line >= 3


@pytest.mark.parametrize(
    ("yaml_text", "wrong", "suggestion", "line"),
    [
        ("blocks: []\nvariabels: {}\n", "variabels", "variables", 2),
        (
            "blocks:\n  - name: load\n    type: data_loader\n    upstrem: []\n",
            "upstrem",
            "upstream",
            4,
        ),
        ("retries: {count: 1, dealy: 5s}\nblocks: []\n", "dealy", "delay", 1),
    ],
)
def test_unknown_key_says_did_you_mean(project, yaml_text, wrong, suggestion, line):
    project.block("data_loaders", "load", LOADER)
    project.pipeline("p", yaml_text)
    problem = one_problem(project.root)
    assert f"'{wrong}'" in problem.message
    assert f"did you mean '{suggestion}'" in problem.hint
    assert problem.line == line


def test_unknown_block_type(project):
    project.pipeline("p", "blocks:\n  - {name: x, type: transfomer}\n")
    problem = one_problem(project.root)
    assert "unknown block type 'transfomer'" in problem.message and "transformer" in problem.hint


def test_bad_values_are_reported(project):
    project.block("data_loaders", "load", LOADER)
    project.pipeline(
        "p",
        """
        blocks:
          - name: load
            type: data_loader
            timeout: ten minutes
            dynamic: "yes"
        """,
    )
    messages = " | ".join(p.message for p in problems_of(project.root))
    assert "timeout" in messages and "dynamic must be true or false" in messages


def test_every_problem_is_reported_at_once(project):
    project.write("treadle.yaml", "executor: threads\n")
    project.block("data_loaders", "load", "def broken(:\n")
    project.pipeline(
        "one", "blocks:\n  - {name: load, type: data_loader}\n  - {name: x, type: nope}\n"
    )
    project.pipeline("two", "blocks: [\n")
    problems = problems_of(project.root)
    where = {(p.path, p.message.split(":")[0]) for p in problems}
    assert ("treadle.yaml", "unknown executor 'threads'") in where
    assert ("data_loaders/load.py", "syntax error") in where
    assert any(
        p.path == "pipelines/one/pipeline.yaml" and "unknown block type" in p.message
        for p in problems
    )
    assert any(
        p.path == "pipelines/two/pipeline.yaml" and "malformed YAML" in p.message for p in problems
    )
    assert len(problems) == 4


def test_name_must_match_folder(project):
    project.pipeline("p", "name: other\nblocks: []\n")
    problem = one_problem(project.root)
    assert "does not match" in problem.message and problem.line == 1


def test_reduce_without_dynamic_and_nested_dynamic(project):
    for name in ("a", "b", "c"):
        project.block("transformers", name, TRANSFORMER.replace("step", name))
    project.pipeline(
        "p",
        """
        blocks:
          - {name: a, type: transformer, dynamic: true}
          - {name: b, type: transformer, upstream: [a], dynamic: true}
          - {name: c, type: transformer, reduce: true}
        """,
    )
    messages = [p.message for p in problems_of(project.root)]
    assert any("'b' is dynamic inside" in m for m in messages)
    assert any("'c' has reduce: true but no dynamic block upstream" in m for m in messages)


def test_shared_block_file_is_checked_once_and_reported_once(project):
    project.block("data_loaders", "load", "def broken(:\n")
    project.pipeline("p", "blocks:\n  - {name: load, type: data_loader}\n")
    project.pipeline("q", "blocks:\n  - {name: load, type: data_loader}\n")
    problems = problems_of(project.root)
    assert [p.path for p in problems] == ["data_loaders/load.py", "data_loaders/load.py"]


def test_a_key_given_twice_is_an_error_not_a_silent_choice(project):
    project.block("data_loaders", "load", LOADER)
    project.pipeline(
        "p",
        """
        blocks:
          - name: load
            type: data_loader
            upstream: []
            upstream: [load]
        """,
    )
    problem = one_problem(project.root)
    assert "appears twice" in problem.message and "'upstream'" in problem.message
    assert problem.line == 5


def test_unknown_upstreams_are_reported_beside_other_problems(project):
    project.block("data_loaders", "load", LOADER)
    project.pipeline(
        "p",
        """
        blocks:
          - name: load
            type: data_loader
            timeout: soon
          - name: step
            type: transfomer
            upstream: [lod]
        """,
    )
    messages = [(p.line, p.message) for p in problems_of(project.root)]
    assert (4, "timeout: 'soon' is not a duration (write e.g. 30s, 10m, 1h30m or 2d)") in messages
    assert any("unknown block type 'transfomer'" in m for _, m in messages)
    assert (7, "block 'step' has unknown upstream 'lod'") in messages


def test_run_limits_sla_and_alerts_load(project):
    project.write(
        "treadle.yaml", "name: p\nmax_active_runs: 4\nbase_url: https://treadle.example.com/\n"
    )
    project.pipeline(
        "p",
        """
        max_active_runs: 1
        sla: 1h30m
        alerts:
          - urls: ["slack://T/B/C", "json://127.0.0.1:9999/hook"]
            on: [failure, stuck]
            title: "Treadle: {{ pipeline }} {{ event }}"
            body: |
              {{ failing_block }} failed: {{ error }}
              {{ link }}
          - url: "{{ env_var('TEAMS_URL') }}"
          - url: mailto://ops@example.com
            "on": success
        blocks: []
        """,
    )
    loaded = load_project(project.root)
    assert loaded.settings.max_active_runs == 4
    assert loaded.settings.base_url == "https://treadle.example.com"
    pipeline = loaded.pipeline("p")
    assert pipeline.max_active_runs == 1 and pipeline.sla == 5400
    first, templated, success = pipeline.alerts
    assert first.urls == ("slack://T/B/C", "json://127.0.0.1:9999/hook")
    assert first.on == {AlertEvent.FAILURE, AlertEvent.STUCK}
    assert first.title == "Treadle: {{ pipeline }} {{ event }}" and "{{ link }}" in first.body
    assert first.line == 4
    assert templated.urls == ("{{ env_var('TEAMS_URL') }}",)  # rendered when sent
    assert templated.on == {AlertEvent.FAILURE, AlertEvent.SLA_MISSED, AlertEvent.STUCK}
    assert templated.title is None and templated.body is None
    assert success.on == {AlertEvent.SUCCESS}
    assert pipeline.alerts_for(AlertEvent.STUCK) == (first, templated)


def test_defaults_without_limits_or_alerts(project):
    project.pipeline("p", "blocks: []\n")
    loaded = load_project(project.root)
    assert loaded.settings.max_active_runs is None
    assert loaded.settings.base_url == "http://127.0.0.1:6789"
    pipeline = loaded.pipeline("p")
    assert (pipeline.max_active_runs, pipeline.sla, pipeline.alerts) == (None, None, ())


def test_a_bare_on_key_is_read_as_on_not_as_true(project):
    """YAML 1.1 reads an unquoted `on:` key as the boolean true."""
    project.pipeline("p", "alerts:\n  - urls: [json://h.example/x]\n    on: [sla_missed]\n")
    [spec] = load_project(project.root).pipeline("p").alerts
    assert spec.on == {AlertEvent.SLA_MISSED}


@pytest.mark.parametrize(
    ("yaml_text", "message", "line", "hint"),
    [
        ("max_active_runs: 0\n", "max_active_runs must be a whole number ≥ 1", 1, None),
        ("max_active_runs: true\n", "max_active_runs must be a whole number ≥ 1", 1, None),
        ("sla: soon\n", "sla: 'soon' is not a duration", 1, None),
        ("sla: 0\n", "sla must be longer than 0", 1, None),
        ("alerts: slack://T/B/C\n", "alerts must be a list", 1, None),
        ("alerts:\n  - slack://T/B/C\n", "each alert must be a mapping", 2, None),
        ("alerts:\n  - on: [failure]\n", "alert without urls", 2, "apprise URLs"),
        ("alerts:\n  - urls: []\n", "alert without urls", 2, "apprise URLs"),
        ("alerts:\n  - urls:\n      - json://h.example/x\n      - 42\n", "is not text", 4, None),
        ("alerts:\n  - urls: {a: b}\n", "urls must be an apprise URL or a list", 2, None),
        ("alerts:\n  - url: hooks.slack.com/x\n", "not an apprise URL", 2, "slack://"),
        (
            "alerts:\n  - url: json://h.example/x\n    on: [failure, stuk]\n",
            "unknown alert event 'stuk'",
            3,
            "did you mean 'stuck'?",
        ),
        (
            "alerts:\n  - url: json://h.example/x\n    on: failed\n",
            "unknown alert event 'failed'",
            3,
            "did you mean 'failure'?",
        ),
        ("alerts:\n  - url: json://h.example/x\n    on: []\n", "on must list", 3, "sla_missed"),
        (
            "alerts:\n  - url: json://h.example/x\n    tittle: hi\n",
            "unknown alert key 'tittle'",
            3,
            "did you mean 'title'?",
        ),
        (
            'alerts:\n  - url: json://h.example/x\n    title: "{{ pipeline }"\n',
            "alert title: template error",
            3,
            None,
        ),
        (
            "alerts:\n  - url: json://h.example/x\n    body: |\n      ok\n      {% if error %}\n",
            "alert body: template error (template line 2)",
            3,
            None,
        ),
        (
            'alerts:\n  - url: json://h.example/x\n    title: "{{ pipline }} failed"\n',
            "alert title: unknown template variable 'pipline'",
            3,
            "did you mean 'pipeline'?",
        ),
        (
            "alerts:\n  - url: \"{{ env_var('X') }\"\n",
            "alert URL: template error",
            2,
            None,
        ),
        ("alerts:\n  - url: json://h.example/x\n    title: [a]\n", "title must be text", 3, None),
    ],
)
def test_bad_run_limits_sla_and_alerts(project, yaml_text, message, line, hint):
    project.pipeline("p", yaml_text + "blocks: []\n")
    problem = one_problem(project.root)
    assert problem.path == "pipelines/p/pipeline.yaml"
    assert message in problem.message
    assert problem.line == line
    if hint:
        assert hint in problem.hint


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("max_active_runs: 0\n", "max_active_runs must be a whole number ≥ 1"),
        ("max_active_runs: many\n", "max_active_runs must be a whole number ≥ 1"),
        ("base_url: 6789\n", "base_url must be text"),
        ("base_url: treadle.example.com\n", "is not an http(s) address"),
    ],
)
def test_bad_project_run_limit_and_base_url(project, yaml_text, message):
    project.write("treadle.yaml", "name: p\n" + yaml_text)
    problem = one_problem(project.root)
    assert problem.path == "treadle.yaml" and problem.line == 2 and message in problem.message


def test_every_alert_problem_is_reported_at_once(project):
    project.pipeline(
        "p",
        """
        max_active_runs: -1
        alerts:
          - urls: [nope]
            on: [failur]
            title: "{{ evnt }}"
            colour: red
          - on: [success]
        blocks: []
        """,
    )
    found = sorted((p.line, p.message.split(" '")[0]) for p in problems_of(project.root))
    assert found == [
        (1, "max_active_runs must be a whole number ≥ 1"),
        (3, "alert URL is not an apprise URL (no scheme://)"),
        (4, "unknown alert event"),
        (5, "alert title: unknown template variable"),
        (6, "unknown alert key"),
        (7, "alert without urls"),
    ]


def test_an_unquoted_template_as_a_value_is_a_clear_problem() -> None:
    from treadle.project.yaml_source import parse_yaml

    with pytest.raises(UserInputError) as caught:
        parse_yaml("alerts:\n  - url: json://x\n    title: {{ pipeline }}\n", "p.yaml")
    assert caught.value.line == 3
    assert "quote" in (caught.value.hint or "")


def test_sql_block_settings_load(project):
    project.write("transformers/agg.sql", "select 1 as x")
    project.write("transformers/ddl.sql", "create table t (x int)")
    project.pipeline(
        "p",
        """
        blocks:
          - {name: agg, type: transformer, table: daily, schema: marts, if_exists: append, limit: 50}
          - {name: ddl, type: transformer, raw: true}
        """,
    )
    pipeline = load_project(project.root).pipeline("p")
    agg, ddl = pipeline.block("agg").sql, pipeline.block("ddl").sql
    assert (agg.table, agg.schema, agg.if_exists, agg.raw, agg.limit) == (
        "daily", "marts", "append", False, 50,
    )  # fmt: skip
    assert ddl.raw and ddl.table is None and ddl.if_exists == "replace"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (["if_exists: upsrt", "table: t"], "if_exists must be one of replace, append, fail"),
        (["limit: 0"], "limit must be a whole number of rows"),
        (["limit: ten"], "limit must be a whole number of rows"),
        (["raw: 'yes'"], "raw must be true or false"),
        (["table: ''"], "table must be a name"),
        (["schema: marts"], "schema needs a table to write to"),
        (["table: t", "raw: true"], "table does not apply with raw: true"),
        (["limit: 5", "raw: true"], "limit does not apply with raw: true"),
    ],
)
def test_bad_sql_block_settings_are_named_with_their_line(project, settings, expected):
    project.write("transformers/x.sql", "select 1 as x")
    keys = "".join(f"    {line}\n" for line in settings)
    project.pipeline("p", f"blocks:\n  - name: x\n    type: transformer\n{keys}")
    problem = one_problem(project.root)
    assert expected in problem.message
    assert problem.line == 4  # the first key's line in pipeline.yaml


def test_sql_settings_on_a_python_block_are_refused(project):
    project.block("transformers", "step", TRANSFORMER)
    project.pipeline("p", "blocks:\n  - {name: step, type: transformer, table: t}\n")
    problem = one_problem(project.root)
    assert (
        "table: for SQL blocks only, and transformers/step.py is a Python block" in problem.message
    )
