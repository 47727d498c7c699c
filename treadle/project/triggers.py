"""Triggers as code: ``pipelines/<pipeline>/triggers.yaml``.

``load_triggers`` reads and validates one pipeline's file into frozen ``TriggerSpec``s,
reporting every problem with its line (``ProjectInvalid``). ``trigger_from_dict`` applies
the same rules to an API payload. ``save_trigger`` and ``remove_trigger`` edit the file
through ruamel.yaml, so comments, key order and the other triggers stay as written, and
they check the new content before atomically replacing the file. When slots fall is
``treadle/scheduler/schedules.py``'s business; ``docs/scheduling.md`` is the user's guide.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import CroniterBadDateError, croniter
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.util import load_yaml_guess_indent

from treadle.errors import ProjectInvalid, UnknownName, UserInputError, did_you_mean
from treadle.project.durations import parse_duration
from treadle.project.yaml_source import YamlDocument, parse_yaml

TRIGGERS_FILE = "triggers.yaml"
PRESETS = ("@hourly", "@daily", "@weekly", "@monthly", "@once")
TRIGGER_KEYS = (
    "name", "type", "schedule", "every", "timezone", "start", "end", "catchup",
    "max_active_runs", "skip_if_running", "variables", "enabled", "after", "description",
)  # fmt: skip
MAX_EVERY = 3650 * 86400.0  # seconds: slots further apart make no sense as "every"
MIN_YEAR, MAX_YEAR = 1970, 9000  # start/end: slots after them must still be dates
SCHEDULE_ONLY_KEYS = ("schedule", "every", "catchup", "start", "end")
# The same as ``loader.NAME_PATTERN`` (a test keeps them equal); copied so the loader
# may import this module without a cycle.
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
NAME_HINT = "use letters, digits, _ and -, starting with a letter or _"
CRON_HINT = (
    'a cron has 5 fields, minute hour day-of-month month day-of-week: "0 5 * * *" is '
    "05:00 every day; or use " + ", ".join(PRESETS)
)
_DURATION_UNITS = (("w", 604800_000), ("d", 86400_000), ("h", 3600_000), ("m", 60_000))
_DURATION_UNITS += (("s", 1000), ("ms", 1))


class TriggerType(StrEnum):
    SCHEDULE = "schedule"
    API = "api"
    EVENT = "event"


_A_TYPE = {
    TriggerType.SCHEDULE: "a schedule trigger",
    TriggerType.API: "an API trigger",
    TriggerType.EVENT: "an event trigger",
}


@dataclass(frozen=True)
class TriggerSpec:
    """One trigger of a pipeline, as written in its triggers.yaml (validated)."""

    name: str
    pipeline: str
    type: TriggerType
    schedule: str | None = None  # a cron or a preset, as written
    every: float | None = None  # seconds
    timezone: str = "UTC"
    start: datetime | None = None  # aware (UTC)
    end: datetime | None = None  # aware (UTC), inclusive
    catchup: bool = False
    max_active_runs: int | None = None
    skip_if_running: bool = False
    variables: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    after: str | None = None
    description: str = ""
    line: int = 0  # of the trigger in triggers.yaml, for messages

    def to_dict(self) -> dict[str, Any]:
        """The trigger as YAML/JSON data: the keys that define it plus those that differ
        from their defaults. ``trigger_from_dict`` reads it back to an equal spec."""
        data: dict[str, Any] = {"name": self.name}
        if self.type is TriggerType.API:
            data["type"] = TriggerType.API.value
        if self.schedule is not None:
            data["schedule"] = self.schedule
        if self.every is not None:
            data["every"] = format_duration(self.every)
        if self.after is not None:
            data["after"] = self.after
        if self.timezone != "UTC":
            data["timezone"] = self.timezone
        for key in ("start", "end"):
            moment = getattr(self, key)
            if moment is not None:
                data[key] = _local_text(moment, self.timezone)
        optional = {
            "catchup": (self.catchup, False),
            "max_active_runs": (self.max_active_runs, None),
            "skip_if_running": (self.skip_if_running, False),
            "variables": (dict(self.variables), {}),
            "enabled": (self.enabled, True),
            "description": (self.description, ""),
        }
        data.update({key: value for key, (value, default) in optional.items() if value != default})
        return data

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of ``to_dict()``: changes when the trigger does."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- reading -------------------------------------------------------------------------------


def triggers_path(project_root: Path, pipeline: str) -> Path:
    if not isinstance(pipeline, str) or not NAME_PATTERN.match(pipeline):
        raise UserInputError(f"invalid pipeline name {pipeline!r}", hint=NAME_HINT)
    return Path(project_root) / "pipelines" / pipeline / TRIGGERS_FILE


def load_triggers(
    project_root: Path, pipeline: str, known_pipelines: Collection[str] | None = None
) -> tuple[TriggerSpec, ...]:
    """The pipeline's triggers in file order; () without a triggers.yaml.

    ``known_pipelines``, when given, is checked against every ``after:``. Raises
    ``ProjectInvalid`` listing every problem, each with the file and line.
    """
    path = triggers_path(project_root, pipeline)
    if not path.is_file():
        return ()
    display = _display_path(pipeline)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read it: {exc}", path=display) from None
    doc = _parse(text, display)
    specs, problems = _read_document(doc, pipeline, known_pipelines)
    if problems:
        raise ProjectInvalid(problems, path=display)
    return tuple(specs)


def trigger_from_dict(pipeline: str, data: Mapping[str, Any]) -> TriggerSpec:
    """One trigger from API data, by the rules of triggers.yaml.

    Raises ``ProjectInvalid`` (a ``UserInputError``) listing every problem; each message
    names its field.
    """
    problems: list[UserInputError] = []
    doc = YamlDocument(data, {}, None)  # type: ignore[arg-type]  # no file, no lines
    spec = _TriggerReader(doc, pipeline, None, (), problems).read(data)
    if spec is None:
        raise ProjectInvalid(problems)
    return spec


def _display_path(pipeline: str) -> str:
    return f"pipelines/{pipeline}/{TRIGGERS_FILE}"


def _parse(text: str, display: str) -> YamlDocument:
    """``parse_yaml``, with a malformed file reported as a ``ProjectInvalid`` too."""
    try:
        return parse_yaml(text, display)
    except UserInputError as exc:
        raise ProjectInvalid([exc], path=display) from None


def _read_document(
    doc: YamlDocument, pipeline: str, known: Collection[str] | None
) -> tuple[list[TriggerSpec], list[UserInputError]]:
    problems: list[UserInputError] = []
    if doc.data is None:
        return [], problems
    if not isinstance(doc.data, dict):
        hint = "start the file with `triggers:` and list the triggers under it"
        return [], [doc.error("triggers.yaml must be a mapping with a `triggers:` list", hint=hint)]
    for key in doc.data:
        if key != "triggers":
            message = f"unknown key {key!r} (only `triggers:` belongs at the top level)"
            problems.append(doc.error(message, key, hint=did_you_mean(str(key), ["triggers"])))
    raw = doc.data.get("triggers")
    if raw is None:
        return [], problems
    if not isinstance(raw, list):
        hint = "write each trigger as a `- name: …` item under `triggers:`"
        return [], [*problems, doc.error("triggers must be a list", "triggers", hint=hint)]
    specs = []
    for index, item in enumerate(raw):
        spec = _TriggerReader(doc, pipeline, known, ("triggers", index), problems).read(item)
        if spec is not None:
            specs.append(spec)
    _check_duplicates(doc, raw, problems)
    problems.sort(key=lambda problem: problem.line or 0)  # in file order
    return specs, problems


def _check_duplicates(doc: YamlDocument, raw: list[Any], problems: list[UserInputError]) -> None:
    first_line: dict[str, int | None] = {}
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str):
            continue
        line = doc.line_of("triggers", index, "name")
        if name in first_line:
            problems.append(
                doc.error(
                    f"trigger {name!r} is defined twice (lines {first_line[name]} and {line})",
                    *("triggers", index, "name"),
                    hint="give each trigger of a pipeline its own name",
                )
            )
        else:
            first_line[name] = line


class _TriggerReader:
    """Validates one trigger mapping, adding each problem (with its line) to ``problems``."""

    def __init__(
        self,
        doc: YamlDocument,
        pipeline: str,
        known: Collection[str] | None,
        where: tuple[str | int, ...],
        problems: list[UserInputError],
    ) -> None:
        self.doc = doc
        self.pipeline = pipeline
        self.known = known
        self.where = where
        self.problems = problems

    def problem(self, message: str, key: str | None = None, hint: str | None = None) -> None:
        keys = (*self.where, key) if key else self.where
        self.problems.append(self.doc.error(message, *keys, hint=hint))

    def read(self, raw: Any) -> TriggerSpec | None:
        if not isinstance(raw, Mapping):
            self.problem("each trigger must be a mapping", hint="write `- name: …` and its keys")
            return None
        before = len(self.problems)
        for key in raw:
            if key not in TRIGGER_KEYS:
                hint = did_you_mean(str(key), TRIGGER_KEYS)
                self.problem(f"unknown trigger key {key!r}", key, hint=hint)
        name = self._name(raw)
        kind = self._type(raw)
        zone_name, zone = self._timezone(raw)
        start, end = self._moment(raw, "start", zone), self._moment(raw, "end", zone)
        if start is not None and end is not None and end <= start:
            hint = "end is the last moment a slot may fall on; make it later than start"
            self.problem("end must be later than start", "end", hint=hint)
        is_schedule = kind is TriggerType.SCHEDULE
        only = raw.keys() & {"schedule", "every"}
        schedule = self._schedule(raw) if is_schedule and only == {"schedule"} else None
        every = self._every(raw) if is_schedule and only == {"every"} else None
        if schedule == "@once" and "end" in raw:
            self.problem("end is not allowed with @once", "end", hint="@once fires at start")
        max_active_runs = raw.get("max_active_runs")
        if max_active_runs is not None and not _positive_int(max_active_runs):
            hint = "how many runs of this trigger may run at once, e.g. max_active_runs: 1"
            self.problem("max_active_runs must be a whole number ≥ 1", "max_active_runs", hint)
        variables = raw.get("variables") or {}
        if not isinstance(variables, Mapping):
            hint = "e.g. variables: {profile: dev}"
            self.problem("variables must be a mapping of name: value", "variables", hint=hint)
        description = raw.get("description") or ""
        if not isinstance(description, str):
            self.problem("description must be text", "description", hint="quote it")
        flags = {key: self._flag(raw, key, default) for key, default in _FLAGS.items()}
        after = self._after(raw) if kind is TriggerType.EVENT and "after" in raw else None
        if kind is None or name is None or len(self.problems) > before:
            return None
        return TriggerSpec(
            name=name,
            pipeline=self.pipeline,
            type=kind,
            schedule=schedule,
            every=every,
            timezone=zone_name,
            start=start,
            end=end,
            max_active_runs=max_active_runs,
            variables=dict(variables),
            after=after,
            description=description,
            line=self.doc.line_of(*self.where) or 0,
            **flags,
        )

    def _name(self, raw: Mapping[str, Any]) -> str | None:
        name = raw.get("name")
        if isinstance(name, str) and NAME_PATTERN.match(name):
            return name
        message = f"trigger name {name!r} is invalid" if name else "trigger without a name"
        self.problem(message, "name", hint=NAME_HINT)
        return None

    def _type(self, raw: Mapping[str, Any]) -> TriggerType | None:
        given = raw.get("type")
        if given is not None:
            try:
                kind = TriggerType(given)
            except ValueError:
                hint = did_you_mean(str(given), [t.value for t in TriggerType])
                self.problem(f"unknown trigger type {given!r}", "type", hint=hint)
                return None
        elif "after" in raw:
            kind = TriggerType.EVENT
        elif "schedule" in raw or "every" in raw:
            kind = TriggerType.SCHEDULE
        else:
            hint = "add schedule: (a cron or @daily), every: 15m, after: <pipeline> or type: api"
            self.problem("trigger without a schedule or a type", "name", hint=hint)
            return None
        self._check_type_keys(raw, kind)
        return kind

    def _check_type_keys(self, raw: Mapping[str, Any], kind: TriggerType) -> None:
        if kind is TriggerType.SCHEDULE:
            if "schedule" in raw and "every" in raw:
                hint = "schedule: is a cron or a preset, every: a duration; keep one"
                self.problem("write either schedule or every, not both", "every", hint=hint)
            elif "schedule" not in raw and "every" not in raw:
                hint = "add schedule: (a cron or a preset like @daily) or every: (e.g. 15m)"
                self.problem("a schedule trigger needs schedule or every", "type", hint=hint)
            if "after" in raw:
                hint = "an event trigger has after: and no schedule; make it a trigger of its own"
                self.problem("after is not allowed on a schedule trigger", "after", hint=hint)
            return
        forbidden = SCHEDULE_ONLY_KEYS + (("after",) if kind is TriggerType.API else ())
        why = (
            "it runs when the API is called"
            if kind is TriggerType.API
            else "it fires after each successful run of its `after:` pipeline"
        )
        for key in forbidden:
            if key in raw:
                message = f"{key} is not allowed on {_A_TYPE[kind]}"
                self.problem(message, key, hint=f"{why}; remove {key}")
        if kind is TriggerType.EVENT and "after" not in raw:
            hint = "name the pipeline whose successful runs fire it"
            self.problem("an event trigger needs after: <pipeline>", "type", hint=hint)

    def _timezone(self, raw: Mapping[str, Any]) -> tuple[str, ZoneInfo]:
        name = raw.get("timezone", "UTC")
        try:
            return name, load_zone(name)
        except ValueError as exc:
            self.problem(str(exc), "timezone", hint=zone_hint(str(name)))
            return "UTC", ZoneInfo("UTC")

    def _moment(self, raw: Mapping[str, Any], key: str, zone: ZoneInfo) -> datetime | None:
        value = raw.get(key)
        if value is None:
            return None
        try:
            moment = parse_moment(value, zone)
        except ValueError:
            hint = 'write a date like 2024-01-01 or a time like "2024-01-01 05:00"'
            self.problem(f"{key} {value!r} is not a date or a date and time", key, hint=hint)
            return None
        if not MIN_YEAR <= moment.year <= MAX_YEAR:
            hint = f"give a date between {MIN_YEAR} and {MAX_YEAR}"
            self.problem(f"{key} {str(value)!r} is out of range", key, hint=hint)
            return None
        return moment

    def _schedule(self, raw: Mapping[str, Any]) -> str | None:
        value = raw.get("schedule")
        if not isinstance(value, str):
            self.problem(f"schedule {value!r} must be a cron or a preset", "schedule", CRON_HINT)
            return None
        value = value.strip()
        if value.startswith("@"):
            if value in PRESETS:
                return value
            hint = did_you_mean(value, PRESETS)
            self.problem(f"unknown schedule preset {value!r}", "schedule", hint=hint)
            return None
        try:
            check_cron(value)
        except ValueError as exc:
            self.problem(f"schedule {exc}", "schedule", hint=CRON_HINT)
            return None
        return value

    def _every(self, raw: Mapping[str, Any]) -> float | None:
        try:
            seconds = parse_duration(raw.get("every"))
        except ValueError as exc:
            self.problem(f"every: {exc}", "every", hint="e.g. every: 15m, 2h or 1d")
            return None
        if seconds <= 0:
            self.problem("every must be longer than 0", "every", hint="e.g. every: 15m")
            return None
        if seconds > MAX_EVERY:
            hint = "a schedule that rare is a @once trigger, or a cron like @yearly"
            self.problem("every must be at most 3650d (ten years)", "every", hint=hint)
            return None
        return seconds

    def _flag(self, raw: Mapping[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if isinstance(value, bool):
            return value
        self.problem(f"{key} must be true or false", key, hint=f"write {key}: true")
        return default

    def _after(self, raw: Mapping[str, Any]) -> str | None:
        after = raw.get("after")
        if not isinstance(after, str) or not NAME_PATTERN.match(after):
            self.problem(f"after {after!r} is not a pipeline name", "after", hint=NAME_HINT)
            return None
        if after == self.pipeline:
            hint = "a pipeline that fires itself would run forever; name another pipeline"
            self.problem(f"after names this pipeline ({after!r}) itself", "after", hint=hint)
            return None
        if self.known is not None and after not in self.known:
            hint = did_you_mean(after, sorted(self.known))
            self.problem(f"after names an unknown pipeline {after!r}", "after", hint=hint)
            return None
        return after


_FLAGS = {"catchup": False, "skip_if_running": False, "enabled": True}


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# -- values shared with the scheduler ------------------------------------------------------


def check_cron(expression: str) -> None:
    """Raise ``ValueError`` unless ``expression`` is a 5-field cron that fires sometime."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} has {len(fields)} fields; a cron has 5")
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a valid cron expression")
    try:
        croniter(expression, datetime(2000, 1, 1)).get_next(datetime)
    except CroniterBadDateError:
        raise ValueError(f"{expression!r} never fires (no such date)") from None


