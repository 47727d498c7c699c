"""Read ``io_config.yaml``: named connection profiles, in Mage's format.

```yaml
version: 0.1.1
default:
  DUCKDB_DATABASE: .treadle/warehouse.duckdb
dev:
  POSTGRES_HOST: "{{ env_var('POSTGRES_HOST') }}"
  POSTGRES_DB: "{{ variables('database') }}"
```

The file is rendered with Jinja2 before it is parsed as YAML. Three functions are
available: ``env_var('X')`` (the process environment, then the project's ``.env``),
``variables('x')`` (the run's variables) and ``secret('name')`` (the encrypted secret
store, ``treadle secrets set``). Each also takes a default: ``env_var('X', 'fallback')``. A missing
name is an error naming it and the line that uses it, raised when the profile that uses
it is asked for (another profile still works). Errors never quote a value, so a
password read from the environment cannot end up in a log.
"""

from __future__ import annotations

import copy
import os
import re
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from treadle.errors import UnknownName, UserInputError, did_you_mean
from treadle.project.active import note_secret_read
from treadle.project.secrets import SECRETS_FILE
from treadle.project.yaml_source import parse_yaml

IO_CONFIG_FILE = "io_config.yaml"
ENV_FILE = ".env"
_MISSING = object()
_PLACEHOLDER = re.compile(r"__treadle_missing_\d+__")


@dataclass(frozen=True)
class IoConfig:
    """The rendered profiles of one project's ``io_config.yaml``.

    A value that could not be filled in (a missing env var, variable or secret) is an
    error only for the profile that holds it: an unset ``PROD_PASSWORD`` does not stop
    the ``dev`` profile from working."""

    path: Path
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exists: bool = True
    #: the problem behind each placeholder left in ``profiles``, with its line
    missing: Mapping[str, UserInputError] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.profiles)

    def profile(self, name: str = "default") -> dict[str, Any]:
        """A copy of profile ``name``'s settings.

        Raises ``UnknownName`` (a ``UserInputError``) listing the profiles that exist. A
        project without ``io_config.yaml`` has an empty ``default`` profile and no other.
        """
        if name in self.profiles:
            settings = copy.deepcopy(dict(self.profiles[name]))
            self._raise_missing(settings)
            return settings
        if not self.exists:
            if name == "default":
                return {}
            raise UserInputError(
                f"unknown profile {name!r}: the project has no {IO_CONFIG_FILE}",
                path=IO_CONFIG_FILE,
                hint=f"create {IO_CONFIG_FILE} with a {name!r} profile",
            )
        raise UnknownName(
            f"unknown profile {name!r}; the profiles are: {', '.join(self.names) or 'none'}",
            path=IO_CONFIG_FILE,
            hint=did_you_mean(name, self.names),
        )

    def _raise_missing(self, settings: Mapping[str, Any]) -> None:
        problems = [
            self.missing[token]
            for value in settings.values()
            if isinstance(value, str)
            for token in _PLACEHOLDER.findall(value)
            if token in self.missing
        ]
        if len(problems) == 1:
            raise problems[0]
        if problems:
            from treadle.errors import ProjectInvalid

            raise ProjectInvalid(problems)


def load_io_config(root: Path, variables: Mapping[str, Any] | None = None) -> IoConfig:
    """Render and parse ``root/io_config.yaml`` with the run's ``variables``.

    Raises ``UserInputError`` with the file and line for a Jinja syntax error, a missing
    env var or variable, a ``secret()`` call, malformed YAML or a profile that is not a
    mapping. The result is cached until the file, ``.env`` or a value it used changes.
    """
    file = Path(root) / IO_CONFIG_FILE
    try:
        stat = file.stat()
    except FileNotFoundError:
        return IoConfig(file, exists=False)
    variables = variables or {}
    env_stat = _stat_key(Path(root) / ENV_FILE)
    key = (stat.st_mtime_ns, stat.st_size, env_stat, _stat_key(Path(root) / SECRETS_FILE))
    with _cache_lock:
        cached = _cache.get(file)
    if cached is not None and cached.key == key and cached.still_valid(variables):
        for name in cached.secrets:  # decrypted once, but used again: still a read
            note_secret_read(name)
        return cached.config
    dotenv = cached.dotenv if cached is not None and cached.key[2] == env_stat else None
    renderer = _Renderer(variables, dotenv, Path(root) / ENV_FILE)
    source = file.read_text(encoding="utf-8")
    config = _parse(file, source, renderer.render(source), renderer.missing)
    with _cache_lock:
        _cache[file] = _CacheEntry(
            key, renderer.dotenv, renderer.used, config, tuple(renderer.secrets)
        )
    return config


