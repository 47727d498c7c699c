"""Alerts: tell people about a run through the channels its pipeline names (apprise URLs).

A pipeline's ``alerts:`` (``AlertSpec``) say which events go where and what they say.
``send_alerts`` sends one event of one run to every alert that subscribes to it, once:
the caller's ledger (``first_time``) is asked before anything is sent. Sending never
raises and never hangs a run: each channel has connect and read timeouts, a failing
channel is logged on the ``treadle.alerts`` logger (its secrets masked) and returned
as a problem, and the other channels still get the alert.

apprise and Jinja are imported only when an alert is sent: importing this module is cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

from treadle.errors import UserInputError
from treadle.project.masking import mask
from treadle.project.model import AlertEvent, AlertSpec, Pipeline

log = logging.getLogger("treadle.alerts")

ERROR_LENGTH = 500  # characters of an error's first line that an alert shows
MAX_PARALLEL_CHANNELS = 8
_HEADLINES = {
    AlertEvent.FAILURE: "failed",
    AlertEvent.SUCCESS: "succeeded",
    AlertEvent.SLA_MISSED: "missed its SLA",
    AlertEvent.STUCK: "is stuck",
}


@dataclass(frozen=True)
class AlertContext:
    """What an alert can say about a run. Every field is a name in title and body templates
    (``ALERT_TEMPLATE_NAMES``, checked by the loader); there ``error`` is its first line, cut
    to ``ERROR_LENGTH`` characters, and a None value renders as nothing."""

    project: str
    pipeline: str
    run_id: str
    event: AlertEvent
    status: str
    execution_date: str | None = None
    duration: float | None = None  # seconds
    failing_block: str | None = None
    error: str | None = None
    reason: str = ""  # why a run is stuck or late, in words
    link: str = ""  # the run's page: ``run_link(settings.base_url, run_id)``


def run_link(base_url: str, run_id: str) -> str:
    return f"{base_url.rstrip('/')}/runs/{run_id}"


def render_alert(
    spec: AlertSpec, ctx: AlertContext, env: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """The alert's (title, body): the spec's templates, or the defaults where it has none.

    Raises ``UserInputError`` (with the alert's line) when a template cannot be rendered,
    e.g. an ``env_var()`` that is not set.
    """
    values = _template_values(ctx)
    environment = os.environ if env is None else env
    where = f"(pipeline.yaml line {spec.line})"
    title = body = None
    if spec.title:
        title = _jinja_render(spec.title, values, environment, f"alert title {where}")
    if spec.body:
        body = _jinja_render(spec.body, values, environment, f"alert body {where}")
    return (title or default_title(ctx), body or default_body(ctx))


def default_title(ctx: AlertContext) -> str:
    return f"Treadle: {ctx.pipeline} {_HEADLINES[ctx.event]}"


def default_body(ctx: AlertContext) -> str:
    """One fact per line, leaving out what this run does not have."""
    facts = [
        ("Pipeline", f"{ctx.pipeline} (project {ctx.project})"),
        ("Run", f"{ctx.run_id} ({ctx.status})"),
        ("Event", ctx.event.value),
        ("Execution date", ctx.execution_date),
        ("Duration", _human_duration(ctx.duration) if ctx.duration is not None else None),
        ("Failing block", ctx.failing_block),
        ("Error", summarize_error(ctx.error)),
        ("Reason", ctx.reason),
        ("Link", ctx.link),
    ]
    lines = [f"Pipeline {ctx.pipeline} {_HEADLINES[ctx.event]}."]
    lines += [f"{label}: {value}" for label, value in facts if value]
    return "\n".join(lines)


def summarize_error(error: str | None) -> str | None:
    """The first non-blank line of ``error``, cut to ``ERROR_LENGTH`` characters."""
    first = next((line.strip() for line in (error or "").splitlines() if line.strip()), "")
    if not first:
        return None
    return first if len(first) <= ERROR_LENGTH else first[: ERROR_LENGTH - 1] + "…"


def send_alerts(
    pipeline: Pipeline,
    ctx: AlertContext,
    *,
    first_time: Callable[[str, str], bool],
    env: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Send ``ctx.event`` to every alert of ``pipeline`` that subscribes to it; never raises.

    ``first_time(run_id, event)`` is asked once, before sending, when some alert subscribes;
    False means it was sent already and nothing is sent. URLs are rendered with ``env``
    (default ``os.environ``). ``timeout`` is the most seconds a channel may take to connect,
    and to answer each read (a URL's own ``cto``/``rto`` may only lower it). Returns the
    problems, one line each, already logged as warnings.
    """
    specs = pipeline.alerts_for(ctx.event)
    if not specs:
        return []
    try:
        if not first_time(ctx.run_id, ctx.event.value):
            return []
        return _send_all(specs, ctx, os.environ if env is None else env, timeout)
    except Exception as exc:  # a bug here must not fail the run it reports on
        return [_problem(f"{_subject(ctx)} not sent: {type(exc).__name__}: {exc}")]


@dataclass(frozen=True)
class _Delivery:
    """One message to one channel."""

    url: str  # as written in pipeline.yaml
    line: int
    title: str
    body: str


def _send_all(
    specs: tuple[AlertSpec, ...], ctx: AlertContext, env: Mapping[str, str], timeout: float
) -> list[str]:
    problems: list[str] = []
    deliveries = []
    for spec in specs:
        title, body = _rendered_or_default(spec, ctx, env, problems)
        deliveries += [_Delivery(url, spec.line, title, body) for url in spec.urls]

    def deliver(delivery: _Delivery) -> str | None:
        return _deliver(delivery, ctx, env, timeout)

    if len(deliveries) == 1:
        outcomes = [deliver(deliveries[0])]
    else:
        with ThreadPoolExecutor(min(len(deliveries), MAX_PARALLEL_CHANNELS)) as pool:
            outcomes = list(pool.map(deliver, deliveries))
    return problems + [outcome for outcome in outcomes if outcome]


def _rendered_or_default(
    spec: AlertSpec, ctx: AlertContext, env: Mapping[str, str], problems: list[str]
) -> tuple[str, str]:
    """A template that fails is reported, and the default text is sent instead."""
    try:
        return render_alert(spec, ctx, env)
    except UserInputError as exc:
        problems.append(_problem(f"{_subject(ctx)}: {exc}; sent with the default text"))
        return render_alert(replace(spec, title=None, body=None), ctx, env)


def _deliver(
    delivery: _Delivery, ctx: AlertContext, env: Mapping[str, str], timeout: float
) -> str | None:
    """Send one message; the problem, or None when the channel took it."""
    where = f"(pipeline.yaml line {delivery.line})"
    try:
        url = _render_url(delivery.url, env)
    except UserInputError as exc:
        return _problem(f"{_subject(ctx)} not sent to a channel {where}: {exc.message}")
    channel = masked_channel(url)
    try:
        sent = _notify(url, delivery.title, delivery.body, ctx.event, timeout)
    except Exception as exc:
        reason = mask(f"{type(exc).__name__}: {exc}", _secret_parts(url))
        return _problem(f"{_subject(ctx)} not sent to {channel} {where}: {reason}")
    if sent is None:
        return _problem(
            f"{_subject(ctx)} not sent to {channel} {where}: apprise does not know this URL"
        )
    if not sent:
        return _problem(
            f"{_subject(ctx)} not sent to {channel} {where}: the channel refused it or "
            "could not be reached (the apprise log says more)"
        )
    return None


def _notify(url: str, title: str, body: str, event: AlertEvent, timeout: float) -> bool | None:
    """Whether the channel took the message; None when apprise cannot read the URL."""
    import apprise  # here: the CLI and the engine must not pay for it

    plugin = apprise.Apprise.instantiate(url, asset=apprise.AppriseAsset(app_id="Treadle"))
    if plugin is None:
        return None
    _limit_timeouts(plugin, url, timeout)
    notify_type = {
        AlertEvent.FAILURE: apprise.NotifyType.FAILURE,
        AlertEvent.SUCCESS: apprise.NotifyType.SUCCESS,
    }.get(event, apprise.NotifyType.WARNING)
    return bool(plugin.notify(body=body, title=title, notify_type=notify_type))


def _limit_timeouts(plugin: Any, url: str, timeout: float) -> None:
    """Connect and read timeouts of ``timeout`` seconds, or lower where the URL says so."""
    given = parse_qs(urlsplit(url).query)
    for argument, attribute in (("cto", "socket_connect_timeout"), ("rto", "socket_read_timeout")):
        current = getattr(plugin, attribute, None)
        if argument in given and isinstance(current, int | float):
            setattr(plugin, attribute, min(float(current), timeout))
        else:
            setattr(plugin, attribute, timeout)


def masked_channel(url: str) -> str:
    """``url`` safe to log: the scheme and a host name, without user, password, path or token.

    A "host" that is not a network address (``slack://TokenA/…``, ``tgram://bot-token/…``)
    is a token in apprise URLs, so it is hidden too.
    """
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "(not a URL)"
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    host = netloc.rpartition("@")[2]
    if not _looks_like_host(host):
        host = "…"
    hidden = "/…" if len(netloc) < len(rest) and host != "…" else ""
    return f"{scheme}://{host}{hidden}"


def _looks_like_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name == "localhost" or "." in name or name.startswith("[")


def _secret_parts(url: str) -> tuple[str, ...]:
    """Pieces of ``url`` an error message must not repeat (longest first, for ``mask``)."""
    scheme, _, rest = url.partition("://")
    pieces = {url, rest, *rest.replace("@", "/").replace("?", "/").split("/")}
    pieces.discard(masked_channel(url).partition("://")[2].removesuffix("/…"))
    return tuple(sorted((p for p in pieces if len(p) >= 4), key=len, reverse=True))


def _render_url(url: str, env: Mapping[str, str]) -> str:
    if "{" not in url:
        return url
    return _jinja_render(url, {}, env, "alert URL").strip()


class _UnsetVariable(Exception):
    pass


def _jinja_render(template: str, values: dict[str, Any], env: Mapping[str, str], what: str) -> str:
    """Render with ``env_var()``; any failure is a ``UserInputError`` that names ``what``."""
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        value = env.get(name, default)
        if value is None:
            raise _UnsetVariable(name)
        return value

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=lambda value: "" if value is None else value,
    )
    environment.globals["env_var"] = env_var
    try:
        return environment.from_string(template).render(values)
    except _UnsetVariable as exc:
        raise UserInputError(
            f"{what}: environment variable {exc.args[0]!r} is not set",
            hint=f"set {exc.args[0]} in the environment of the scheduler",
        ) from None
    except Exception as exc:  # a template is user input: any failure is theirs to fix
        raise UserInputError(f"{what}: template error: {exc}") from None


def _template_values(ctx: AlertContext) -> dict[str, Any]:
    values = asdict(ctx)
    values["event"] = ctx.event.value
    values["error"] = summarize_error(ctx.error)
    return values


def _subject(ctx: AlertContext) -> str:
    return f"alert {ctx.event.value!r} of run {ctx.run_id} ({ctx.pipeline})"


def _problem(message: str) -> str:
    log.warning("%s", message)
    return message


def _human_duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