def load_zone(name: Any) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` when there is none by that name."""
    try:
        if isinstance(name, str) and name:
            return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    raise ValueError(f"unknown time zone {name!r}")


def zone_hint(name: str) -> str:
    close = difflib.get_close_matches(name, _zone_names(), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "use an IANA name such as UTC, Europe/Amsterdam or America/New_York"


@cache
def _zone_names() -> list[str]:
    return sorted(available_timezones())


def parse_moment(value: Any, zone: ZoneInfo) -> datetime:
    """A date, a datetime or an ISO string as an aware UTC datetime; naive values are
    wall-clock times in ``zone`` and a date alone is its midnight."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str) and value.strip():
        moment = datetime.fromisoformat(value.strip())
    else:
        raise ValueError(f"{value!r} is not a date")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def format_duration(seconds: float) -> str:
    """``900`` → ``"15m"``, ``5400`` → ``"1h30m"``: what ``parse_duration`` reads back."""
    millis = round(seconds * 1000)
    if millis <= 0 or abs(millis - seconds * 1000) > 1e-6:
        return f"{seconds:.6f}".rstrip("0").rstrip(".") + "s"
    parts = []
    for unit, size in _DURATION_UNITS:
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _local_text(moment: datetime, zone_name: str) -> str:
    """``moment`` as the wall-clock text a user writes ("2024-01-01 05:00", or the date
    alone at midnight); with its UTC offset when the wall-clock time is ambiguous."""
    zone = load_zone(zone_name)
    local = moment.astimezone(zone)
    if local.microsecond:
        text = local.replace(tzinfo=None).isoformat(sep=" ")
    elif local.time() == time():
        text = local.date().isoformat()
    else:
        text = local.strftime("%Y-%m-%d %H:%M" + (":%S" if local.second else ""))
    if parse_moment(text, zone) != moment:  # a repeated or skipped wall-clock time
        return local.isoformat(sep=" ")
    return text


# -- writing -------------------------------------------------------------------------------


def save_trigger(project_root: Path, pipeline: str, spec: TriggerSpec) -> None:
    """Add ``spec`` to the pipeline's triggers.yaml, or replace the trigger of that name.

    The rest of the file stays as written. The new content is checked first: if it is
    invalid, ``ProjectInvalid`` is raised and the file is left untouched.
    """
    path = _existing_pipeline_folder(project_root, pipeline) / TRIGGERS_FILE
    editor, data, items = _open_for_edit(path, pipeline)
    new = spec.to_dict()
    for item in items:
        if isinstance(item, dict) and item.get("name") == spec.name:
            _update_in_place(item, new)
            break
    else:
        items.append(new)
    _write_checked(path, pipeline, editor, data)


def remove_trigger(project_root: Path, pipeline: str, name: str) -> None:
    """Remove the trigger ``name``; ``UnknownName`` when the file has no such trigger."""
    path = _existing_pipeline_folder(project_root, pipeline) / TRIGGERS_FILE
    editor, data, items = _open_for_edit(path, pipeline)
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if name not in names:
        raise UnknownName(
            f"unknown trigger {name!r}",
            path=_display_path(pipeline),
            hint=did_you_mean(name, [n for n in names if isinstance(n, str)]),
        )
    del items[names.index(name)]
    _write_checked(path, pipeline, editor, data)


def _existing_pipeline_folder(project_root: Path, pipeline: str) -> Path:
    folder = triggers_path(project_root, pipeline).parent
    if not folder.is_dir():
        known = sorted(p.name for p in folder.parent.glob("*") if p.is_dir())
        raise UnknownName(f"unknown pipeline {pipeline!r}", hint=did_you_mean(pipeline, known))
    return folder


def _open_for_edit(path: Path, pipeline: str) -> tuple[YAML, CommentedMap, CommentedSeq]:
    """The file loaded for a round trip (comments kept), its indentation guessed."""
    display = _display_path(pipeline)
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    _parse(text, display)  # a malformed file gets the same error as when loading
    editor = YAML()
    editor.preserve_quotes = True
    editor.width = 4096
    data, indent, dash_offset = (None, 4, 2)
    if text.strip():
        data, indent, dash_offset = load_yaml_guess_indent(text, yaml=editor)
    editor.indent(mapping=2, sequence=indent or 4, offset=dash_offset or 0)
    data = data if data is not None else CommentedMap()
    if not isinstance(data, CommentedMap):
        hint = "start the file with `triggers:`"
        raise UserInputError("triggers.yaml must be a mapping", path=display, line=1, hint=hint)
    if data.get("triggers") is None:
        data["triggers"] = CommentedSeq()
    if not isinstance(data["triggers"], CommentedSeq):
        line = data.lc.key("triggers")[0] + 1
        raise UserInputError("triggers must be a list", path=display, line=line)
    return editor, data, data["triggers"]


def _update_in_place(item: CommentedMap, new: dict[str, Any]) -> None:
    """Make ``item`` equal ``new``, touching only the keys that change (comments stay)."""
    for key in [k for k in item if k not in new]:
        del item[key]
    for key, value in new.items():
        if item.get(key) != value:
            item[key] = value


def _write_checked(path: Path, pipeline: str, editor: YAML, data: CommentedMap) -> None:
    buffer = io.StringIO()
    editor.dump(data, buffer)
    text = buffer.getvalue()
    display = _display_path(pipeline)
    _, problems = _read_document(_parse(text, display), pipeline, None)
    if problems:
        raise ProjectInvalid(problems, path=display)
    _replace_atomically(path, text)


def _replace_atomically(path: Path, text: str) -> None:
    """Write a temporary file beside ``path`` and rename it over: readers never see half."""
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
