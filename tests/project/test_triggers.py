"""triggers.yaml: every problem reported with file and line; edits keep the file as written."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from treadle.errors import ProjectInvalid, UnknownName, UserInputError
from treadle.project import loader
from treadle.project.triggers import (
    NAME_PATTERN,
    TriggerSpec,
    TriggerType,
    load_triggers,
    remove_trigger,
    save_trigger,
    trigger_from_dict,
    triggers_path,
)

PATH = "pipelines/etl/triggers.yaml"

FULL = """
# the schedules of etl
triggers:
  - name: daily_5am
    schedule: "0 5 * * *"
    timezone: Europe/Amsterdam
    start: 2024-01-01
    end: "2024-12-31 23:00"
    catchup: true
    max_active_runs: 2
    skip_if_running: true
    variables: {profile: dev}
    enabled: false
    description: Early load
  - name: quarter
    every: 15m
  - name: webhook
    type: api
  - name: after_load
    after: load_pipeline
"""


def write(project, text: str) -> None:
    project.write(PATH, text)


def problems_of(project, known=None) -> list[UserInputError]:
    with pytest.raises(ProjectInvalid) as caught:
        load_triggers(project.root, "etl", known)
    return caught.value.problems


def one_problem(project, known=None) -> UserInputError:
    problems = problems_of(project, known)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_every_kind_of_trigger_loads(project):
    write(project, FULL)
    daily, quarter, webhook, after = load_triggers(project.root, "etl", ["etl", "load_pipeline"])
    assert daily == TriggerSpec(
        name="daily_5am",
        pipeline="etl",
        type=TriggerType.SCHEDULE,
        schedule="0 5 * * *",
        timezone="Europe/Amsterdam",
        start=datetime(2023, 12, 31, 23, 0, tzinfo=UTC),  # midnight in Amsterdam (+01:00)
        end=datetime(2024, 12, 31, 22, 0, tzinfo=UTC),
        catchup=True,
        max_active_runs=2,
        skip_if_running=True,
        variables={"profile": "dev"},
        enabled=False,
        description="Early load",
        line=3,
    )
    assert (quarter.type, quarter.every, quarter.schedule, quarter.line) == (
        TriggerType.SCHEDULE, 900.0, None, 14,
    )  # fmt: skip
    assert (quarter.timezone, quarter.catchup, quarter.enabled) == ("UTC", False, True)
    assert (webhook.type, webhook.line) == (TriggerType.API, 16)
    assert (after.type, after.after, after.line) == (TriggerType.EVENT, "load_pipeline", 18)


@pytest.mark.parametrize("text", [None, "", "# nothing yet\n", "triggers: []\n", "triggers:\n"])
def test_no_triggers(project, text):
    if text is not None:
        write(project, text)
    assert load_triggers(project.root, "etl") == ()


def test_aware_start_and_datetime_strings(project):
    write(
        project,
        """
        triggers:
          - name: a
            schedule: "@daily"
            timezone: America/New_York
            start: 2024-06-01T05:00:00+02:00
            end: "2024-07-01 05:30"
        """,
    )
    (spec,) = load_triggers(project.root, "etl")
    assert spec.start == datetime(2024, 6, 1, 3, 0, tzinfo=UTC)
    assert spec.end == datetime(2024, 7, 1, 9, 30, tzinfo=UTC)  # EDT is -04:00


ONE_TRIGGER = "triggers:\n  - name: t\n    schedule: '0 5 * * *'\n"
CASES = {
    "malformed": ("triggers:\n  - name: t\n   schedule: x\n", "malformed YAML", 3, "indentation"),
    "top level list": ("- name: t\n", "must be a mapping with a `triggers:` list", 1, "triggers:"),
    "triggers not a list": ("triggers: {name: t}\n", "triggers must be a list", 1, "- name"),
    "unknown top key": (ONE_TRIGGER + "trigers: []\n", "unknown key 'trigers'", 4, "'triggers'"),
    "unknown key": (ONE_TRIGGER + "    scheduel: x\n", "unknown trigger key 'scheduel'", 4, "'schedule'"),
    "not a mapping": ("triggers:\n  - just text\n", "must be a mapping", 2, "name"),
    "no name": ("triggers:\n  - schedule: '@daily'\n", "trigger without a name", 2, "letters"),
    "bad name": ("triggers:\n  - name: two words\n    type: api\n", "'two words' is invalid", 2, "letters"),
    "no schedule": ("triggers:\n  - name: t\n", "without a schedule or a type", 2, "every: 15m"),
    "unknown type": ("triggers:\n  - name: t\n    type: evnt\n", "unknown trigger type 'evnt'", 3, "'event'"),
    "four fields": ("triggers:\n  - name: t\n    schedule: '0 5 * *'\n", "has 4 fields; a cron has 5", 3, "minute hour"),
    "bad field": ("triggers:\n  - name: t\n    schedule: '61 5 * * *'\n", "not a valid cron", 3, '"0 5 * * *"'),
    "never fires": ("triggers:\n  - name: t\n    schedule: '0 0 30 2 *'\n", "never fires", 3, "5 fields"),
    "schedule not text": ("triggers:\n  - name: t\n    schedule: 5\n", "must be a cron or a preset", 3, "@daily"),
    "unknown preset": ("triggers:\n  - name: t\n    schedule: '@dayly'\n", "unknown schedule preset '@dayly'", 3, "'@daily'"),
    "unknown zone": (ONE_TRIGGER + "    timezone: Europe/Amsterdm\n", "unknown time zone 'Europe/Amsterdm'", 4, "'Europe/Amsterdam'"),
    "far zone": (ONE_TRIGGER + "    timezone: Nowhere\n", "unknown time zone 'Nowhere'", 4, "IANA name"),
    "bad start": (ONE_TRIGGER + "    start: soon\n", "start 'soon' is not a date", 4, "2024-01-01 05:00"),
    "end before start": (ONE_TRIGGER + "    start: 2024-02-01\n    end: 2024-01-01\n", "end must be later than start", 5, "later"),
    "end equals start": (ONE_TRIGGER + "    start: 2024-02-01\n    end: 2024-02-01\n", "end must be later than start", 5, "later"),
    "every not a duration": ("triggers:\n  - name: t\n    every: often\n", "every: 'often' is not a duration", 3, "15m"),
    "every zero": ("triggers:\n  - name: t\n    every: 0s\n", "every must be longer than 0", 3, "15m"),
    "both schedule and every": (ONE_TRIGGER + "    every: 1h\n", "either schedule or every", 4, None),
    "schedule type without one": ("triggers:\n  - name: t\n    type: schedule\n", "needs schedule or every", 3, "@daily"),
    "max_active_runs zero": (ONE_TRIGGER + "    max_active_runs: 0\n", "max_active_runs must be a whole number", 4, None),
    "max_active_runs bool": (ONE_TRIGGER + "    max_active_runs: true\n", "max_active_runs must be a whole number", 4, None),
    "catchup not a bool": (ONE_TRIGGER + "    catchup: sometimes\n", "catchup must be true or false", 4, "catchup: true"),
    "enabled a number": (ONE_TRIGGER + "    enabled: 1\n", "enabled must be true or false", 4, None),
    "skip_if_running text": (ONE_TRIGGER + "    skip_if_running: 'no'\n", "skip_if_running must be true or false", 4, None),
    "variables a list": (ONE_TRIGGER + "    variables: [a, b]\n", "variables must be a mapping", 4, "profile: dev"),
    "description a list": (ONE_TRIGGER + "    description: [a]\n", "description must be text", 4, None),
    "api with schedule": ("triggers:\n  - name: t\n    type: api\n    schedule: '@daily'\n", "schedule is not allowed on an API trigger", 4, "remove schedule"),
    "api with after": ("triggers:\n  - name: t\n    type: api\n    after: other\n", "after is not allowed on an API trigger", 4, "remove after"),
    "event with catchup": ("triggers:\n  - name: t\n    after: load\n    catchup: true\n", "catchup is not allowed on an event trigger", 4, "successful run"),
    "event with start": ("triggers:\n  - name: t\n    after: load\n    start: 2024-01-01\n", "start is not allowed on an event trigger", 4, None),
    "event without after": ("triggers:\n  - name: t\n    type: event\n", "needs after: <pipeline>", 3, None),
    "schedule with after": ("triggers:\n  - name: t\n    type: schedule\n    every: 1h\n    after: other\n", "after is not allowed on a schedule trigger", 5, None),
    "after itself": ("triggers:\n  - name: t\n    after: etl\n", "after names this pipeline ('etl') itself", 3, "forever"),
    "after unknown": ("triggers:\n  - name: t\n    after: lod\n", "unknown pipeline 'lod'", 3, "did you mean 'load'"),
    "after not a name": ("triggers:\n  - name: t\n    after: [a]\n", "is not a pipeline name", 3, None),
    "once with end": ("triggers:\n  - name: t\n    schedule: '@once'\n    start: 2024-01-01\n    end: 2024-02-01\n", "end is not allowed with @once", 5, None),
}  # fmt: skip


@pytest.mark.parametrize(("text", "message", "line", "hint"), CASES.values(), ids=CASES.keys())
def test_each_problem_names_file_line_and_what_to_do(project, text, message, line, hint):
    write(project, text)
    problem = one_problem(project, known=["etl", "load"])
    assert message in problem.message
    assert (problem.path, problem.line) == (PATH, line)
    assert f"{PATH}:{line}: " in str(problem)
    assert problem.hint
    if hint is not None:
        assert hint in problem.hint


def test_a_name_used_twice_names_both_lines(project):
    write(project, "triggers:\n  - name: t\n    type: api\n  - name: t\n    every: 1h\n")
    problem = one_problem(project)
    assert "'t' is defined twice (lines 2 and 4)" in problem.message
    assert problem.line == 4


def test_every_problem_is_reported_at_once(project):
    write(
        project,
        """
        triggers:
          - name: a
            schedule: "0 5 * *"
            timezone: Mars/Base
          - name: b
            every: soon
          - name: c
            type: api
            catchup: true
        """,
    )
    problems = problems_of(project)
    assert [p.line for p in problems] == [3, 4, 6, 9]
    assert all(p.path == PATH for p in problems)


def test_after_is_not_checked_against_pipelines_unless_they_are_given(project):
    write(project, "triggers:\n  - name: t\n    after: anything\n")
    assert load_triggers(project.root, "etl")[0].after == "anything"


def test_name_pattern_is_the_loaders():
    assert NAME_PATTERN.pattern == loader.NAME_PATTERN.pattern


def test_pipeline_name_cannot_leave_the_project(project):
    with pytest.raises(UserInputError, match="invalid pipeline name"):
        triggers_path(project.root, "../outside")


# -- the API's view ------------------------------------------------------------------------


SPECS = [
    TriggerSpec(name="w", pipeline="etl", type=TriggerType.API),
    TriggerSpec(name="e", pipeline="etl", type=TriggerType.EVENT, after="load", max_active_runs=1),
    TriggerSpec(name="q", pipeline="etl", type=TriggerType.SCHEDULE, every=5400.0),
    TriggerSpec(
        name="d",
        pipeline="etl",
        type=TriggerType.SCHEDULE,
        schedule="@daily",
        timezone="Europe/Amsterdam",
        start=datetime(2024, 1, 1, 4, 0, tzinfo=UTC),
        end=datetime(2024, 10, 27, 1, 30, tzinfo=UTC),  # the second 02:30 of that night
        catchup=True,
        skip_if_running=True,
        variables={"profile": "dev", "n": [1, 2]},
        enabled=False,
        description="daily",
    ),
]


@pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])
def test_to_dict_round_trips(spec):
    assert trigger_from_dict("etl", spec.to_dict()) == spec
    assert trigger_from_dict("etl", spec.to_dict()).fingerprint() == spec.fingerprint()


def test_to_dict_holds_only_what_differs_from_the_defaults():
    assert SPECS[0].to_dict() == {"name": "w", "type": "api"}
    assert SPECS[1].to_dict() == {"name": "e", "after": "load", "max_active_runs": 1}
    assert SPECS[2].to_dict() == {"name": "q", "every": "1h30m"}
    assert SPECS[3].to_dict() == {
        "name": "d",
        "schedule": "@daily",
        "timezone": "Europe/Amsterdam",
        "start": "2024-01-01 05:00",
        "end": "2024-10-27 02:30:00+01:00",
        "catchup": True,
        "skip_if_running": True,
        "variables": {"profile": "dev", "n": [1, 2]},
        "enabled": False,
        "description": "daily",
    }


def test_fingerprint_changes_with_the_trigger():
    spec = SPECS[2]
    assert spec.fingerprint() == dataclasses.replace(spec, line=9).fingerprint()
    assert spec.fingerprint() != dataclasses.replace(spec, every=60.0).fingerprint()
    assert len(spec.fingerprint()) == 64


def test_from_dict_reads_json_values_and_names_bad_fields():
    spec = trigger_from_dict("etl", {"name": "t", "schedule": "0 5 * * *", "start": "2024-01-01"})
    assert spec.start == datetime(2024, 1, 1, tzinfo=UTC) and spec.line == 0
    with pytest.raises(ProjectInvalid) as caught:
        trigger_from_dict("etl", {"name": "t", "every": "soon", "max_active_runs": -1})
    messages = [p.message for p in caught.value.problems]
    assert len(messages) == 2
    assert messages[0].startswith("every:") and messages[1].startswith("max_active_runs")
    assert all(p.line is None for p in caught.value.problems)


# -- editing -------------------------------------------------------------------------------


COMMENTED = """\
# triggers of etl: keep this comment
triggers:
  - name: webhook   # called by the CRM
    type: api
  - name: nightly
    schedule: "0 2 * * *"   # after the backup
    description: nightly load