def read_dotenv(file: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a ``.env`` file; ``#`` comments, ``export`` and quotes allowed."""
    values: dict[str, str] = {}
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.removeprefix("export ").strip()
        value = value.strip()
        end = value.find(value[0], 1) if value[:1] in ("'", '"') else -1
        value = value[1:end] if end > 0 else value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


class _Renderer:
    """Renders the template, recording every value it looked up (for the cache)."""

    def __init__(self, variables: Mapping[str, Any], dotenv: dict[str, str] | None, env_file: Path):
        self.variables = variables
        self.dotenv = dotenv
        self.env_file = env_file
        self.used: list[tuple[str, str, Any]] = []
        self.missing: dict[str, tuple[str, str]] = {}  # placeholder -> (message, hint)
        self.secrets: list[str] = []  # names of the secrets decrypted

    def env_var(self, name: str, default: Any = _MISSING) -> Any:
        value = os.environ.get(name)
        if value is None:
            if self.dotenv is None:
                self.dotenv = read_dotenv(self.env_file)
            value = self.dotenv.get(name)
        self.used.append(("env", name, value))
        if value is None:
            if default is not _MISSING:
                return default
            return self._placeholder(
                f"environment variable {name!r} is not set",
                f"set {name} in the environment or in the project's {ENV_FILE}",
            )
        return value

    def variable(self, name: str, default: Any = _MISSING) -> Any:
        value = self.variables.get(name, _MISSING)
        self.used.append(("var", name, value))
        if value is not _MISSING:
            return value
        if default is not _MISSING:
            return default
        return self._placeholder(
            f"variable {name!r} is not set",
            "define it in the pipeline's variables or pass it to the run"
            + (f"; {did_you_mean(name, list(self.variables))}" if self.variables else ""),
        )

    def secret(self, name: str, default: Any = _MISSING) -> Any:
        from treadle.project.secrets import SecretStore

        value = SecretStore(self.env_file.parent).get(name)
        if value is not None:
            note_secret_read(name)
            self.secrets.append(name)
            return value
        if default is not _MISSING:
            return default
        return self._placeholder(
            f"secret {name!r} is not set",
            f"store it with `treadle secrets set {name}` (the value is asked for, not echoed)",
        )

    def _placeholder(self, message: str, hint: str) -> str:
        """Stands for a value that could not be filled in; the profile that holds it
        raises ``message`` when asked for (``IoConfig.profile``)."""
        token = f"__treadle_missing_{len(self.missing)}__"
        self.missing[token] = (message, hint)
        return token

    def render(self, source: str) -> str:
        import jinja2  # here, not at the top: reading .env must not cost a Jinja import

        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
        )
        env.globals.update(env_var=self.env_var, variables=self.variable, secret=self.secret)
        try:
            template = env.from_string(_without_comment_lines(source))
        except jinja2.TemplateSyntaxError as exc:
            raise UserInputError(
                f"template error: {exc.message}", path=IO_CONFIG_FILE, line=exc.lineno
            ) from None
        try:
            return template.render()
        except (jinja2.TemplateError, TypeError, ValueError) as exc:
            raise UserInputError(
                f"template error: {exc}",
                path=IO_CONFIG_FILE,
                line=_template_line(exc),
                hint="the functions available are env_var(), variables() and secret()",
            ) from None


def _without_comment_lines(source: str) -> str:
    """Blank out whole-line YAML comments (keeping line numbers), so a commented-out
    profile does not need its environment variables."""
    return "\n".join("" if line.lstrip().startswith("#") else line for line in source.split("\n"))


def _parse(file: Path, source: str, text: str, missing: Mapping[str, tuple[str, str]]) -> IoConfig:
    try:
        doc = parse_yaml(text, IO_CONFIG_FILE)
    except UserInputError as exc:
        # YAML's message may quote a rendered value (a password): never repeat it
        nearby = source.splitlines()[max((exc.line or 0) - 2, 0) : exc.line or None]
        if "{{" in "".join(nearby):
            exc.message = "malformed YAML after filling in the template values"
            exc.hint = "quote templated values: KEY: \"{{ env_var('NAME') }}\""
        raise
    data = doc.data if doc.data is not None else {}
    if not isinstance(data, dict):
        raise doc.error("io_config.yaml must be a mapping of profile names to settings")
    profiles: dict[str, Mapping[str, Any]] = {}
    for name, settings in data.items():
        if name == "version":
            continue
        if settings is None:
            settings = {}
        if not isinstance(settings, dict):
            raise doc.error(f"profile {name!r} must be a mapping of settings", name)
        profiles[str(name)] = settings
    return IoConfig(file, profiles, missing=_missing_problems(doc, profiles, missing))


def _missing_problems(
    doc: Any, profiles: Mapping[str, Mapping[str, Any]], missing: Mapping[str, tuple[str, str]]
) -> dict[str, UserInputError]:
    """Each placeholder's problem, at the line of the setting that holds it."""
    problems: dict[str, UserInputError] = {}
    for profile, settings in profiles.items():
        for key, value in settings.items():
            for token in _PLACEHOLDER.findall(value) if isinstance(value, str) else ():
                message, hint = missing[token]
                problems[token] = UserInputError(
                    message, path=IO_CONFIG_FILE, line=doc.line_of(profile, key), hint=hint
                )
    return problems


def _template_line(exc: BaseException) -> int | None:
    """The template line the exception was raised from, from Jinja's rewritten traceback."""
    lines = [
        f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _stat_key(file: Path) -> tuple[int, int] | None:
    try:
        stat = file.stat()
    except FileNotFoundError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@dataclass(frozen=True)
class _CacheEntry:
    key: tuple[Any, ...]
    dotenv: dict[str, str] | None
    used: list[tuple[str, str, Any]]
    config: IoConfig
    secrets: tuple[str, ...] = ()

    def still_valid(self, variables: Mapping[str, Any]) -> bool:
        for kind, name, value in self.used:
            if kind == "env":
                current = os.environ.get(name)
                if current is None and self.dotenv is not None:
                    current = self.dotenv.get(name)
            else:
                current = variables.get(name, _MISSING)
            if current is not value and current != value:
                return False
        return True


_cache: dict[Path, _CacheEntry] = {}
_cache_lock = threading.Lock()
