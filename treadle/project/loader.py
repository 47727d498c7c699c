"""Load a project from disk and validate all of it, reporting every problem at once.

``load_project(path)`` returns a ``Project`` or raises ``ProjectInvalid`` listing each
problem with its file and line. Nothing here runs user code: block files are checked by
parsing them (``treadle/project/block_files.py``).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any

from treadle.errors import ProjectInvalid, UserInputError, did_you_mean
from treadle.project.block_files import check_block_file
from treadle.project.durations import parse_duration
from treadle.project.model import (
    ALERT_TEMPLATE_NAMES,
    DEFAULT_ALERT_EVENTS,
    SQL_IF_EXISTS,
    AlertEvent,
    AlertSpec,
    BlockSpec,
    BlockType,
    Pipeline,
    Project,
    RetryPolicy,
    SqlSettings,
    fanned_blocks,
)
from treadle.project.settings import (
    EXECUTOR_NAMES,
    OUTPUT_FORMATS,
    RETENTION_KEYS,
    SETTING_KEYS,
    ProjectSettings,
    Retention,
)
from treadle.project.yaml_source import YamlDocument, read_yaml

PROJECT_FILE = "treadle.yaml"
PIPELINE_FILE = "pipeline.yaml"
PIPELINE_KEYS = (
    "name", "description", "variables", "retries", "concurrency", "blocks", "tags",
    "resume_on_crash", "max_active_runs", "sla", "alerts",
)  # fmt: skip
SQL_KEYS = ("table", "schema", "if_exists", "raw", "limit")  # SqlSettings, .sql blocks only
BLOCK_KEYS = (
    "name", "type", "file", "upstream", "timeout", "retries", "dynamic", "reduce",
    "profile", "interval", "description", *SQL_KEYS,
)  # fmt: skip
RETRY_KEYS = ("count", "delay", "backoff", "max_delay")
ALERT_KEYS = ("url", "urls", "on", "title", "body")
APPRISE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://\S")
# Problems of each block file already checked, by (file, type): shared files are read once.
CheckedFiles = dict[tuple[str, BlockType], list[UserInputError]]
NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def find_project_root(path: str | Path) -> Path:
    root = Path(path).expanduser().resolve()
    if not (root / PROJECT_FILE).is_file():
        raise UserInputError(
            f"{path} is not a Treadle project (no {PROJECT_FILE})",
            path=str(path),
            hint="create one with `treadle init PATH`, or pass the project's folder",
        )
    return root


def load_project(path: str | Path) -> Project:
    """Read and validate the project at ``path``; raise ``ProjectInvalid`` on any problem."""
    root = find_project_root(path)
    problems: list[UserInputError] = []
    settings = _load_settings(root, problems)
    pipelines: dict[str, Pipeline] = {}
    checked_files: CheckedFiles = {}
    for yaml_file in sorted((root / "pipelines").glob(f"*/{PIPELINE_FILE}")):
        pipeline = _load_pipeline(root, yaml_file, problems, checked_files)
        if pipeline is not None:
            pipelines[pipeline.name] = pipeline
    if problems:
        raise ProjectInvalid(problems, path=str(root))
    return Project(root=root, settings=settings, pipelines=pipelines)


# -- treadle.yaml -------------------------------------------------------------------------


def _load_settings(root: Path, problems: list[UserInputError]) -> ProjectSettings:
    try:
        doc = read_yaml(root / PROJECT_FILE, PROJECT_FILE)
    except UserInputError as exc:
        problems.append(exc)
        return ProjectSettings(name=root.name)
    data = doc.data or {}
    if not isinstance(data, dict):
        problems.append(doc.error("treadle.yaml must be a mapping of settings"))
        return ProjectSettings(name=root.name)
    _check_keys(doc, data, SETTING_KEYS, (), "setting", problems)
    values: dict[str, Any] = {k: v for k, v in data.items() if k in SETTING_KEYS}
    values.setdefault("name", root.name)
    _check_choice(doc, values, "executor", EXECUTOR_NAMES, problems)
    _check_choice(doc, values, "output_format", OUTPUT_FORMATS, problems)
    concurrency = values.get("concurrency", 1)
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        problems.append(doc.error("concurrency must be a whole number ≥ 1", "concurrency"))
        values.pop("concurrency")
    for key in ("name", "database_url", "base_url"):
        if key in values and not isinstance(values[key], str):
            problems.append(doc.error(f"{key} must be text", key))
            values.pop(key)
    if "base_url" in values:
        values["base_url"] = _parse_base_url(doc, values["base_url"], problems)
    if "auth" in values and not isinstance(values["auth"], bool):
        problems.append(doc.error("auth must be true or false", "auth"))
        values.pop("auth")
    if "max_body_bytes" in values:
        values["max_body_bytes"] = _parse_positive_int(doc, values, "max_body_bytes", problems)
        if values["max_body_bytes"] is None:
            values.pop("max_body_bytes")
    values["max_active_runs"] = _parse_positive_int(doc, values, "max_active_runs", problems)
    for key in ("heartbeat_every", "lost_after"):
        if key in values:
            values[key] = _parse_optional_duration(doc, values, key, (), problems)
            if not values[key]:
                values.pop(key)
    if "retention" in values:
        values["retention"] = _parse_retention(doc, values["retention"], problems)
    settings = ProjectSettings(**values)
    if settings.lost_after < 3 * settings.heartbeat_every:
        problems.append(
            doc.error(
                f"lost_after ({settings.lost_after:g}s) must be at least 3 × heartbeat_every "
                f"({settings.heartbeat_every:g}s), or live runs on other machines look lost",
                "lost_after" if "lost_after" in values else "heartbeat_every",
            )
        )
    return settings


def _parse_base_url(doc: YamlDocument, url: str, problems: list[UserInputError]) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        problems.append(
            doc.error(
                f"base_url {url!r} is not an http(s) address",
                "base_url",
                hint="write it as the UI is reached, e.g. https://treadle.example.com",
            )
        )
        return ProjectSettings.base_url
    return url.rstrip("/")


def _parse_positive_int(
    doc: YamlDocument,
    raw: dict[str, Any],
    key: str,
    problems: list[UserInputError],
    *where: str | int,
) -> int | None:
    """``raw[key]`` when it is a whole number ≥ 1; None when absent or wrong (reported)."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        problems.append(doc.error(f"{key} must be a whole number ≥ 1", *where, key))
        return None
    return value


def _parse_retention(doc: YamlDocument, raw: Any, problems: list[UserInputError]) -> Retention:
    if not isinstance(raw, dict):
        problems.append(doc.error("retention must be a mapping like {outputs: 30d}", "retention"))
        return Retention()
    _check_keys(doc, raw, RETENTION_KEYS, ("retention",), "retention key", problems)
    kept = {}
    for key in RETENTION_KEYS:
        seconds = _parse_optional_duration(doc, raw, key, ("retention",), problems)
        if seconds is not None:
            kept[key] = seconds
    return Retention(**kept)


def _check_choice(
    doc: YamlDocument,
    values: dict[str, Any],
    key: str,
    choices: tuple[str, ...],
    problems: list[UserInputError],
) -> None:
    if key in values and values[key] not in choices:
        problems.append(
            doc.error(
                f"unknown {key} {values[key]!r}", key, hint=did_you_mean(str(values[key]), choices)
            )
        )
        values.pop(key)


# -- pipelines/<name>/pipeline.yaml --------------------------------------------------------


def _load_pipeline(
    root: Path,
    yaml_file: Path,
    problems: list[UserInputError],
    checked_files: CheckedFiles,
) -> Pipeline | None:
    folder_name = yaml_file.parent.name
    display = yaml_file.relative_to(root).as_posix()
    try:
        doc = read_yaml(yaml_file, display)
    except UserInputError as exc:
        problems.append(exc)
        return None
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        problems.append(doc.error("pipeline.yaml must be a mapping with a `blocks:` list"))
        return None
    before = len(problems)
    _check_keys(doc, data, PIPELINE_KEYS, (), "pipeline key", problems)
    name = data.get("name", folder_name)
    if name != folder_name:
        problems.append(
            doc.error(
                f"name {name!r} does not match the pipeline's folder {folder_name!r}",
                "name",
                hint=f"write `name: {folder_name}` or rename the folder",
            )
        )
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        problems.append(doc.error("variables must be a mapping of name: default", "variables"))
        variables = {}
    retries = _parse_retries(doc, data.get("retries"), ("retries",), problems) or RetryPolicy()
    concurrency = data.get("concurrency")
    if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
        problems.append(doc.error("concurrency must be a whole number ≥ 1", "concurrency"))
        concurrency = None
    description = data.get("description") or ""
    if not isinstance(description, str):
        problems.append(doc.error("description must be text", "description"))
        description = ""
    resume_on_crash = data.get("resume_on_crash", False)
    if not isinstance(resume_on_crash, bool):
        problems.append(doc.error("resume_on_crash must be true or false", "resume_on_crash"))
    max_active_runs = _parse_positive_int(doc, data, "max_active_runs", problems)
    sla = _parse_sla(doc, data, problems)
    alerts = _parse_alerts(doc, data.get("alerts"), problems)
    blocks = _parse_blocks(root, doc, data.get("blocks"), problems, checked_files)
    _check_upstreams(doc, data.get("blocks"), problems)  # even beside other problems
    if len(problems) == before:
        _check_graph(doc, blocks, problems)
    if len(problems) > before:
        return None
    return Pipeline(
        name=folder_name,
        directory=yaml_file.parent,
        blocks=tuple(blocks),
        description=description,
        variables=dict(variables),
        retries=retries,
        concurrency=concurrency,
        resume_on_crash=resume_on_crash is True,
        max_active_runs=max_active_runs,
        sla=sla,
        alerts=alerts,
    )


def _parse_sla(
    doc: YamlDocument, data: dict[str, Any], problems: list[UserInputError]
) -> float | None:
    sla = _parse_optional_duration(doc, data, "sla", (), problems)
    if sla == 0:
        problems.append(doc.error("sla must be longer than 0 (leave it out for none)", "sla"))
        return None
    return sla


# -- alerts: in pipeline.yaml --------------------------------------------------------------


def _parse_alerts(
    doc: YamlDocument, raw: Any, problems: list[UserInputError]
) -> tuple[AlertSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(doc.error("alerts must be a list of {urls, on, title, body}", "alerts"))
        return ()
    parsed = (
        _parse_alert(doc, item, ("alerts", index), problems) for index, item in enumerate(raw)
    )
    return tuple(alert for alert in parsed if alert is not None)


def _parse_alert(
    doc: YamlDocument, raw: Any, where: tuple[str | int, ...], problems: list[UserInputError]
) -> AlertSpec | None:
    if not isinstance(raw, dict):
        problems.append(doc.error("each alert must be a mapping with urls and on", *where))
        return None
    before = len(problems)
    # YAML 1.1 reads a bare `on:` key as true (as in GitHub Actions files): take it as "on".
    on_key: str | bool = True if True in raw else "on"
    named = {key: value for key, value in raw.items() if key is not True}
    _check_keys(doc, named, ALERT_KEYS, where, "alert key", problems)
    urls = _parse_alert_urls(doc, raw, where, problems)
    events = _parse_alert_events(doc, raw.get(on_key), (*where, on_key), problems)
    templates = {
        key: _parse_alert_template(doc, raw, key, where, problems) for key in ("title", "body")
    }
    if len(problems) > before:
        return None
    return AlertSpec(
        urls=urls,
        on=events,
        title=templates["title"],
        body=templates["body"],
        line=doc.line_of(*where) or 0,
    )


def _parse_alert_urls(
    doc: YamlDocument,
    raw: dict[Any, Any],
    where: tuple[str | int, ...],
    problems: list[UserInputError],
) -> tuple[str, ...]:
    """``url: one`` and ``urls: [..]`` together; each an apprise URL, maybe templated."""
    before = len(problems)
    urls: list[str] = []
    for key in ("url", "urls"):
        value = raw.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            urls += _checked_alert_urls(doc, [value], (*where, key), single=True, problems=problems)
        elif isinstance(value, list):
            urls += _checked_alert_urls(doc, value, (*where, key), single=False, problems=problems)
        else:
            problems.append(
                doc.error(f"{key} must be an apprise URL or a list of them", *where, key)
            )
    if not urls and len(problems) == before:
        problems.append(
            doc.error(
                "alert without urls",
                *where,
                hint="add urls: a list of apprise URLs, e.g. slack://TokenA/TokenB/TokenC",
            )
        )
    return tuple(urls)


def _checked_alert_urls(
    doc: YamlDocument,
    values: list[Any],
    where: tuple[str | int, ...],
    *,
    single: bool,
    problems: list[UserInputError],
) -> list[str]:
    kept = []
    for position, url in enumerate(values):
        at = where if single else (*where, position)
        if not isinstance(url, str) or not url.strip():
            problems.append(
                doc.error(
                    f"alert URL {url!r} is not text",
                    *at,
                    hint=_QUOTE_HINT if isinstance(url, dict) else "write an apprise URL",
                )
            )
        elif _is_template(url):
            if _template_ok(doc, url, ("env_var",), at, "alert URL", problems):
                kept.append(url)
        elif not APPRISE_URL.match(url):
            problems.append(
                doc.error(
                    "alert URL is not an apprise URL (no scheme://)",
                    *at,
                    hint="e.g. slack://TokenA/TokenB/TokenC, mailto://user:pass@host, json://host/path",
                )
            )
        else:
            kept.append(url)
    return kept


def _parse_alert_events(
    doc: YamlDocument, raw: Any, where: tuple[str | int, ...], problems: list[UserInputError]
) -> frozenset[AlertEvent]:
    choices = [event.value for event in AlertEvent]
    if raw is None:
        return DEFAULT_ALERT_EVENTS
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names:
        problems.append(
            doc.error(
                "on must list one or more events", *where, hint="events: " + ", ".join(choices)
            )
        )
        return DEFAULT_ALERT_EVENTS
    events: set[AlertEvent] = set()
    for position, name in enumerate(names):
        try:
            events.add(AlertEvent(name))
        except ValueError:
            problems.append(
                doc.error(
                    f"unknown alert event {name!r}",
                    *where,
                    *(() if isinstance(raw, str) else (position,)),
                    hint=did_you_mean(str(name), choices),
                )
            )
    return frozenset(events)


def _parse_alert_template(
    doc: YamlDocument,
    raw: dict[Any, Any],
    key: str,
    where: tuple[str | int, ...],
    problems: list[UserInputError],
) -> str | None:
    text = raw.get(key)
    if text is None:
        return None
    if not isinstance(text, str):
        hint = _QUOTE_HINT if isinstance(text, dict) else None
        problems.append(
            doc.error(f"alert {key} must be text (a Jinja template)", *where, key, hint=hint)
        )
        return None
    if _is_template(text) and not _template_ok(
        doc, text, ALERT_TEMPLATE_NAMES, (*where, key), f"alert {key}", problems
    ):
        return None
    return text


_QUOTE_HINT = 'quote a value that starts with {{: "{{ pipeline }} failed"'


def _is_template(text: str) -> bool:
    return any(mark in text for mark in ("{{", "{%", "{#"))


def _template_ok(
    doc: YamlDocument,
    text: str,
    names: tuple[str, ...],
    where: tuple[str | int, ...],
    what: str,
    problems: list[UserInputError],
) -> bool:
    """Whether ``text`` is a Jinja template using only ``names``; reports why not."""
    import jinja2  # here: a project without templated alerts does not pay for Jinja
    import jinja2.meta

    env = jinja2.Environment()
    try:
        tree = env.parse(text)
    except jinja2.TemplateSyntaxError as exc:
        in_template = f" (template line {exc.lineno})" if "\n" in text.strip() else ""
        problems.append(
            doc.error(
                f"{what}: template error{in_template}: {exc.message}",
                *where,
                hint="Jinja syntax: {{ pipeline }}, {% if error %}…{% endif %}",
            )
        )
        return False
    known = (*names, *env.globals)
    unknown = sorted(jinja2.meta.find_undeclared_variables(tree) - set(known))
    for name in unknown:
        problems.append(
            doc.error(
                f"{what}: unknown template variable {name!r}",
                *where,
                hint=did_you_mean(name, names),
            )
        )
    return not unknown


def _parse_blocks(
    root: Path,
    doc: YamlDocument,
    raw_blocks: Any,
    problems: list[UserInputError],
    checked_files: CheckedFiles,
) -> list[BlockSpec]:
    if raw_blocks is None:
        return []
    if not isinstance(raw_blocks, list):
        problems.append(doc.error("blocks must be a list of blocks", "blocks"))
        return []
    blocks: list[BlockSpec] = []
    seen: dict[str, int | None] = {}
    for index, raw in enumerate(raw_blocks):
        where = ("blocks", index)
        if not isinstance(raw, dict):
            problems.append(doc.error("each block must be a mapping with name and type", *where))
            continue
        block = _parse_block(root, doc, raw, where, problems, checked_files)
        if block is None:
            continue
        if block.name in seen:
            problems.append(
                doc.error(
                    f"duplicate block {block.name!r} (first defined on line {seen[block.name]})",
                    *where,
                    "name",
                    hint="give each block of a pipeline its own name",
                )  # fmt: skip
            )
            continue
        seen[block.name] = block.line
        blocks.append(block)
    return blocks


def _parse_block(
    root: Path,
    doc: YamlDocument,
    raw: dict[str, Any],
    where: tuple[str | int, ...],
    problems: list[UserInputError],
    checked_files: CheckedFiles,
) -> BlockSpec | None:
    before = len(problems)
    _check_keys(doc, raw, BLOCK_KEYS, where, "block key", problems)
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(
            doc.error(
                f"block name {name!r} is missing or invalid" if name else "block without a name",
                *where,
                "name",
                hint="use letters, digits, _ and -, starting with a letter or _",
            )  # fmt: skip
        )
        return None
    block_type = _parse_block_type(doc, raw.get("type"), where, problems)
    upstream = raw.get("upstream") or []
    if isinstance(upstream, str):
        upstream = [upstream]
    if not isinstance(upstream, list) or not all(isinstance(u, str) for u in upstream):
        problems.append(doc.error("upstream must be a list of block names", *where, "upstream"))
        upstream = []
    timeout = _parse_optional_duration(doc, raw, "timeout", where, problems)
    interval = _parse_optional_duration(doc, raw, "interval", where, problems)
    retries = _parse_retries(doc, raw.get("retries"), (*where, "retries"), problems)
    flags = {}
    for flag in ("dynamic", "reduce"):
        value = raw.get(flag, False)
        if not isinstance(value, bool):
            problems.append(doc.error(f"{flag} must be true or false", *where, flag))
            value = False
        flags[flag] = value
    profile = raw.get("profile", "default")
    if not isinstance(profile, str):
        problems.append(
            doc.error("profile must be the name of an io_config profile", *where, "profile")
        )
        profile = "default"
    if block_type is None or len(problems) > before:
        return None
    file = _resolve_block_file(root, doc, raw, name, block_type, where, problems)
    if file is None:
        return None
    sql = _parse_sql_settings(doc, raw, file, where, problems)
    if (file, block_type) not in checked_files:  # a file shared by pipelines is read once
        checked_files[file, block_type] = check_block_file(root / file, file, block_type)
    problems.extend(checked_files[file, block_type])
    return BlockSpec(
        name=name,
        type=block_type,
        file=file,
        upstream=tuple(upstream),
        timeout=timeout,
        retries=retries,
        dynamic=flags["dynamic"],
        reduce=flags["reduce"],
        profile=profile,
        sql=sql,
        sensor_interval=interval if interval is not None else 10.0,
        line=doc.line_of(*where),
    )


def _parse_sql_settings(
    doc: YamlDocument,
    raw: dict[str, Any],
    file: str,
    where: tuple[str | int, ...],
    problems: list[UserInputError],
) -> SqlSettings:
    """The SQL keys of a block; each problem names its key and line."""
    given = [key for key in SQL_KEYS if key in raw]
    if not given:
        return SqlSettings()
    if not file.endswith(".sql"):
        problems.append(
            doc.error(
                f"{', '.join(given)}: for SQL blocks only, and {file} is a Python block",
                *where,
                given[0],
                hint="remove the key, or export from the Python block with a connector",
            )
        )
        return SqlSettings()
    before = len(problems)
    names = {}
    for key in ("table", "schema"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            problems.append(doc.error(f"{key} must be a name", *where, key))
        names[key] = value
    if_exists = raw.get("if_exists", "replace")
    if if_exists not in SQL_IF_EXISTS:
        problems.append(
            doc.error(
                f"if_exists must be one of {', '.join(SQL_IF_EXISTS)}, not {if_exists!r}",
                *where,
                "if_exists",
                hint=did_you_mean(str(if_exists), SQL_IF_EXISTS),
            )
        )
    is_raw = raw.get("raw", False)
    if not isinstance(is_raw, bool):
        problems.append(doc.error("raw must be true or false", *where, "raw"))
    limit = raw.get("limit")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(
            doc.error("limit must be a whole number of rows, 1 or more", *where, "limit")
        )
    for key in ("schema", "if_exists"):
        if key in raw and names["table"] is None and is_raw is not True:
            problems.append(
                doc.error(f"{key} needs a table to write to", *where, key, hint="add `table:`")
            )
    if is_raw is True:
        for key in ("table", "schema", "if_exists", "limit"):
            if key in raw:
                problems.append(
                    doc.error(
                        f"{key} does not apply with raw: true (the SQL runs as plain statements)",
                        *where,
                        key,
                    )
                )
    if len(problems) > before:
        return SqlSettings()
    return SqlSettings(
        table=names["table"],
        schema=names["schema"],
        if_exists=if_exists,
        raw=is_raw,
        limit=limit,
    )


def _parse_block_type(
    doc: YamlDocument, value: Any, where: tuple[str | int, ...], problems: list[UserInputError]
) -> BlockType | None:
    choices = [t.value for t in BlockType]
    if value is None:
        problems.append(
            doc.error("block without a type", *where, hint="types: " + ", ".join(choices))
        )
        return None
    try:
        return BlockType(value)
    except ValueError:
        problems.append(
            doc.error(
                f"unknown block type {value!r}",
                *where,
                "type",
                hint=did_you_mean(str(value), choices),
            )
        )
        return None


def _resolve_block_file(
    root: Path,
    doc: YamlDocument,
    raw: dict[str, Any],
    name: str,
    block_type: BlockType,
    where: tuple[str | int, ...],
    problems: list[UserInputError],
) -> str | None:
    """The block file, relative to the root; confined to the project, ``.py`` or ``.sql``."""
    given = raw.get("file")
    if given is None:
        candidates = [f"{block_type.folder}/{name}.py", f"{block_type.folder}/{name}.sql"]
        for candidate in candidates:
            if (root / candidate).is_file():
                return candidate
        problems.append(
            doc.error(
                f"block {name!r} has no file: neither {candidates[0]} nor {candidates[1]} exists",
                *where,
                hint="create the file, or point `file:` at it",
            )
        )
        return None
    if not isinstance(given, str) or not given.endswith((".py", ".sql")):
        problems.append(
            doc.error("file must be a .py or .sql path inside the project", *where, "file")
        )
        return None
    relative = PurePosixPath(given.replace("\\", "/"))
    inside = (root / relative).resolve()
    if relative.is_absolute() or ".." in relative.parts or not inside.is_relative_to(root):
        problems.append(
            doc.error(
                f"file {given!r} is outside the project",
                *where,
                "file",
                hint="block files must live inside the project folder",
            )  # fmt: skip
        )
        return None
    if not inside.is_file():
        problems.append(doc.error(f"block file {given} does not exist", *where, "file"))
        return None
    return relative.as_posix()


def _parse_optional_duration(
    doc: YamlDocument,
    raw: dict[str, Any],
    key: str,
    where: tuple[str | int, ...],
    problems: list[UserInputError],
) -> float | None:
    if raw.get(key) is None:
        return None
    try:
        return parse_duration(raw[key])
    except ValueError as exc:
        problems.append(doc.error(f"{key}: {exc}", *where, key))
        return None


def _parse_retries(
    doc: YamlDocument, raw: Any, where: tuple[str | int, ...], problems: list[UserInputError]
) -> RetryPolicy | None:
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {"count": raw}
    if not isinstance(raw, dict):
        problems.append(doc.error("retries must be a mapping: {count, delay, backoff}", *where))
        return None
    _check_keys(doc, raw, RETRY_KEYS, where, "retries key", problems)
    values: dict[str, Any] = {}
    count = raw.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        problems.append(doc.error("retries count must be a whole number ≥ 0", *where, "count"))
    else:
        values["count"] = count
    for key in ("delay", "max_delay"):
        if key in raw:
            try:
                values[key] = parse_duration(raw[key])
            except ValueError as exc:
                problems.append(doc.error(f"retries {key}: {exc}", *where, key))
    backoff = raw.get("backoff", 2.0)
    if not isinstance(backoff, int | float) or isinstance(backoff, bool) or backoff < 1:
        problems.append(doc.error("retries backoff must be a number ≥ 1", *where, "backoff"))
    else:
        values["backoff"] = float(backoff)
    return RetryPolicy(**values)


def _check_keys(
    doc: YamlDocument,
    data: dict[str, Any],
    known: tuple[str, ...],
    where: tuple[str | int, ...],
    what: str,
    problems: list[UserInputError],
) -> None:
    for key in data:
        if key not in known:
            problems.append(
                doc.error(
                    f"unknown {what} {key!r}", *where, key, hint=did_you_mean(str(key), known)
                )
            )


# -- the graph -----------------------------------------------------------------------------


def _check_upstreams(doc: YamlDocument, raw_blocks: Any, problems: list[UserInputError]) -> None:
    """Every upstream names a block of the pipeline (checked on the raw list, so a block
    with another problem still counts as declared and lines stay right)."""
    if not isinstance(raw_blocks, list):
        return
    raw = [(i, b) for i, b in enumerate(raw_blocks) if isinstance(b, dict)]
    names = [b["name"] for _, b in raw if isinstance(b.get("name"), str)]
    for index, block in raw:
        upstream = block.get("upstream") or []
        for position, up in enumerate(upstream if isinstance(upstream, list) else [upstream]):
            if isinstance(up, str) and up not in names:
                problems.append(
                    doc.error(
                        f"block {block.get('name')!r} has unknown upstream {up!r}",
                        "blocks",
                        index,
                        "upstream",
                        position,
                        hint=did_you_mean(up, names),
                    )  # fmt: skip
                )


def _check_graph(
    doc: YamlDocument, blocks: list[BlockSpec], problems: list[UserInputError]
) -> None:
    """Cycles and fan-outs, once every block of the pipeline is valid."""
    names = [b.name for b in blocks]
    cycle = _find_cycle(blocks)
    if cycle:
        first = min(names.index(n) for n in cycle)
        start = cycle.index(names[first])
        cycle = cycle[start:] + cycle[:start]  # begin at the block that comes first in the file
        problems.append(
            doc.error(
                "cycle between blocks: " + " → ".join([*cycle, cycle[0]]),
                "blocks",
                first,
                "upstream",
                hint="a pipeline is a DAG: remove one of these upstream links",
            )  # fmt: skip
        )
        return
    _check_dynamic(doc, blocks, problems)


def _find_cycle(blocks: list[BlockSpec]) -> list[str] | None:
    """One cycle as a list of block names, or None. Iterative DFS (no recursion limit)."""
    upstream = {b.name: b.upstream for b in blocks}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in upstream:
        if state.get(start):
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            node, next_index = stack.pop()
            if next_index == 0:
                state[node] = 1
                path.append(node)
            children = upstream[node]
            if next_index < len(children):
                stack.append((node, next_index + 1))
                child = children[next_index]
                if state.get(child) == 1:
                    cycle = path[path.index(child) :]
                    return list(reversed(cycle))
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def _check_dynamic(
    doc: YamlDocument, blocks: list[BlockSpec], problems: list[UserInputError]
) -> None:
    """Dynamic blocks fan out one level; ``reduce`` belongs on a block inside a fan."""
    fanned = fanned_blocks(blocks)
    for index, block in enumerate(blocks):
        if block.name in fanned and block.dynamic:
            problems.append(
                doc.error(
                    f"block {block.name!r} is dynamic inside another dynamic block's fan-out",
                    "blocks",
                    index,
                    "dynamic",
                    hint="nested fan-outs are not supported; add `reduce: true` upstream first",
                )  # fmt: skip
            )
        if block.name not in fanned and block.reduce:
            problems.append(
                doc.error(
                    f"block {block.name!r} has reduce: true but no dynamic block upstream",
                    "blocks",
                    index,
                    "reduce",
                    hint="reduce collects the per-item outputs of a block downstream of a dynamic one",
                )  # fmt: skip
            )