"""


def read(project) -> str:
    return (project.root / PATH).read_text(encoding="utf-8")


def leftovers(project) -> list[str]:
    return sorted(p.name for p in (project.root / "pipelines/etl").iterdir())


def test_save_creates_the_file(project):
    (project.root / "pipelines/etl").mkdir(parents=True)
    save_trigger(project.root, "etl", SPECS[2])
    assert read(project) == "triggers:\n  - name: q\n    every: 1h30m\n"
    assert load_triggers(project.root, "etl") == (dataclasses.replace(SPECS[2], line=2),)


def test_save_adds_and_keeps_comments_and_order(project):
    write(project, COMMENTED)
    save_trigger(project.root, "etl", SPECS[0])
    save_trigger(project.root, "etl", SPECS[1])
    added = "  - name: w\n    type: api\n  - name: e\n    after: load\n    max_active_runs: 1\n"
    assert read(project) == COMMENTED + added


def test_save_replaces_the_trigger_of_that_name_in_place(project):
    write(project, COMMENTED)
    nightly = load_triggers(project.root, "etl")[1]
    changed = dataclasses.replace(nightly, schedule="0 3 * * *", description="", catchup=True)
    save_trigger(project.root, "etl", changed)
    assert read(project) == COMMENTED.replace('"0 2 * * *"', '"0 3 * * *"').replace(
        "    description: nightly load\n", "    catchup: true\n"
    )
    assert load_triggers(project.root, "etl")[1] == dataclasses.replace(changed, line=5)


def test_remove_keeps_the_rest_as_written(project):
    write(project, COMMENTED)
    remove_trigger(project.root, "etl", "nightly")
    assert read(project) == COMMENTED.split("  - name: nightly")[0]
    remove_trigger(project.root, "etl", "webhook")
    assert read(project) == "# triggers of etl: keep this comment\ntriggers: []\n"
    assert leftovers(project) == ["triggers.yaml"]


def test_remove_an_unknown_trigger(project):
    write(project, COMMENTED)
    with pytest.raises(UnknownName, match="unknown trigger 'nighty'") as caught:
        remove_trigger(project.root, "etl", "nighty")
    assert "did you mean 'nightly'" in caught.value.hint
    assert read(project) == COMMENTED


def test_an_invalid_save_leaves_the_file_untouched(project):
    write(project, COMMENTED)
    bad = TriggerSpec(name="bad", pipeline="etl", type=TriggerType.SCHEDULE, schedule="0 5 *")
    with pytest.raises(ProjectInvalid) as caught:
        save_trigger(project.root, "etl", bad)
    (problem,) = caught.value.problems
    assert "has 3 fields" in problem.message and problem.path == PATH and problem.line == 9
    assert read(project) == COMMENTED
    assert leftovers(project) == ["triggers.yaml"]


def test_a_save_into_a_malformed_file_changes_nothing(project):
    write(project, "triggers:\n  - name: t\n   type: api\n")
    before = read(project)
    with pytest.raises(ProjectInvalid, match="malformed YAML"):
        save_trigger(project.root, "etl", SPECS[0])
    assert read(project) == before


def test_save_into_an_unknown_pipeline(project):
    (project.root / "pipelines/load").mkdir(parents=True)
    with pytest.raises(UnknownName, match="unknown pipeline 'lod'") as caught:
        save_trigger(project.root, "lod", SPECS[0])
    assert "did you mean 'load'" in caught.value.hint
    assert not (project.root / "pipelines/lod").exists()


def test_save_keeps_the_files_permissions(project):
    write(project, COMMENTED)
    (project.root / PATH).chmod(0o640)
    save_trigger(project.root, "etl", SPECS[0])
    assert (project.root / PATH).stat().st_mode & 0o777 == 0o640


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('every: "99999999999999999999d"', "every must be at most 3650d"),
        ("every: 4000d", "every must be at most 3650d"),
        ("schedule: '@daily'\n    start: 9999-12-31", "start '9999-12-31' is out of range"),
        ("schedule: '@daily'\n    end: 0001-01-01", "out of range"),
    ],
)
def test_schedules_that_would_overflow_are_refused_with_their_line(project, line, message):
    project.write("pipelines/etl/triggers.yaml", f"triggers:\n  - name: t\n    {line}\n")
    with pytest.raises(ProjectInvalid) as caught:
        load_triggers(project.root, "etl")
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems
